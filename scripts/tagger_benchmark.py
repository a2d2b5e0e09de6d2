"""
Word boundaries of text8, restored: the default `hf-charnn train-tagger --derive word-boundaries` against the baseline
a user would pick instead, side by side in one run.

- Training text: `text8-100k.txt` (packaged), its spaces removed; every character is tagged `B-WORD` where a word
  starts. Both models see only it (the tagger holds 5 % of its rows out for validation).
- Unseen text8-form text, scored: `text8-dev.txt` (500 characters, not inside text8-100k) and English prose the
  models never saw: the machine's fortunes (`apt-get install fortunes`), normalised into text8 form
  (`hf_charnn.normalize_text`), their first `--test-chars` characters. Then text8's own unseen text: both models
  trained on the first 90 % of text8-100k and scored on its last 10 %.
- Baseline: a per-character logistic regression (scikit-learn, liblinear) over a window of the surrounding characters:
  each offset's character, bigram and trigram, one-hot (hashed).
- Metrics: boundary F1 (the `B-WORD` tag's: a word start restored), word F1 (a word's start and end both right),
  character accuracy. Wall time of each command; the median of `--runs` runs for ours; the fp32 matmul peak measured in
  the same run. The target (the issue's): boundary F1 >= 92 % on unseen text within 2 minutes on 2 cores at 250
  GFLOP/s, the time scaled by 250 / peak on a slower machine.

    python scripts/tagger_benchmark.py --runs 3 --output docs/tagger_benchmark.md
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

from hf_charnn import normalize_text  # noqa: E402
from hf_charnn.exercise.files import PACKAGED_DATA_DIR  # noqa: E402
from hf_charnn.training.tasks.tagging.data import WORD_START, word_boundary_rows  # noqa: E402
from hf_charnn.training.tasks.tagging.task import tagging_report  # noqa: E402

REFERENCE_PEAK, TARGET_SECONDS, TARGET_F1 = 250.0, 120.0, 92.0
ROW_CHARS = 64  # test rows: as the tagger's own training rows (its default max_length)
WINDOW = 4  # the baseline's characters each side


def fortunes_text(folder: Path, chars: int) -> str:
    """The first `chars` characters of the fortune files (sorted by name), in text8 form."""
    pieces, total = [], 0
    for path in sorted(folder.iterdir()):
        if path.suffix or not path.is_file():  # the plain files (not .dat / .u8 indexes)
            continue
        text = normalize_text(path.read_text(encoding="utf-8", errors="replace").replace("%", " "))
        pieces.append(text)
        total += len(text)
        if total >= chars:
            break
    return " ".join(" ".join(pieces).split())[:chars].rsplit(" ", 1)[0]


# -- the baseline ---------------------------------------------------------------------------------------------------
def window_features(text: str) -> list[list[str]]:
    padded = "^" * WINDOW + text + "$" * WINDOW
    rows = []
    for i in range(len(text)):
        center = i + WINDOW
        features = []
        for offset in range(-WINDOW, WINDOW + 1):
            features.append(f"c{offset}={padded[center + offset]}")
            if offset < WINDOW:
                features.append(f"b{offset}={padded[center + offset : center + offset + 2]}")
            if offset < WINDOW - 1:
                features.append(f"t{offset}={padded[center + offset : center + offset + 3]}")
        rows.append(features)
    return rows


def baseline(train_rows: tuple, tests: dict) -> dict:
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    hasher = FeatureHasher(n_features=2**20, input_type="string", alternate_sign=False)
    texts, tags = train_rows
    features = hasher.transform(row for text in texts for row in window_features(text))
    labels = np.array([tag == WORD_START for row in tags for tag in row])
    model = LogisticRegression(solver="liblinear", C=1.0, max_iter=200).fit(features, labels)
    seconds = time.perf_counter() - start
    results = {}
    for name, (test_texts, test_tags) in tests.items():
        predicted = []
        for text in test_texts:
            starts = model.predict(hasher.transform(window_features(text)))
            predicted.append([0 if is_start else 1 for is_start in starts])
        results[name] = scores(test_tags, predicted)
    return {"seconds": seconds, "results": results}


def scores(gold_tags: list[list[str]], predicted_ids: list[list[int]]) -> dict:
    """Boundary F1, word F1 and character accuracy of predicted tag ids (0: B-WORD, 1: I-WORD)."""
    names = [WORD_START, "I-WORD"]
    gold = [[names.index(tag) for tag in row] for row in gold_tags]
    report = tagging_report(gold, predicted_ids, names)
    return {
        "boundary_f1": report["per_tag"][WORD_START]["f1"],
        "word_f1": report["span_f1"],
        "accuracy": report["accuracy"],
    }


# -- ours -----------------------------------------------------------------------------------------------------------
def ours(train_file: Path, tests: dict, work: Path) -> dict:
    command = [sys.executable, "-m", "hf_charnn", "train-tagger", "--train-file", str(train_file)]
    command += ["--derive", "word-boundaries", "--output-dir", str(work), "--overwrite-output-dir", "--no-progress-bar"]
    summary, wall = run_command(command, work)
    from hf_charnn.models.auto import load_model

    model = load_model(work, "tagger")
    start_id = model.config.label2id[WORD_START]
    results = {}
    for name, (test_texts, test_tags) in tests.items():
        predicted = [[0 if tag == start_id else 1 for tag in row] for row in model.predict_tags(test_texts)]
        results[name] = scores(test_tags, predicted)
    return {
        "wall": wall,
        "train_seconds": summary["train_seconds"],
        "validation_span_f1": summary["results"]["span_f1"],
        "steps": summary["steps"],
        "recipe": summary.get("recipe", {}).get("settings"),
        "results": results,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fortunes", default="/usr/share/games/fortunes")
    parser.add_argument("--test-chars", type=int, default=100_000)
    parser.add_argument("--output", help="also write the markdown table here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tagger-benchmark-"))
    text8 = (PACKAGED_DATA_DIR / "text8-100k.txt").read_text()
    cut = text8.rfind(" ", 0, int(len(text8) * 0.9))
    (work / "text8-90k.txt").write_text(text8[:cut])
    unseen = {"text8-dev": (PACKAGED_DATA_DIR / "text8-dev.txt").read_text()}
    if Path(args.fortunes).is_dir():
        unseen["fortunes"] = fortunes_text(Path(args.fortunes), args.test_chars)
    # (training file, {test name: test text}): the issue's setup, then text8's own unseen tail.
    setups = [
        (PACKAGED_DATA_DIR / "text8-100k.txt", unseen),
        (work / "text8-90k.txt", {"text8-100k's last 10 %": text8[cut + 1 :]}),
    ]
    peaks = [matmul_peak_gflops()]
    lines = [
        "| trained on | scored on (characters) | baseline boundary F1 / word F1 / accuracy (fit s) | hf-charnn "
        "boundary F1 / word F1 / accuracy (median of runs) | hf-charnn wall s (median; runs) | F1 >= 92 | in time |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for train_file, texts in setups:
        tests = {name: word_boundary_rows(text, ROW_CHARS) for name, text in texts.items()}
        base = baseline(word_boundary_rows(train_file.read_text(), ROW_CHARS), tests)
        runs = []
        for run in range(args.runs):
            runs.append(ours(train_file, tests, work / f"{train_file.stem}-{run}"))
            peaks.append(matmul_peak_gflops())
            print(f"{train_file.name} run {run + 1}: {runs[-1]['wall']:.1f} s, {json.dumps(runs[-1]['results'])}")
        target = TARGET_SECONDS * max(1.0, REFERENCE_PEAK / statistics.median(peaks))
        wall = statistics.median(run["wall"] for run in runs)
        for name, (test_texts, _) in tests.items():
            mine = {
                key: statistics.median(run["results"][name][key] for run in runs)
                for key in ("boundary_f1", "word_f1", "accuracy")
            }
            theirs = base["results"][name]
            lines.append(
                f"| {train_file.name} | {name} ({sum(len(text) for text in test_texts):,}) | "
                f"{theirs['boundary_f1']:.2f} / {theirs['word_f1']:.2f} / {theirs['accuracy']:.2f} "
                f"({base['seconds']:.1f}) | {mine['boundary_f1']:.2f} / {mine['word_f1']:.2f} / {mine['accuracy']:.2f} "
                f"| {wall:.1f} ({', '.join(format(run['wall'], '.1f') for run in runs)}) | "
                f"{'yes' if mine['boundary_f1'] >= TARGET_F1 else 'no'} | {'yes' if wall <= target else 'no'} "
                f"(target {target:.0f} s) |"
            )
        validation = statistics.median(run["validation_span_f1"] for run in runs)
        notes.append(
            f"- {train_file.name}: {runs[0]['steps']} steps, "
            f"{statistics.median(r['train_seconds'] for r in runs):.1f} s of training; validation word F1 "
            f"{validation:.2f} (the last 5 % of its rows); recipe {runs[0]['recipe']}"
        )
    peak = statistics.median(peaks)
    lines += [
        "",
        f"fp32 matmul peak measured in the same run: {peak:.0f} GFLOP/s (median of {len(peaks)}); 2 CPUs. The time "
        f"target holds at {REFERENCE_PEAK:.0f} GFLOP/s and is scaled by {REFERENCE_PEAK:.0f} / peak on a slower "
        "machine. Baseline: logistic regression over hashed one-hot characters, bigrams and trigrams at each offset of "
        f"a +-{WINDOW} window.",
        "",
        *notes,
        "",
        "Command: `python scripts/tagger_benchmark.py` (the command it times: `hf-charnn train-tagger --train-file "
        "FILE --derive word-boundaries`, nothing else)",
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
