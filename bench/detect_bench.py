"""Free-text detector throughput and accuracy on the labelled corpus, on one core.

    python bench/detect_bench.py [--texts 50000] [--seed 3] [--repeat 3]

Baselines, measured in the same run over the same texts: one compiled regular expression
searching for a digit, and str.lower() on each text (about the cheapest scans of every text).
Each rate is the best of --repeat passes. Precision, recall and F1 per kind compare the
detector's (kind, normalised) multiset per text with the corpus truth.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.corpus import labelled_corpus, score  # noqa: E402
from lifecycle.discovery.detect import find_identifiers  # noqa: E402

TARGET = 30_000


def rate(texts: list[str], fn: Callable[[str], object], repeat: int) -> float:
    """Texts per second, best of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            fn(text)
        best = min(best, time.perf_counter() - started)
    return len(texts) / best


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "one thread"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--texts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    where = pin_to_one_core()
    corpus = labelled_corpus(args.texts, seed=args.seed)
    texts = [t for t, _ in corpus]
    lengths = sorted(len(t) for t in texts)
    digit = re.compile(r"\d")
    rates = {
        'bare baseline: re.search(r"\\d")': rate(texts, digit.search, args.repeat),
        "bare baseline: str.lower()": rate(texts, str.lower, args.repeat),
        "detector: find_identifiers": rate(texts, find_identifiers, args.repeat),
    }
    detector = rates["detector: find_identifiers"]

    print(f"{len(texts):,} texts, {lengths[0]}-{lengths[-1]} characters (median {lengths[len(lengths) // 2]}), "
          f"{sum(1 for _, t in corpus if t) / len(corpus):.0%} with identifiers; {where}, best of {args.repeat}")
    print()
    print(f"{'':<34}{'texts/s':>12}{'detector / this':>18}")
    for name, value in rates.items():
        print(f"{name:<34}{value:>12,.0f}{detector / value:>18.3f}")
    print(f"target >= {TARGET:,} texts/s: {'met' if detector >= TARGET else 'NOT MET'}")
    print()
    print(f"{'kind':<19}{'true':>7}{'TP':>7}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F1':>8}")
    for kind, s in score(corpus, lambda t: [(f.kind, f.normalised) for f in find_identifiers(t)]).items():
        print(f"{kind:<19}{s.true_positives + s.false_negatives:>7}{s.true_positives:>7}{s.false_positives:>5}"
              f"{s.false_negatives:>5}{s.precision:>11.4f}{s.recall:>8.4f}{s.f1:>8.4f}")


if __name__ == "__main__":
    main()
