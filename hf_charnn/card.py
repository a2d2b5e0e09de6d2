"""
Model cards and their figures: the card of a trained model (its task's template in `model_cards/`, with `model-index`
metadata), the learning curves and the confusion matrix. A task says what its card tells in its own words
(`CardWords`); this module renders them. The training loop writes the card; `hub.py` uploads it.
"""

import dataclasses
import os
from pathlib import Path

from .errors import UserError

CARD_TEMPLATES = Path(os.environ.get("HF_CHARNN_CARD_TEMPLATES", Path(__file__).resolve().parent / "model_cards"))
LEARNING_CURVES_FILE = "learning_curves.png"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"


@dataclasses.dataclass
class CardWords:
    """What a card says of its model and data, in the task's own words (the exercise has its own)."""

    about: str  # the opening paragraph
    dataset_type: str  # model-index: the dataset's id ("text8", a Hub id, "text", "labeled texts")
    dataset_name: str  # model-index and the results table: what the validation data is
    training_data: str  # the Training section's data line
    limits: str  # the "Intended use and limits" paragraph
    validation_split: str = "validation"  # model-index's split name of the validation data
    example: str = "some text"  # the Use snippet's input
    extra_rows: list = dataclasses.field(default_factory=list)  # more (metric, value) rows for the results table
    not_used: tuple = ()  # settings the run did not use (left out of the hyperparameters)
    tags: tuple = ()


def plot_confusion_matrix(confusion: dict, path: Path):
    """A classifier's confusion matrix ({labels, matrix}: rows true, columns predicted) as a PNG with the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels, matrix = confusion["labels"], np.asarray(confusion["matrix"])
    size = max(3.5, 0.6 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    shown = [label if len(label) <= 14 else label[:13] + "…" for label in labels]
    axes.set_xticks(range(len(labels)), shown, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), shown)
    axes.set(xlabel="predicted label", ylabel="true label", title="confusion matrix (validation)")
    if len(labels) <= 20:
        for row in range(len(labels)):
            for column in range(len(labels)):
                dark = matrix[row, column] > matrix.max() / 2
                axes.text(
                    column, row, int(matrix[row, column]), ha="center", va="center", color="white" if dark else "black"
                )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_learning_curves(rows: list[dict], path: Path, metric: str, label: str) -> bool:
    """
    The run's metrics.jsonl rows as a PNG: training loss, and the validation `metric` (a row key, drawn with the
    axis `label`), against optimizer steps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    validated = [row for row in rows if metric in row]
    if not rows:
        return False
    figure, (loss_axes, dev_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot([row["step"] for row in rows], [row["train_loss"] for row in rows], marker=".", color="tab:blue")
    loss_axes.set(xlabel="optimizer step", ylabel="training loss (nats per character)", title="training")
    dev_axes.plot([row["step"] for row in validated], [row[metric] for row in validated], marker="o", color="tab:red")
    dev_axes.set(xlabel="optimizer step", ylabel=label, title="validation")
    for axes in (loss_axes, dev_axes):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


@dataclasses.dataclass
class ModelIndex:
    """What a task's card reports as `model-index`: its pipeline tag and metrics (type, name, results key, digits)."""

    pipeline_tag: str
    metrics: tuple
    on_test: bool = False  # also the test split's figures, when the run has one


def model_card(
    config,
    results: dict,
    train_seconds: float,
    words: CardWords,
    index: ModelIndex,
    repo_id: str | None = None,
    test_results: dict | None = None,
    curves: bool = False,
    precision: str = "no",
    vocabulary=None,
    confusion: bool = False,
    dynamic: dict | None = None,
    recipe: dict | None = None,
    best: dict | None = None,
    start: dict | None = None,
):
    """
    The card of a trained model, rendered from its task's template (`model_cards/<config.card_template>`), with the
    eval results as `model-index` (`index`: the task's metrics on the validation data, and on the test split where
    the task reports it).
    """
    import torch
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    template = CARD_TEMPLATES / config.card_template
    if not template.is_file():
        raise UserError(
            f"model card template {template} not found; set HF_CHARNN_CARD_TEMPLATES to the model_cards folder"
        )
    repo_id = repo_id or default_repo_id(config.task)
    rate, rate_name = ("bpb", "Bits per byte") if "bpb" in results else ("bpc", "Bits per character")
    dataset = dict(dataset_type=words.dataset_type, dataset_name=words.dataset_name)
    evaluations = []
    splits = ((words.validation_split, results), ("test", test_results if index.on_test else None))
    for split, scored in splits:
        if scored is None:
            continue
        common = dict(task_type=index.pipeline_tag, **dataset, dataset_split=split)
        evaluations += [
            EvalResult(**common, metric_type=kind, metric_name=name, metric_value=round(scored[key], digits))
            for kind, name, key, digits in index.metrics
        ]
    pipeline_tag = index.pipeline_tag
    card_data = ModelCardData(
        language="en",
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["hf_charnn", "char-gru", "character-level", *words.tags],
        datasets=[words.dataset_type] if words.dataset_type not in ("text", "labeled texts") else None,
        model_name=repo_id.split("/")[-1],
        eval_results=evaluations,
        # The model it was trained from (--model-name-or-path): the Hub's model tree reads this.
        base_model=start["model_name_or_path"] if start and start.get("commit") else None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        results=results,
        test_results=test_results,
        dynamic=dynamic,
        recipe=recipe,
        best=best,
        start=start,
        words=words,
        curves=LEARNING_CURVES_FILE if curves else None,
        confusion=CONFUSION_MATRIX_FILE if confusion else None,
        train_seconds=train_seconds,
        precision="bf16 mixed precision (loss in fp32)" if precision == "bf16" else "fp32",
        vocabulary=describe_vocabulary(vocabulary),
        vocab_kind=vocabulary.kind if vocabulary is not None else "text8",
        prompt=example_text(vocabulary, " a person "),
        continuation=example_text(vocabulary, "sits there"),
        rate=rate,
        rate_name=rate_name.lower(),
        unit="bytes" if rate == "bpb" else "chars",
        device="CUDA" if torch.cuda.is_available() and not config.cpu else f"CPU ({torch.get_num_threads()} threads)",
        hyperparameters={
            key: value for key, value in config.card_hyperparameters().items() if key not in words.not_used
        },
    )


def example_text(vocabulary, text: str) -> str:
    """`text` where the vocabulary can read it, else a few of its own characters (for the card's Use snippet)."""
    if vocabulary is None or vocabulary.kind != "chars" or set(text) <= set(vocabulary.to_id):
        return text
    return "".join(symbol for symbol in vocabulary.symbols if len(symbol) == 1 and symbol.isalnum())[:8]


def describe_vocabulary(vocabulary) -> str:
    """The card's words for a `Vocabulary` (text8 when None)."""
    if vocabulary is None or vocabulary.kind == "text8":
        return "text8: the 27 symbols a-z and space (ids a=0 ... z=25, space=26)"
    if vocabulary.kind == "bytes":
        return "bytes: the 256 UTF-8 byte values (any text; metrics are per byte)"
    shown = "".join(symbol for symbol in vocabulary.symbols if len(symbol) == 1).encode("unicode_escape").decode()
    return f"chars: {vocabulary.size} symbols built from the training data (`{shown[:120]}`){', with <unk>' if vocabulary.unk else ''}"  # noqa: E501


def default_repo_id(task: str) -> str:
    """The repo id a card names until it is pushed (`push` puts the real one in)."""
    return f"hf-charnn/char-gru-{task}"


def card_for_repo(card: str, repo_id: str) -> str:
    """A card rendered before its push, naming the repo it is pushed to (title, model-index name, Use snippet)."""
    from .training.tasks import registered_tasks

    for settings_class in registered_tasks():
        placeholder = default_repo_id(settings_class.task)
        card = card.replace(placeholder, repo_id)
        name = placeholder.split("/")[-1]
        card = card.replace(f"# {name}\n", f"# {repo_id.split('/')[-1]}\n").replace(
            f"name: {name}\n", f"name: {repo_id.split('/')[-1]}\n"
        )
    return card


def data_description(config, file_kind: str) -> dict:
    """
    A run's named data in words: {"type": its model-index id, "name": what validates, "train": what was read}.
    `file_kind`: what a training file holds, in the task's words ("text", "labeled texts").
    """
    if config.train_file:
        return {
            "type": file_kind,
            "name": Path(config.train_file).name,
            "train": f"the file `{Path(config.train_file).name}`",
        }
    if config.dataset_name:
        return {
            "type": config.dataset_name,
            "name": config.dataset_name,
            "train": f"the dataset `{config.dataset_name}`",
        }
    if getattr(config, "corpus", None) == "text8":
        return {"type": "text8", "name": "text8 (90M / 5M / 5M split)", "train": "the first 90M characters of text8"}
    raise ValueError("the run names no data: the exercise's tasks describe their own")
