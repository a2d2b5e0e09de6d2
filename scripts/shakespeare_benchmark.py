#!/usr/bin/env python
"""
The public anchor for "your own text": nanoGPT's `shakespeare_char` recipe on tinyshakespeare.

    python scripts/shakespeare_benchmark.py --text ../shared/corpora/tinyshakespeare.txt [--budgets 180 900]
        [--preset small-corpus] [--output docs/shakespeare_benchmark.md]

Same split as nanoGPT (first 90 % of the text to train, last 10 % to validate), the text as it is (case,
punctuation, line breaks: `--vocab auto` picks `chars`). For each wall-time budget the script trains under
`--max-train-time` (the budget less an allowance for start-up and the final exact scoring of the validation text; the
run fits its learning-rate schedule to it from its own measured step times), and reports the validation loss in nats
per character beside nanoGPT's figures (its CPU recipe: 1.88 in about 3 minutes on a laptop; its GPU recipe, 10.7M
parameters on an A100: 1.47). The machine's fp32 matmul peak is measured in the same run. The corpus is not
committed: pass its path.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, write_table  # noqa: E402  (shared by the benchmark scripts)

NANOGPT = {
    "CPU recipe (4 x 128 GPT, 2,000 iterations, ~3 min on a laptop)": 1.88,
    "GPU recipe (10.7M parameters, A100)": 1.47,
}
TARGETS = {180: 1.60, 300: 1.47, 900: 1.47}  # seconds of wall time -> validation loss (nats per character) to reach
OVERHEAD_SHARE, OVERHEAD_SECONDS = 0.1, 15  # of a wall-time budget: start-up, caching, the final scoring


def train(work: Path, name: str, preset: str, *extra: str) -> tuple[float, dict]:
    """(wall seconds, eval_results) of one `hf-charnn train-lm` on the split."""
    command = [
        sys.executable,
        "-m",
        "hf_charnn",
        "train-lm",
        "--preset",
        preset,
        "--train-file",
        str(work / "train.txt"),
        "--validation-file",
        str(work / "valid.txt"),
        "--output-dir",
        str(work / name),
        "--no-progress-bar",
        *extra,
    ]
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "HF_CHARNN_CACHE": str(work / "cache")}
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    return seconds, json.loads((work / name / "eval_results.json").read_text())


def dynamic_cell(work: Path, name: str) -> str:
    """`evaluate-lm --dynamic --dynamic-tune-on` of a trained run: static and dynamic loss on the report text."""
    command = [
        sys.executable,
        "-m",
        "hf_charnn",
        "evaluate-lm",
        str(work / name),
        "--text",
        str(work / "report.txt"),
        "--dynamic",
        "--dynamic-tune-on",
        str(work / "tune.txt"),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    dynamic = json.loads(result.stdout)["dynamic"]
    return (
        f"{dynamic['static_loss']:.3f} -> **{dynamic['loss']:.3f}** (gain {dynamic['gain']:.3f}; lr {dynamic['lr']:g}, "
        f"decay {dynamic['decay']:g})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", required=True, help="tinyshakespeare.txt (or any text: the first 90 %% trains)")
    parser.add_argument("--preset", default="small-corpus")
    parser.add_argument("--budgets", type=int, nargs="+", default=[180, 900], help="wall-time budgets in seconds")
    parser.add_argument("--output", help="also write the table here")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="also score each model dynamically: lr and decay tuned on the first tenth of the validation text, the "
        "rest reported beside its static loss (a different metric)",
    )
    args = parser.parse_args()

    text = Path(args.text).read_text(encoding="utf-8")
    work = Path(tempfile.mkdtemp(prefix="hf-charnn-shakespeare-"))
    cut = int(len(text) * 0.9)
    (work / "train.txt").write_text(text[:cut], encoding="utf-8")
    (work / "valid.txt").write_text(text[cut:], encoding="utf-8")
    tenth = cut + (len(text) - cut) // 10
    (work / "tune.txt").write_text(text[cut:tenth], encoding="utf-8")
    (work / "report.txt").write_text(text[tenth:], encoding="utf-8")
    peak = matmul_peak_gflops()

    lines = [
        f"tinyshakespeare ({len(text):,} characters; {cut:,} to train, {len(text) - cut:,} to validate), preset "
        f"`{args.preset}`; fp32 matmul peak measured now: {peak:.0f} GFLOP/s; {torch.get_num_threads()} threads; "
        f"torch {torch.__version__}; each run trains under `--max-train-time` (its schedule fitted to it), the "
        f"budget less {OVERHEAD_SHARE:.0%} and {OVERHEAD_SECONDS} s for start-up and the final scoring",
        "",
        "| wall-time budget | --max-train-time | steps | wall s | train s | validation loss (nats/char) | bpc | target "
        "| met |"
        + (
            " dynamic: static -> dynamic loss on the last 90 % (lr, decay tuned on the first 10 %) |"
            if args.dynamic
            else ""
        ),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if args.dynamic else ""),
    ]
    for budget in args.budgets:
        # The training budget: what is left of the wall-time budget after start-up and the final scoring. The run
        # fits its schedule to it from its own measured step times (no calibration run: a loaded machine's step
        # rate changes during a run, which a calibration misjudged by 2.4x once).
        train_budget = max(10, int(budget * (1 - OVERHEAD_SHARE) - OVERHEAD_SECONDS))
        seconds, results = train(
            work, f"budget-{budget}", args.preset, "--max-train-time", f"{train_budget}s", "--epochs", "1000"
        )
        loss = results["results"]["loss"]
        target = TARGETS.get(budget)
        met = "" if target is None else ("yes" if loss <= target and seconds <= budget else "NO")
        lines.append(
            f"| {budget} s | {train_budget} s | {results['steps']} | {seconds:.0f} | {results['train_seconds']:.0f} | "
            f"**{loss:.3f}** | {results['results']['bpc']:.3f} | {'<= ' + str(target) if target else ''} | {met} |"
        )
        if args.dynamic:
            lines[-1] += f" {dynamic_cell(work, f'budget-{budget}')} |"
        print(lines[-1], flush=True)
    lines += ["", "nanoGPT `shakespeare_char` (its README): " + "; ".join(f"{k}: {v}" for k, v in NANOGPT.items())]
    print()
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
