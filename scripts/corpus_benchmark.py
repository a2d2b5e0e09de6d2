#!/usr/bin/env python
"""
Large-corpus benchmark: the targets of "train and score character LMs on any corpus, at full-text8 scale".

    python scripts/corpus_benchmark.py [--chars 100000000] [--lm-dir runs/lm] [--output docs/corpus_benchmark.md]

Generates a text8-form corpus of --chars characters (words drawn from text8-100k by frequency; written to a
temporary folder, never committed), then measures, each row beside its target:
- the corpus cache: first preparation (encode + write) and a cached load;
- a small-model training run on it: peak RSS, and its step rate against the same model on the 100k exercise text;
- 1 vs 2 processes (`accelerate launch`, gloo on CPU) on the corpus;
- long-text scoring of 100k characters with the default LM: exact (1 stream) vs 16 streams;
- fp32 vs bf16 training steps of the default LM, with the dev metrics they reach;
- the command line's start-up (`--version`, `train-lm --help`), and a `--normalize` run on the corpus (its peak RSS:
  normalising streams block by block, so memory must not grow with the corpus).
Medians over --runs where a row is cheap enough to repeat; the machine's matmul peak is printed with the table.
`--sections` picks some of: cache, train, processes, scoring, precision, startup, normalize (default: all).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hf_charnn.data.sources import file_ids

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, write_table  # noqa: E402  (shared by the benchmark scripts)

from hf_charnn.exercise.files import PACKAGED_DATA_DIR

SECTIONS = ("cache", "train", "processes", "scoring", "precision", "startup", "normalize")
SMALL_MODEL = [
    "--embedding-size",
    "32",
    "--hidden-size",
    "128",
    "--batch-size",
    "32",
    "--chunk-size",
    "64",
    "--dropout",
    "0",
]


def write_corpus(path: Path, chars: int, seed: int = 0):
    """Words of text8-100k drawn by frequency, written in blocks (the corpus never sits in memory whole)."""
    words, counts = np.unique(np.array((PACKAGED_DATA_DIR / "text8-100k.txt").read_text().split()), return_counts=True)
    encoded = [f"{word} ".encode() for word in words]
    rng = np.random.default_rng(seed)
    written = 0
    with path.open("wb") as handle:
        while written < chars:
            block = b"".join(encoded[i] for i in rng.choice(len(words), size=500_000, p=counts / counts.sum()))
            block = block[: chars - written]
            handle.write(block)
            written += len(block)


def run(command: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in bytes of the child, stdout) of a command; stops the benchmark if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; a run below an earlier peak reports that peak.
    return seconds, max(peak, before) * 1024, result.stdout


def train_command(output_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hf_charnn", "train-lm", "--output-dir", str(output_dir), "--no-progress-bar", *args]


def chars_per_second(output_dir: Path) -> float:
    rows = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(row["train_chars_per_second"] for row in rows[1:] or rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=100_000_000, help="size of the generated corpus")
    parser.add_argument("--runs", type=int, default=3, help="repeats of the cheap rows (medians)")
    parser.add_argument("--lm-dir", help="a trained default LM (default: train one, about 2 minutes)")
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps of each timed training run")
    parser.add_argument("--output", help="also write the table here")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}"
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(sections - set(SECTIONS)))}")

    work = Path(tempfile.mkdtemp(prefix="hf-charnn-corpus-bench-"))
    env = {"HF_CHARNN_CACHE": str(work / "cache")}
    os.environ.update(env)
    corpus, valid = work / "big.txt", work / "valid.txt"
    write_corpus(corpus, args.chars)
    write_corpus(valid, 1_000_000, seed=1)
    lines = [
        f"{args.chars:,}-character text8-form corpus; fp32 matmul peak measured now: {matmul_peak_gflops():.0f} "
        "GFLOP/s; "
        f"{torch.get_num_threads()} threads; CPU capability {torch.backends.cpu.get_cpu_capability()}; torch "
        f"{torch.__version__}",
        "",
        "| what | measured | target | met |",
        "|---|---|---|---|",
    ]

    def row(what: str, measured: str, target: str = "", met: bool | None = None):
        lines.append(f"| {what} | {measured} | {target} | {'' if met is None else ('yes' if met else 'NO')} |")
        print(lines[-1], flush=True)

    if "startup" in sections:
        for what, argv in (("--version", ["--version"]), ("train-lm --help", ["train-lm", "--help"])):
            script = Path(sys.executable).with_name("hf-charnn")  # the console script of this environment
            timings = [
                run([str(script) if script.exists() else "hf-charnn", *argv])[0] for _ in range(max(5, args.runs))
            ]
            median = statistics.median(timings)
            row(
                f"command line start-up: `hf-charnn {what}` (median of {len(timings)})",
                f"{median:.2f} s",
                "< 1 s",
                median < 1,
            )

    if "cache" in sections:
        # The cache key is a checksum of the file's content: a cached load reads the source once more to check it.
        start = time.perf_counter()
        ids = file_ids(corpus)
        first = time.perf_counter() - start
        cached = []
        for _ in range(args.runs):
            start = time.perf_counter()
            again = file_ids(corpus)
            cached.append(time.perf_counter() - start)
        assert len(again) == len(ids) == args.chars
        row(
            "corpus cache: first preparation (read, checksum, check, encode, write)",
            f"{first:.1f} s",
            "<= 60 s",
            first <= 60,
        )
        row(
            "corpus cache: cached load (source checksum, cache verify, memory-map)",
            f"{statistics.median(cached):.2f} s",
            "<= 5 s",
            statistics.median(cached) <= 5,
        )
        del ids, again

    if "normalize" in sections:
        seconds, peak, _ = run(
            train_command(
                work / "normalized",
                "--train-file",
                str(corpus),
                "--validation-file",
                str(valid),
                "--normalize",
                *SMALL_MODEL,
                "--max-steps",
                "10",
                "--eval-chars",
                "20000",
                "--eval-streams",
                "16",
                "--mixed-precision",
                "no",
            ),
            env,
        )
        row(
            f"`--normalize` run on the corpus (normalise + encode {args.chars:,} chars once, 10 steps): wall, peak RSS",
            f"{seconds:.0f} s, {peak / 1e9:.2f} GB",
            "RSS <= 1.5 GB",
            peak / 1e9 <= 1.5,
        )

    small = [
        *SMALL_MODEL,
        "--max-steps",
        str(args.steps),
        "--eval-steps",
        str(args.steps),
        "--eval-chars",
        "20000",
        "--logging-steps",
        "25",
        "--mixed-precision",
        "no",
    ]
    big_runs, small_runs, rss = [], [], []
    for index in range(args.runs if "train" in sections else 0):
        seconds, peak, _ = run(
            train_command(
                work / f"big-{index}",
                "--train-file",
                str(corpus),
                "--validation-file",
                str(valid),
                "--eval-streams",
                "64",
                *small,
            ),
            env,
        )
        big_runs.append(chars_per_second(work / f"big-{index}"))
        rss.append(peak)
        run(train_command(work / f"small-{index}", *small), env)
        small_runs.append(chars_per_second(work / f"small-{index}"))
    if "train" in sections:
        big_rate, small_rate = statistics.median(big_runs), statistics.median(small_runs)
        peak_gb = max(rss) / 1e9
        row(
            "training run on the corpus, small model (32/128, batch 32x64): peak RSS",
            f"{peak_gb:.2f} GB",
            "<= 1.5 GB",
            peak_gb <= 1.5,
        )
        row(
            "same model: train chars/s on the corpus vs on the 100k exercise text",
            f"{big_rate:,.0f} vs {small_rate:,.0f} ({big_rate / small_rate:.2f}x)",
            "within 10 %",
            big_rate >= 0.9 * small_rate,
        )

    process_rates = {}
    for processes in (1, 2) if "processes" in sections else ():
        output = work / f"procs-{processes}"
        corpus_args = ["--train-file", str(corpus), "--validation-file", str(valid), *small]
        if processes == 1:
            command = train_command(output, *corpus_args)
        else:
            command = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_processes",
                "2",
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "--main_process_port",
                "29561",
                "-m",
                "hf_charnn.train_lm",
                "--output-dir",
                str(output),
                "--no-progress-bar",
                *corpus_args,
            ]
        run(command, {**env, "ACCELERATE_USE_CPU": "1", **({"OMP_NUM_THREADS": "1"} if processes == 2 else {})})
        process_rates[processes] = chars_per_second(output)
    if process_rates:
        row(
            "1 process (2 threads) vs 2 processes (1 thread each, gloo): train chars/s",
            f"{process_rates[1]:,.0f} vs {process_rates[2]:,.0f} ({process_rates[2] / process_rates[1]:.2f}x)",
        )

    lm_dir = args.lm_dir
    if lm_dir is None and "scoring" in sections:
        lm_dir = str(work / "default-lm")
        run(train_command(Path(lm_dir)), env)
    text = PACKAGED_DATA_DIR / "text8-100k.txt"
    scored = {}
    for streams in (1, 16) if "scoring" in sections else ():
        timings, result = [], None
        for _ in range(args.runs if streams > 1 else 1):
            start = time.perf_counter()
            _, _, out = run(
                [
                    sys.executable,
                    "-m",
                    "hf_charnn",
                    "evaluate-lm",
                    lm_dir,
                    "--text",
                    str(text),
                    "--streams",
                    str(streams),
                ]
            )
            result = json.loads(out)
            timings.append(result["seconds"])
        scored[streams] = (result, 100_000 / statistics.median(timings))
    if scored:
        (exact, exact_rate), (streamed, streamed_rate) = scored[1], scored[16]
        gap = abs(streamed["bpc"] - exact["bpc"])
        row(
            "score 100k chars with the default LM, exact (1 stream)",
            f"{exact_rate:,.0f} chars/s, bpc {exact['bpc']:.4f}",
        )
        row(
            "same, 16 streams (warm-up 256)",
            f"{streamed_rate:,.0f} chars/s ({streamed_rate / exact_rate:.1f}x), bpc {streamed['bpc']:.4f} (gap "
            f"{gap:.4f})",
            ">= 3x, bpc within 0.002",
            streamed_rate >= 3 * exact_rate and gap <= 0.002,
        )

    for precision in ("no", "bf16") if "precision" in sections else ():
        output = work / f"precision-{precision}"
        run(train_command(output, "--max-steps", "30", "--eval-steps", "30", "--mixed-precision", precision), env)
        result = json.loads((output / "eval_results.json").read_text())
        row(
            f"default LM, 30 steps, mixed precision {precision}: train chars/s, dev ppl / bpc",
            f"{chars_per_second(output):,.0f} chars/s, ppl {result['results']['perplexity']:.2f} / bpc "
            f"{result['results']['bpc']:.3f}",
        )

    print()
    write_table(lines, args.output)


if __name__ == "__main__":
    main()
