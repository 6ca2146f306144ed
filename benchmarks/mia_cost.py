"""Wall time of one paper-style MIA (CatBoost, 5 folds x 1,000 iterations, logits) on inputs the
size of CIFAR-10's: 45,000 retain, 5,000 test and 5,000 forget logits of 10 classes (random
values: the fits' cost depends on the sizes, not on what the logits say). docs/scaling.md uses it
as the cost of one final evaluation.

    OMP_NUM_THREADS=1 python benchmarks/mia_cost.py [--retain 45000 --test 5000 --forget 5000]
"""
from __future__ import annotations

import argparse
import time

import torch

from sftc.metrics.mia import membership_inference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retain", type=int, default=45_000)
    parser.add_argument("--test", type=int, default=5_000)
    parser.add_argument("--forget", type=int, default=5_000)
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)

    def logits(n: int) -> torch.Tensor:
        return torch.randn(n, args.classes, generator=g) * 3

    retain, test, forget = logits(args.retain), logits(args.test), logits(args.forget)
    labels_r = torch.randint(0, args.classes, (args.retain,), generator=g)
    labels_t = torch.randint(0, args.classes, (args.test,), generator=g)
    started = time.perf_counter()
    result = membership_inference(retain, labels_r, test, labels_t, forget)
    print(f"MIA on {args.retain:,} retain / {args.test:,} test / {args.forget:,} forget logits: "
          f"{time.perf_counter() - started:.1f} s (mia {result.mia:.4f})")


if __name__ == "__main__":
    main()
