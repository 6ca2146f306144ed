"""The README's Python example runs as written."""
import re
from pathlib import Path

import pytest


@pytest.mark.slow
def test_readme_python_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has a Python example"
    code = blocks[0].replace("import sftc", "import sftc\nimport functools\n"
                             "sftc.train = functools.partial(sftc.train, progress=False)\n"
                             "sftc.retrain = functools.partial(sftc.retrain, progress=False)\n"
                             "sftc.unlearn = functools.partial(sftc.unlearn, progress=False)\n", 1)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out
