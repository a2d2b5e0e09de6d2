#!/usr/bin/env python
"""
Starting from a model against starting from scratch, for the same time: a tinyshakespeare character LM adapted to
50k characters of other English text (Debian's fortunes), beside an LM trained on those 50k alone.

    apt-get install -y fortunes                     # the new text (any text: --text FILE)
    python scripts/starting_model_benchmark.py --shakespeare ../shared/corpora/tinyshakespeare.txt \\
        [--base runs/shakespeare] [--budgets 30s 60s] [--runs 3] [--output docs/starting_model_benchmark.md]

Without `--base`, the base LM is trained first on tinyshakespeare (`hf-charnn train-lm`, its recipe, `--max-train-time
--base-budget`). Then, for each budget, on the same 50k training characters and the same 10k validation characters
that follow them, both runs use the default command with `--max-train-time BUDGET` (the schedule fitted to it):

- scratch: `hf-charnn train-lm --train-file new.txt --validation-file val.txt --max-train-time BUDGET`;
- from the base: the same, with `--model-name-or-path BASE --extend-vocab` (the new text has characters Shakespeare
  has not: their rows are new).

It prints the validation loss (nats per character) of each (the median of --runs runs), the difference, the wall
time, and the machine's fp32 matmul peak measured in the same run.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, run_command, write_table  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
TRAIN_CHARS, VALIDATION_CHARS = 50_000, 10_000


def fortunes_text() -> str:
    """Debian's English fortune files (not the offensive ones), in name order, without their `%` separators."""
    parts = []
    for path in sorted(FORTUNES.iterdir()):
        if path.suffix or path.is_dir() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append("\n".join(line for line in text.splitlines() if line.strip() != "%"))
    return "\n".join(parts)


def train(arguments: list, output_dir: Path) -> dict:
    command = [sys.executable, "-m", "hf_charnn", "train-lm", *arguments, "--no-progress-bar"]
    summary, wall = run_command([*command, "--output-dir", output_dir], output_dir)
    return {"loss": summary["results"]["loss"], "wall": wall, "steps": summary["steps"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shakespeare", type=Path, help="tinyshakespeare.txt (to train the base LM)")
    parser.add_argument("--base", type=Path, help="a trained base LM folder (else one is trained)")
    parser.add_argument("--base-budget", default="240s")
    parser.add_argument("--text", type=Path, help="the new text (default: Debian's fortunes)")
    parser.add_argument("--budgets", nargs="+", default=["30s", "60s"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="starting-model-"))
    peaks = [matmul_peak_gflops()]
    base = args.base
    if base is None:
        if args.shakespeare is None:
            raise SystemExit("give --base (a trained LM) or --shakespeare (to train one)")
        base = work / "base"
        base_run = train(["--train-file", args.shakespeare, "--max-train-time", args.base_budget], base)
        print(f"base LM: validation loss {base_run['loss']:.4f} in {base_run['wall']:.0f} s", file=sys.stderr)
    text = args.text.read_text(encoding="utf-8") if args.text else fortunes_text()
    if len(text) < TRAIN_CHARS + VALIDATION_CHARS:
        raise SystemExit(f"the new text has {len(text):,} characters; give at least {TRAIN_CHARS + VALIDATION_CHARS:,}")
    (work / "new.txt").write_text(text[:TRAIN_CHARS], encoding="utf-8")
    (work / "val.txt").write_text(text[TRAIN_CHARS : TRAIN_CHARS + VALIDATION_CHARS], encoding="utf-8")
    data = ["--train-file", work / "new.txt", "--validation-file", work / "val.txt"]
    lines = [
        "| budget | from scratch: validation loss (wall s) | from the tinyshakespeare LM: validation loss (wall s) "
        "| difference | lower from the model |",
        "|---|---|---|---|---|",
    ]
    wins, runs_seen = 0, []
    for budget in args.budgets:
        scratch, started = [], []
        for run in range(args.runs):
            seed = ["--seed", str(42 + run)]
            scratch.append(train([*data, "--max-train-time", budget, *seed], work / f"scratch-{budget}-{run}"))
            started.append(
                train(
                    [*data, "--max-train-time", budget, *seed, "--model-name-or-path", base, "--extend-vocab"],
                    work / f"started-{budget}-{run}",
                )
            )
            peaks.append(matmul_peak_gflops())
            print(
                f"{budget} run {run + 1}: scratch {scratch[-1]['loss']:.4f}, started {started[-1]['loss']:.4f}",
                file=sys.stderr,
                flush=True,
            )
        loss = {name: statistics.median(r["loss"] for r in runs) for name, runs in (("s", scratch), ("m", started))}
        wall = {name: statistics.median(r["wall"] for r in runs) for name, runs in (("s", scratch), ("m", started))}
        wins += loss["m"] < loss["s"]
        runs_seen.append(f"- {budget}: scratch {[round(r['loss'], 4) for r in scratch]}, "
                         f"started {[round(r['loss'], 4) for r in started]}")  # fmt: skip
        lines.append(
            f"| {budget} | {loss['s']:.4f} ({wall['s']:.0f}) | {loss['m']:.4f} ({wall['m']:.0f}) | "
            f"{loss['m'] - loss['s']:+.4f} | {'yes' if loss['m'] < loss['s'] else 'no'} |"
        )
    lines += [
        "",
        f"Lower validation loss from the model at equal budget: {wins} of {len(args.budgets)}. Loss in nats per "
        f"character on the {VALIDATION_CHARS:,} characters after the {TRAIN_CHARS:,} trained on; medians of "
        f"{args.runs} runs (seeds 42...).",
        "",
        f"fp32 matmul peak measured in the same run: {statistics.median(peaks):.0f} GFLOP/s; {os.cpu_count()} CPUs.",
        "",
        "Runs:",
        *runs_seen,
    ]
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
