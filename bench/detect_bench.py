"""Free-text detector throughput and accuracy on the labelled corpus, on one core.

    python bench/detect_bench.py [--texts 50000]

Baseline, measured in the same run over the same texts: one compiled regular expression
searching for a digit (the cheapest possible scan of every text).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifecycle.corpus import labelled_corpus, score  # noqa: E402
from lifecycle.detect import find_identifiers  # noqa: E402


def rate(texts: list[str], fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for text in texts:
        fn(text)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=50_000)
    args = parser.parse_args()
    corpus = labelled_corpus(args.texts, seed=3)
    texts = [t for t, _ in corpus]
    lengths = sorted(len(t) for t in texts)
    digit = re.compile(r"\d")
    baseline = max(rate(texts, digit.search) for _ in range(3))
    detector = max(rate(texts, find_identifiers) for _ in range(3))
    print(f"texts: {len(texts)}, {lengths[0]}-{lengths[-1]} characters (median {lengths[len(lengths) // 2]})")
    print(f"{'bare baseline (one regex search)':<36}{baseline:>12,.0f} texts/s")
    print(f"{'detector (find_identifiers)':<36}{detector:>12,.0f} texts/s   ratio {detector / baseline:.3f}   target >= 30,000")
    print()
    print(f"{'kind':<20}{'TP':>7}{'FP':>6}{'FN':>6}{'precision':>11}{'recall':>9}{'F1':>8}")
    for kind, s in score(corpus, lambda t: [(f.kind, f.normalised) for f in find_identifiers(t)]).items():
        print(f"{kind:<20}{s.true_positives:>7}{s.false_positives:>6}{s.false_negatives:>6}"
              f"{s.precision:>11.4f}{s.recall:>9.4f}{s.f1:>8.4f}")


if __name__ == "__main__":
    main()
