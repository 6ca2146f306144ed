"""``sftc methods``: every unlearning method with its label, a one-line summary and its defaults."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser(
        "methods", help="list the unlearning methods and their hyperparameters",
        description="List every registered unlearning method: its name (for --method), the "
                    "paper's row label, a one-line summary and its hyperparameters with defaults. "
                    "Hyperparameters are options of 'sftc unlearn', e.g. "
                    "'sftc unlearn --method eu-k --k 3 --init-seed 1'.")
    p.add_argument("name", nargs="?", default=None,
                   help="show one method in detail: its paper and each hyperparameter's meaning")
    p.add_argument("--json", action="store_true", help="print the same as JSON")
    p.add_argument("--attacks", action="store_true",
                   help="list the membership attacks instead (sftc audit --attack)")
    p.add_argument("--metrics", action="store_true",
                   help="list the declared metrics instead (sftc's and plugins')")
    p.set_defaults(handler=handle)


def list_others(args) -> int:
    """``--attacks`` / ``--metrics``: every registered attack or metric, one line each."""
    if args.attacks:
        from ...api import attack_class, list_attacks

        infos = [{"name": c.name, "aliases": list(c.aliases), "label": c.label,
                  "min_references": c.min_references, "audit": not c.needs_members,
                  "meaning": c.meaning} for c in map(attack_class, list_attacks())]
        lines = [f"{i['name']:14s} {'audit' if i['audit'] else 'online':6s} "
                 f"≥{i['min_references']} refs  {i['meaning']}" for i in infos]
    else:
        from ...api import list_metrics, metric_info

        infos = [{"key": m.key, "header": m.header, "better": m.better,
                  "needs_oracle": m.needs_oracle, "meaning": m.meaning,
                  "plugin": m.compute is not None} for m in map(metric_info, list_metrics())]
        lines = [f"{i['key']:18s} {(i['better'] or '-'):4s} "
                 f"{'oracle' if i['needs_oracle'] else '      '}  {i['meaning']}" for i in infos]
    print(json.dumps(infos, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))
    return 0


def describe(name: str) -> dict:
    from ...api import method_class

    cls = method_class(name)
    method = cls()  # instance: labels such as CF-5 depend on the defaults
    return {"name": cls.name, "label": method.label, "summary": cls.summary, "paper": cls.paper,
            "sees_forget": cls.sees_forget,
            "hparams": {key: {"default": spec.default, "type": spec.type.__name__,
                              "help": spec.help}
                        for key, spec in cls.hparams.items()}}


def _defaults(info: dict) -> str:
    return "  ".join(f"--{k.replace('_', '-')} {v['default']}" for k, v in info["hparams"].items()) or "-"


def handle(args, extra) -> int:
    from ...api import list_methods, method_class

    if args.attacks or args.metrics:
        return list_others(args)
    names = [method_class(args.name).name] if args.name else list_methods()
    infos = [describe(n) for n in names]
    if args.json:
        print(json.dumps(infos if not args.name else infos[0], indent=2, ensure_ascii=False))
        return 0
    if args.name:
        info = infos[0]
        print(f"{info['name']} ({info['label']}): {info['summary']}")
        if info["paper"]:
            print(f"  paper: {info['paper']}")
        print(f"  reads forget samples: {'yes' if info['sees_forget'] else 'no'}")
        if not info["hparams"]:
            print("  hyperparameters: none")
        for key, spec in info["hparams"].items():
            print(f"  --{key.replace('_', '-')} {spec['type'].upper()}  {spec['help']} "
                  f"(default {spec['default']})")
        return 0
    header = ("METHOD", "LABEL", "SUMMARY", "OPTIONS (defaults)")
    rows = [(i["name"], i["label"], i["summary"], _defaults(i)) for i in infos]
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(3)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
    print("\nPass options to 'sftc unlearn --method METHOD'; 'sftc methods METHOD' explains them.")
    return 0
