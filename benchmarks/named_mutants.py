"""The evidence's named mutations (docs/testing.md): each changes one rule of the verdict the
way a plausible bug would; the tests that guard it must fail.

    OMP_NUM_THREADS=1 python benchmarks/named_mutants.py     # about 3 minutes on a 2-core VM

Works on a copy of src/ and tests/ in a temporary folder; the checkout is never modified.
Prints one row per mutation: killed (a test failed, the first one named) or SURVIVED.
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent.parent
ROOT = pathlib.Path(tempfile.mkdtemp(prefix="sftc-mutants-"))
for part in ("src", "tests", "pyproject.toml"):
    source = HERE / part
    (shutil.copytree if source.is_dir() else shutil.copy)(source, ROOT / part)
A = "src/sftc/metrics/attacks/"
MUTANTS = [
    ("the interval ignores the references' spread", A + "equivalence.py",
     "se = math.sqrt(var_examples + var_null)", "se = math.sqrt(var_examples)"),
    ("the spread without L's own uncertainty (1 + 1/K dropped)", A + "equivalence.py",
     "self.spread ** 2 * (1.0 + 1.0 / len(self.aucs))", "self.spread ** 2"),
    ("a one-sided margin (only the upper end checked)", A + "equivalence.py",
     "if low < interval.low and interval.high < high:", "if interval.high < high:"),
    ("the level is 0.5, not the never-seen models'", A + "equivalence.py",
     "low, high = level - d, level + d", "low, high = 0.5 - d, 0.5 + d"),
    ("no power rule", A + "equivalence.py", "if d <= 0 or not power:", "if d <= 0:"),
    ("an unmatched comparison (one stratum for everything)", A + "comparison.py",
     "p, n = pos[strata.forget == s], neg[strata.candidates == s]",
     "p, n = pos[strata.matched], neg"),
    ("strata weighted equally, not by their forget samples", A + "comparison.py",
     "weight = p.size / total", "weight = 1.0 / len(np.unique(strata.forget[strata.matched]))"),
    ("LiRA's global σ around the grand mean", A + "lira.py",
     "std = np.full_like(mean, np.sqrt(squares.sum() / (counts - 1).sum()))",
     "std = np.full_like(mean, np.sqrt(np.where(mask, (refs - refs[mask].mean()) ** 2, 0.0).sum() / (counts - 1).sum()))"),
    ("the forgetting score's positive group chosen by mean, not median", A + "neurips.py",
     "if np.median(retrained) > np.median(unlearned):",
     "if np.mean(retrained) > np.mean(unlearned):"),
    ("the class test's threshold absolute, not a share of the original's accuracy", A + "class_level.py",
     "threshold = (1.0 - share) * acc_o", "threshold = (1.0 - share)"),
    ("the class test's one-sided bounds swapped", A + "class_level.py",
     "if high < threshold:", "if low < threshold:"),
]
TESTS = ["tests/test_evidence.py", "tests/test_attacks.py", "tests/test_audit.py",
         "tests/test_forgetting.py"]
rows = []
for name, path, old, new in MUTANTS:
    f = ROOT / path
    text = f.read_text()
    assert text.count(old) == 1, (name, text.count(old))
    f.write_text(text.replace(old, new))
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
                           cwd=ROOT, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                "PYTHONPATH": str(ROOT / "src"), "HOME": str(ROOT)})
        failed = [l.split(" ")[1] for l in r.stdout.splitlines() if l.startswith("FAILED")]
        rows.append((name, "killed" if r.returncode else "SURVIVED", failed[0] if failed else ""))
    finally:
        f.write_text(text)
    print(rows[-1], flush=True)
print("| mutation | result | first failing test |\n|---|---|---|")
for name, res, t in rows:
    print(f"| {name} | {res} | `{t}` |")
shutil.rmtree(ROOT, ignore_errors=True)
sys.exit(1 if any(res == "SURVIVED" for _, res, _ in rows) else 0)
