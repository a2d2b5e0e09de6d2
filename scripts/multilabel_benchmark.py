#!/usr/bin/env python
"""
Multi-label classification, side by side: hf_charnn's default command against what a user would pick instead,
scikit-learn's one-vs-rest linear SVM on the same char n-grams.

    python scripts/make_labeled_suite.py /tmp/suite --sets package-tags
    python scripts/multilabel_benchmark.py /tmp/suite/package-tags/package-tags-train.csv [--runs 3] [--output FILE]

A set is a training CSV (`text`, `label`: a text's labels joined by `--label-separator`, `|` by default) whose
validation and test files sit beside it. For each set, on the same split and this machine, in one run:

- `OneVsRestClassifier(LinearSVC(C=0.5))` on `TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4),
  sublinear_tf=True)`, the single-label benchmark's SVM (scripts/labels_benchmark.py) one label at a time; it trains
  on the training file only and predicts a label where its score is above 0;
- `hf-charnn train-classifier --train-file ... --validation-file ... --test-file ... --label-separator "|"`: the
  default command with the data flags only (each label's threshold is tuned on validation).

It prints test micro-F1, macro-F1 and the exact-match ratio (medians of --runs runs of ours), each command's wall
time, whether our runs gave the same figures every time, and the machine's fp32 matmul peak measured in the same run.
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, run_command, write_table  # noqa: E402
from labels_benchmark import split_files  # noqa: E402

METRICS = ("micro_f1", "macro_f1", "exact_match")


def read_sets(path: Path, separator: str) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [row["text"] for row in rows], [row["label"].split(separator) for row in rows]


def scores(gold: list[list[str]], predicted: np.ndarray, binarizer) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    truth = binarizer.transform(gold)
    return {
        "micro_f1": 100 * f1_score(truth, predicted, average="micro", zero_division=0),
        "macro_f1": 100 * f1_score(truth, predicted, average="macro", zero_division=0),
        "exact_match": 100 * accuracy_score(truth, predicted),
    }


def run_svm(files: dict, separator: str) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    texts, labels = read_sets(files["train"], separator)
    binarizer = MultiLabelBinarizer().fit(labels)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    svm = OneVsRestClassifier(LinearSVC(C=0.5)).fit(vectorizer.fit_transform(texts), binarizer.transform(labels))
    test_texts, test_labels = read_sets(files["test"], separator)
    result = scores(test_labels, svm.predict(vectorizer.transform(test_texts)), binarizer)
    return {**result, "wall": time.perf_counter() - start}


def run_hf_charnn(files: dict, work: Path, separator: str) -> dict:
    command = [sys.executable, "-m", "hf_charnn", "train-classifier", "--train-file", str(files["train"])]
    command += ["--validation-file", str(files["validation"]), "--test-file", str(files["test"])]
    command += ["--label-separator", separator, "--output-dir", str(work), "--overwrite-output-dir"]
    summary, wall = run_command(command, work)
    return {
        **{key: summary["test_results"][key] for key in METRICS},
        "wall": wall,
        "train_seconds": summary["train_seconds"],
        "steps": summary["steps"],
        "mix": summary.get("ngram_linear"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_files", nargs="+", type=Path)
    parser.add_argument("--label-separator", default="|")
    parser.add_argument("--runs", type=int, default=3, help="runs of our command (medians are reported)")
    parser.add_argument("--output", help="also write the table here (docs/multilabel_benchmark.md)")
    args = parser.parse_args()
    peaks = [matmul_peak_gflops()]
    lines = [
        "| set | rows / labels / median length / labels a text | one-vs-rest SVM micro / macro-F1 / exact (s) "
        "| hf-charnn micro / macro-F1 / exact (s) | same every run | micro-F1 at or above the SVM |",
        "|---|---|---|---|---|---|",
    ]
    details, wins = [], 0
    for train in args.train_files:
        files = split_files(train)
        name = train.name.replace("-train", "").replace(".csv", "")
        texts, labels = read_sets(files["train"], args.label_separator)
        svm = run_svm(files, args.label_separator)
        ours_runs = []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as work:
                ours_runs.append(run_hf_charnn(files, Path(work) / "model", args.label_separator))
            peaks.append(matmul_peak_gflops())
            print(
                f"{name} run {run + 1}: ours " + " / ".join(f"{ours_runs[-1][k]:.2f}" for k in METRICS)
                + f" in {ours_runs[-1]['wall']:.0f} s",
                file=sys.stderr,
                flush=True,
            )  # fmt: skip
        ours = {key: statistics.median(run[key] for run in ours_runs) for key in (*METRICS, "wall")}
        same = len({tuple(run[k] for k in METRICS) for run in ours_runs}) == 1
        won = ours["micro_f1"] >= svm["micro_f1"]
        wins += won
        shape = (
            f"{len(texts):,} / {len({label for row in labels for label in row})} / "
            f"{statistics.median(len(text) for text in texts):g} / {statistics.mean(len(row) for row in labels):.2f}"
        )
        lines.append(
            f"| {name} | {shape} | "
            + " | ".join(" / ".join(f"{r[k]:.2f}" for k in METRICS) + f" ({r['wall']:.1f})" for r in (svm, ours))
            + f" | {'yes' if same else 'no'} | {'yes' if won else 'no'} |"
        )
        mix = ours_runs[-1]["mix"]
        if mix:
            chosen = mix["chosen"]
            details.append(
                f"- {name}: scores {chosen['recurrent_scale']:g} x GRU + {chosen['ngram_linear_scale']:g} x linear "
                f"n-grams (fitted in {mix['fit']['seconds']:g} s, {mix['fit']['solver']}), thresholds "
                f"{min(chosen['thresholds']):g}-{max(chosen['thresholds']):g}; {ours_runs[-1]['steps']} steps, "
                f"{ours_runs[-1]['train_seconds']:.0f} s training; runs: "
                + ", ".join(" / ".join(f"{run[k]:.2f}" for k in METRICS) for run in ours_runs)
            )
    lines += [
        "",
        f"Micro-F1 at or above the one-vs-rest SVM: {wins} of {len(args.train_files)}.",
        "",
        f"fp32 matmul peak measured in the same run: {statistics.median(peaks):.0f} GFLOP/s (median of {len(peaks)}); "
        f"{os.cpu_count()} CPUs; {args.runs} run(s) of ours, medians.",
        "",
        "Command: `python scripts/multilabel_benchmark.py "
        + " ".join(f"SUITE/{path.parent.name}/{path.name}" for path in args.train_files)
        + "`",
        "",
        "Our runs:",
        *details,
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
