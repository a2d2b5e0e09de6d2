"""
The character tagger, declared: its settings (`TokenClassificationSettings`), presets and metrics. The task itself
(`TokenClassificationTask`, `task.py`) predicts one tag per character; its data (`data.py`) are JSON lines with tags
or spans, or tags derived from any plain text (`--derive word-boundaries | truecase`).
"""

import dataclasses

from ....errors import UserError
from ...settings import AUTO_PRESET, DATA, HYPERPARAMETERS, TrainingConfig, flag_name, register_task, setting

DERIVED_TASKS = ("word-boundaries", "truecase")  # tags derived from plain text (data.py)
# Word boundaries train on the text and shuffled copies of its words (data.with_shuffled_copies): the auto recipe's
# number of copies (task.py; the same ~1M characters read), each in runs of this many words (measured on text8,
# docs/tagger.md).
SHUFFLED_COPIES, SHUFFLED_RUN = 1, 3
# The linear part (fitted in seconds) reads this many shuffled copies more than the GRU, when the GRU reads any
# (measured on text8 word boundaries, docs/tagger.md round 6).
LINEAR_EXTRA_COPIES = 1
# The derived tags the auto recipe gives the linear part to: where it was measured to help (word boundaries: +1.4 to
# +2.4 boundary F1 on unseen text). On truecase it lowered the same GRU's test span F1 (60.86 -> 58.33), and on
# Python's token kinds validation weighed it 0 after 46 s of fitting (docs/tagger.md, round 9); `--ngram-range` adds it.
LINEAR_PART_TAGS = ("word-boundaries",)
LINEAR_SHAPING_FLAGS = ("ngram_window", "ngram_buckets")  # they shape a linear part that --ngram-range turns on
LINEAR_PART_FLAGS = ("ngram_range", *LINEAR_SHAPING_FLAGS)  # any of them given: the run has the linear part

# `default`: chosen on word boundaries of text8, trained on its first 90k characters and validated on their last
# 5 % (docs/tagger.md has every setting tried); the `auto` recipe (task.py) sizes its schedule to the training text.
PRESETS = {
    "default": dict(
        embedding_size=32,
        hidden_size=128,
        num_hidden_layers=3,
        bidirectional=True,
        dropout=0.2,
        optimizer="adamw",
        learning_rate=1e-2,
        weight_decay=0.01,
        lr_schedule="cosine",
        warmup_ratio=0.05,
        max_grad_norm=1.0,
        epochs=12,
        batch_size=32,
        max_length=64,
        ngram_range=[1, 4],
    ),
}


@register_task
@dataclasses.dataclass
class TokenClassificationSettings(TrainingConfig):
    """A character tagger's run: the shared settings, where its tags come from, and how its texts are cut."""

    task = "tagger"
    command = "train-tagger"
    command_help = "train a character tagger: JSON lines with tags or spans, or tags derived from plain text"
    data_title = "tagged texts: JSON lines {text, tags} or {text, spans}, or plain text with --derive"
    flag_help = {
        "train_file": "tagged texts to train on (.jsonl), or plain text with --derive",
        "validation_file": "tagged texts to validate on (default: 5% of the training rows held out; of a derived "
        "text, its last rows)",
        "test_file": "tagged texts scored once at the end",
    }
    presets = PRESETS
    best_model_metrics = {"span_f1": True, "accuracy": True, "macro_f1": True, "loss": False}
    default_best_metric = "span_f1"
    headline_metric = "span_f1"
    task_class = "hf_charnn.training.tasks.tagging.task:TokenClassificationTask"
    auto_class = "AutoModelForTokenClassification"
    architecture = "CharGRUForTokenClassification"
    onnx_graph = "hf_charnn.training.tasks.tagging.task:TaggerGraph"
    card_template = "tagger.md"
    model_noun = "tagger"

    derive: str | None = setting(
        None,
        "tags from plain text, no labels needed: word-boundaries (spaces removed, where does a word start?) or "
        "truecase (lowercased, which characters were capitals?)",
        group=DATA,
        choices=DERIVED_TASKS,
    )
    shuffled_copies: int = setting(
        0,
        "word-boundaries: also train on this many copies of the training words in a seeded random order (in runs of "
        f"{SHUFFLED_RUN} words), so the model meets each word beside new neighbours (the auto recipe: "
        f"{SHUFFLED_COPIES})",
        group=DATA,
        at_least=0,
    )
    bidirectional: bool = setting(False, "the GRU also reads each text backwards", group=HYPERPARAMETERS)
    max_length: int = setting(64, "texts are cut into rows of at most N characters", group=HYPERPARAMETERS, at_least=1)
    # A linear tagger over the n-grams around each character (an SVM's), fitted first, its scores added to the GRU's
    # (training/linear.py); the two are weighed on validation at the end.
    ngram_range: list | None = setting(
        None,
        "also a linear tagger over the hashed character n-grams of MIN to MAX characters around each character (an "
        "SVM's, fitted first); its scores add to the GRU's",
        group=HYPERPARAMETERS,
        nargs=2,
        metavar=("MIN", "MAX"),
        extra={"--no-ngrams": dict(action="store_const", const=[], help="no linear part (the GRU alone)")},
    )
    ngram_window: int = setting(
        4, "the linear part reads the n-grams within N characters each side of a character", group=HYPERPARAMETERS
    )
    ngram_buckets: int = setting(2**18, "hash buckets of the linear part", group=HYPERPARAMETERS)

    def check_task(self):
        if self.dataset_name:
            raise UserError("a tagger reads files: pass --train-file (JSON lines, or plain text with --derive)")
        if self.normalize:
            raise UserError(
                "--normalize changes a text's length, so its tags would no longer line up with it; normalise the "
                "text first, then derive or tag it"
            )
        # (an auto run's recipe decides on the linear part later: a flag shaping it asks for it, see task.py)
        shaping = [name for name in LINEAR_SHAPING_FLAGS if name in self.explicit_settings]
        if shaping and not self.ngram_range and (self.ngram_range == [] or self.preset != AUTO_PRESET):
            raise UserError(
                f"--{flag_name(shaping[0])} shapes the linear part, which this run has not: add --ngram-range MIN MAX "
                "(or drop it)"
            )
        if self.shuffled_copies and self.derive != "word-boundaries":
            raise UserError(
                "--shuffled-copies reorders the training text's words: it needs --derive word-boundaries (drop it "
                "for other tags)"
            )

    def model_config_kwargs(self) -> dict:
        linear = bool(self.ngram_range)  # (the model config checks the n-gram settings)
        return dict(
            bidirectional=self.bidirectional,
            ngram_range=list(self.ngram_range) if linear else None,
            ngram_buckets=self.ngram_buckets,
            ngram_embedding_size=0,
            ngram_linear=linear,
            ngram_window=self.ngram_window if linear else None,
        )
