"""
Any tagged set (JSON lines with tags or spans), side by side in one run: the default `hf-charnn train-tagger` against
the baseline a user would pick instead, the per-character logistic regression of `tagger_benchmark.py` (each offset's
character, bigram and trigram in a window, one-hot, hashed), here over every tag.

    python scripts/make_python_tags.py SETS/python-tags
    python scripts/tags_benchmark.py SETS/python-tags/python-tags-train.jsonl --runs 3 --output docs/tags_benchmark.md

A set is a training file whose validation and test files sit beside it (named with `validation` and `test` for
`train`). Both models train on the training file (ours validates on the validation file, the baseline does not use it)
and are scored on the test file's rows (cut as the tagger cuts them, `--max-length`'s 64 characters): span F1 (a
span's start, end and tag all right), macro-F1 over the tags, character accuracy. It prints wall time (the median of
`--runs` runs for ours, and whether every run gave the same figures) and the machine's measured fp32 peak.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, run_command, write_table  # noqa: E402  (shared by the benchmark scripts)
from tagger_benchmark import WINDOW, window_features  # noqa: E402  (the same baseline features)

from hf_charnn.training.tasks.tagging.data import read_tagged_file  # noqa: E402
from hf_charnn.training.tasks.tagging.task import tagging_report  # noqa: E402

ROW_CHARS = 64  # the tagger's default rows (max_length)
METRICS = ("span_f1", "macro_f1", "accuracy")


def split_files(train: Path) -> dict:
    files = {split: train.with_name(train.name.replace("train", split)) for split in ("train", "validation", "test")}
    missing = [split for split, path in files.items() if not path.is_file()]
    if missing or "train" not in train.name:
        raise SystemExit(f"{train}: needs its validation and test files beside it ({', '.join(missing) or 'name'})")
    return files


def baseline(files: dict) -> dict:
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    train, test = (read_tagged_file(files[split], None, ROW_CHARS) for split in ("train", "test"))
    names = sorted({tag for row in train.tags for tag in row})
    start = time.perf_counter()
    hasher = FeatureHasher(n_features=2**20, input_type="string", alternate_sign=False)
    features = hasher.transform(row for text in train.texts for row in window_features(text))
    labels = np.array([names.index(tag) for row in train.tags for tag in row])
    # (one tag against the rest, as liblinear fits several classes; scikit-learn now asks for the wrapper)
    model = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=1.0, max_iter=200)).fit(features, labels)
    seconds = time.perf_counter() - start
    predicted = [model.predict(hasher.transform(window_features(text))).tolist() for text in test.texts]
    # A test tag the training file never had counts as wrong: it gets an id no prediction has.
    unseen = sorted({tag for row in test.tags for tag in row} - set(names))
    gold = [[names.index(tag) if tag in names else len(names) for tag in row] for row in test.tags]
    report = tagging_report(gold, predicted, names + (["(unseen)"] if unseen else []))
    return {"seconds": seconds, **{key: report[key] for key in METRICS}}


def ours(files: dict, work: Path) -> dict:
    command = [sys.executable, "-m", "hf_charnn", "train-tagger", "--train-file", str(files["train"])]
    command += ["--validation-file", str(files["validation"]), "--test-file", str(files["test"])]
    command += ["--output-dir", str(work), "--overwrite-output-dir", "--no-progress-bar"]
    summary, wall = run_command(command, work)
    return {
        "wall": wall,
        "steps": summary["steps"],
        "recipe": summary.get("recipe", {}).get("settings"),
        "linear": (summary.get("ngram_linear") or {}).get("chosen"),
        **{key: summary["test_results"][key] for key in METRICS},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("train_files", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", help="also write the markdown table here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tags-benchmark-"))
    peaks = [matmul_peak_gflops()]
    lines = [
        "| set | training rows / tags / characters | baseline span F1 / macro-F1 / accuracy (fit s) | hf-charnn span "
        "F1 / macro-F1 / accuracy (median of runs) | hf-charnn wall s (median; runs) | same every run |",
        "|---|---|---|---|---|---|",
    ]
    notes = []
    for train in args.train_files:
        files = split_files(train)
        name = train.name.replace("-train", "").split(".")[0]
        rows = read_tagged_file(files["train"], None, ROW_CHARS)
        tags = len({tag for row in rows.tags for tag in row})
        base = baseline(files)
        runs = []
        for run in range(args.runs):
            runs.append(ours(files, work / f"{name}-{run}"))
            peaks.append(matmul_peak_gflops())
            print(f"{name} run {run + 1}: {runs[-1]['wall']:.1f} s, " + json.dumps({k: runs[-1][k] for k in METRICS}))
        mine = {key: statistics.median(run[key] for run in runs) for key in METRICS}
        same = len({tuple(run[key] for key in METRICS) for run in runs}) == 1
        lines.append(
            f"| {name} | {len(rows.texts):,} / {tags} / {sum(len(text) for text in rows.texts):,} | "
            + " / ".join(f"{base[key]:.2f}" for key in METRICS)
            + f" ({base['seconds']:.1f}) | "
            + " / ".join(f"{mine[key]:.2f}" for key in METRICS)
            + f" | {statistics.median(run['wall'] for run in runs):.1f} "
            f"({', '.join(format(run['wall'], '.1f') for run in runs)}) | {'yes' if same else 'no'} |"
        )
        linear = runs[0]["linear"]
        weighed = f"; linear part weighed {linear['ngram_linear_scale']:g} x on validation" if linear else ""
        notes.append(f"- {name}: {runs[0]['steps']} steps{weighed}; recipe {runs[0]['recipe']}")
    lines += [
        "",
        f"fp32 matmul peak measured in the same run: {statistics.median(peaks):.0f} GFLOP/s (median of {len(peaks)}); "
        f"2 CPUs. Baseline: logistic regression (liblinear, one tag against the rest) over hashed one-hot characters, "
        f"bigrams and trigrams at each offset of a +-{WINDOW} window, on the training file's rows.",
        "",
        *notes,
        "",
        "Command: `python scripts/tags_benchmark.py TRAIN.jsonl` (the command it times: `hf-charnn train-tagger "
        "--train-file TRAIN --validation-file VALIDATION --test-file TEST`, nothing else)",
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
