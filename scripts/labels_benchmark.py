#!/usr/bin/env python
"""
Your own labels, side by side: hf_charnn's default command against the baseline a user would pick instead.

    python scripts/labels_benchmark.py ../shared/corpora/code-languages-train.csv /tmp/words/words-train.csv
        [--output docs/labels_benchmark.md] [--runs 1]

Each argument is a training CSV (`text`, `label`) whose validation and test files sit beside it, named with
`validation` and `test` in place of `train`. For each dataset, on the same split and this machine:

- `hf-charnn train-classifier --train-file ... --validation-file ... --test-file ...`, the default command with nothing
  but the data flags (the recipe is sized to the data, see docs/training.md);
- scikit-learn's `TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)` + `LinearSVC(C=0.5)`,
  trained on the training file (the validation file is not used by it), scored on the test file.

It prints test accuracy, macro-F1, wall time (the whole command, start-up and scoring included), the classifier's
training characters per second and padding share, and this machine's fp32 matmul peak measured in the same run. The
wall-time targets (120 s for texts with a median under 32 characters, 240 s otherwise) hold at a peak of about 250
GFLOP/s; on a slower machine they are scaled by 250 / the measured peak. The dataset files are not committed.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, write_table  # noqa: E402  (shared by the benchmark scripts)

REFERENCE_PEAK = 250.0  # GFLOP/s at which the wall-time targets hold
SHORT_TEXT = 32  # median characters: below, the 120 s target; else 240 s


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def split_files(train: Path) -> dict:
    files = {split: train.with_name(train.name.replace("train", split)) for split in ("train", "validation", "test")}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if "train" not in train.name or missing:
        raise SystemExit(f"{train}: needs its validation and test files beside it ({', '.join(missing) or 'name'})")
    return files


def report(gold: list[str], predicted: list[str]) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return 100 * accuracy_score(gold, predicted), 100 * f1_score(gold, predicted, average="macro")


def run_svm(files: dict) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    start = time.perf_counter()
    texts, labels = read_csv(files["train"])
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    svm = LinearSVC(C=0.5).fit(vectorizer.fit_transform(texts), labels)
    test_texts, test_labels = read_csv(files["test"])
    accuracy, macro_f1 = report(test_labels, svm.predict(vectorizer.transform(test_texts)))
    return {"accuracy": accuracy, "macro_f1": macro_f1, "wall": time.perf_counter() - start}


def run_hf_charnn(files: dict, work: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "hf_charnn",
        "train-classifier",
        "--train-file",
        str(files["train"]),
        "--validation-file",
        str(files["validation"]),
        "--test-file",
        str(files["test"]),
        "--output-dir",
        str(work),
        "--overwrite-output-dir",
        "--no-progress-bar",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"hf-charnn failed:\n{result.stderr[-3000:]}")
    summary = json.loads((work / "eval_results.json").read_text())
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    speeds = [row["train_chars_per_second"] for row in rows if row.get("train_chars_per_second")]
    return {
        "accuracy": summary["test_results"]["accuracy"],
        "macro_f1": summary["test_results"]["macro_f1"],
        "wall": wall,
        "train_seconds": summary["train_seconds"],
        "chars_per_second": statistics.median(speeds) if speeds else 0.0,
        "padding": summary.get("padding_share"),
        "best": summary.get("best"),
        "stopped_by": summary.get("stopped_by"),
        "recipe": summary.get("recipe", {}).get("settings"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("train_files", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=1, help="runs of each command (medians are reported)")
    parser.add_argument("--output", help="also write the table here (docs/labels_benchmark.md)")
    args = parser.parse_args()
    datasets = {path: split_files(path) for path in args.train_files}
    peaks = [matmul_peak_gflops()]
    lines = [
        "| dataset | model | test accuracy | test macro-F1 | wall s | train chars/s | padding | target wall s "
        "| at or above SVM, in time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    details = []
    for train, files in datasets.items():
        name = train.name.replace("-train", "").replace(".csv", "")
        texts, _ = read_csv(files["train"])
        budget = 120 if statistics.median(len(text) for text in texts) < SHORT_TEXT else 240
        svm_runs, ours_runs = [], []
        for _ in range(args.runs):
            svm_runs.append(run_svm(files))
            with tempfile.TemporaryDirectory() as work:
                ours_runs.append(run_hf_charnn(files, Path(work) / "model"))
            peaks.append(matmul_peak_gflops())
        svm = {key: statistics.median(run[key] for run in svm_runs) for key in svm_runs[0]}
        ours = {
            key: statistics.median(run[key] for run in ours_runs)
            for key in ("accuracy", "macro_f1", "wall", "train_seconds", "chars_per_second")
        }
        peak = statistics.median(peaks)
        target = budget * max(1.0, REFERENCE_PEAK / peak)
        passed = ours["accuracy"] >= svm["accuracy"] and ours["macro_f1"] >= svm["macro_f1"] and ours["wall"] <= target
        padding = ours_runs[-1]["padding"]
        lines.append(
            f"| {name} | scikit-learn TF-IDF char_wb (1-4) + LinearSVC(C=0.5) | {svm['accuracy']:.1f} % | "
            f"{svm['macro_f1']:.1f} | {svm['wall']:.1f} | | | | |"
        )
        lines.append(
            f"| {name} | `hf-charnn train-classifier` (recipe from the data) | {ours['accuracy']:.1f} % | "
            f"{ours['macro_f1']:.1f} | {ours['wall']:.0f} | {ours['chars_per_second']:,.0f} | "
            f"{'' if padding is None else f'{100 * padding:.1f} %'} | {target:.0f} | {'yes' if passed else 'no'} |"
        )
        details.append(f"- {name}: {ours_runs[-1]['recipe']}; best {ours_runs[-1]['best']}")
    lines += [
        "",
        f"fp32 matmul peak measured in the same run: {statistics.median(peaks):.0f} GFLOP/s (median of "
        f"{len(peaks)}); {os.cpu_count()} CPUs; {args.runs} run(s) of each command, medians. Wall-time targets "
        f"(120 s for short texts, 240 s otherwise) hold at {REFERENCE_PEAK:.0f} GFLOP/s and are scaled by "
        f"{REFERENCE_PEAK:.0f} / peak on a slower machine.",
        "",
        "Command: `python scripts/labels_benchmark.py " + " ".join(str(path) for path in args.train_files) + "`",
        "",
        "Recipes chosen:",
        *details,
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
