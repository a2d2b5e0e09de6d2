"""
Checkpoints: `OUTPUT/checkpoints/step-N` folders that a killed run resumes from and reaches the same result.

A checkpoint holds Accelerate's `save_state` (weights, optimizer, scheduler, every process's RNG states), and of
every process its own counters (`process_state_{rank}.json`: the training-loss sums since the last metrics row)
and carried GRU state (`stream_state_{rank}.safetensors`: an LM reading streams in order is mid-way through them).
`trainer_state.json`, written last, says where the run stands and what it is: its id, its settings, a fingerprint
of its data and its vocabulary, the process count. A resume compares those with its own (`compare_settings`) and
refuses what it cannot continue.

Durability: everything is written into `step-N.partial`, each file and the folder synced to disk, and renamed only
once complete (then the parent folder is synced), so neither a run killed while saving nor a power cut leaves a
folder that `--resume-from latest` would pick. Older checkpoints are pruned only after that, and only this run's.
"""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import UserError
from .run_folder import EVAL_RESULTS_FILE, METRICS_FILE, MODEL_FILE, fsync_path, write_atomically
from .settings import PATH_SETTINGS, RUN_SETTINGS, SCHEDULE_SETTINGS

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE_FILE = "trainer_state.json"
PROCESS_STATE_FILE = "process_state_{}.json"
STREAM_STATE_FILE = "stream_state_{}.safetensors"
PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass
class TrainerState:
    """Where a run stands; the first five fields are the run's, the rest each process's own."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps done in the epoch under way
    train_seconds: float = 0.0
    mixed_precision: str = "no"  # what the run trains in: a resumed `auto` run keeps it, whatever a new probe says
    # --metric-for-best-model: the best validation so far, its step, and validations since without a better one.
    best_value: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    planned_steps: int = 0  # --max-train-time: the steps the schedule is fitted to (estimated from step times)
    lr_scale: float = 1.0  # --lr-plateau-patience: the learning rate's cut so far
    # Sums since the last metrics row (this process's share; rows reduce them over processes).
    loss_sum: float = 0.0
    targets: int = 0
    correct: int = 0
    chars: int = 0
    seconds_since_row: float = 0.0


RUN_FIELDS = (
    "step",
    "epoch",
    "step_in_epoch",
    "train_seconds",
    "mixed_precision",
    "best_value",
    "best_step",
    "evaluations_without_improvement",
    "planned_steps",
    "lr_scale",
)
PROCESS_FIELDS = ("loss_sum", "targets", "correct", "chars", "seconds_since_row")


@dataclasses.dataclass
class RunRecord:
    """What a run is, saved with each of its checkpoints and compared on resume."""

    run_id: str
    settings: dict  # TrainingConfig as a dict
    data: dict  # fingerprint of the training and validation data (see tasks.Task.fingerprint)
    vocabulary: dict
    num_processes: int


def _step_of(folder: Path) -> int:
    return int(folder.name.split("-", 1)[1])


def complete_checkpoints(output_dir: Path, run_id: str | None = None) -> list[Path]:
    """The finished `step-N` checkpoints in a folder (of one run, if `run_id` is given), oldest first."""
    folder = Path(output_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.glob("step-*")
        if not path.name.endswith(PARTIAL_SUFFIX) and path.name[5:].isdigit() and (path / TRAINER_STATE_FILE).is_file()
    ]
    if run_id is not None:
        found = [path for path in found if _read_json(path / TRAINER_STATE_FILE).get("run", {}).get("run_id") == run_id]
    return sorted(found, key=_step_of)


def run_artifacts(output_dir: Path) -> list[str]:
    """What in `output_dir` belongs to a run (checkpoints, a model, results); [] for a folder a new run may use."""
    folder = Path(output_dir)
    found = []
    checkpoints = complete_checkpoints(folder)
    if checkpoints:
        found.append(f"{len(checkpoints)} checkpoint(s) ({', '.join(path.name for path in checkpoints)})")
    return found + [name for name in (MODEL_FILE, EVAL_RESULTS_FILE) if (folder / name).is_file()]


def clear_run(output_dir: Path):
    """`--overwrite-output-dir`: remove the earlier run's checkpoints and results before a new run starts."""
    folder = Path(output_dir)
    shutil.rmtree(folder / CHECKPOINTS_DIR, ignore_errors=True)
    for name in (MODEL_FILE, EVAL_RESULTS_FILE, METRICS_FILE):
        (folder / name).unlink(missing_ok=True)


def resolve_resume(resume_from: str | None, output_dir: Path) -> Path | None:
    """The checkpoint folder to resume from: `latest` (of this output dir) or a given folder."""
    if resume_from is None:
        return None
    if resume_from == "latest":
        found = complete_checkpoints(output_dir)
        if not found:
            raise UserError(
                f"--resume-from latest: no complete checkpoint in {Path(output_dir) / CHECKPOINTS_DIR}; "
                "start the run without --resume-from (or check --output-dir)"
            )
        return found[-1]
    folder = Path(resume_from)
    if not (folder / TRAINER_STATE_FILE).is_file():
        raise UserError(
            f"{folder}: not a training checkpoint (no {TRAINER_STATE_FILE}); pass a checkpoints/step-N folder or latest"
        )
    return folder


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable ({error}); resume from an older checkpoint") from None


def read_run_record(folder: Path) -> RunRecord:
    """The run a checkpoint belongs to; a checkpoint of an older release (no record, or another one) is refused."""
    run = _read_json(Path(folder) / TRAINER_STATE_FILE).get("run")
    try:
        return RunRecord(**run)
    except TypeError:
        raise UserError(
            f"{folder}: a checkpoint of an earlier hf_charnn release, which this one cannot resume; start a new run "
            "(--overwrite-output-dir, or another --output-dir)"
        ) from None


def read_trainer_state(folder: Path, process_index: int = 0) -> TrainerState:
    """The run's position, with this process's own counters."""
    saved = _read_json(Path(folder) / TRAINER_STATE_FILE)
    values = {name: saved[name] for name in RUN_FIELDS if name in saved}
    process_file = Path(folder) / PROCESS_STATE_FILE.format(process_index)
    if process_file.is_file():
        values.update(_read_json(process_file))
    return TrainerState(**values)


def compare_settings(record: RunRecord, current: RunRecord) -> tuple[list[str], list[str]]:
    """
    (refused, reported): the differences between a checkpoint's run and the run resuming it. Settings that shape
    the model or the data stream, the data itself, the vocabulary and the process count must match; schedule
    settings may change and are reported. `mixed_precision: auto` matches whatever the run chose.
    """
    refused, reported = [], []
    ignored = set(RUN_SETTINGS) | set(PATH_SETTINGS)
    for name in sorted(set(record.settings) | set(current.settings)):
        before, after = record.settings.get(name), current.settings.get(name)
        if name in ignored or before == after or (name == "mixed_precision" and after == "auto"):
            continue
        change = f"{name} {before!r} -> {after!r}"
        (reported if name in SCHEDULE_SETTINGS else refused).append(change)
    for what in ("data", "vocabulary"):
        before, after = getattr(record, what), getattr(current, what)
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                refused.append(f"{what} {key}: {_short(before.get(key))} -> {_short(after.get(key))}")
    if record.num_processes != current.num_processes:
        refused.append(
            f"processes {record.num_processes} -> {current.num_processes} (each process's share of the streams is "
            "saved)"
        )
    return refused, reported


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def save_checkpoint(
    accelerator, output_dir: Path, state: TrainerState, stream_state: torch.Tensor | None, keep: int, record: RunRecord
):
    """
    Write `checkpoints/step-N` (all processes take part), then drop all but this run's newest `keep` and its best
    (`state.best_step`), which is never pruned.
    """
    folder = Path(output_dir) / CHECKPOINTS_DIR / f"step-{state.step}"
    partial = folder.with_name(folder.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    rank = accelerator.process_index
    write_atomically(
        partial / PROCESS_STATE_FILE.format(rank),
        json.dumps({name: getattr(state, name) for name in PROCESS_FIELDS}) + "\n",
    )
    if stream_state is not None:
        save_file({"state": stream_state.detach().cpu().contiguous()}, partial / STREAM_STATE_FILE.format(rank))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for path in partial.rglob("*"):  # the files Accelerate and the processes wrote, on disk before the marker
            fsync_path(path)
        run_state = {name: getattr(state, name) for name in RUN_FIELDS}
        write_atomically(
            partial / TRAINER_STATE_FILE, json.dumps({**run_state, "run": dataclasses.asdict(record)}) + "\n"
        )
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
        fsync_path(folder.parent)
        # Older checkpoints go only once the new one is complete, and only this run's.
        for old in complete_checkpoints(output_dir, record.run_id)[:-keep]:
            if _step_of(old) != state.best_step:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def best_checkpoint(output_dir: Path, step: int) -> Path:
    """The checkpoint of a run's best step (kept by `save_checkpoint`)."""
    return Path(output_dir) / CHECKPOINTS_DIR / f"step-{step}"


def load_checkpoint(accelerator, folder: Path) -> tuple[TrainerState, torch.Tensor | None]:
    """Restore weights, optimizer, scheduler and RNG states; returns this process's trainer state and GRU state."""
    state = read_trainer_state(folder, accelerator.process_index)
    try:
        accelerator.load_state(str(folder))
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
        raise UserError(
            f"{folder}: cannot restore this checkpoint ({first_line[:300]}); resume from an older one"
        ) from None
    stream_file = folder / STREAM_STATE_FILE.format(accelerator.process_index)
    if not stream_file.is_file():
        return state, None
    return state, load_file(stream_file)["state"].to(accelerator.device)
