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
    ("a normal quantile instead of Student's t (no small-K correction)", A + "equivalence.py",
     "return float(t.ppf(q, k - 1))", "return float(__import__('scipy.stats').stats.norm.ppf(q))"),
    ("the band without L's own uncertainty (1 + 1/K dropped)", A + "equivalence.py",
     "root = math.sqrt(1.0 + 1.0 / k)", "root = 1.0"),
    ("the examples' noise counted twice (DeLong added to the band)", A + "equivalence.py",
     "return Interval(estimate, max(0.0, estimate - band.certify), min(1.0, estimate + band.certify),",
     "return Interval(estimate, max(0.0, estimate - band.certify - math.sqrt(var_examples)), min(1.0, estimate + band.certify),"),
    ("the refute line at the band's edge (no not-proven zone)", A + "equivalence.py",
     "return certify, _t(1.0 - alpha / 2.0, k) * root, certify + _t(1.0 - beta, k) * root",
     "return certify, certify, certify + _t(1.0 - beta, k) * root"),
    ("a one-sided band (only the upper side checked)", A + "verdict.py",
     "    if abs(d) <= band.certify:\n", "    if d <= band.certify:\n"),
    ("the level is 0.5, not the never-seen models'", A + "verdict.py",
     "    d = interval.estimate - band.level\n", "    d = interval.estimate - 0.5\n"),
    ("no power rule (nothing-detectable never said)", A + "verdict.py",
     "    if not power.shown:\n", "    if False:\n"),
    ("the resolution ignored", A + "verdict.py", "        if power.enough:\n", "        if True:\n"),
    ("the resolution from the band's edge, not the detectable excess", A + "equivalence.py",
     "resolution = 1.0 - band.detectable / excess if excess > 0 else None",
     "resolution = 1.0 - band.certify / excess if excess > 0 else None"),
    ("membership cannot veto a class-level request", "src/sftc/bench/evidence.py",
     "    elif membership.verdict == \"not-forgotten\":\n", "    elif False:\n"),
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
    ("a class-level request decided by membership alone", "src/sftc/bench/evidence.py",
     "        if target.class_hits is None:\n            return membership", "        if True:\n            return membership"),
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
