"""
Recipes sized to the data: what a run that names its own data and no preset (`preset="auto"`) trains with.

A task measures its training data (`labeled_statistics`, `corpus_statistics`), a rule below turns the measurements
into settings with a reason each, and `Recipe.apply` writes them into the config except where the user set a value
(`TrainingConfig.explicit_settings`). The recipe is printed, and saved in `eval_results.json` and the card.

The rules and the measurements they come from are in docs/training.md ("Recipes sized to the data"); they were chosen
on several datasets (code snippets, single words, tinyshakespeare, text8), not on one file.
"""

import dataclasses

import numpy as np

from .linear import SVM_C
from .tasks.language_modeling import PRESETS as LM_PRESETS

# A classifier's schedule: about this many characters read (epochs x (characters + PER_ROW_COST a row) an epoch).
CHARS_READ = 6_000_000
PER_ROW_COST = 16
MAX_EPOCHS = 30
MIN_EPOCHS = 2
LONG_TEXT = 512  # texts cut to their first N characters when the 95th percentile is longer
SHORT_TEXT = 32  # median characters: a narrower embedding below
HIDDEN = 64
NGRAM_RANGE, NGRAM_BUCKETS, NGRAM_WIDTH = (1, 4), 2**16, 64
DROPOUT, LEARNING_RATE = 0.2, 4e-3
NGRAM_LEARNING_RATE_SCALE = 10.0  # the bag's rows learn at 10x the rate (each is read by few texts a batch)
# The stop-only cap: this many training seconds a million characters read (a slow machine's), within these bounds.
CAP_SECONDS_PER_MCHAR, CAP_MIN, CAP_MAX = 40, 30, 600
# An LM's budget: about this many characters read.
LM_CHARS_READ = 10_000_000
MID_CORPUS_BUDGET = "250s"  # a megabyte-sized corpus: the whole command in about 5 minutes on 2 cores


@dataclasses.dataclass
class Recipe:
    """Settings chosen from measured data, with the measurements and a reason for each choice."""

    data: dict
    settings: dict
    reasons: list

    evaluations_per_epoch: int | None = None  # eval_steps follows the batch size actually used
    kept: list = dataclasses.field(default_factory=list)  # the recipe's settings the user had set (set by `apply`)
    fixed: list = dataclasses.field(default_factory=list)  # those a starting model set (set by `apply`)

    def apply(self, config, fixed: tuple = ()) -> list[str]:
        """
        Write the settings the user did not set into `config`, nor `fixed` ones (a starting model's sizes); returns the
        names kept from the user.
        """
        kept = [name for name in self.settings if name in config.explicit_settings]
        self.fixed = [name for name in self.settings if name in fixed and name not in kept]
        for name, value in self.settings.items():
            if name not in config.explicit_settings and name not in fixed:
                setattr(config, name, value)
        if self.evaluations_per_epoch and "eval_steps" not in kept:
            per_epoch = -(-self.data["rows"] // config.batch_size)
            config.eval_steps = self.settings["eval_steps"] = max(1, per_epoch // self.evaluations_per_epoch)
        self.kept = kept
        return kept

    def summary_line(self) -> str:
        chosen = ", ".join(
            f"{name} {value}" for name, value in self.settings.items() if name not in self.kept + self.fixed
        )
        return (
            f"recipe: {self.data['about']} -> {chosen}"
            + (f" (kept from your flags: {', '.join(self.kept)})" if self.kept else "")
            + (f" (from the starting model: {', '.join(self.fixed)})" if self.fixed else "")
        )

    def as_dict(self) -> dict:
        return {
            "data": self.data,
            "settings": self.settings,
            "reasons": self.reasons,
            "kept_from_flags": self.kept,
            **({"from_starting_model": self.fixed} if self.fixed else {}),
        }


def stop_only_cap(chars_read: float, seconds_per_mchar: float) -> str:
    """A recipe's time cap that only stops a run (on a machine much slower than planned for): seconds per million
    characters read, within CAP_MIN and CAP_MAX."""
    return f"{int(np.clip(seconds_per_mchar * chars_read / 1e6, CAP_MIN, CAP_MAX))}s"


def labeled_statistics(lengths, labels, num_labels: int) -> dict:
    """Rows, labels, label balance and text lengths of a classifier's training split."""
    lengths = np.asarray(lengths)
    counts = np.bincount(np.asarray(labels), minlength=num_labels)
    present = counts[counts > 0]
    stats = {
        "rows": int(len(lengths)),
        "labels": int(num_labels),
        "smallest_label": int(present.min()),
        "largest_label": int(present.max()),
        "imbalance": round(float(present.max() / present.min()), 2),
        "median_length": float(np.median(lengths)),
        "p95_length": float(np.percentile(lengths, 95)),
        "chars": int(lengths.sum()),
    }
    stats["about"] = (
        f"{stats['rows']:,} texts, median {stats['median_length']:g} chars (95th percentile "
        f"{stats['p95_length']:g}), {num_labels} labels (largest/smallest {stats['imbalance']:g})"
    )
    return stats


def classifier_recipe(stats: dict) -> Recipe:
    """A classifier's settings from its training data's statistics (see the module docstring)."""
    settings, reasons = {}, []
    settings.update(bidirectional=True, classifier_readout="pooled", group_by_length=True)
    settings.update(
        ngram_range=list(NGRAM_RANGE),
        ngram_buckets=NGRAM_BUCKETS,
        ngram_embedding_size=NGRAM_WIDTH,
        ngram_learning_rate_scale=NGRAM_LEARNING_RATE_SCALE,
        ngram_linear=True,
    )
    reasons.append(
        f"a bidirectional GRU with mean + max pooling and a bag of hashed {NGRAM_RANGE[0]}- to {NGRAM_RANGE[1]}-"
        f"character n-grams ({NGRAM_BUCKETS:,} buckets x {NGRAM_WIDTH}) beside it, and a linear classifier over the "
        "same n-grams (what an n-gram SVM reads; the GRU reads what order says): measured on the tuning half of the "
        "labeled suite, docs/training.md; batches of similar lengths waste little on padding"
    )
    max_length = None
    if stats["p95_length"] > LONG_TEXT:
        max_length = int(stats["p95_length"])
        reasons.append(f"95th percentile length {stats['p95_length']:g} > {LONG_TEXT}: texts cut to {max_length}")
    settings["max_length"] = max_length
    read_length = min(stats["median_length"], max_length or stats["median_length"])
    settings.update(embedding_size=32 if read_length <= SHORT_TEXT else 48, hidden_size=HIDDEN, num_hidden_layers=1)
    reasons.append(f"median {read_length:g} chars: 1 x {HIDDEN} per direction")
    rows = stats["rows"]
    batch = 64 if rows < 5_000 else 128 if rows < 50_000 else 256
    settings["batch_size"] = batch
    # The schedule's length comes from the data alone (so the same command trains the same model on any machine):
    # about CHARS_READ characters (each row counted with at least PER_ROW_COST, a batch's fixed cost), in
    # MIN_EPOCHS..MAX_EPOCHS epochs.
    chars = max(1, stats["chars"] if max_length is None else rows * read_length)
    cost = chars + rows * PER_ROW_COST
    epochs = int(np.clip(round(CHARS_READ / cost), MIN_EPOCHS, MAX_EPOCHS))
    settings["epochs"] = epochs
    reasons.append(
        f"{rows:,} texts: batch {batch}; {chars:,} characters an epoch: {epochs} epochs (about "
        f"{CHARS_READ / 1e6:g}M characters read, {MIN_EPOCHS}-{MAX_EPOCHS} epochs)"
    )
    # A cap that only stops the run (the schedule is not fitted to it): on a machine much slower than planned for.
    budget = stop_only_cap(epochs * cost, CAP_SECONDS_PER_MCHAR)
    settings.update(max_train_time=budget, fit_schedule_to_budget=False)
    reasons.append(f"stopped after {budget} of training if still running (a cap: the schedule stays the data's)")
    settings.update(
        dropout=DROPOUT,
        optimizer="adamw",
        learning_rate=LEARNING_RATE,
        weight_decay=0.05,
        lr_schedule="cosine",
        warmup_ratio=0.05,
        max_grad_norm=1.0,
    )
    reasons.append(
        f"AdamW {LEARNING_RATE:g} (the n-gram rows {NGRAM_LEARNING_RATE_SCALE:g}x that), cosine; dropout {DROPOUT}"
    )
    # Measured on the tuning half: balanced class weights and macro-F1 as the best-model metric did not win on both
    # accuracy and macro-F1 (docs/training.md), whatever the imbalance; so no class weights, for every label balance.
    settings["class_weight"] = None
    # Validation is read once, to weigh the GRU's scores against the linear part's. A best step picked on it too made
    # the GRU look better there than on test, and the weights then leaned on it (measured on the tuning half: the
    # mix below the linear part alone on test on 4 of 4 sets); the GRU trains its whole schedule instead.
    settings["metric_for_best_model"] = None
    settings["early_stopping_patience"] = None
    settings["eval_steps"] = max(1, -(-rows // batch))
    reasons.append(
        "no class weights (measured, for balanced and imbalanced labels alike); the linear n-gram part (an SVM's, "
        f"C={SVM_C:g}) fitted first, the GRU trained its whole schedule, and validation read once, to weigh the two "
        "parts' scores"
    )
    return Recipe(data=stats, settings=settings, reasons=reasons, evaluations_per_epoch=1)


def corpus_statistics(train_ids, vocabulary) -> dict:
    """Characters (symbols) and distinct symbols of an LM's training text."""
    symbols = int(np.count_nonzero(np.bincount(np.asarray(train_ids), minlength=vocabulary.size)))
    stats = {"chars": int(len(train_ids)), "distinct_symbols": symbols, "vocabulary": vocabulary.kind}
    stats["about"] = f"{stats['chars']:,} training symbols, {symbols} distinct ({vocabulary.kind})"
    return stats


def lm_recipe(stats: dict) -> Recipe:
    """An LM's settings from its training text's size (see the module docstring): the measured presets, by size."""
    chars = stats["chars"]

    def shape(settings: dict) -> str:  # the words for a preset's sizes, from the preset itself
        return f"{settings.get('num_hidden_layers', 1)} x {settings['hidden_size']}, dropout {settings['dropout']:g}"

    if chars < 300_000:
        settings = dict(LM_PRESETS["default"])
        reasons = [
            f"{chars:,} symbols (under 300k): the default LM ({shape(settings)} against overfitting, "
            f"{settings['epochs']} epochs)"
        ]
    elif chars < 5_000_000:
        most = LM_PRESETS["default"]["epochs"]
        epochs = int(np.clip(round(LM_CHARS_READ / chars), 2, most))
        settings = {**LM_PRESETS["small-corpus"], "epochs": epochs, "max_train_time": MID_CORPUS_BUDGET}
        reasons = [
            f"{chars:,} symbols (300k-5M): the small-corpus LM ({shape(settings)}), {epochs} epochs (about "
            f"{LM_CHARS_READ / 1e6:g}M symbols read) or {MID_CORPUS_BUDGET} of training, whichever ends first (the "
            "schedule is fitted to it)"
        ]
    else:
        settings = {
            **LM_PRESETS["small-corpus"],
            "hidden_size": 512,
            "dropout": 0.0,
            "epochs": 1,
            "batch_size": 64,
            "chunk_size": 128,
            "eval_chars": 100_000,
            "eval_steps": 1_000,
            "save_steps": 1_000,
        }
        reasons = [
            f"{chars:,} symbols (5M or more): {shape(settings)} (one pass over this much text does not overfit), "
            f"{settings['epochs']} epoch, batch {settings['batch_size']} x {settings['chunk_size']}"
        ]
    return Recipe(data=stats, settings=settings, reasons=reasons)
