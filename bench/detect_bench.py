"""Free-text detector throughput and accuracy on the labelled corpus, on one core.

    python bench/detect_bench.py [--texts 50000] [--seed 3] [--repeat 3] [--compare REV | --compare '']

The corpus (demo.corpus.labelled_writings) holds every identifier in one of four writings:
canonical, spaced, obfuscated, unicode (see demo.corpus), with look-alikes of each; throughput
is also measured on a corpus written canonically only (extended=False, today's texts). Baselines,
measured in the same run over the same texts: one compiled regular expression searching for a
digit, and str.lower() on each text (about the cheapest scans of every text), and the detector
as it was at ``--compare`` (default: detection version 2, before writings; loaded with
``git show``), so "against today's" is measured, not remembered. Each rate is the best of
--repeat passes, in CPU time of this process pinned to one core (other processes on the
machine do not count against it). Precision, recall and F1 per kind compare the detector's
(kind, normalised) multiset per text with the corpus truth; per writing, a true positive or
false negative counts for the writing of the truth, a false positive for the writing the
detector reports, and "as written" is the share of true positives the detector labels with
the writing of the truth (Finding.writing).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.corpus import Scores, labelled_writings, score, score_writings  # noqa: E402
from lifecycle.discovery.detect import find_identifiers  # noqa: E402

TARGET = 40_000
F1_TARGET = 0.999
VERSION_2 = "5a1347f"  # the last commit with detection version 2 (canonical writings only)


def rates(texts: list[str], fns: dict[str, Callable[[str], object]], repeat: int) -> dict[str, float]:
    """Texts per second of CPU time of each of ``fns``, best of ``repeat`` passes, the passes
    of all of them taken in turn (so a machine busier at one moment favours none)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.process_time()
            for text in texts:
                fn(text)
            best[name] = min(best[name], time.process_time() - started)
    return {name: len(texts) / seconds for name, seconds in best.items()}


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "one thread"


def detector_at(rev: str) -> Callable[[str], list[object]] | None:
    """find_identifiers of lifecycle/discovery/detect.py as it was at ``rev``, or None."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:lifecycle/discovery/detect.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType(f"detect_at_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"detect.py@{rev}", "exec"), module.__dict__)  # noqa: S102 - our own file, from git
    return module.find_identifiers  # type: ignore[no-any-return]


def table(title: str, scores: dict[str, Scores], with_writing: bool = False) -> None:
    print(f"{title:<19}{'true':>7}{'TP':>7}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}{'F1':>8}"
          + (f"{'as written':>12}" if with_writing else ""))
    for name, s in scores.items():
        line = (f"{name:<19}{s.true_positives + s.false_negatives:>7}{s.true_positives:>7}{s.false_positives:>5}"
                f"{s.false_negatives:>5}{s.precision:>11.4f}{s.recall:>8.4f}{s.f1:>8.4f}")
        if with_writing:
            line += f"{s.same_writing / s.true_positives if s.true_positives else 1.0:>12.4f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--texts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", default=VERSION_2, help="git revision of the detector to compare with ('': none)")
    args = parser.parse_args()

    where = pin_to_one_core()
    corpus = labelled_writings(args.texts, seed=args.seed)
    texts = [t for t, _ in corpus]
    lengths = sorted(len(t) for t in texts)
    digit = re.compile(r"\d")
    before = detector_at(args.compare) if args.compare else None
    fns: dict[str, Callable[[str], object]] = {
        'bare baseline: re.search(r"\\d")': digit.search, "bare baseline: str.lower()": str.lower}
    if before:
        fns[f"detector at {args.compare}"] = before
    fns["detector: find_identifiers"] = find_identifiers
    measured = rates(texts, fns, args.repeat)
    detector = measured["detector: find_identifiers"]
    canonical = [t for t, _ in labelled_writings(args.texts, seed=args.seed, extended=False)]
    on_canonical = rates(canonical, {k: v for k, v in fns.items() if k.startswith("detector")}, args.repeat)

    writings: dict[str, int] = {}
    for _, labels in corpus:
        for _, _, writing in labels:
            writings[writing] = writings.get(writing, 0) + 1
    print(f"{len(texts):,} texts, {lengths[0]}-{lengths[-1]} characters (median {lengths[len(lengths) // 2]}), "
          f"{sum(1 for _, t in corpus if t) / len(corpus):.0%} with identifiers, "
          f"{sum(1 for t in texts if chr(10) in t) / len(texts):.0%} on several lines; identifiers written "
          + ", ".join(f"{w} {n / sum(writings.values()):.1%}" for w, n in writings.items())
          + f"; {where}, best of {args.repeat}, CPU time")
    print()
    print(f"{'':<34}{'texts/s':>12}{'detector / this':>18}")
    for name, value in measured.items():
        print(f"{name:<34}{value:>12,.0f}{detector / value:>18.3f}")
    print(f"target >= {TARGET:,} texts/s: {'met' if detector >= TARGET else 'NOT MET'}")
    print("on the same number of texts written canonically only, on one line (today's texts):")
    for name, value in on_canonical.items():
        print(f"{name:<34}{value:>12,.0f}{on_canonical['detector: find_identifiers'] / value:>18.3f}")
    print()
    found = {t: find_identifiers(t) for t in texts}
    table("kind", score([(t, [(k, v) for k, v, _ in labels]) for t, labels in corpus],
                        lambda t: [(f.kind, f.normalised) for f in found[t]]))
    print()
    per_writing = score_writings(corpus, lambda t: [(f.kind, f.normalised, f.writing) for f in found[t]])
    table("writing", per_writing, with_writing=True)
    worst = min(s.f1 for s in per_writing.values())
    print(f"target F1 >= {F1_TARGET} on every writing: {'met' if worst >= F1_TARGET else 'NOT MET'} (lowest {worst:.4f})")
    if before:
        print()
        table(f"writing at {args.compare}",
              score_writings(corpus, lambda t: [(f.kind, f.normalised, "canonical") for f in before(t)]))  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
