"""
The text-classification task, declared: its settings (`SequenceClassificationSettings`), presets and metrics. The task
itself (`SequenceClassificationTask`, `task.py`) predicts one label per text.
"""

import dataclasses

from ....errors import UserError
from ...settings import DATA, HYPERPARAMETERS, TrainingConfig, register_task, setting

CLASS_WEIGHTS = ("balanced",)

# `seed` is the classic hand-rolled run (one example a step, plain SGD); `default` is the exercise's classifier
# (hf_charnn.exercise adds its prefix labels), tuned on this 2-core CPU. Labeled texts of one's own get a recipe
# sized to them (`auto`, training/recipes.py).
PRESETS = {
    "seed": dict(
        embedding_size=200,
        hidden_size=300,
        optimizer="sgd",
        learning_rate=5e-3,
        epochs=10,
        batch_size=1,
    ),
    "default": dict(
        embedding_size=32,
        hidden_size=128,
        dropout=0.2,
        optimizer="adamw",
        learning_rate=1e-2,
        weight_decay=0.05,
        lr_schedule="cosine",
        warmup_ratio=0.05,
        max_grad_norm=1.0,
        epochs=4,
        batch_size=128,
    ),
}


@register_task
@dataclasses.dataclass
class SequenceClassificationSettings(TrainingConfig):
    """A text classifier's run: the shared settings, its labels, what its head reads, how its texts are batched."""

    task = "classifier"
    command = "train-classifier"
    command_help = "train a classifier on labeled texts"
    data_title = "labeled texts"
    flag_help = {
        "train_file": "labeled texts to train on: .csv, .tsv, .json or .jsonl with a text and a label column",
        "validation_file": "labeled texts to validate on (default: a stratified 5% of --train-file, see below)",
        "test_file": "labeled texts scored once at the end",
        "validation_split_percentage": "held out of the training data when no validation data is given (5% of "
        "each label)",
    }
    presets = PRESETS
    # Accuracy picks the step under early stopping: measured better than macro-F1 for any label balance (recipes.py).
    best_model_metrics = {"accuracy": True, "macro_f1": True, "loss": False}
    default_best_metric = "accuracy"
    headline_metric = "accuracy"
    task_class = "hf_charnn.training.tasks.classification.task:SequenceClassificationTask"
    auto_class = "AutoModelForSequenceClassification"
    architecture = "CharGRUForSequenceClassification"
    onnx_graph = "hf_charnn.training.tasks.classification.task:ClassifierGraph"
    card_template = "classifier.md"
    model_noun = "classifier"

    label_column: str = setting("label", "the label column; its values become the model's labels", group=DATA)
    # Several labels a text (data/labeled.py): a list in the label column says so by itself; a CSV cell needs these.
    multi_label: bool = setting(
        False,
        "each text has a set of labels (a sigmoid a label, BCE; thresholds tuned on validation); a label column of "
        "lists or --label-separator implies it",
        group=DATA,
    )
    label_separator: str | None = setting(
        None,
        "split each label cell at this string into a text's labels (CSV / TSV: 'a|b'); implies --multi-label",
        group=DATA,
    )
    # What the head reads (see models/configuration_char_gru.py, which checks these).
    bidirectional: bool = setting(False, "the GRU also reads each text backwards", group=HYPERPARAMETERS)
    classifier_readout: str = setting(
        "last",
        "what the head reads: last (the last state) or pooled (mean + max over the real characters)",
        group=HYPERPARAMETERS,
    )
    ngram_range: list | None = setting(
        None,
        "also read the text's hashed character n-grams of MIN to MAX characters, as a bag beside the GRU",
        group=HYPERPARAMETERS,
        nargs=2,
        metavar=("MIN", "MAX"),
        extra={"--no-ngrams": dict(action="store_const", const=[], help="no n-gram bag (the GRU alone)")},
    )
    ngram_buckets: int = setting(65536, "hash buckets of the n-gram bag", group=HYPERPARAMETERS)
    ngram_embedding_size: int = setting(
        64, "width of the n-gram bag (0: no bag, with --ngram-linear)", group=HYPERPARAMETERS
    )
    ngram_learning_rate_scale: float = setting(
        1.0, "the bag's learning rate as a multiple of --learning-rate", group=HYPERPARAMETERS
    )
    # A linear n-gram classifier (an SVM's) fitted first, its scores added to the GRU's (training/linear.py).
    ngram_linear: bool = setting(
        False,
        "also a linear classifier over the same n-grams (an SVM's, fitted first); its scores add to the GRU's",
        group=HYPERPARAMETERS,
    )
    max_length: int | None = setting(
        None, "cut texts to their first N characters (training and scoring)", group=HYPERPARAMETERS, at_least=1
    )
    group_by_length: bool = setting(
        False,
        "batches of texts of similar lengths (less padding; the same batches for the same seed)",
        group=HYPERPARAMETERS,
    )
    class_weight: str | None = setting(
        None, "balanced: weigh each label's loss by 1 / its share", group=HYPERPARAMETERS, choices=CLASS_WEIGHTS
    )
    # Unlabeled texts of the same kind (classification/unlabeled.py): an LM on them starts the classifier.
    unlabeled_file: str | None = setting(
        None,
        "unlabeled texts of the same kind, one a line: a character LM trained first on them and the training texts "
        "starts the classifier (its embedding and GRU); the LM is saved beside it",
        group=DATA,
    )
    unlabeled_dataset: str | None = setting(
        None, "the same from a datasets dataset (its --text-column, train split)", group=DATA
    )
    unlabeled_lm_time: str = setting(
        "60s", "the unlabeled texts' LM's training time (without an explicit --max-train-time)", group=DATA
    )
    unlabeled_share: float = setting(
        0.5, "the unlabeled texts' LM's share of an explicit --max-train-time (the classifier has the rest)", group=DATA
    )

    def check_task(self):
        if self.unlabeled_file and self.unlabeled_dataset:
            raise UserError("--unlabeled-file and --unlabeled-dataset: give one of them")
        if not 0 < self.unlabeled_share < 1:
            raise UserError(f"--unlabeled-share {self.unlabeled_share}: give a share between 0 and 1 (say 0.5)")
        if self.label_separator is not None and not self.label_separator.strip():
            raise UserError(
                f"--label-separator {self.label_separator!r}: give a visible string that separates labels (say '|')"
            )
        if self.ngram_linear and not self.ngram_range and "ngram_linear" not in self.explicit_settings:
            self.ngram_linear = False  # --no-ngrams: neither the bag nor the linear part

    def model_config_kwargs(self) -> dict:
        return dict(
            bidirectional=self.bidirectional,
            classifier_readout=self.classifier_readout,
            ngram_range=list(self.ngram_range) if self.ngram_range else None,
            ngram_buckets=self.ngram_buckets,
            ngram_embedding_size=self.ngram_embedding_size,
            ngram_linear=self.ngram_linear,
        )
