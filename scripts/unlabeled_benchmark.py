#!/usr/bin/env python
"""
Do unlabeled texts help a classifier? `train-classifier --unlabeled-file` against the same command without them, the
n-gram SVM and fastText, on a labeled set of the suite whose kind of text exists unlabeled at 10x its rows.

    python scripts/make_labeled_suite.py /tmp/suite --sets cyrillic-words
    python scripts/unlabeled_benchmark.py --suite /tmp/suite [--sizes 500 2000 all] [--output FILE.md]

For each size N: the first N training rows after a seeded shuffle (all: every row), the set's own validation and test
files, and 10 x N unlabeled texts of the same kind (for cyrillic-words: wordfreq's bg / mk / ru / uk words that are in
none of the set's files, beyond the ranks the set drew from, in a seeded order; the languages as wordfreq has them).
Each command runs once (the default command gives the same figures every run: scripts/labels_benchmark.py); test
accuracy / macro-F1 and wall time, and the machine's fp32 matmul peak, are printed.
"""

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, write_table  # noqa: E402
from labels_benchmark import read_csv, run_fasttext, run_hf_charnn, run_svm  # noqa: E402

SEED = 1234
LANGUAGES = {"cyrillic-words": ["bg", "mk", "ru", "uk"], "arabic-script-words": ["ar", "fa", "ur"]}


def unlabeled_pool(name: str, exclude: set) -> list[str]:
    """Words of the set's languages that none of its files holds (3+ letters, no digits, in one language's list)."""
    import wordfreq

    lists = {language: wordfreq.top_n_list(language, 200_000) for language in LANGUAGES[name]}
    seen: dict = {}
    for words in lists.values():
        for word in set(words):
            seen[word] = seen.get(word, 0) + 1
    pool = [
        word
        for words in lists.values()
        for word in words
        if seen[word] == 1 and word not in exclude and len(word) >= 3 and not any(c.isdigit() for c in word)
    ]
    random.Random(SEED).shuffle(pool)
    return pool


def write_rows(path: Path, rows: list):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", type=Path, required=True)
    parser.add_argument("--set", default="cyrillic-words", choices=list(LANGUAGES))
    parser.add_argument("--sizes", nargs="+", default=["500", "2000", "all"])
    parser.add_argument("--output")
    args = parser.parse_args()
    folder = args.suite / args.set
    files = {split: folder / f"{args.set}-{split}.csv" for split in ("train", "validation", "test")}
    texts, labels = read_csv(files["train"])
    exclude = {text for path in files.values() for text in read_csv(path)[0]}
    pool = unlabeled_pool(args.set, exclude)
    rows = list(zip(texts, labels))
    random.Random(SEED).shuffle(rows)
    peaks = [matmul_peak_gflops()]
    lines = [
        "| labeled rows | unlabeled texts | SVM acc / F1 (s) | fastText acc / F1 (s) | hf-charnn acc / F1 (s) "
        "| hf-charnn --unlabeled-file acc / F1 (s) | unlabeled better on both |",
        "|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes:
        count = len(rows) if size == "all" else int(size)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            subset = {**files, "train": work / f"{args.set}-train.csv"}
            write_rows(subset["train"], rows[:count])
            unlabeled = pool[: 10 * count]
            (work / "unlabeled.txt").write_text("\n".join(unlabeled) + "\n", encoding="utf-8")
            svm, fast = run_svm(subset), run_fasttext(subset, work, seed=0)
            ours = run_hf_charnn(subset, work / "plain")
            helped = run_hf_charnn(subset, work / "unlabeled", ["--unlabeled-file", str(work / "unlabeled.txt")])
            peaks.append(matmul_peak_gflops())
        better = helped["accuracy"] > ours["accuracy"] and helped["macro_f1"] > ours["macro_f1"]
        lines.append(
            f"| {count:,} | {len(unlabeled):,} | "
            + " | ".join(
                f"{r['accuracy']:.2f} / {r['macro_f1']:.2f} ({r['wall']:.0f})" for r in (svm, fast, ours, helped)
            )
            + f" | {'yes' if better else 'no'} |"
        )
        print(lines[-1], file=sys.stderr, flush=True)
    lines += [
        "",
        f"Set: {args.set} (test split {len(read_csv(files['test'])[0]):,} texts); each command once. "
        f"fp32 matmul peak measured in the same run: {statistics.median(peaks):.0f} GFLOP/s; {os.cpu_count()} CPUs.",
        "",
        "Command: `python scripts/unlabeled_benchmark.py --suite SUITE "
        f"--set {args.set} --sizes {' '.join(args.sizes)}`",
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
