"""
One Accelerate training loop for both tasks (next-character LM and vowel/consonant classifier).

    config = TrainingConfig.from_preset("lm", "default", output_dir="runs/lm")
    summary = train(config)

The loop follows accelerate's `examples/nlp_example.py`: `prepare`, `backward`, `gather_for_metrics`. The two
tasks differ only in their data, their model class, and whether the GRU state is carried from one batch to the
next (the LM reads each stream's windows in order: truncated back-propagation through time). Runs are counted in
optimizer steps: validation every `eval_steps` (or each epoch), checkpoints every `save_steps` (or each epoch),
and a run killed at any moment resumes from its latest checkpoint to the same result.
Where the pieces live: `config.py` (settings, presets), `corpus.py` (LM corpora and windows), `data.py` (the
exercise files), `checkpointing.py`, `precision.py`, `transfer.py` (the LM-transfer classifier recipe).
"""

import dataclasses
import itertools
import json
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list, parse_flag_from_env, set_seed
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from .checkpointing import (
    CHECKPOINTS_DIR, TrainerState, load_checkpoint, read_trainer_state, resolve_resume, save_checkpoint,
)
from .config import PRESETS, TASKS, TrainingConfig  # noqa: F401  (re-exported: `from hf_charnn.training import ...`)
from .corpus import LMWindows, load_corpus
from .data import classification_dataset, example_windows, load_classification_examples
from .errors import DataError, UserError
from .evaluation import bits_per_char, evaluate_classifier, evaluate_lm, score_text
from .hub import LEARNING_CURVES_FILE, model_card, plot_learning_curves
from .modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from .precision import choose_mixed_precision
from .text import decode_ids
from .tokenization_char_gru import CharTokenizer

METRICS_FILE = "metrics.jsonl"
EVAL_RESULTS_FILE = "eval_results.json"
EXACT_SCORING_CHARS = 20_000  # validation texts up to this long are scored exactly (one stream)
CHARS_PER_SCORING_STREAM = 20_000


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TaskData:
    """What differs between the tasks: the model class, the training rows, and what a run is scored on."""

    model_class: type
    train_dataset: torch.utils.data.Dataset
    validation: object  # LM: the validation text; classifier: (consonant examples, vowel examples)
    test: str | None = None  # LM only, when the corpus has a test split
    description: str = "exercise data"


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
        test = decode_ids(corpus.test) if corpus.test is not None else None
        return TaskData(CharGRUForCausalLM, windows, decode_ids(corpus.validation), test, corpus.description)
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    if config.holdout_examples:
        consonants, vowels = consonants[: -config.holdout_examples], vowels[: -config.holdout_examples]
    dataset = classification_dataset(consonants, vowels, prefix_labels=config.prefix_labels)
    return TaskData(CharGRUForSequenceClassification, dataset, dev)


def holdout_examples(config: TrainingConfig) -> tuple[list[str], list[str]]:
    """The training examples a run with `holdout_examples` keeps out of training (the last N of each class)."""
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    return consonants[-config.holdout_examples :], vowels[-config.holdout_examples :]


def _build_optimizer(config: TrainingConfig, model, steps_total: int):
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    else:
        raise UserError(f"unknown optimizer {config.optimizer!r}: choose sgd or adamw")
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

    if config.lr_schedule not in ("constant", "linear", "cosine"):
        raise UserError(f"unknown lr schedule {config.lr_schedule!r}: choose constant, linear or cosine")
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


def scoring_streams(config: TrainingConfig, chars: int) -> int:
    """Streams for scoring a validation text: exact (1) for short texts, then one per 20k characters, at most 64."""
    if config.eval_streams:
        return config.eval_streams
    return 1 if chars <= EXACT_SCORING_CHARS else min(64, chars // CHARS_PER_SCORING_STREAM)


def _validate(config, accelerator, model, data: TaskData) -> dict:
    """The mid-run validation metrics: dev perplexity and bpc (of the first `eval_chars`), or dev accuracy."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    with torch.no_grad():
        if config.task == "lm":
            text = data.validation[: config.eval_chars] if config.eval_chars else data.validation
            log_prob = score_text(unwrapped, text, scoring_streams(config, len(text)), config.eval_warmup)
            result = {"dev_perplexity": math.exp(-log_prob / len(text)), "dev_bpc": bits_per_char(log_prob, len(text))}
        else:
            loader = accelerator.prepare_data_loader(
                DataLoader(classification_dataset(*data.validation), batch_size=256), device_placement=True
            )
            correct = total = 0
            for batch in loader:
                logits = model(input_ids=batch["input_ids"]).logits
                predictions, labels = accelerator.gather_for_metrics((logits.argmax(-1), batch["labels"]))
                correct += int((predictions == labels).sum())
                total += labels.numel()
            result = {"dev_accuracy": 100.0 * correct / total}
    model.train()
    return result


def _metrics_row(config, accelerator, state: TrainerState, steps_per_epoch: int, learning_rate: float) -> dict:
    """A metrics.jsonl row from the training sums since the last row (over all processes), which it resets."""
    sums = torch.tensor([state.loss_sum, state.targets, state.correct, state.chars], dtype=torch.float64)
    loss_sum, targets, correct, chars = accelerator.reduce(sums.to(accelerator.device), "sum").tolist()
    epoch = state.epoch if state.step_in_epoch == 0 else round(state.epoch + state.step_in_epoch / steps_per_epoch, 4)
    row = {"step": state.step, "epoch": epoch, "train_loss": loss_sum / max(targets, 1)}
    if config.task == "lm":
        row.update(train_perplexity=math.exp(row["train_loss"]), train_bpc=row["train_loss"] / math.log(2))
    else:
        row["train_accuracy"] = 100.0 * correct / max(targets, 1)
    row.update(
        learning_rate=learning_rate,
        train_seconds=state.train_seconds,
        train_chars_per_second=chars / state.seconds_since_row if state.seconds_since_row else 0.0,
    )
    state.loss_sum, state.targets, state.correct, state.chars, state.seconds_since_row = 0.0, 0, 0, 0, 0.0
    return row


def train(config: TrainingConfig) -> dict:
    """Train, validate and checkpoint on schedule, and save the final model; returns the run summary."""
    config.check()
    if config.task == "classifier" and config.transfer_from_lm and not config.init_from:
        from .transfer import train_lm_transfer

        return train_lm_transfer(config)
    output_dir = Path(config.output_dir)
    checkpoint = resolve_resume(config.resume_from, output_dir)
    if checkpoint is not None and config.mixed_precision == "auto":
        precision, precision_reason = read_trainer_state(checkpoint).mixed_precision, f"auto: as chosen when {checkpoint} was saved"
    else:
        precision, precision_reason = choose_mixed_precision(
            config.mixed_precision, config.hidden_size, config.batch_size, config.cpu
        )
    # (AcceleratorState reads ACCELERATE_USE_CPU before it sets up the processes; so must this earlier look.)
    processes = PartialState(cpu=config.cpu or parse_flag_from_env("ACCELERATE_USE_CPU"))
    if processes.num_processes > 1:  # each process timed its own probe: all train in the main process's choice
        precision, precision_reason = broadcast_object_list([precision, precision_reason], from_process=0)
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
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=config.seed),
    )
    if config.batch_size % accelerator.num_processes:
        raise UserError(f"batch size {config.batch_size} is not divisible by {accelerator.num_processes} processes")
    accelerator.print(f"mixed precision: {precision} ({precision_reason})")
    set_seed(config.seed)
    wall_start = time.perf_counter()

    with accelerator.main_process_first():  # a corpus is encoded into its cache once, by the main process
        data = build_task_data(config)
    train_dataset = data.train_dataset
    if config.max_train_rows is not None:
        train_dataset = Subset(train_dataset, range(min(config.max_train_rows, len(train_dataset))))
    if config.init_from:
        # The backbone (embedding + GRU) comes from the LM; the classifier head starts fresh.
        model = data.model_class.from_pretrained(config.init_from, dropout=config.dropout)
    else:
        model = data.model_class(config.model_config())
    carry_state = config.task == "lm" and config.carry_state
    train_loader = DataLoader(train_dataset, batch_size=config.batch_size, shuffle=not carry_state)
    steps_per_epoch = len(train_loader)
    total_steps = config.max_steps or config.epochs * steps_per_epoch
    total_epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer, scheduler = _build_optimizer(config, model, total_steps)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)

    state, stream_state = TrainerState(mixed_precision=precision), None
    if checkpoint is not None:
        state, stream_state = load_checkpoint(accelerator, checkpoint)
        accelerator.print(f"resumed from {checkpoint} (step {state.step})")
    if config.report_to:
        accelerator.init_trackers("hf_charnn", config={k: v for k, v in dataclasses.asdict(config).items() if v is not None})
    metrics_path = output_dir / METRICS_FILE
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(metrics_path, state.step)

    last_epoch = total_epochs if config.stop_after_epoch is None else min(total_epochs, config.stop_after_epoch)
    progress = tqdm(
        total=total_steps, initial=state.step, desc="training", leave=False,
        disable=not (config.progress_bar and accelerator.is_local_main_process),
    )
    while state.step < total_steps and state.epoch < last_epoch:
        train_loader.set_epoch(state.epoch)
        batches = train_loader
        if state.step_in_epoch:  # resumed mid-epoch: the same shuffle, without the batches already trained on
            batches = _resumed_batches(accelerator.skip_first_batches(train_loader, state.step_in_epoch), state.epoch)
        else:
            stream_state = None  # each epoch reads the streams from their start
        model.train()
        segment_start = time.perf_counter()
        running = torch.zeros(3, dtype=torch.float64, device=accelerator.device)  # loss sum, targets, correct
        for batch in batches:
            if carry_state:
                outputs = model(**batch, state=stream_state)
                stream_state = outputs.state.detach()
            else:
                outputs = model(**batch)
            loss = outputs.loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {state.epoch + 1}, step {state.step + 1}; training stopped. "
                    f"The last good checkpoint is kept in {output_dir / CHECKPOINTS_DIR}; lower --learning-rate "
                    "or set --max-grad-norm"
                )
            accelerator.backward(loss)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            # The running sums stay on the device: no host sync per step.
            targets = batch["shift_labels"] if config.task == "lm" else batch["labels"]
            if targets.dim() == 2 and config.task == "classifier":
                targets = targets[:, -1]  # accuracy is about the whole example, as on dev
            weight = (targets != -100).sum()
            correct = (outputs.logits.argmax(-1) == targets).sum() if config.task == "classifier" else weight * 0
            running += torch.stack([loss.detach().double() * weight, weight.double(), correct.double()])
            state.chars += batch["input_ids"].numel()
            state.step += 1
            state.step_in_epoch += 1
            progress.update()
            epoch_done = state.step_in_epoch == steps_per_epoch
            if epoch_done:
                state.epoch += 1
                state.step_in_epoch = 0
            run_done = state.step == total_steps
            validate = state.step % config.eval_steps == 0 if config.eval_steps else epoch_done
            log_loss = bool(config.logging_steps) and state.step % config.logging_steps == 0
            save = (state.step % config.save_steps == 0 if config.save_steps else epoch_done) or run_done
            if not (validate or log_loss or save or epoch_done):
                continue  # the sums and the clock are folded into `state` only at these points
            elapsed = time.perf_counter() - segment_start
            state.train_seconds += elapsed
            state.seconds_since_row += elapsed
            loss_sum, target_count, correct_count = running.tolist()
            state.loss_sum += loss_sum
            state.targets += int(target_count)
            state.correct += int(correct_count)
            running.zero_()
            if validate or log_loss:
                row = _metrics_row(config, accelerator, state, steps_per_epoch, scheduler.get_last_lr()[0])
                if validate:
                    row.update(_validate(config, accelerator, model, data))
                accelerator.log(row, step=state.step)
                if accelerator.is_main_process:
                    with metrics_path.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    if validate:
                        tqdm.write(_format_row(row))
            if save:
                save_checkpoint(accelerator, output_dir, state, stream_state if carry_state else None, config.save_total_limit)
            segment_start = time.perf_counter()
            if run_done:
                break
    progress.close()

    # Each process reports its own step count, so a multi-process run shows that every rank trained.
    summary = {
        "task": config.task,
        "preset": config.preset,
        "data": data.description,
        "steps": state.step,
        "epochs_done": state.epoch,
        "train_seconds": state.train_seconds,
        "num_processes": accelerator.num_processes,
        "steps_per_process": accelerator.gather(torch.tensor([state.step], device=accelerator.device)).tolist(),
        "mixed_precision": {"used": precision, "why": precision_reason},
    }
    if state.step == total_steps:
        accelerator.wait_for_everyone()
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.eval()
        if accelerator.is_main_process:
            summary.update(_final_evaluation(config, unwrapped, data))
            summary["wall_seconds"] = time.perf_counter() - wall_start
            save_trained_model(unwrapped, output_dir, config, summary)
            (output_dir / EVAL_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    summary.setdefault("wall_seconds", time.perf_counter() - wall_start)
    return summary


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


def _final_evaluation(config, model, data: TaskData) -> dict:
    """The evaluation harness's JSON on all of the validation data (`results`), and on the test split if any."""
    if config.task == "classifier":
        results = {"results": evaluate_classifier(model, *data.validation)}
        if config.holdout_examples:
            results["holdout"] = evaluate_classifier(model, *holdout_examples(config))
        return results
    results = {"results": evaluate_lm(model, data.validation, scoring_streams(config, len(data.validation)), config.eval_warmup)}
    if data.test is not None:
        results["test_results"] = evaluate_lm(model, data.test, scoring_streams(config, len(data.test)), config.eval_warmup)
    return results


def save_trained_model(model, output_dir: Path, config: TrainingConfig, summary: dict):
    """A Hub-ready folder: model and tokenizer (with remote code), model card, and the training config."""
    model.save_pretrained(output_dir)  # with auto_map and the modeling code (see hf_charnn/__init__.py)
    CharTokenizer().save_pretrained(output_dir)
    curves = plot_learning_curves(_read_metrics(output_dir / METRICS_FILE), output_dir / LEARNING_CURVES_FILE, config.task)
    card = model_card(
        config.task, summary["results"], config, summary["train_seconds"], test_results=summary.get("test_results"), curves=curves
    )
    card.save(output_dir / "README.md")
    (output_dir / "training_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    print(f"saved the model to {output_dir} (process {PartialState().process_index})", flush=True)


def _read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def _truncate_metrics(path: Path, steps_done: int):
    """Keep the rows of the steps a resumed run does not repeat (all of them cleared for a fresh run)."""
    kept = [row for row in _read_metrics(path) if row["step"] <= steps_done]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def _format_row(row: dict) -> str:
    parts = [f"step {row['step']}"]
    for key, value in row.items():
        if key != "step":
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)
