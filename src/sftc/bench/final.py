"""Table 1 as data: per method the kept setting, JS and MIA there, and means over seeds.

From the grid's runs: the kept (learning rate, epoch) per method, JS and MIA at that setting for
every seed (persisted under ``final/``), and each row's means and spreads over seeds.
"""
from __future__ import annotations

from dataclasses import asdict

from ..codeprint import code_print, combine, run_code
from .attack_columns import AttackColumns
from .config import BenchmarkConfig, method_key, method_label
from .evaluation import accuracy_errors, costly_metrics
from .grid import GridResults
from .progress import Progress, Unit
from .seed_models import OriginalsAndOracles
from .select_evidence import EvidenceRule, hindsight, setting_figures
from .selection import Setting, candidate_scores, select_setting
from .stats import aggregate
from .store import Store

REFERENCE_ROWS = ("ORI", "RT")
#: What a method's row keeps of its run at the kept epoch.
KEPT = ("acc_retain", "acc_forget", "acc_test", "acc_err_retrain", "acc_dis", "acc_err_original",
        "score")


class Final:
    def __init__(self, config: BenchmarkConfig, split, store: Store, seed_models: OriginalsAndOracles,
                 attack: AttackColumns | None = None):
        self.config = config
        self.split = split
        self.store = store
        self.seed_models = seed_models
        self.attack = attack
        self._rule: EvidenceRule | None = None
        #: the code behind each row's numbers: the references' for ORI and RT, the runs' else,
        #: and the per-example attack's when its columns are computed
        self.code = {row: seed_models.code for row in REFERENCE_ROWS}
        self.code.update({method_key(n, h): run_code(n, config.model) for n, h in config.methods})
        if attack is not None and attack.active:
            attack_code = code_print("sftc.bench.attack_columns")
            self.code = {row: combine(code, attack_code) for row, code in self.code.items()}

    def row_keys(self) -> list[str]:
        return list(REFERENCE_ROWS) + [method_key(n, h) for n, h in self.config.methods]

    def units(self) -> list[Unit]:
        attack = self.attack.units() if self.attack is not None else []
        return attack + [Unit(f"final:{row}:{seed}", "final", f"JS/MIA {row} seed {seed}",
                              0.5 * len(self.split.train),
                              done=self.store.final_done(row, seed, self.code[row]))
                for row in self.row_keys() for seed in self.config.seeds]

    def metrics(self, row: str, seed: int, setting: Setting | None, logits: dict, base: dict,
                progress: Progress) -> dict:
        """JS and MIA of one row and seed on top of ``base`` (stored; read back when present)."""
        path = self.store.final_path(row, seed, setting)
        stored = self.store.read_result(path, self.code[row])
        if stored is not None:
            return stored
        unit = f"final:{row}:{seed}"
        progress.start(unit)
        ref = self.seed_models.get(seed)
        c = self.config
        metrics = costly_metrics(logits, ref.logits["original"], self.split,
                                 self.seed_models.members(seed), seed=seed,
                                 mia_iterations=c.mia_iterations, mia_features=c.mia_features,
                                 mia_folds=c.mia_folds, mia_attacker=c.mia_attacker,
                                 oracle_logits=ref.logits["oracle"])
        if self.attack is not None and self.attack.active:
            self.attack.prepare(progress)
            metrics.update(self.attack.metrics(logits))
        record = {**base, **metrics, "seed": seed}
        self.store.write_result(path, record, self.code[row])
        progress.finish(unit)
        return record

    def reference_rows(self, progress: Progress) -> dict[str, dict]:
        ori, rt = [], []
        for seed in self.config.seeds:
            ref = self.seed_models.get(seed)
            acc_o, acc_r = ref.acc["original"], ref.acc["oracle"]
            base_o = {**acc_o, **accuracy_errors(acc_o, acc_o, acc_r),
                      "retrain_seconds": ref.retrain_seconds}
            ori.append(self.metrics("ORI", seed, None, ref.logits["original"], base_o, progress))
            base_r = {**acc_r, **accuracy_errors(acc_r, acc_o, acc_r),
                      "unlearn_seconds": ref.retrain_seconds,
                      "retrain_seconds": ref.retrain_seconds, "time_ratio": 1.0}
            rt.append(self.metrics("RT", seed, None, ref.logits["oracle"], base_r, progress))
        return {"ORI": {"label": "ORI", "method": "original", "seeds": ori},
                "RT": {"label": "RT", "method": "retrain", "seeds": rt}}

    def method_row(self, name: str, hp: dict, runs: dict, progress: Progress) -> tuple[dict, dict]:
        """A method's row entry (kept setting, per-seed metrics) and its candidates' scores."""
        c = self.config
        mkey = method_key(name, hp)
        points, problems = {}, []
        for (lr, seed), result in runs.items():
            if result["status"] != "ok":
                problems.append({"lr": lr, "seed": seed, "status": result["status"],
                                 "reason": result["reason"]})
            for r in result["rows"]:
                if r["epoch"] >= 1:
                    points[(lr, r["epoch"], seed)] = r
        setting = select_setting(points, c.seeds)
        rules = self.rules(mkey, runs, points, setting) if self.evidence() else None
        if c.select == "evidence":
            setting = _setting(rules["evidence"], points, c.seeds) if rules else None
        entry = {"label": method_label(name, hp), "method": name, "hparams": hp,
                 "problems": problems, "setting": asdict(setting) if setting else None,
                 "seeds": [], "rules": rules}
        if setting is None:
            entry["failed"] = True
            entry["reason"] = ("no learning rate and epoch finished on every seed"
                               + (f" ({problems[0]['status']}: {problems[0]['reason']})"
                                  if problems else ""))
            for seed in c.seeds:
                progress.finish(f"final:{mkey}:{seed}", measured=False)
            return entry, candidate_scores(points, c.seeds)
        for seed in c.seeds:
            run = runs[(setting.lr, seed)]
            row = next(r for r in run["rows"] if r["epoch"] == setting.epoch)
            ref = self.seed_models.get(seed)
            logits = self.store.load_logits(self.store.run_dir(mkey, setting.lr, seed) / "logits.pt")
            base = {k: row[k] for k in KEPT}
            base["unlearn_seconds"] = row["seconds"]
            base["retrain_seconds"] = ref.retrain_seconds
            base["time_ratio"] = (row["seconds"] / ref.retrain_seconds
                                  if ref.retrain_seconds else None)
            entry["seeds"].append(self.metrics(mkey, seed, setting, logits[setting.epoch], base,
                                               progress))
        return entry, candidate_scores(points, c.seeds)

    def evidence(self) -> EvidenceRule | None:
        """The evidence rule, when the benchmark has attack references."""
        if self.attack is None or not self.attack.active:
            return None
        if self._rule is None:
            self.attack.prepare()
            self._rule = EvidenceRule(self.attack, self.split, self.config.max_accuracy_drop)
        return self._rule

    def rules(self, mkey: str, runs: dict, points: dict, paper: Setting | None) -> dict:
        """Both rules' kept settings, the grid's best in hindsight, and each one's test figures
        (the regret table); the evidence rule's checks per (lr, epoch, seed)."""
        c, rule = self.config, self.evidence()
        checks, test_auc, original_acc, verdicts = {}, {}, {}, {}
        for (lr, seed), result in runs.items():
            if result["status"] != "ok":
                continue
            ref = self.seed_models.get(seed)
            original = rule.original(seed, ref.logits["original"])
            original_test = self.attack.figures(ref.logits["original"])
            original_acc[seed] = ref.acc["original"]["acc_test"]
            logits = self.store.load_logits(self.store.run_dir(mkey, lr, seed) / "logits.pt")
            for epoch, lg in logits.items():
                checks[(lr, epoch, seed)] = rule.check(lg, original)
                test = self.attack.figures(lg)
                i = test.interval
                test_auc.setdefault((lr, epoch), {})[seed] = (test.auc, i.level, i.low, i.high)
                verdicts[(lr, epoch, seed)] = self.attack.comparison.verdict(original_test,
                                                                             test).text
        kept = rule.select(checks, c.seeds)
        best = hindsight(points, test_auc, c.seeds, c.max_accuracy_drop, original_acc)

        def judged(lr, epoch):
            return setting_figures(points, test_auc, lr, epoch, c.seeds, verdicts)
        out = {"evidence": judged(kept.lr, kept.epoch) if kept else None,
               "paper": judged(paper.lr, paper.epoch) if paper else None,
               "hindsight": judged(*best) if best else None,
               "checks": [{"lr": lr, "epoch": e, "seed": s, **v}
                          for (lr, e, s), v in sorted(checks.items())]}
        if kept:
            found = [v for (lr, e, _), v in checks.items() if (lr, e) == (kept.lr, kept.epoch)]
            out["evidence"]["passing_seeds"] = sum(v["passes"] for v in found)
        return out

    def table(self, results: GridResults, progress: Progress) -> dict:
        """``rows`` (one aggregated row per Table-1 row), ``per_row`` (per-seed records),
        ``selection_grid`` (every candidate's mean score) and the grid's ``results``."""
        if self.attack is not None:
            self.attack.prepare(progress)
        per_row = self.reference_rows(progress)
        selection_grid = {}
        for name, hp in self.config.methods:
            mkey = method_key(name, hp)
            per_row[mkey], selection_grid[mkey] = self.method_row(name, hp, results[mkey], progress)
        add_verdicts(per_row, self.attack)
        rows = [table_row(key, entry, self.config.js) for key, entry in per_row.items()]
        return {"rows": rows, "per_row": per_row, "selection_grid": selection_grid,
                "results": results,
                "attack": self.attack.describe() if self.attack is not None else None}


def _setting(chosen: dict | None, points: dict, seeds) -> Setting | None:
    """The evidence rule's kept setting as a :class:`Setting` (with its Eq. 5 + 6 + 7 mean)."""
    if chosen is None:
        return None
    score = chosen["eq567"] if chosen["eq567"] is not None else float("nan")
    return Setting(lr=chosen["lr"], epoch=chosen["epoch"], score=score, n_seeds=len(list(seeds)))


def add_verdicts(per_row: dict, attack: AttackColumns | None) -> None:
    """Each seed's ``sftc audit`` verdict on every row, with the power that seed's original
    gives the band (nothing when the benchmark has no attack)."""
    if attack is None or not attack.active:
        return
    originals = {r["seed"]: r for r in per_row["ORI"]["seeds"]}
    for entry in per_row.values():
        for record in entry["seeds"]:
            found = attack.verdict(originals.get(record["seed"], {}), record)
            if found is not None:
                record["rmia_verdict"] = found


def table_row(key: str, entry: dict, js: str) -> dict:
    """One row of Table 1: label, means and spreads over seeds, the kept setting and problems."""
    row = {"label": entry["label"], "key": key, "method": entry["method"],
           "n_seeds": len(entry["seeds"])}
    if entry.get("failed"):
        row.update(failed=True, reason=entry["reason"])
    else:
        row.update(aggregate(entry["seeds"]))
        found = [r["rmia_verdict"] for r in entry["seeds"] if r.get("rmia_verdict")]
        if found:
            row["rmia_verdicts"] = {v: found.count(v) for v in sorted(set(found))}
    if entry.get("setting"):
        row["lr"] = entry["setting"]["lr"]
        row["epoch"] = entry["setting"]["epoch"]
    if entry.get("problems"):
        row["problems"] = entry["problems"]
    if entry.get("hparams"):
        row["hparams"] = entry["hparams"]
    if entry.get("rules"):
        row["rules"] = {k: v for k, v in entry["rules"].items() if k != "checks"}
    if js == "paper":
        row["js_textbook"] = row.get("js")
        row["js"] = row.get("js_paper")
        if "js_paper_std" in row:
            row["js_std"] = row["js_paper_std"]
    return row
