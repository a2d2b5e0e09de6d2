"""
Processes: the run's `Accelerator` (its precision chosen once, by the main process, for every process) and the end of
a multi-process run's collectives (`settle_collectives`, `close_distributed`).
"""

import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list

from ..errors import UserError
from .checkpoints import read_trainer_state
from .precision import cpu_requested, run_precision


def set_up_accelerator(config, checkpoint: Path | None, sequence_length: int) -> tuple[Accelerator, str, str]:
    """The Accelerator, with the run's precision: `auto` is chosen once, by the main process, and kept on resume."""
    resumed = read_trainer_state(checkpoint).mixed_precision if checkpoint is not None else None
    precision, why = run_precision(config, sequence_length, resumed, checkpoint)
    processes = PartialState(cpu=cpu_requested(config.cpu))
    if processes.num_processes > 1:  # each process chose on its own: all train in the main process's choice
        precision, why = broadcast_object_list([precision, why], from_process=0)
    # Accelerate keeps one AcceleratorState per process, fixed by the first Accelerator; runs trained one after another
    # in a process (sweeps, recipes, notebooks) may differ in precision. The distributed setup (PartialState) stays.
    AcceleratorState._reset_state(reset_partial_state=False)
    # split_batches: a batch of `batch_size` rows is shared out between the processes, so each process takes its
    # share of the LM's streams, in order, and the results do not depend on the process count. The seedable sampler
    # makes each epoch's shuffle a function of (seed, epoch), which lets a resumed run match an uninterrupted one.
    accelerator = Accelerator(
        cpu=config.cpu,
        mixed_precision=precision,
        log_with=config.report_to,
        project_dir=config.output_dir,
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=config.seed),
    )
    if config.batch_size % accelerator.num_processes:
        raise UserError(f"batch size {config.batch_size} is not divisible by {accelerator.num_processes} processes")
    accelerator.print(f"mixed precision: {precision} ({why})")
    return accelerator, precision, why


def settle_collectives(grace_seconds: float = 0.2, timeout_seconds: float = 30.0):
    """
    Return once gloo's worker threads have let go of this process's collectives, the GIL released meanwhile.

    A gloo worker drops its reference to a finished collective (and so to the tensors it read and wrote) only after
    the waiting thread has woken up, and needs the GIL to drop a tensor Python also knows. A process group destroyed
    before that (the DDP model going out of scope after `destroy_process_group`, or the group itself at exit) joins
    those workers in its destructor while holding the GIL: a deadlock. Seen with torch 2.13 as a 2-process CPU run
    that printed its results and never exited (about 1 run in 20 on 2 busy cores). So: one more collective on a
    tensor of our own, waited for until its worker has released it (the reference count shows it), and a short
    grace for the other worker thread to finish its last release too.
    """
    if not torch.distributed.is_initialized() or torch.distributed.get_backend() != "gloo":
        return
    probe = torch.zeros(1)
    unreferenced = sys.getrefcount(probe)
    torch.distributed.all_reduce(probe)
    deadline = time.monotonic() + timeout_seconds
    time.sleep(grace_seconds)  # sleeping releases the GIL
    while sys.getrefcount(probe) > unreferenced and time.monotonic() < deadline:
        time.sleep(0.001)


def close_distributed():
    """Destroy the process group once this process has no more training to do (the CLI calls it at its end)."""
    if torch.distributed.is_initialized():
        settle_collectives()
        torch.distributed.destroy_process_group()
