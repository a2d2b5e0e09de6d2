"""
Checkpoints: `OUTPUT/checkpoints/step-N` folders that a killed run resumes from and reaches the same result.

A checkpoint holds Accelerate's `save_state` (weights, optimizer, scheduler, every process's RNG states), each
process's carried GRU state (an LM reading streams in order is mid-way through them), and `trainer_state.json`
(where the run stands: steps, epoch, position in the epoch, the running training-loss sums). It is written into
`step-N.partial` and renamed only once complete, so a run killed while saving never leaves a folder that
`--resume-from latest` would pick.
"""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch

from .errors import UserError

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE_FILE = "trainer_state.json"
PARTIAL_SUFFIX = ".partial"


@dataclasses.dataclass
class TrainerState:
    """Where a run stands; saved with every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs completed
    step_in_epoch: int = 0  # steps done in the epoch under way
    train_seconds: float = 0.0
    mixed_precision: str = "no"  # what the run trains in: a resumed `auto` run keeps it, whatever a new probe says
    # Sums since the last metrics row (this process's share; rows reduce them over processes).
    loss_sum: float = 0.0
    targets: int = 0
    correct: int = 0
    chars: int = 0
    seconds_since_row: float = 0.0


def _step_of(folder: Path) -> int:
    return int(folder.name.split("-", 1)[1])


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """The finished `step-N` checkpoints of a run, oldest first."""
    folder = Path(output_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [
        path for path in folder.glob("step-*")
        if not path.name.endswith(PARTIAL_SUFFIX) and path.name[5:].isdigit() and (path / TRAINER_STATE_FILE).is_file()
    ]
    return sorted(found, key=_step_of)


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


def read_trainer_state(folder: Path) -> TrainerState:
    return TrainerState(**json.loads((folder / TRAINER_STATE_FILE).read_text()))


def save_checkpoint(accelerator, output_dir: Path, state: TrainerState, stream_state: torch.Tensor | None, keep: int):
    """Write `checkpoints/step-N` (all processes take part), then drop all but the newest `keep`."""
    folder = Path(output_dir) / CHECKPOINTS_DIR / f"step-{state.step}"
    partial = folder.with_name(folder.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if stream_state is not None:
        torch.save(stream_state.detach().cpu(), partial / f"stream_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / TRAINER_STATE_FILE).write_text(json.dumps(dataclasses.asdict(state)) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
        # Older checkpoints go only once the new one is complete.
        for old in complete_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator, folder: Path) -> tuple[TrainerState, torch.Tensor | None]:
    """Restore weights, optimizer, scheduler and RNG states; returns the trainer state and this process's GRU state."""
    state = read_trainer_state(folder)
    try:
        accelerator.load_state(str(folder))
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"{folder}: cannot restore this checkpoint ({error}); resume from an older one") from None
    stream_file = folder / f"stream_state_{accelerator.process_index}.pt"
    stream_state = torch.load(stream_file).to(accelerator.device) if stream_file.is_file() else None
    return state, stream_state
