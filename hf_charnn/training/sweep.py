"""
Sweeps: a list or grid of training configurations, each a full run (through `loop.train`, or the function the caller
gives: the command line's trains the exercise when a run names no data), restartable, with a markdown table and
learning-curve plots.

    task: classifier            # or lm
    preset: seed                # the preset every run starts from
    base: {epochs: 10}          # overrides shared by every run
    runs:                       # a list of overrides, one run each ...
      - {embedding_size: 10, hidden_size: 20, learning_rate: 1.0e-3}
    grid:                       # ... and/or a grid: every combination of these values
      learning_rate: [1.0e-3, 5.0e-3]
"""

import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import UserError
from .checkpoints import complete_checkpoints
from .run_folder import METRICS_FILE, read_eval_results, read_metrics, read_training_config
from .tasks import registered_tasks, task_settings

RESULTS_FILE = "results.md"
SPEC_FILE = "sweep.json"
TIMING_FILE = "sweep_timing.json"
LOG_FILE = "train.log"
RUN_SETTINGS_FILE = "sweep_run_settings.json"


def load_spec(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: sweep file not found")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        # PyYAML's message spans lines (it draws a caret under the spot); the CLI's errors are one line.
        raise UserError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    names = [settings_class.task for settings_class in registered_tasks()]
    if not isinstance(spec, dict) or spec.get("task") not in names:
        raise UserError(f"{path}: needs {' or '.join(f'`task: {name}`' for name in names)} at the top level")
    if not spec.get("runs") and not spec.get("grid"):
        raise UserError(f"{path}: needs `runs` (a list of settings) or `grid` (lists of values), or both")
    for overrides in expand_runs(spec):
        task_settings(spec["task"]).check_setting_names(overrides, str(path))
    return spec


def expand_runs(spec: dict) -> list[dict]:
    """Every run's overrides: `base` + each entry of `runs`, then `base` + each combination of `grid`."""
    base = spec.get("base") or {}
    runs = [{**base, **entry} for entry in spec.get("runs") or []]
    grid = spec.get("grid") or {}
    if grid:
        keys = list(grid)
        runs += [{**base, **dict(zip(keys, values))} for values in itertools.product(*(grid[key] for key in keys))]
    return runs


def run_name(index: int, overrides: dict, base: dict) -> str:
    varying = {key: value for key, value in overrides.items() if base.get(key) != value}
    label = "-".join(f"{key}={value}" for key, value in varying.items()) or "base"
    return f"{index:02d}-{label}".replace("/", "_")


def run_sweep(
    spec_path: str | Path,
    output_dir: str | Path,
    data_dir: str | None = None,
    launcher: str | None = None,
    jobs: int = 1,
    train_function=None,
) -> Path:
    """
    Run every configuration not finished yet (restartable), then write the table and the plots.

    `jobs` > 1 trains that many runs at once, each in its own process with an equal share of the CPU threads:
    the small GRUs of a sweep spend most of a step in per-operation overhead, which more threads do not shorten,
    so on a 2-core machine two single-threaded runs side by side finish the sweep sooner than one after the other.
    `launcher` (e.g. "accelerate launch --num_processes 2") runs each training under that command instead.
    `train_function(config) -> summary` trains a run in this process (default: `loop.train`).
    """
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, not {jobs}")
    spec = load_spec(spec_path)
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    base = spec.get("base") or {}
    preset = spec.get("preset", "default")
    pending = []
    for index, overrides in enumerate(expand_runs(spec), start=1):
        run_dir = output / run_name(index, overrides, base)
        if read_eval_results(run_dir) is not None:
            print(f"{run_dir.name}: finished earlier, skipped", flush=True)
            continue
        settings = {
            "data_dir": data_dir,
            **overrides,
            "output_dir": str(run_dir),
            "progress_bar": False,
            "save_total_limit": 1,
        }
        if complete_checkpoints(run_dir):  # interrupted earlier: continue it (its settings are checked on resume)
            settings["resume_from"] = "latest"
        pending.append((run_dir, settings))

    start = time.perf_counter()
    if launcher is None and jobs == 1:
        if train_function is None:
            from .loop import train as train_function

        for run_dir, settings in pending:
            print(f"{run_dir.name}: {'resuming' if settings.get('resume_from') else 'training'}", flush=True)
            train_function(task_settings(spec["task"]).from_preset(preset=preset, **settings))
    else:
        # Largest runs first, so that no big run is left training alone at the end while the other jobs idle.
        def training_cost(item) -> float:
            config = task_settings(spec["task"]).from_preset(preset=preset, **item[1])
            return config.training_flops_per_char(output_size=0) * config.epochs  # the GRU's share decides

        pending.sort(key=training_cost, reverse=True)
        _run_in_processes(pending, spec["task"], preset, launcher, jobs)
    if pending:  # a call that only found finished runs keeps the timing of the call that trained them
        timing = {
            "runs_trained": len(pending),
            "jobs": jobs,
            "launcher": launcher,
            "wall_seconds": time.perf_counter() - start,
        }
        (output / TIMING_FILE).write_text(json.dumps(timing, indent=2) + "\n")
    return write_report(output)


def _run_in_processes(pending: list, task: str, preset: str, launcher: str | None, jobs: int):
    """
    Each run as `LAUNCHER -m hf_charnn train-TASK --config SETTINGS`, `jobs` at a time, logged in RUN_DIR/train.log.
    """
    env = os.environ.copy()
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // jobs))

    def launch(run_dir: Path, settings: dict) -> str | None:
        run_dir.mkdir(parents=True, exist_ok=True)
        settings_file = run_dir / RUN_SETTINGS_FILE
        settings_file.write_text(json.dumps(settings, indent=2) + "\n")
        runner = shlex.split(launcher) if launcher else [sys.executable]
        command = [*runner, "-m", "hf_charnn", task_settings(task).command, "--preset", preset]
        command += ["--config", str(settings_file)]
        log = run_dir / LOG_FILE
        print(f"{run_dir.name}: training (log: {log})", flush=True)
        with log.open("w") as handle:
            returncode = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
        if returncode:
            return f"{run_dir.name} (exit {returncode}; see {log})"
        print(f"{run_dir.name}: finished", flush=True)
        return None

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        failures = [failure for failure in pool.map(lambda item: launch(*item), pending) if failure]
    if failures:
        how = f" under `{launcher}`" if launcher else ""
        raise UserError(f"{len(failures)} run(s) failed{how}: " + "; ".join(failures))


def _collect(output: Path) -> list[dict]:
    if not output.is_dir():
        raise UserError(f"{output}: sweep folder not found; give the --output-dir of a `hf-charnn sweep`")
    runs = []
    for run_dir in sorted(path for path in output.iterdir() if (path / METRICS_FILE).is_file()):
        # Validation rows only (`--logging-steps` adds rows with the training loss alone).
        history = [row for row in read_metrics(run_dir) if _validation_metric(row)]
        if not history:
            continue  # a run that has not validated yet
        summary = read_eval_results(run_dir) or {}
        config = read_training_config(run_dir)
        runs.append({"name": run_dir.name, "history": history, "summary": summary, "config": config})
    if not runs:
        raise UserError(f"{output}: no runs with {METRICS_FILE} found")
    return runs


def write_report(output_dir: str | Path) -> Path:
    """`results.md` (a row per run) and one PNG per metric with every run's curve, from the saved metrics."""
    output = Path(output_dir)
    runs = _collect(output)
    metric = _validation_metric(runs[0]["history"][0])
    settings_class = task_settings((runs[0]["config"] or {}).get("task", "lm"))
    headline = settings_class.headline_metric
    better = max if settings_class.best_model_metrics[headline] else min
    columns = [
        "embedding_size",
        "hidden_size",
        "num_hidden_layers",
        "optimizer",
        "learning_rate",
        "batch_size",
        "epochs",
        "dropout",
    ]
    # Runs may differ in vocabulary (a grid over `vocab`): a bytes run's perplexity is per byte, not per character.
    lines = [
        f"| run | {' | '.join(columns)} | vocabulary | final {metric} | best epoch (value) | wall s | train chars/s |",
        "|" + "---|" * (len(columns) + 6),
    ]
    for run in runs:
        history = run["history"]
        best = better(history, key=lambda record: record[metric])
        final = run["summary"].get("results", {})
        final_value = final.get(headline, history[-1][metric])
        wall = run["summary"].get("wall_seconds", history[-1]["train_seconds"])
        speed = sum(r["train_chars_per_second"] for r in history) / len(history)
        values = [str(run["config"].get(column, "")) for column in columns]
        vocabulary = run["summary"].get("vocabulary") or {"kind": run["config"].get("vocab", "text8"), "size": ""}
        shown = f"{vocabulary['kind']} ({vocabulary['size']}{', per byte' if vocabulary['kind'] == 'bytes' and 'bpb' in final else ''})"  # noqa: E501
        lines.append(
            f"| {run['name']} | {' | '.join(values)} | {shown} | {final_value:.3f} | {best['epoch']} "
            f"({best[metric]:.3f}) | {wall:.1f} | {speed:.0f} |"
        )
    timing_file = output / TIMING_FILE
    if timing_file.is_file():
        timing = json.loads(timing_file.read_text())
        how = f"under `{timing['launcher']}`, " if timing["launcher"] else ""
        lines += [
            "",
            f"Last `hf-charnn sweep` call: {timing['runs_trained']} run(s) trained {how}{timing['jobs']} at a time, "
            f"in {timing['wall_seconds']:.0f} s of wall time.",
        ]
    (output / RESULTS_FILE).write_text("\n".join(lines) + "\n")
    _plot(output, runs)
    return output / RESULTS_FILE


def _plot(output: Path, runs: list[dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = _validation_metric(runs[0]["history"][0])
    # Every training metric the runs logged (a classifier's accuracy too), then the validation one.
    logged = runs[0]["history"][0]
    metrics = [name for name in ("train_loss", "train_accuracy") if name in logged] + [metric]
    for metric in metrics:
        figure, axes = plt.subplots(figsize=(8, 5))
        axes.set_prop_cycle(color=plt.cm.tab20.colors)  # distinct colours for up to 20 runs
        for run in runs:
            axes.plot(
                [r["epoch"] for r in run["history"]], [r[metric] for r in run["history"]], marker="o", label=run["name"]
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric.replace("_", " "))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="best")
        figure.tight_layout()
        figure.savefig(output / f"{metric}.png", dpi=100)
        plt.close(figure)


def _validation_metric(row: dict) -> str | None:
    """The row's validation figure a sweep compares: its task's headline metric (an LM's perplexity, a classifier's
    accuracy), under the task's name for its validation data."""
    headlines = {settings_class.headline_metric for settings_class in registered_tasks()}
    return next(
        (key for key in row if key.split("_", 1)[-1] in headlines and not key.startswith("train_")),
        None,
    )
