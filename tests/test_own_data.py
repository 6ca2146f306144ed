"""The README's "Your own data, model and method", end to end on generated PNGs: a user's
ImageFolder with their transforms, their nn.Module factory and their method in a separate file,
through train, unlearn, evaluate, benchmark and sweep, from the command line (--plugin) and the
API; and an edited method reruns in the next benchmark. Speed options are appended to the
README's commands (argparse keeps the last value); the commands themselves are the README's."""
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from sftc.cli import main
from sftc.io import file_sha256

from test_data_sources import make_pngs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README.split("## Your own data, model and method", 1)[1].split("\n## ", 1)[0]
EXTENDING = (ROOT / "docs" / "extending.md").read_text()

FAST = {"train": ["--epochs", "1", "--quiet"],
        "unlearn": ["--epochs", "1", "--mia-iterations", "5", "--quiet"],
        "evaluate": ["--mia-iterations", "5"],
        "benchmark": ["--train-epochs", "1", "--lrs", "1e-3", "--max-epochs", "1",
                      "--mia-iterations", "5", "--seeds", "0", "--quiet"],
        "sweep": ["--train-epochs", "1", "--epochs", "1", "--values", "0.5,2",
                  "--mia-iterations", "5", "--quiet"]}


def python_block(text: str, first_line: str) -> str:
    found = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
             if b.startswith(first_line)]
    assert len(found) == 1, first_line
    return found[0]


def commands() -> list[list[str]]:
    """The README's sftc commands, with $P expanded."""
    block = re.search(r"```bash\n(P=.*?)```", SECTION, flags=re.S).group(1)
    lines = block.strip().splitlines()
    plugins = shlex.split(lines[0].split("=", 1)[1])[0]
    return [shlex.split(line.replace("$P", plugins))[1:] for line in lines[1:]]


@pytest.fixture
def workspace(isolated_registries, tmp_path, monkeypatch):
    make_pngs(tmp_path / "pngs", per_class=(12, 3, 3), side=8)
    (tmp_path / "forget.txt").write_text("cat/000.png\ndog/003.png\neel/007.png\ncat/011.png\n")
    (tmp_path / "my_data.py").write_text(python_block(SECTION, "# my_data.py"))
    (tmp_path / "my_models.py").write_text(python_block(SECTION, "# my_models.py"))
    (tmp_path / "my_method.py").write_text(python_block(EXTENDING, '"""my_method.py'))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SFTC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("sftc.data.source.default_workers", lambda: 0)   # fast in tests
    return tmp_path


@pytest.mark.slow
def test_the_readme_commands_run_on_the_users_data_model_and_method(workspace, capsys):
    done = []
    for argv in commands():
        command = argv[0]
        code = main([*argv, *FAST[command], "--device", "cpu"])
        err = capsys.readouterr().err
        assert code == 0, f"{argv}: {err}"
        done.append(command)
    assert done == ["train", "train", "unlearn", "evaluate", "benchmark", "sweep"]
    rl = json.loads((workspace / "runs/rl/run.json").read_text())
    assert rl["config"]["method"] == "random-labels" and rl["config"]["forget_weight"] == 0.5
    # from the run.json, recorded with the file's absolute path and SHA-256 (issue 30)
    assert rl["config"]["model"] == f"{workspace / 'my_models.py'}:make_resnet18"
    assert rl["config"]["model_file_sha256"] == file_sha256(workspace / "my_models.py")
    assert rl["forget"]["size"] == 4 and rl["dataset"]["name"] == "my-pngs"
    assert rl["trained_on"]["preprocessing"]["transform"].startswith("Compose(")
    table = (workspace / "bench/mine/table1.md").read_text()
    assert "| RL " in table and "| SFTC " in table
    sweep = (workspace / "sweep/mine/sensitivity.csv").read_text().splitlines()
    assert sweep[0].startswith("value,lr,forget_weight") and len(sweep) == 3

    # other transforms than the model was trained with are said aloud
    data = workspace / "my_data.py"
    data.write_text(data.read_text().replace("T.Normalize(0.5, 0.5)", "T.Normalize(0.4, 0.5)"))
    sys.modules.pop("my_data")
    evaluate = next(a for a in commands() if a[0] == "evaluate")
    assert main([*evaluate, *FAST["evaluate"], "--device", "cpu"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 3 and "was evaluated on inputs transformed by Compose(" in warned[0]
    data.write_text(data.read_text().replace("T.Normalize(0.4, 0.5)", "T.Normalize(0.5, 0.5)"))
    sys.modules.pop("my_data")

    # the user edits the method: the next benchmark reruns it, and only it
    source = workspace / "my_method.py"
    source.write_text(source.read_text().replace("return ce[~forget].mean() + ",
                                                 "return 0.5 * ce[~forget].mean() + "))
    sys.modules.pop("my_method")                     # a new command is a new process
    benchmark = next(a for a in commands() if a[0] == "benchmark")
    assert main([*benchmark, *FAST["benchmark"], "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "were computed by other code (changed: my_method.py); computing them again" in err


@pytest.mark.slow
def test_the_readme_python_example_runs_on_the_users_data(workspace, capsys):
    code = python_block(SECTION, "import sftc")
    for slow, fast in (("lrs=(1e-3, 5e-4), max_epochs=2", "lrs=(1e-3,), max_epochs=1, "
                                                          "mia_iterations=5"),
                       ("epochs=5", "epochs=1"), ("forget_weight=0.5, epochs=2",
                                                  "forget_weight=0.5, epochs=1"),
                       ("values=(0.5, 1.0, 2.0))", "values=(0.5, 2.0), epochs=1, "
                                                   "mia_iterations=5)")):
        assert slow in code
        code = code.replace(slow, fast)
    sys.path.insert(0, str(workspace))
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "'acc_forget'" in printed and "'js'" in printed
    assert (workspace / "bench/api/table1.md").is_file()
    assert (workspace / "sweep/api/sensitivity.csv").is_file()
