"""
The files of a run folder, read and written in one place (the loop, recipes, sweeps, the Hub).

    OUTPUT/metrics.jsonl          one row per logging or evaluation step
    OUTPUT/eval_results.json      the run's summary: the evaluation harness's JSON, timings, precision
    OUTPUT/training_config.json   the settings, without local paths (it is uploaded with the model)
    OUTPUT/checkpoints/step-N     see checkpoints.py
"""

import json
import os
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
EVAL_RESULTS_FILE = "eval_results.json"
TRAINING_CONFIG_FILE = "training_config.json"
MODEL_FILE = "model.safetensors"


def read_metrics(output_dir: str | os.PathLike) -> list[dict]:
    path = Path(output_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def append_metrics_row(output_dir: str | os.PathLike, row: dict):
    with (Path(output_dir) / METRICS_FILE).open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def keep_metrics_up_to(output_dir: str | os.PathLike, steps_done: int):
    """Keep the rows of the steps a resumed run does not repeat (all of them cleared for a fresh run)."""
    kept = [row for row in read_metrics(output_dir) if row["step"] <= steps_done]
    write_atomically(Path(output_dir) / METRICS_FILE, "".join(json.dumps(row) + "\n" for row in kept))


def read_eval_results(output_dir: str | os.PathLike) -> dict | None:
    path = Path(output_dir) / EVAL_RESULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_eval_results(output_dir: str | os.PathLike, summary: dict):
    write_atomically(Path(output_dir) / EVAL_RESULTS_FILE, json.dumps(summary, indent=2) + "\n")


def read_training_config(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / TRAINING_CONFIG_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_training_config(output_dir: str | os.PathLike, config):
    """The run's settings without local paths (`TrainingConfig.portable`): `--config` trains the same run again."""
    write_atomically(Path(output_dir) / TRAINING_CONFIG_FILE, json.dumps(config.portable(), indent=2) + "\n")


def fsync_path(path: str | os.PathLike):
    """Flush a file's or a folder's entry to the disk (a rename is only durable once its folder is synced)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, text: str):
    """Write to a temporary file, sync it, rename it into place: a reader sees the old file or the new one."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with partial.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    fsync_path(path.parent)
