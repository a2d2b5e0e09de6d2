"""
The training loop: one Accelerate loop for every task.

    config = TrainingConfig.from_preset(TASK, PRESET, output_dir="runs/mine", train_file="my.txt")
    summary = train(config)                 # the task the config names, on its data (see tasks.py)
    summary = train(config, task)           # or a task of your own (a subclass of tasks.Task)

`train` reads like accelerate's `examples/nlp_example.py`: set up the run (the task's data, the accelerator, the
model, optimizer, `prepare`, a resumed checkpoint), then per batch one step (`backward`), and at the steps where
something is due, record metrics (the task validates: `gather_for_metrics` for a classifier) and checkpoint; at the
end, the task's final evaluation and the saved model. Everything that differs between tasks is the task's (its data,
its model, what a batch counts, its metrics): the loop has no branch on the task. Runs are counted in optimizer
steps, and a run killed at any moment resumes from its latest checkpoint to the same result.

A run owns its output folder: a new run refuses a folder that holds another run's checkpoints or model (unless
`overwrite_output_dir`), and a resume refuses settings or data that differ from the checkpoint's in what shapes the
model or the data stream (see checkpoints.compare_settings).
"""

import dataclasses
import itertools
import math
import sys
import time
import uuid
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import broadcast, broadcast_object_list, set_seed
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from ..card import CONFUSION_MATRIX_FILE, LEARNING_CURVES_FILE, model_card, plot_confusion_matrix, plot_learning_curves
from ..errors import UserError
from .checkpoints import (
    CHECKPOINTS_DIR,
    RunRecord,
    TrainerState,
    best_checkpoint,
    clear_run,
    compare_settings,
    complete_checkpoints,
    load_checkpoint,
    read_run_record,
    resolve_resume,
    run_artifacts,
    save_checkpoint,
)
from .precision import cpu_requested
from .processes import set_up_accelerator, settle_collectives
from .run_folder import (
    MODEL_FILE,
    append_metrics_row,
    keep_metrics_up_to,
    read_eval_results,
    read_metrics,
    write_eval_results,
    write_training_config,
)
from .settings import TrainingConfig
from .starting_model import check_task_vocabulary
from .tasks import task_for
from .tasks.base import Task


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class SchedulePlan:
    """The steps the learning-rate schedule spans: the run's, or under `--max-train-time` an estimate that the loop
    corrects as step times are measured."""

    total: int
    scale: float = 1.0  # --lr-plateau-patience: the rate's cut so far (a product of --lr-plateau-factor)


def _build_optimizer(config: TrainingConfig, model, plan: SchedulePlan):
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:  # adamw (config.check accepts only OPTIMIZERS)
        # A model with an n-gram bag updates millions of embedding rows every step: the fused kernel makes that step
        # 1.8x faster on a 2-core CPU (measured). Runs without one keep the kernel their published figures came from.
        bag = getattr(model, "ngram_bag", None)
        fused = bag is not None or None
        groups = [{"params": list(model.parameters())}]
        if bag is not None and config.ngram_learning_rate_scale != 1.0:
            # The bag's rows are each read by few texts of a batch: they learn at their own (larger) rate.
            rows = {id(parameter) for parameter in bag.parameters()}
            groups = [
                {"params": [p for p in model.parameters() if id(p) not in rows]},
                {"params": list(bag.parameters()), "lr": config.learning_rate * config.ngram_learning_rate_scale},
            ]
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused)

    def lr_factor(step: int) -> float:
        return plan.scale * scheduled_factor(step)

    def scheduled_factor(step: int) -> float:
        steps_total = plan.total
        warmup = int(config.warmup_ratio * steps_total)
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps_total - warmup)
        if config.lr_schedule == "linear":
            return max(0.0, 1.0 - progress)
        if config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


# -- set-up ------------------------------------------------------------------------------------------------------------
def _check_output_dir(config: TrainingConfig, checkpoint: Path | None):
    """A run owns its folder: a new run (or another run's checkpoint) may not land in a folder holding a run."""
    output_dir = Path(config.output_dir)
    resuming_here = checkpoint is not None and output_dir.resolve() in checkpoint.resolve().parents
    found = [] if resuming_here or config.overwrite_output_dir else run_artifacts(output_dir)
    if found:
        raise UserError(
            f"{output_dir} holds another run ({', '.join(found)}); pass --resume-from latest to continue it, "
            "--overwrite-output-dir to start over (its checkpoints and results are removed), or another --output-dir"
        )


@dataclasses.dataclass
class Run:
    """A run under way: what the loop reads and updates."""

    config: TrainingConfig
    task: Task
    record: RunRecord
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: DataLoader
    trainer_state: TrainerState
    stream_state: torch.Tensor | None
    steps_per_epoch: int
    total_steps: int
    last_epoch: int
    plan: SchedulePlan
    batch_sampler: object = None  # a task's own batch sampler (set to each epoch)
    best: tuple | None = None  # (metric, metrics row key, larger is better) when the best step's model is kept
    budget: float | None = None  # --max-train-time, in seconds
    stopped_by: str | None = None  # "early stopping" or "time budget"
    timing: list = dataclasses.field(default_factory=list)  # (step, training seconds) of this process's first steps
    positions: list = dataclasses.field(default_factory=lambda: [0, 0])  # padded batches: [real, read] positions

    @property
    def carry_state(self) -> bool:
        return self.task.carries_state


def _set_up_run(
    config: TrainingConfig, task: Task, accelerator: Accelerator, checkpoint: Path | None, precision: str
) -> Run:
    """Model, optimizer and loaders, prepared; restored from `checkpoint` after its run is checked."""
    set_seed(config.seed)
    record = _run_record(config, accelerator, task, checkpoint)
    train_dataset = task.train_dataset
    if config.max_train_rows is not None:
        train_dataset = Subset(train_dataset, range(min(config.max_train_rows, len(train_dataset))))
    model = task.new_model()
    batch_sampler = task.batch_sampler(train_dataset)
    if batch_sampler is not None:
        train_loader = DataLoader(train_dataset, batch_sampler=batch_sampler, collate_fn=task.collate_fn)
    else:
        train_loader = DataLoader(
            train_dataset, batch_size=config.batch_size, shuffle=not task.carries_state, collate_fn=task.collate_fn
        )
    steps_per_epoch = len(train_loader)
    total_steps = config.max_steps or config.epochs * steps_per_epoch  # a time budget may end the run sooner
    plan = SchedulePlan(total_steps)
    optimizer, scheduler = _build_optimizer(config, model, plan)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    task.prepare_validation(accelerator)

    trainer_state, stream_state = TrainerState(mixed_precision=precision), None
    if checkpoint is not None:
        trainer_state, stream_state = load_checkpoint(accelerator, checkpoint)
        accelerator.print(f"resumed from {checkpoint} (step {trainer_state.step})")
        if config.max_train_time and trainer_state.planned_steps:
            plan.total = trainer_state.planned_steps
        plan.scale = trainer_state.lr_scale
    trainer_state.planned_steps = plan.total
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    last_epoch = total_epochs if config.stop_after_epoch is None else min(total_epochs, config.stop_after_epoch)
    return Run(
        config,
        task,
        record,
        model,
        optimizer,
        scheduler,
        train_loader,
        trainer_state,
        stream_state,
        steps_per_epoch,
        total_steps,
        last_epoch,
        plan,
        batch_sampler=batch_sampler,
        best=_best_metric(config, task),
        budget=config.budget_seconds(),
    )


def _best_metric(config: TrainingConfig, task: Task) -> tuple | None:
    """(name, metrics row key, larger is better) of the metric that picks the best model; None: the last step's."""
    name = config.metric_for_best_model
    if name is None and config.early_stopping_patience:
        name = task.default_best_metric()
    return None if name is None else (name, *task.best_metric(name))


def _run_record(config: TrainingConfig, accelerator: Accelerator, task: Task, checkpoint: Path | None) -> RunRecord:
    """This run's record; on resume, the checkpoint's run id after its settings and data are checked against ours."""
    run_id = broadcast_object_list([uuid.uuid4().hex])[0]
    vocabulary = {"kind": task.vocabulary.kind, "symbols": "".join(task.vocabulary.symbols)}
    current = RunRecord(run_id, config.as_dict(), task.fingerprint, vocabulary, accelerator.num_processes)
    if checkpoint is None:
        return current
    saved = read_run_record(checkpoint)
    refused, reported = compare_settings(saved, current)
    if refused:
        raise UserError(
            f"cannot resume {checkpoint} with other settings or data: {'; '.join(refused)}. Resume with the run's own "
            "settings (its training_config.json), or start a new run in another --output-dir"
        )
    if reported:
        accelerator.print(f"resuming with changed schedule settings: {'; '.join(reported)}")
    return dataclasses.replace(current, run_id=saved.run_id)


# -- the loop ------------------------------------------------------------------------------------------------------
def train_or_reuse(config: TrainingConfig, task: Task | None = None) -> dict:
    """
    A first stage of a recipe (an LM another model starts from): trained; or, when the recipe is resumed, its saved
    summary if it finished, else resumed from its latest checkpoint.
    """
    if config.resume_from:
        finished = read_eval_results(Path(config.output_dir))
        if finished is not None:
            return finished
        resume = "latest" if complete_checkpoints(Path(config.output_dir)) else None
        config = dataclasses.replace(config, resume_from=resume)
        task = None if task is None else type(task)(config)
    return train(config, task)


def train(config: TrainingConfig, task: Task | None = None) -> dict:
    """
    Train `task` (default: the one `config` names, on its data), validate and checkpoint on schedule, and save the
    final model; returns the run summary.
    """
    config.check()
    task = task if task is not None else task_for(config)
    wall_start = time.perf_counter()
    checkpoint = resolve_resume(config.resume_from, Path(config.output_dir))
    _check_output_dir(config, checkpoint)
    task.before_load()
    with PartialState(
        cpu=cpu_requested(config.cpu)
    ).main_process_first():  # a corpus is cached once, by the main process
        task.load()
    task.adopt_starting_model()  # (a task without a recipe; else done)
    if task.starting is not None:
        check_task_vocabulary(task, task.starting)
    accelerator, precision, why = set_up_accelerator(config, checkpoint, task.sequence_length())
    for line in task.start_lines():
        accelerator.print(line)
    run = _set_up_run(config, task, accelerator, checkpoint, precision)
    _open_output_dir(run, accelerator)

    trainer_state = run.trainer_state
    progress = tqdm(
        total=run.total_steps,
        initial=trainer_state.step,
        desc="training",
        leave=False,
        # Redrawn frames only where a person watches: in a log file (stderr not a terminal) each validation's one
        # line is all that is written, as Trainer's disable_tqdm.
        disable=not (config.progress_bar and accelerator.is_local_main_process and sys.stderr.isatty()),
    )
    while trainer_state.step < run.total_steps and trainer_state.epoch < run.last_epoch:
        running = torch.zeros(3, dtype=torch.float64, device=accelerator.device)  # loss sum, targets, correct
        segment_start = time.perf_counter()
        for batch in _epoch_batches(run, accelerator):
            running += _training_step(run, accelerator, batch)
            progress.update()
            if run.budget is not None:
                _fit_to_budget(run, accelerator, trainer_state.train_seconds + time.perf_counter() - segment_start)
            due = _due(run)
            if not any(due.values()):
                continue  # the sums and the clock are folded into `trainer_state` only when something is due
            _fold(trainer_state, running, time.perf_counter() - segment_start)
            if due["validate"] or due["log"]:
                row = _record_metrics(run, accelerator, validate=due["validate"])
                if due["validate"] and run.best is not None:
                    # The best step's checkpoint is kept (never pruned) and loaded at the end; early stopping ends here.
                    due["save"] = _track_best(run, row) or due["save"]
                    due["run_done"] = trainer_state.step == run.total_steps
                    due["save"] = due["save"] or due["run_done"]
            if due["save"]:
                save_checkpoint(
                    accelerator,
                    config.output_dir,
                    trainer_state,
                    run.stream_state if run.carry_state else None,
                    config.save_total_limit,
                    run.record,
                )
            segment_start = time.perf_counter()
            if due["run_done"]:
                break
    progress.close()
    return _finish(run, accelerator, {"used": precision, "why": why}, wall_start)


def _fit_to_budget(run: Run, accelerator: Accelerator, spent: float):
    """
    `--max-train-time`: from the measured step times, the steps that fit in what is left of the budget (the
    learning-rate schedule is stretched or shrunk to them); once the budget is spent, the run ends at this step.
    Under several processes the main process's clock decides for all, so that they keep one schedule and stop together.
    """
    trainer_state = run.trainer_state
    run.timing.append((trainer_state.step, spent))
    planned = trainer_state.planned_steps
    # A process's first steps are slow (allocation, warm-up): timed from its second. A stop-only cap plans nothing.
    if len(run.timing) > 2 and run.config.fit_schedule_to_budget:
        (first_step, first_spent), (step, now) = run.timing[1], run.timing[-1]
        per_step = (now - first_spent) / max(1, step - first_step)
        upper = run.config.max_steps or run.config.epochs * run.steps_per_epoch
        planned = max(
            trainer_state.step + 1, min(upper, trainer_state.step + int(max(0.0, run.budget - spent) / per_step))
        )
        del run.timing[2:-1]  # only the reference and the newest are read
    decision = [float(spent >= run.budget), float(planned)]
    if accelerator.num_processes > 1:
        decision = broadcast(torch.tensor(decision, dtype=torch.float64, device=accelerator.device)).tolist()
    run.plan.total = trainer_state.planned_steps = int(decision[1])
    if decision[0]:
        if not run.config.fit_schedule_to_budget:
            accelerator.print(
                f"time budget {run.config.max_train_time} spent at step {trainer_state.step} of {run.total_steps}: "
                "the run stops here, before its schedule's end (a stop-only cap: the schedule is the data's, not "
                "fitted to it)"
            )
        run.total_steps = trainer_state.step
        run.stopped_by = "time budget"


def _track_best(run: Run, row: dict) -> bool:
    """Whether this validation is the best so far (it is recorded); ends the run after `early_stopping_patience`
    validations without a better one."""
    trainer_state, (_, key, larger) = run.trainer_state, run.best
    value = row[key]
    improved = trainer_state.best_value is None or (
        value > trainer_state.best_value if larger else value < trainer_state.best_value
    )
    if improved:
        trainer_state.best_value, trainer_state.best_step, trainer_state.evaluations_without_improvement = (
            value,
            trainer_state.step,
            0,
        )
        return True
    trainer_state.evaluations_without_improvement += 1
    plateau = run.config.lr_plateau_patience
    if plateau and trainer_state.evaluations_without_improvement % plateau == 0:
        # No better validation for a while: a smaller rate (as ReduceLROnPlateau), decided by the metrics alone.
        trainer_state.lr_scale = run.plan.scale = trainer_state.lr_scale * run.config.lr_plateau_factor
    patience = run.config.early_stopping_patience
    if patience and trainer_state.evaluations_without_improvement >= patience:
        run.total_steps = trainer_state.step
        run.stopped_by = "early stopping"
    return False


def _open_output_dir(run: Run, accelerator: Accelerator):
    config = run.config
    if config.report_to:
        accelerator.init_trackers(
            "hf_charnn",
            config={
                key: value
                for key, value in config.as_dict().items()
                if isinstance(value, int | float | str | bool)  # what trackers take as hyperparameters
            },
        )
    if accelerator.is_main_process:
        if config.overwrite_output_dir and config.resume_from is None:
            clear_run(Path(config.output_dir))
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        keep_metrics_up_to(config.output_dir, run.trainer_state.step)
    accelerator.wait_for_everyone()


def _epoch_batches(run: Run, accelerator: Accelerator):
    """The batches still to train on in the current epoch (the same shuffle as an uninterrupted run's)."""
    trainer_state = run.trainer_state
    run.train_loader.set_epoch(trainer_state.epoch)
    if run.batch_sampler is not None:  # the task's sampler: its batches are drawn from the seed and the epoch
        run.batch_sampler.set_epoch(trainer_state.epoch)
    if trainer_state.step_in_epoch:  # resumed mid-epoch: the same shuffle, without the batches already trained on
        return _resumed_batches(
            accelerator.skip_first_batches(run.train_loader, trainer_state.step_in_epoch), trainer_state.epoch
        )
    run.stream_state = None  # each epoch reads the streams from their start
    run.model.train()
    return run.train_loader


def _training_step(run: Run, accelerator: Accelerator, batch: dict) -> torch.Tensor:
    """One optimizer step; returns (loss sum, targets, correct) of the batch, on the device (no host sync)."""
    config, trainer_state = run.config, run.trainer_state
    run.model.train()
    if run.carry_state:
        outputs = run.model(**batch, state=run.stream_state)
        run.stream_state = outputs.state.detach()
    else:
        outputs = run.model(**batch)
    loss = run.task.loss(batch, outputs)
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"loss became {loss.item()} at epoch {trainer_state.epoch + 1}, step {trainer_state.step + 1}; training "
            f"stopped. The last good checkpoint is kept in {Path(config.output_dir) / CHECKPOINTS_DIR}; lower "
            "--learning-rate or set --max-grad-norm"
        )
    accelerator.backward(loss)
    if config.max_grad_norm:
        accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)

    weight, correct = run.task.counts(batch, outputs)
    # Characters read (padding not counted: padded batches of texts of any length; one host sync for those only).
    if "attention_mask" in batch:
        real = int(batch["attention_mask"].sum())
        run.positions[0] += real
        run.positions[1] += batch["input_ids"].numel()
        trainer_state.chars += real
    else:
        trainer_state.chars += batch["input_ids"].numel()
    trainer_state.step += 1
    trainer_state.step_in_epoch += 1
    if trainer_state.step_in_epoch == run.steps_per_epoch:
        trainer_state.epoch += 1
        trainer_state.step_in_epoch = 0
    return torch.stack([loss.detach().double() * weight, weight.double(), correct.double()])


def _due(run: Run) -> dict:
    """What this step ends with: validation, a training-loss row, a checkpoint, the end of an epoch or of the run."""
    config, trainer_state = run.config, run.trainer_state
    epoch_done = trainer_state.step_in_epoch == 0
    run_done = trainer_state.step == run.total_steps
    stopping = epoch_done and trainer_state.epoch == run.last_epoch  # --stop-after-epoch: the work so far is kept
    return {
        "validate": trainer_state.step % config.eval_steps == 0 if config.eval_steps else epoch_done,
        "log": bool(config.logging_steps) and trainer_state.step % config.logging_steps == 0,
        "save": (trainer_state.step % config.save_steps == 0 if config.save_steps else epoch_done)
        or run_done
        or stopping,
        "epoch_done": epoch_done,
        "run_done": run_done,
    }


def _fold(trainer_state: TrainerState, running: torch.Tensor, elapsed: float):
    """Move the device-side running sums and the segment's time into `trainer_state` (saved with checkpoints)."""
    trainer_state.train_seconds += elapsed
    trainer_state.seconds_since_row += elapsed
    loss_sum, targets, correct = running.tolist()
    trainer_state.loss_sum += loss_sum
    trainer_state.targets += int(targets)
    trainer_state.correct += int(correct)
    running.zero_()


def _resumed_batches(skipping_loader, epoch: int):
    """
    The rest of an epoch after a resume. Starting a DataLoader iterator draws a seed from torch's RNG: the
    uninterrupted run drew it at the start of the epoch, which the RNG state restored from the checkpoint already
    includes, so the resumed run's draw is undone (else every later dropout mask would differ).
    """
    skipping_loader.set_epoch(epoch)
    rng_state = torch.get_rng_state()
    batches = iter(skipping_loader)
    first = next(batches, None)
    torch.set_rng_state(rng_state)
    return itertools.chain([first] if first is not None else [], batches)


# -- recording -------------------------------------------------------------------------------------------------------
def _record_metrics(run: Run, accelerator: Accelerator, validate: bool):
    """A metrics.jsonl row: the training sums since the last row (over all processes), and validation if due."""
    config, trainer_state = run.config, run.trainer_state
    sums = torch.tensor(
        [trainer_state.loss_sum, trainer_state.targets, trainer_state.correct, trainer_state.chars], dtype=torch.float64
    )
    loss_sum, targets, correct, chars = accelerator.reduce(sums.to(accelerator.device), "sum").tolist()
    epoch = (
        trainer_state.epoch
        if trainer_state.step_in_epoch == 0
        else round(trainer_state.epoch + trainer_state.step_in_epoch / run.steps_per_epoch, 4)
    )
    row = {"step": trainer_state.step, "epoch": epoch, "train_loss": loss_sum / max(targets, 1)}
    row.update(run.task.train_metrics(row["train_loss"], correct, targets))
    row.update(
        learning_rate=run.scheduler.get_last_lr()[0],
        train_seconds=trainer_state.train_seconds,
        train_chars_per_second=chars / trainer_state.seconds_since_row if trainer_state.seconds_since_row else 0.0,
    )
    (
        trainer_state.loss_sum,
        trainer_state.targets,
        trainer_state.correct,
        trainer_state.chars,
        trainer_state.seconds_since_row,
    ) = (
        0.0,
        0,
        0,
        0,
        0.0,
    )
    if validate:
        row.update(_validate(run, accelerator))
    accelerator.log(row, step=trainer_state.step)
    if accelerator.is_main_process:
        append_metrics_row(config.output_dir, row)
        if validate:
            tqdm.write(_format_row(row))
    return row


def _validate(run: Run, accelerator: Accelerator) -> dict:
    """The task's mid-run validation metrics (an LM: of the first `eval_chars` characters), in eval mode."""
    run.model.eval()
    with torch.no_grad():
        result = run.task.validate(run.model, accelerator)
    run.model.train()
    return result


def _format_row(row: dict) -> str:
    parts = [f"step {row['step']}"]
    for key, value in row.items():
        if key != "step":
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)


# -- finishing -----------------------------------------------------------------------------------------------------
def _finish(run: Run, accelerator: Accelerator, precision: dict, wall_start: float) -> dict:
    """The summary; once every step is done, the final evaluation and the saved model (main process)."""
    config, trainer_state = run.config, run.trainer_state
    # Each process reports its own step count, so a multi-process run shows that every rank trained.
    summary = {
        "task": config.task,
        "preset": config.preset,
        "data": run.task.description,
        "steps": trainer_state.step,
        "epochs_done": trainer_state.epoch,
        "train_seconds": trainer_state.train_seconds,
        "num_processes": accelerator.num_processes,
        "steps_per_process": accelerator.gather(torch.tensor([trainer_state.step], device=accelerator.device)).tolist(),
        "mixed_precision": precision,
        "vocabulary": {
            "kind": run.task.vocabulary.kind,
            "size": run.task.vocabulary.size,
            "why": run.task.vocabulary_reason,
        },
    }
    if run.positions[1]:  # the share of the padded batches' positions that were padding (this process, this session)
        summary["padding_share"] = 1.0 - run.positions[0] / run.positions[1]
    if run.stopped_by:
        summary["stopped_by"] = run.stopped_by
    if run.budget is not None:
        summary["time_budget"] = {
            "seconds": run.budget,
            "train_seconds": trainer_state.train_seconds,
            "steps": trainer_state.step,
            "schedule_fitted": run.config.fit_schedule_to_budget,
        }
    summary.update(run.task.summary_extras())
    if trainer_state.step == run.total_steps:
        accelerator.wait_for_everyone()
        unwrapped = accelerator.unwrap_model(run.model)
        if run.best is not None and trainer_state.best_step is not None:
            summary["best"] = _load_best(run, unwrapped)
        summary.update(run.task.finish_model(unwrapped))
        unwrapped.eval()
        if accelerator.is_main_process:
            scoring_start = time.perf_counter()
            summary.update(run.task.final_evaluation(unwrapped))
            summary["final_evaluation_seconds"] = time.perf_counter() - scoring_start  # after any time budget
            summary["wall_seconds"] = time.perf_counter() - wall_start
            save_trained_model(unwrapped, Path(config.output_dir), run.task, summary)
            write_eval_results(config.output_dir, summary)
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:
        tracker.finish()
    # The process group stays (not `end_training`): a process may train again (the LM-transfer recipe trains twice,
    # so may a user's script), and the run's last collectives must be settled before it goes (see close_distributed).
    settle_collectives()
    summary.setdefault("wall_seconds", time.perf_counter() - wall_start)
    return summary


def _load_best(run: Run, model) -> dict:
    """The best validation step's weights into `model` (from its kept checkpoint); what the summary says of it."""
    trainer_state, (name, key, _) = run.trainer_state, run.best
    if trainer_state.best_step != trainer_state.step:
        folder = best_checkpoint(run.config.output_dir, trainer_state.best_step)
        model.load_state_dict(load_file(folder / MODEL_FILE))
    return {
        "metric": name,
        "key": key,
        "value": trainer_state.best_value,
        "step": trainer_state.best_step,
        "of_steps": trainer_state.step,
    }


def save_trained_model(model, output_dir: Path, task: Task, summary: dict):
    """A Hub-ready folder: model and tokenizer (with remote code), model card and figures, and the training config."""
    config = task.config
    model.save_pretrained(output_dir)  # with auto_map and the modeling code (see models/auto.py)
    tokenizer = task.tokenizer(model.config)
    if task.tokenizer_max_length() is not None:  # pipelines cut texts as training did (truncation=True)
        tokenizer.model_max_length = task.tokenizer_max_length()
    tokenizer.save_pretrained(output_dir)
    curves = plot_learning_curves(read_metrics(output_dir), output_dir / LEARNING_CURVES_FILE, *task.curve())
    confusion = "confusion_matrix" in summary["results"]
    if confusion:
        plot_confusion_matrix(summary["results"]["confusion_matrix"], output_dir / CONFUSION_MATRIX_FILE)
    card = model_card(
        config,
        summary["results"],
        summary["train_seconds"],
        task.card_words(summary),
        task.model_index(),
        test_results=summary.get("test_results"),
        curves=curves,
        precision=summary["mixed_precision"]["used"],
        vocabulary=model.vocabulary,
        confusion=confusion,
        dynamic=summary.get("dynamic"),
        recipe=summary.get("recipe"),
        best=summary.get("best"),
        start=summary.get("starting_model"),
    )
    card.save(output_dir / "README.md")
    task.save_extras(output_dir)
    write_training_config(output_dir, config)
    print(f"saved the model to {output_dir} (process {PartialState().process_index})", flush=True)
