"""``sftc data``: what a dataset and its forget set hold, per class, and Figure 3 as a PNG."""
from __future__ import annotations

import json
from pathlib import Path

from ..common import add_data_args, add_seed_arg, load_data_from_args


def register(sub) -> None:
    p = sub.add_parser("data", help="show a dataset's per-class counts and plot its distribution",
                       description="Load a dataset and its forget set, print the number of samples "
                                   "per class in train, retain, forget, val and test, and write "
                                   "the distribution figure (the paper's Figure 3) as a PNG.")
    add_data_args(p, forget="default")
    add_seed_arg(p, "seed of a random forget draw, as --seed of train/unlearn (default 0)")
    p.add_argument("--plot", default=None,
                   help="where to write the figure (default: DATASET-distribution.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the figure")
    p.add_argument("--json", action="store_true",
                   help="print the counts as JSON instead of a table")
    p.set_defaults(handler=handle)


def handle(args, extra) -> int:
    from ...api import dataset_info
    from ...api import SUBSETS, class_counts, class_names, distribution_png
    from ...io import atomic_write_bytes

    loaded, split = load_data_from_args(args)
    counts = class_counts(split)
    names = class_names(split)
    forget = split.forget_summary()
    data = split.data
    plot = None if args.no_plot else Path(args.plot or f"{args.dataset}-distribution.png")
    if plot is not None:
        title = f"{args.dataset}: samples per class (forget: {forget['spec']})"
        atomic_write_bytes(plot, distribution_png(counts, names, title))
    if args.json:
        print(json.dumps({
            "dataset": args.dataset, "source": loaded.source, "classes": names,
            "counts": counts, "sizes": split.sizes(), "forget": forget,
            "stored_shape": list(data.images.shape[1:]) if hasattr(data, "images")
            else None, "input_size": data.input_size,
            "mean": data.mean, "std": data.std, "skipped": len(loaded.skipped),
            "plot": str(plot) if plot else None}, indent=2))
        return 0
    info = dataset_info(args.dataset)
    print(f"dataset  {args.dataset}: {info.summary}")
    print(f"source   {loaded.source}")
    if data.is_uint8:
        c, h, w = data.images.shape[1:]
        print(f"images   {c}x{h}x{w} uint8 in memory, fed to models at {c}x{data.input_size}x"
              f"{data.input_size}; mean {_fmt(data.mean)}, std {_fmt(data.std)}")
    elif not hasattr(data, "images"):
        print(f"samples  {'x'.join(map(str, data.input_shape))} from the dataset's own "
              f"transforms, streamed by {data.workers} DataLoader worker(s)"
              + ("" if data.train_deterministic else "; training transforms random (augmented)"))
    print(f"forget   {forget['spec']}: {forget['size']} samples, sha256 {forget['sha256'][:16]}")
    if loaded.skipped:
        print(f"skipped  {len(loaded.skipped)} unreadable rows (--skip-bad-rows); first: "
              f"{loaded.skipped[0]}")
    width = max(len("total"), *(len(n) for n in names))
    print()
    print(f"{'class':<{width}}" + "".join(f"{s:>9}" for s in SUBSETS))
    for i, name in enumerate(names):
        print(f"{name:<{width}}" + "".join(f"{counts[s][i]:>9}" for s in SUBSETS))
    print(f"{'total':<{width}}" + "".join(f"{sum(counts[s]):>9}" for s in SUBSETS))
    if plot is not None:
        print(f"\nwrote {plot}")
    return 0


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
