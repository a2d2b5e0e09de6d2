"""
One Accelerate training loop for both tasks (next-character LM and vowel/consonant classifier).

    config = TrainingConfig.from_preset("lm", "default", output_dir="runs/lm")
    summary = train(config)

`train` reads like accelerate's `examples/nlp_example.py`: set up the accelerator, set up the run (data, model,
optimizer, `prepare`, a resumed checkpoint), then per batch one step (`backward`), and at the steps where something
is due, record metrics (`gather_for_metrics` for the classifier's validation) and checkpoint; at the end, score and
save. The tasks differ only in their data, their model class, and whether the GRU state is carried from one batch
to the next (the LM reads each stream's windows in order: truncated back-propagation through time). Runs are
counted in optimizer steps, and a run killed at any moment resumes from its latest checkpoint to the same result.

A run owns its output folder: a new run refuses a folder that holds another run's checkpoints or model (unless
`overwrite_output_dir`), and a resume refuses settings or data that differ from the checkpoint's in what shapes the
model or the data stream (see checkpointing.compare_settings).
Where the pieces live: `config.py` (settings, presets), `corpus.py` (LM corpora and windows), `data.py` (the
exercise files), `checkpointing.py`, `precision.py`, `run_files.py` (the folder's files); the LM-transfer
classifier recipe (`transfer.py`) calls `train`.
"""

import dataclasses
import hashlib
import itertools
import math
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list, set_seed
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .checkpointing import (
    CHECKPOINTS_DIR, RunRecord, TrainerState, clear_run, compare_settings, load_checkpoint, read_run_record,
    read_trainer_state, resolve_resume, run_artifacts, save_checkpoint,
)
from .config import PRESETS, TASKS, TrainingConfig  # noqa: F401  (re-exported: `from hf_charnn.training import ...`)
from .corpus import LMWindows, load_corpus
from .data import classification_dataset, example_windows, load_classification_examples
from .errors import DataError, UserError
from .evaluation import bits_per_char, evaluate_classifier, evaluate_labeled, evaluate_lm, score_text
from .hub import CONFUSION_MATRIX_FILE, LEARNING_CURVES_FILE, model_card, plot_confusion_matrix, plot_learning_curves
from .labeled_data import LabeledRows, PaddedBatches, load_labeled_data
from .modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from .precision import cpu_requested, run_precision
from .run_files import append_metrics_row, keep_metrics_up_to, read_metrics, write_eval_results, write_training_config
from .text import decode_ids
from .tokenization_char_gru import CharTokenizer, Vocabulary

EXACT_SCORING_CHARS = 20_000  # validation texts up to this long are scored exactly (one stream)
CHARS_PER_SCORING_STREAM = 20_000
VALIDATION_ROWS_PER_PROCESS = 64  # classifier validation batch: this many rows on each process


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TaskData:
    """What differs between the tasks: the model class, the training rows, and what a run is scored on."""

    model_class: type
    train_dataset: torch.utils.data.Dataset
    validation: object  # LM: the validation ids; classifier: (texts, label ids)
    test: object = None  # the test ids (LM) or (texts, label ids) (classifier), when the data has a test split
    description: str = "exercise data"
    fingerprint: dict = dataclasses.field(default_factory=dict)  # {split: "chars:digest"}, compared on resume
    vocabulary: Vocabulary = dataclasses.field(default_factory=Vocabulary)
    vocabulary_reason: str = "text8"
    # classifier: the labels (ids in this order), the validation rows the loop scores, and how rows become batches
    label_names: list = dataclasses.field(default_factory=lambda: ["consonant", "vowel"])
    validation_dataset: torch.utils.data.Dataset | None = None
    collate_fn: object = None  # None: the rows are already of one length


def _digest(*parts) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        digest.update(str(part).encode())
    return digest.hexdigest()


def build_task_data(config: TrainingConfig) -> TaskData:
    if config.task == "lm":
        corpus = load_corpus(config)
        if len(corpus.validation) < config.chunk_size:
            raise DataError(
                f"the validation text ({corpus.description}) has {len(corpus.validation)} characters, fewer than one "
                f"training window ({config.chunk_size}); give a longer validation text"
            )
        held_out = []
        if config.exclude_dev_examples:
            held_out += sum(load_classification_examples(config.data_dir, "dev"), [])
        if config.holdout_examples:
            held_out += sum(holdout_examples(config), [])
        masked = example_windows(decode_ids(corpus.train), held_out) if held_out else ()
        windows = LMWindows(corpus.train, config.chunk_size, config.batch_size, config.carry_state, masked)
        # Validation and test stay ids (a uint8 view): the model scores ids of its own vocabulary.
        test = np.asarray(corpus.test) if corpus.test is not None else None
        return TaskData(CharGRUForCausalLM, windows, np.asarray(corpus.validation), test, corpus.description, corpus.fingerprint,
                        corpus.vocabulary, corpus.vocabulary_reason)
    if config.uses_labeled_data():
        labeled = load_labeled_data(config)
        batches = PaddedBatches(pad_id=labeled.vocabulary.size)
        test = (labeled.test.texts, labeled.test.labels) if labeled.test is not None else None
        return TaskData(
            CharGRUForSequenceClassification, LabeledRows(labeled.train, labeled.vocabulary),
            (labeled.validation.texts, labeled.validation.labels), test, labeled.description, labeled.fingerprint,
            labeled.vocabulary, labeled.vocabulary_reason, labeled.label_names,
            LabeledRows(labeled.validation, labeled.vocabulary), batches,
        )
    if config.vocab not in ("auto", "text8"):
        raise UserError(f"the exercise data is text8 form: train it with --vocab text8 (or auto), not {config.vocab}")
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    fingerprint = {"train": f"{len(consonants) + len(vowels)}:{_digest(consonants, vowels)}", "validation": f"{sum(map(len, dev))}:{_digest(*dev)}"}
    if config.holdout_examples:
        consonants, vowels = consonants[: -config.holdout_examples], vowels[: -config.holdout_examples]
    dataset = classification_dataset(consonants, vowels, prefix_labels=config.prefix_labels)
    validation = (dev[0] + dev[1], [0] * len(dev[0]) + [1] * len(dev[1]))
    return TaskData(CharGRUForSequenceClassification, dataset, validation, fingerprint=fingerprint,
                    vocabulary_reason="text8: the exercise data", validation_dataset=classification_dataset(*dev))


def holdout_examples(config: TrainingConfig) -> tuple[list[str], list[str]]:
    """The training examples a run with `holdout_examples` keeps out of training (the last N of each class)."""
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    return consonants[-config.holdout_examples :], vowels[-config.holdout_examples :]


def _build_optimizer(config: TrainingConfig, model, steps_total: int):
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:  # adamw (config.check accepts only OPTIMIZERS)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = int(config.warmup_ratio * steps_total)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps_total - warmup)
        if config.lr_schedule == "linear":
            return max(0.0, 1.0 - progress)
        if config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


def scoring_streams(config: TrainingConfig, chars: int) -> int:
    """Streams for scoring a validation text: exact (1) for short texts, then one per 20k characters, at most 64."""
    if config.eval_streams:
        return config.eval_streams
    return 1 if chars <= EXACT_SCORING_CHARS else min(64, chars // CHARS_PER_SCORING_STREAM)


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


def _set_up_accelerator(config: TrainingConfig, checkpoint: Path | None) -> tuple[Accelerator, str, str]:
    """The Accelerator, with the run's precision: `auto` is chosen once, by the main process, and kept on resume."""
    resumed = read_trainer_state(checkpoint).mixed_precision if checkpoint is not None else None
    precision, why = run_precision(config, resumed, checkpoint)
    processes = PartialState(cpu=cpu_requested(config.cpu))
    if processes.num_processes > 1:  # each process chose on its own: all train in the main process's choice
        precision, why = broadcast_object_list([precision, why], from_process=0)
    # Accelerate keeps one AcceleratorState per process, fixed by the first Accelerator; runs trained one after another
    # in a process (sweeps, LM-transfer, notebooks) may differ in precision. The distributed setup (PartialState) stays.
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


@dataclasses.dataclass
class Run:
    """A run under way: what the loop reads and updates."""

    config: TrainingConfig
    data: TaskData
    record: RunRecord
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    train_loader: DataLoader
    validation_loader: DataLoader | None  # the classifier's, prepared once
    state: TrainerState
    stream_state: torch.Tensor | None
    steps_per_epoch: int
    total_steps: int
    last_epoch: int

    @property
    def carry_state(self) -> bool:
        return self.config.task == "lm" and self.config.carry_state


def _set_up_run(config: TrainingConfig, accelerator: Accelerator, checkpoint: Path | None, precision: str) -> Run:
    """Data, model, optimizer and loaders, prepared; restored from `checkpoint` after its run is checked."""
    set_seed(config.seed)
    with accelerator.main_process_first():  # a corpus is encoded into its cache once, by the main process
        data = build_task_data(config)
    accelerator.print(f"vocabulary: {data.vocabulary_reason}")
    if config.uses_labeled_data():
        accelerator.print(f"labels: {', '.join(data.label_names)} ({len(data.train_dataset)} training texts, "
                          f"{len(data.validation[0])} validation texts)")
    record = _run_record(config, accelerator, data, checkpoint)
    train_dataset = data.train_dataset
    if config.max_train_rows is not None:
        train_dataset = Subset(train_dataset, range(min(config.max_train_rows, len(train_dataset))))
    if config.init_from:
        # The backbone (embedding + GRU) comes from the LM; the classifier head starts fresh.
        model = data.model_class.from_pretrained(config.init_from, dropout=config.dropout)
    else:
        model = data.model_class(config.model_config(data.vocabulary, data.label_names if config.task == "classifier" else None))
    carry_state = config.task == "lm" and config.carry_state
    train_loader = DataLoader(train_dataset, batch_size=config.batch_size, shuffle=not carry_state, collate_fn=data.collate_fn)
    steps_per_epoch = len(train_loader)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    optimizer, scheduler = _build_optimizer(config, model, total_steps)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    validation_loader = None
    if config.task == "classifier":
        # Any process count: each process takes VALIDATION_ROWS_PER_PROCESS rows of a batch; the uneven last batch
        # is evened out by Accelerate and its repeats dropped again by gather_for_metrics.
        batch = VALIDATION_ROWS_PER_PROCESS * accelerator.num_processes
        validation_loader = accelerator.prepare_data_loader(
            DataLoader(data.validation_dataset, batch_size=batch, collate_fn=data.collate_fn)
        )

    state, stream_state = TrainerState(mixed_precision=precision), None
    if checkpoint is not None:
        state, stream_state = load_checkpoint(accelerator, checkpoint)
        accelerator.print(f"resumed from {checkpoint} (step {state.step})")
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    last_epoch = total_epochs if config.stop_after_epoch is None else min(total_epochs, config.stop_after_epoch)
    return Run(config, data, record, model, optimizer, scheduler, train_loader, validation_loader, state, stream_state,
               steps_per_epoch, total_steps, last_epoch)


def _run_record(config: TrainingConfig, accelerator: Accelerator, data: TaskData, checkpoint: Path | None) -> RunRecord:
    """This run's record; on resume, the checkpoint's run id after its settings and data are checked against ours."""
    run_id = broadcast_object_list([uuid.uuid4().hex])[0]
    vocabulary = {"kind": data.vocabulary.kind, "symbols": "".join(data.vocabulary.symbols)}
    current = RunRecord(run_id, dataclasses.asdict(config), data.fingerprint, vocabulary, accelerator.num_processes)
    if checkpoint is None:
        return current
    saved = read_run_record(checkpoint)
    if saved is None:
        accelerator.print(f"warning: {checkpoint} was written before checkpoints recorded their run; its settings are not checked")
        return current
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
def train(config: TrainingConfig) -> dict:
    """Train, validate and checkpoint on schedule, and save the final model; returns the run summary."""
    config.check()
    wall_start = time.perf_counter()
    checkpoint = resolve_resume(config.resume_from, Path(config.output_dir))
    _check_output_dir(config, checkpoint)
    accelerator, precision, why = _set_up_accelerator(config, checkpoint)
    run = _set_up_run(config, accelerator, checkpoint, precision)
    _open_output_dir(run, accelerator)

    state = run.state
    progress = tqdm(total=run.total_steps, initial=state.step, desc="training", leave=False,
                    disable=not (config.progress_bar and accelerator.is_local_main_process))
    while state.step < run.total_steps and state.epoch < run.last_epoch:
        running = torch.zeros(3, dtype=torch.float64, device=accelerator.device)  # loss sum, targets, correct
        segment_start = time.perf_counter()
        for batch in _epoch_batches(run, accelerator):
            running += _training_step(run, accelerator, batch)
            progress.update()
            due = _due(run)
            if not any(due.values()):
                continue  # the sums and the clock are folded into `state` only when something is due
            _fold(state, running, time.perf_counter() - segment_start)
            if due["validate"] or due["log"]:
                _record_metrics(run, accelerator, validate=due["validate"])
            if due["save"]:
                save_checkpoint(accelerator, config.output_dir, state, run.stream_state if run.carry_state else None,
                                config.save_total_limit, run.record)
            segment_start = time.perf_counter()
            if due["run_done"]:
                break
    progress.close()
    return _finish(run, accelerator, {"used": precision, "why": why}, wall_start)


def _open_output_dir(run: Run, accelerator: Accelerator):
    config = run.config
    if config.report_to:
        accelerator.init_trackers("hf_charnn", config={k: v for k, v in dataclasses.asdict(config).items() if v is not None})
    if accelerator.is_main_process:
        if config.overwrite_output_dir and config.resume_from is None:
            clear_run(Path(config.output_dir))
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        keep_metrics_up_to(config.output_dir, run.state.step)
    accelerator.wait_for_everyone()


def _epoch_batches(run: Run, accelerator: Accelerator):
    """The batches still to train on in the current epoch (the same shuffle as an uninterrupted run's)."""
    state = run.state
    run.train_loader.set_epoch(state.epoch)
    if state.step_in_epoch:  # resumed mid-epoch: the same shuffle, without the batches already trained on
        return _resumed_batches(accelerator.skip_first_batches(run.train_loader, state.step_in_epoch), state.epoch)
    run.stream_state = None  # each epoch reads the streams from their start
    run.model.train()
    return run.train_loader


def _training_step(run: Run, accelerator: Accelerator, batch: dict) -> torch.Tensor:
    """One optimizer step; returns (loss sum, targets, correct) of the batch, on the device (no host sync)."""
    config, state = run.config, run.state
    run.model.train()
    if run.carry_state:
        outputs = run.model(**batch, state=run.stream_state)
        run.stream_state = outputs.state.detach()
    else:
        outputs = run.model(**batch)
    loss = outputs.loss
    if not torch.isfinite(loss):
        raise TrainingDiverged(
            f"loss became {loss.item()} at epoch {state.epoch + 1}, step {state.step + 1}; training stopped. "
            f"The last good checkpoint is kept in {Path(config.output_dir) / CHECKPOINTS_DIR}; lower --learning-rate "
            "or set --max-grad-norm"
        )
    accelerator.backward(loss)
    if config.max_grad_norm:
        accelerator.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)

    targets = batch["shift_labels"] if config.task == "lm" else batch["labels"]
    if targets.dim() == 2 and config.task == "classifier":
        targets = targets[:, -1]  # accuracy is about the whole example, as on dev
    weight = (targets != -100).sum()
    correct = (outputs.logits.argmax(-1) == targets).sum() if config.task == "classifier" else weight * 0
    # Characters read (padding not counted: padded batches of texts of any length; one host sync for those only).
    state.chars += batch["input_ids"].numel() if "attention_mask" not in batch else int(batch["attention_mask"].sum())
    state.step += 1
    state.step_in_epoch += 1
    if state.step_in_epoch == run.steps_per_epoch:
        state.epoch += 1
        state.step_in_epoch = 0
    return torch.stack([loss.detach().double() * weight, weight.double(), correct.double()])


def _due(run: Run) -> dict:
    """What this step ends with: validation, a training-loss row, a checkpoint, the end of an epoch or of the run."""
    config, state = run.config, run.state
    epoch_done = state.step_in_epoch == 0
    run_done = state.step == run.total_steps
    stopping = epoch_done and state.epoch == run.last_epoch  # --stop-after-epoch: the work so far is kept
    return {
        "validate": state.step % config.eval_steps == 0 if config.eval_steps else epoch_done,
        "log": bool(config.logging_steps) and state.step % config.logging_steps == 0,
        "save": (state.step % config.save_steps == 0 if config.save_steps else epoch_done) or run_done or stopping,
        "epoch_done": epoch_done,
        "run_done": run_done,
    }


def _fold(state: TrainerState, running: torch.Tensor, elapsed: float):
    """Move the device-side running sums and the segment's time into the trainer state (saved with checkpoints)."""
    state.train_seconds += elapsed
    state.seconds_since_row += elapsed
    loss_sum, targets, correct = running.tolist()
    state.loss_sum += loss_sum
    state.targets += int(targets)
    state.correct += int(correct)
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
    config, state = run.config, run.state
    sums = torch.tensor([state.loss_sum, state.targets, state.correct, state.chars], dtype=torch.float64)
    loss_sum, targets, correct, chars = accelerator.reduce(sums.to(accelerator.device), "sum").tolist()
    epoch = state.epoch if state.step_in_epoch == 0 else round(state.epoch + state.step_in_epoch / run.steps_per_epoch, 4)
    row = {"step": state.step, "epoch": epoch, "train_loss": loss_sum / max(targets, 1)}
    rate = "bpb" if run.data.vocabulary.kind == "bytes" else "bpc"  # bits per byte for a bytes model
    if config.task == "lm":
        row.update({"train_perplexity": math.exp(row["train_loss"]), f"train_{rate}": row["train_loss"] / math.log(2)})
    else:
        row["train_accuracy"] = 100.0 * correct / max(targets, 1)
    row.update(
        learning_rate=run.scheduler.get_last_lr()[0],
        train_seconds=state.train_seconds,
        train_chars_per_second=chars / state.seconds_since_row if state.seconds_since_row else 0.0,
    )
    state.loss_sum, state.targets, state.correct, state.chars, state.seconds_since_row = 0.0, 0, 0, 0, 0.0
    if validate:
        row.update(_validate(run, accelerator))
    accelerator.log(row, step=state.step)
    if accelerator.is_main_process:
        append_metrics_row(config.output_dir, row)
        if validate:
            tqdm.write(_format_row(row))


def _validate(run: Run, accelerator: Accelerator) -> dict:
    """The mid-run validation metrics: dev perplexity and bpc (of the first `eval_chars`), or dev accuracy."""
    config, model = run.config, run.model
    model.eval()
    with torch.no_grad():
        if config.task == "lm":
            text = run.data.validation[: config.eval_chars] if config.eval_chars else run.data.validation
            log_prob = score_text(accelerator.unwrap_model(model), text, scoring_streams(config, len(text)), config.eval_warmup)
            rate = "dev_bpb" if run.data.vocabulary.kind == "bytes" else "dev_bpc"
            result = {"dev_perplexity": math.exp(-log_prob / len(text)), rate: bits_per_char(log_prob, len(text))}
        else:
            correct = total = 0
            for batch in run.validation_loader:
                logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
                predictions, labels = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
                correct += int((predictions == labels).sum())
                total += labels.numel()
            result = {"dev_accuracy": 100.0 * correct / total}
    model.train()
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
    config, state = run.config, run.state
    # Each process reports its own step count, so a multi-process run shows that every rank trained.
    summary = {
        "task": config.task,
        "preset": config.preset,
        "data": run.data.description,
        "steps": state.step,
        "epochs_done": state.epoch,
        "train_seconds": state.train_seconds,
        "num_processes": accelerator.num_processes,
        "steps_per_process": accelerator.gather(torch.tensor([state.step], device=accelerator.device)).tolist(),
        "mixed_precision": precision,
        "vocabulary": {"kind": run.data.vocabulary.kind, "size": run.data.vocabulary.size, "why": run.data.vocabulary_reason},
    }
    if state.step == run.total_steps:
        accelerator.wait_for_everyone()
        unwrapped = accelerator.unwrap_model(run.model)
        unwrapped.eval()
        if accelerator.is_main_process:
            summary.update(_final_evaluation(config, unwrapped, run.data))
            summary["wall_seconds"] = time.perf_counter() - wall_start
            save_trained_model(unwrapped, Path(config.output_dir), config, summary)
            write_eval_results(config.output_dir, summary)
    accelerator.wait_for_everyone()
    for tracker in accelerator.trackers:
        tracker.finish()
    # The process group stays (not `end_training`): a process may train again (the LM-transfer recipe trains twice,
    # so may a user's script), and the run's last collectives must be settled before it goes (see close_distributed).
    settle_collectives()
    summary.setdefault("wall_seconds", time.perf_counter() - wall_start)
    return summary


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


def _final_evaluation(config, model, data: TaskData) -> dict:
    """The evaluation harness's JSON on all of the validation data (`results`), and on the test split if any."""
    if config.task == "classifier":
        results = {"results": evaluate_labeled(model, *data.validation, data.label_names)}
        if data.test is not None:
            results["test_results"] = evaluate_labeled(model, *data.test, data.label_names)
        if config.holdout_examples:
            results["holdout"] = evaluate_classifier(model, *holdout_examples(config))
        return results
    results = {"results": evaluate_lm(model, data.validation, scoring_streams(config, len(data.validation)), config.eval_warmup)}
    if data.test is not None:
        results["test_results"] = evaluate_lm(model, data.test, scoring_streams(config, len(data.test)), config.eval_warmup)
    return results


def save_trained_model(model, output_dir: Path, config: TrainingConfig, summary: dict):
    """A Hub-ready folder: model and tokenizer (with remote code), model card, and the training config."""
    model.save_pretrained(output_dir)  # with auto_map and the modeling code (see hf_charnn/auto.py)
    CharTokenizer.for_model(model.config).save_pretrained(output_dir)
    curves = plot_learning_curves(read_metrics(output_dir), output_dir / LEARNING_CURVES_FILE, config.task)
    confusion = "confusion_matrix" in summary["results"]
    if confusion:
        plot_confusion_matrix(summary["results"]["confusion_matrix"], output_dir / CONFUSION_MATRIX_FILE)
    card = model_card(
        config.task, summary["results"], config, summary["train_seconds"], test_results=summary.get("test_results"), curves=curves,
        precision=summary["mixed_precision"]["used"], vocabulary=getattr(model, "vocabulary", None), confusion=confusion,
    )
    card.save(output_dir / "README.md")
    write_training_config(output_dir, config)
    print(f"saved the model to {output_dir} (process {PartialState().process_index})", flush=True)
