"""
One Accelerate training loop for both tasks (next-character LM and vowel/consonant classifier).

    config = TrainingConfig.from_preset("lm", "default", data_dir="../shared/data", output_dir="runs/lm")
    summary = train(config)

The loop follows accelerate's `examples/nlp_example.py`: `prepare`, `backward`, `gather_for_metrics`. The two
tasks differ only in their data, their model class, and whether the GRU state is carried from one batch to the
next (the LM reads each stream's windows in order: truncated back-propagation through time).
"""

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .configuration_char_gru import CharGRUConfig
from .data import classification_dataset, example_windows, lm_dataset, load_classification_examples, load_lm_texts
from .errors import UserError
from .hub import model_card
from .evaluation import evaluate_classifier, evaluate_lm
from .modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from .tokenization_char_gru import CharTokenizer

TASKS = ("lm", "classifier")
CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE_FILE = "trainer_state.json"
METRICS_FILE = "metrics.jsonl"
EVAL_RESULTS_FILE = "eval_results.json"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainingConfig:
    """Everything a run needs; `from_preset` fills it from a named preset, keyword arguments override."""

    task: str = "lm"
    preset: str = "default"
    data_dir: str | None = None
    output_dir: str = "runs/lm"
    # model
    embedding_size: int = 64
    hidden_size: int = 384
    num_hidden_layers: int = 1
    dropout: float = 0.0
    # optimisation
    optimizer: str = "adamw"  # "sgd" (as in the exercise) or "adamw"
    learning_rate: float = 4e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # SGD only
    lr_schedule: str = "constant"  # "constant", "linear" or "cosine", after `warmup_ratio` of linear warm-up
    warmup_ratio: float = 0.0
    max_grad_norm: float | None = None
    batch_size: int = 32
    epochs: int = 10
    # LM data
    chunk_size: int = 64
    carry_state: bool = True
    exclude_dev_examples: bool = False  # mask every dev classification window out of the LM's targets
    # classifier data
    prefix_labels: bool = False  # also train on every prefix of each example (see data.classification_dataset)
    init_from: str | None = None  # a saved LM whose embedding and GRU start the classifier (its sizes win)
    transfer_from_lm: bool = False  # first train a leak-free LM (dev windows excluded), then start from it
    # Keep the last N training examples of each class out of training (a classifier never sees them; an LM never
    # has their windows as targets), to compare models on examples none of them was trained on.
    holdout_examples: int = 0
    # run
    max_train_rows: int | None = None  # train on the first N rows only (for timing a slow preset's epoch)
    seed: int = 42
    normalize: bool = False
    resume_from: str | None = None
    stop_after_epoch: int | None = None  # end the run early (an "interruption"), checkpoint kept
    save_total_limit: int = 2
    report_to: str | None = None
    progress_bar: bool = True
    cpu: bool = False

    @classmethod
    def from_preset(cls, task: str, preset: str = "default", **overrides) -> "TrainingConfig":
        if task not in TASKS:
            raise UserError(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")
        if preset not in PRESETS[task]:
            raise UserError(f"unknown {task} preset {preset!r}: choose one of {', '.join(PRESETS[task])}")
        values = {**PRESETS[task][preset], **{key: value for key, value in overrides.items() if value is not None}}
        return cls(task=task, preset=preset, **values)

    @classmethod
    def check_setting_names(cls, names, source: str):
        """A clear error for setting names that are not fields (a typo in a sweep or --config file)."""
        unknown = sorted(set(names) - {field.name for field in dataclasses.fields(cls)})
        if unknown:
            raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; use TrainingConfig field names")

    def training_flops_per_char(self) -> float:
        """Forward + backward (3x forward) matmul FLOPs per training character: GRU gates and the output head."""
        forward = 0
        for layer in range(self.num_hidden_layers):
            inputs = self.embedding_size if layer == 0 else self.hidden_size
            forward += 2 * 3 * self.hidden_size * (inputs + self.hidden_size)
        outputs = 27 if self.task == "lm" else 2
        forward += 2 * self.hidden_size * outputs
        return 3 * forward

    def model_config(self) -> CharGRUConfig:
        return CharGRUConfig(
            embedding_size=self.embedding_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            dropout=self.dropout,
        )


# `seed` is the classic hand-rolled run (one example a step, plain SGD); `default` is tuned for this 2-core CPU.
PRESETS = {
    "lm": {
        "seed": dict(
            embedding_size=200, hidden_size=300, optimizer="sgd", learning_rate=5e-3, epochs=10, batch_size=1,
            chunk_size=20, carry_state=False,
        ),
        "default": dict(
            embedding_size=64, hidden_size=384, dropout=0.25, optimizer="adamw", learning_rate=4e-3,
            weight_decay=0.1, lr_schedule="cosine", warmup_ratio=0.1, max_grad_norm=1.0, epochs=14,
            batch_size=32, chunk_size=64, carry_state=True,
        ),
    },
    "classifier": {
        "seed": dict(
            embedding_size=200, hidden_size=300, optimizer="sgd", learning_rate=5e-3, epochs=10, batch_size=1,
        ),
        "default": dict(
            embedding_size=32, hidden_size=128, dropout=0.2, optimizer="adamw", learning_rate=1e-2,
            weight_decay=0.05, lr_schedule="cosine", warmup_ratio=0.05, max_grad_norm=1.0, epochs=4, batch_size=128,
            prefix_labels=True,
        ),
        # Train the `default` LM with every dev example's window masked out of its targets, score it zero-shot,
        # then fine-tune a classifier that starts from its embedding and GRU (the sizes come from the LM).
        "lm-transfer": dict(
            transfer_from_lm=True, holdout_examples=500, dropout=0.25, optimizer="adamw", learning_rate=3e-3, weight_decay=0.05,
            lr_schedule="cosine", warmup_ratio=0.05, max_grad_norm=1.0, epochs=3, batch_size=128, prefix_labels=True,
        ),
    },
}
LEAK_FREE_LM_DIR = "leak-free-lm"


def _build_data(config: TrainingConfig):
    """(model class, training dataset, dev data) for the task."""
    if config.task == "lm":
        train_text, dev_text = load_lm_texts(config.data_dir, config.normalize)
        held_out = []
        if config.exclude_dev_examples:
            held_out += sum(load_classification_examples(config.data_dir, "dev"), [])
        if config.holdout_examples:
            held_out += sum(holdout_examples(config), [])
        excluded = example_windows(train_text, held_out) if held_out else []
        dataset = lm_dataset(
            train_text, config.chunk_size, config.batch_size, carry_state=config.carry_state, exclude_windows=excluded
        )
        return CharGRUForCausalLM, dataset, dev_text
    consonants, vowels = load_classification_examples(config.data_dir, "train", config.normalize)
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    if config.holdout_examples:
        consonants, vowels = consonants[: -config.holdout_examples], vowels[: -config.holdout_examples]
    dataset = classification_dataset(consonants, vowels, prefix_labels=config.prefix_labels)
    return CharGRUForSequenceClassification, dataset, dev


def holdout_examples(config: TrainingConfig) -> tuple[list[str], list[str]]:
    """The training examples a classifier run with `holdout_examples` kept out of training."""
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


def _evaluate_dev(config, accelerator, model, dev_data) -> dict:
    """The per-epoch dev metric: perplexity of the dev text, or accuracy on the dev examples."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    with torch.no_grad():
        if config.task == "lm":
            log_prob = unwrapped.score_texts([dev_data], context=" ")[0]
            result = {"dev_perplexity": math.exp(-log_prob / len(dev_data))}
        else:
            loader = accelerator.prepare_data_loader(
                DataLoader(classification_dataset(*dev_data), batch_size=256), device_placement=True
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


def _resume_epoch(checkpoint: str | None) -> tuple[int, float]:
    """(epochs already done, training seconds spent) recorded in a checkpoint folder."""
    if checkpoint is None:
        return 0, 0.0
    state_file = Path(checkpoint) / TRAINER_STATE_FILE
    if not state_file.is_file():
        raise UserError(f"{checkpoint}: not a training checkpoint (no {TRAINER_STATE_FILE}); pass a checkpoints/epoch-N folder")
    state = json.loads(state_file.read_text())
    return int(state["epoch"]), float(state["train_seconds"])


def train(config: TrainingConfig) -> dict:
    """Train, evaluate each epoch, checkpoint each epoch, and save the final model; returns the run summary."""
    if config.task not in TASKS:
        raise UserError(f"unknown task {config.task!r}: choose one of {', '.join(TASKS)}")
    if config.task == "classifier" and config.transfer_from_lm and not config.init_from:
        return _train_from_leak_free_lm(config)
    output_dir = Path(config.output_dir)
    # split_batches: a batch of `batch_size` rows is shared out between the processes, so the LM's streams stay
    # in order on each process and the results do not depend on the process count. The seedable sampler makes
    # each epoch's shuffle a function of (seed, epoch), which is what lets a resumed run match an uninterrupted one.
    accelerator = Accelerator(
        cpu=config.cpu,
        log_with=config.report_to,
        project_dir=str(output_dir),
        dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True, data_seed=config.seed),
    )
    if config.batch_size % accelerator.num_processes:
        raise UserError(f"batch size {config.batch_size} is not divisible by {accelerator.num_processes} processes")
    set_seed(config.seed)
    wall_start = time.perf_counter()

    model_class, train_dataset, dev_data = _build_data(config)
    if config.max_train_rows is not None:
        train_dataset = train_dataset.select(range(min(config.max_train_rows, len(train_dataset))))
    if config.init_from:
        # The backbone (embedding + GRU) comes from the LM; the classifier head starts fresh.
        model = model_class.from_pretrained(config.init_from, dropout=config.dropout)
    else:
        model = model_class(config.model_config())
    carry_state = config.task == "lm" and config.carry_state
    train_loader = DataLoader(train_dataset, batch_size=config.batch_size, shuffle=not carry_state)
    optimizer, scheduler = _build_optimizer(config, model, config.epochs * len(train_loader))
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)

    start_epoch, train_seconds = _resume_epoch(config.resume_from)
    if config.resume_from:
        accelerator.load_state(config.resume_from)
    if config.report_to:
        accelerator.init_trackers("hf_charnn", config={k: v for k, v in dataclasses.asdict(config).items() if v is not None})
    metrics_path = output_dir / METRICS_FILE
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        _truncate_metrics(metrics_path, start_epoch)

    steps_done = 0
    last_epoch = config.epochs if config.stop_after_epoch is None else min(config.epochs, config.stop_after_epoch)
    for epoch in range(start_epoch, last_epoch):
        model.train()
        train_loader.set_epoch(epoch)
        epoch_start = time.perf_counter()
        state = None
        loss_sum = torch.zeros((), dtype=torch.float64)
        counted = correct = chars = 0
        progress = tqdm(
            train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
            disable=not (config.progress_bar and accelerator.is_local_main_process),
        )
        for step, batch in enumerate(progress):
            if carry_state:
                outputs = model(**batch, state=state)
                state = outputs.state.detach()
            else:
                outputs = model(**batch)
            loss = outputs.loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; training stopped. "
                    f"The last good checkpoint is kept in {output_dir / CHECKPOINTS_DIR}; lower --learning-rate "
                    "or set --max-grad-norm"
                )
            accelerator.backward(loss)
            if config.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            targets = batch["shift_labels"] if config.task == "lm" else batch["labels"]
            if targets.dim() == 2 and config.task == "classifier":
                targets = targets[:, -1]  # accuracy is about the whole example, as on dev
            weight = int((targets != -100).sum())
            loss_sum += loss.detach().double() * weight
            counted += weight
            chars += batch["input_ids"].numel()
            if config.task == "classifier":
                correct += int((outputs.logits.argmax(-1) == targets).sum())
        steps_done += step + 1
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds

        totals = accelerator.reduce(torch.tensor([float(loss_sum), counted, correct, chars], dtype=torch.float64), "sum")
        train_loss = float(totals[0] / totals[1])
        record = {"epoch": epoch + 1, "train_loss": train_loss}
        if config.task == "lm":
            record["train_perplexity"] = math.exp(train_loss)
        else:
            record["train_accuracy"] = 100.0 * float(totals[2] / totals[1])
        record.update(_evaluate_dev(config, accelerator, model, dev_data))
        record.update(
            learning_rate=scheduler.get_last_lr()[0],
            epoch_seconds=epoch_seconds,
            train_seconds=train_seconds,
            train_chars_per_second=float(totals[3]) / epoch_seconds,
        )
        accelerator.log(record, step=epoch + 1)
        _save_checkpoint(accelerator, output_dir, epoch + 1, train_seconds, config.save_total_limit)
        if accelerator.is_main_process:
            with metrics_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            accelerator.print(_format_record(record))

    # Each process reports its own step count, so a multi-process run shows that every rank trained.
    steps_per_process = accelerator.gather(torch.tensor([steps_done])).tolist()
    summary = {
        "task": config.task,
        "preset": config.preset,
        "epochs_done": last_epoch,
        "train_seconds": train_seconds,
        "num_processes": accelerator.num_processes,
        "steps_per_process": steps_per_process,
    }
    if last_epoch == config.epochs:
        accelerator.wait_for_everyone()
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.eval()
        if accelerator.is_main_process:
            results = _final_evaluation(config, unwrapped, dev_data)
            summary.update(results=results, wall_seconds=time.perf_counter() - wall_start)
            if config.task == "classifier" and config.holdout_examples:
                summary["holdout"] = evaluate_classifier(unwrapped, *holdout_examples(config))
            save_trained_model(unwrapped, output_dir, config, summary)
            (output_dir / EVAL_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    summary.setdefault("wall_seconds", time.perf_counter() - wall_start)
    return summary


def _final_evaluation(config, model, dev_data) -> dict:
    """The evaluation harness's JSON on the dev data."""
    if config.task == "lm":
        return evaluate_lm(model, dev_data)
    return evaluate_classifier(model, *dev_data)


def save_trained_model(model, output_dir: Path, config: TrainingConfig, summary: dict):
    """A Hub-ready folder: model and tokenizer (with remote code), model card, and the training config."""
    model.save_pretrained(output_dir)  # with auto_map and the modeling code (see hf_charnn/__init__.py)
    CharTokenizer().save_pretrained(output_dir)
    model_card(config.task, summary["results"], config, summary["train_seconds"]).save(output_dir / "README.md")
    (output_dir / "training_config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    print(f"saved the model to {output_dir} (process {PartialState().process_index})", flush=True)


def _save_checkpoint(accelerator, output_dir: Path, epoch: int, train_seconds: float, keep: int):
    folder = output_dir / CHECKPOINTS_DIR / f"epoch-{epoch}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / TRAINER_STATE_FILE).write_text(json.dumps({"epoch": epoch, "train_seconds": train_seconds}) + "\n")
        # Older checkpoints go only once the new one is complete.
        for old in sorted((output_dir / CHECKPOINTS_DIR).glob("epoch-*"), key=lambda p: int(p.name.split("-")[1]))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def _truncate_metrics(path: Path, epochs_done: int):
    """Keep the metrics of the epochs a resumed run does not repeat (all of them cleared for a fresh run)."""
    kept = [record for record in _read_metrics(path) if record["epoch"] <= epochs_done]
    path.write_text("".join(json.dumps(record) + "\n" for record in kept))


def _format_record(record: dict) -> str:
    parts = [f"epoch {record['epoch']}"]
    for key, value in record.items():
        if key != "epoch":
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)


def _train_from_leak_free_lm(config: TrainingConfig) -> dict:
    """
    The LM-transfer classifier. Every dev example is a substring of text8-100k, so the LM is trained with each
    occurrence of a dev example and its next character masked out of its targets (and so are the held-out
    training examples, so that the comparison below is fair). Two classifiers come from it:
    zero-shot (its vowel vs consonant probability mass) and fine-tuned (a classifier starting from its backbone,
    trained without the last `holdout_examples` training examples of each class). The one more accurate on those
    held-out training examples is saved; eval_results.json reports both, on the held-out examples and on dev.
    """
    output_dir = Path(config.output_dir)
    lm_dir = output_dir / LEAK_FREE_LM_DIR
    lm_config = TrainingConfig.from_preset(
        "lm", "default", data_dir=config.data_dir, output_dir=str(lm_dir), exclude_dev_examples=True,
        holdout_examples=config.holdout_examples,
        seed=config.seed, normalize=config.normalize, progress_bar=config.progress_bar, cpu=config.cpu,
    )
    lm_summary = train(lm_config)
    summary = train(dataclasses.replace(config, init_from=str(lm_dir)))
    if not PartialState().is_main_process or "results" not in summary:
        return summary
    zero_shot = CharGRUForSequenceClassification.from_lm(CharGRUForCausalLM.from_pretrained(lm_dir))
    dev = load_classification_examples(config.data_dir, "dev", config.normalize)
    zero_shot_results = {
        "holdout": evaluate_classifier(zero_shot, *holdout_examples(config)),
        "dev": evaluate_classifier(zero_shot, *dev),
    }
    fine_tuned_results = {"holdout": summary["holdout"], "dev": summary["results"]}
    chosen = "zero-shot" if zero_shot_results["holdout"]["accuracy"] > fine_tuned_results["holdout"]["accuracy"] else "fine-tuned"
    print(
        f"held-out training examples: zero-shot {zero_shot_results['holdout']['accuracy']:.1f} %, "
        f"fine-tuned {fine_tuned_results['holdout']['accuracy']:.1f} %; saving the {chosen} classifier",
        flush=True,
    )
    summary.update(
        chosen=chosen, zero_shot=zero_shot_results, fine_tuned=fine_tuned_results,
        results=zero_shot_results["dev"] if chosen == "zero-shot" else fine_tuned_results["dev"],
        lm_results=lm_summary.get("results"), lm_train_seconds=lm_summary["train_seconds"],
        total_train_seconds=lm_summary["train_seconds"] + summary["train_seconds"],
    )
    if chosen == "zero-shot":
        save_trained_model(zero_shot, output_dir, config, summary)
    (output_dir / EVAL_RESULTS_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
