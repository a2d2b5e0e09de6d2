"""Hub-ready model folders (remote code, model card) and uploading them."""

import dataclasses
import os
from pathlib import Path

import torch

from .errors import UserError
from .loading import check_model_folder, is_classifier_folder
from .run_files import TRAINING_CONFIG_FILE, read_training_config

CARD_TEMPLATES = Path(os.environ.get("HF_CHARNN_CARD_TEMPLATES", Path(__file__).resolve().parent / "model_cards"))
HUB_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.json", "README.md")
CARD_HYPERPARAMETERS = (
    "embedding_size", "hidden_size", "num_hidden_layers", "dropout", "optimizer", "learning_rate", "weight_decay",
    "lr_schedule", "warmup_ratio", "max_grad_norm", "batch_size", "epochs", "chunk_size", "carry_state",
    "prefix_labels", "seed",
)


LEARNING_CURVES_FILE = "learning_curves.png"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"


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
                axes.text(column, row, int(matrix[row, column]), ha="center", va="center", color="white" if dark else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_learning_curves(rows: list[dict], path: Path, task: str) -> bool:
    """The run's metrics.jsonl rows as a PNG: training loss, and the dev metric, against optimizer steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev_metric = "dev_accuracy"
    if task == "lm":
        dev_metric = "dev_bpb" if any("dev_bpb" in row for row in rows) else "dev_bpc"
    validated = [row for row in rows if dev_metric in row]
    if not rows:
        return False
    figure, (loss_axes, dev_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot([row["step"] for row in rows], [row["train_loss"] for row in rows], marker=".", color="tab:blue")
    loss_axes.set(xlabel="optimizer step", ylabel="training loss (nats per character)", title="training")
    dev_axes.plot([row["step"] for row in validated], [row[dev_metric] for row in validated], marker="o", color="tab:red")
    label = {"dev_bpc": "validation bits per character", "dev_bpb": "validation bits per byte"}.get(dev_metric, "dev accuracy (%)")
    dev_axes.set(xlabel="optimizer step", ylabel=label, title="validation")
    for axes in (loss_axes, dev_axes):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def model_card(
    task: str, results: dict, config, train_seconds: float, repo_id: str | None = None, test_results: dict | None = None,
    curves: bool = False, precision: str = "no", vocabulary=None, confusion: bool = False,
):
    """
    The model card rendered from `model_cards/{lm,classifier}.md` with the eval results as `model-index`: for an
    LM, perplexity and bits per character on the validation text, and on the test split when there is one.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    template = CARD_TEMPLATES / ("lm.md" if task == "lm" else "classifier.md")
    if not template.is_file():
        raise UserError(f"model card template {template} not found; set HF_CHARNN_CARD_TEMPLATES to the model_cards folder")
    repo_id = repo_id or default_repo_id(task)
    data = corpus_description(config)
    own_labels = config.uses_labeled_data()  # a classifier of the user's labels (else the vowel/consonant exercise)
    rate, rate_name = ("bpb", "Bits per byte") if "bpb" in results else ("bpc", "Bits per character")
    if task == "lm":
        evaluations = []
        for split, scored in (("validation", results), ("test", test_results)):
            if scored is None:
                continue
            common = dict(task_type="text-generation", dataset_type=data["type"], dataset_name=data["name"], dataset_split=split)
            evaluations += [
                EvalResult(**common, metric_type="perplexity", metric_name="Perplexity", metric_value=round(scored["perplexity"], 4)),
                EvalResult(**common, metric_type=rate, metric_name=rate_name, metric_value=round(scored[rate], 4)),
            ]
        pipeline_tag = "text-generation"
    else:
        dataset = (dict(dataset_type=data["type"], dataset_name=data["name"], dataset_split="validation") if own_labels else
                   dict(dataset_type="text8", dataset_name="text8 vowel/consonant (exercise dev)", dataset_split="dev"))
        evaluations = [
            EvalResult(task_type="text-classification", **dataset, metric_type="accuracy", metric_name="Accuracy",
                       metric_value=round(results["accuracy"], 2)),
        ]
        if "macro_f1" in results:
            evaluations.append(EvalResult(task_type="text-classification", **dataset, metric_type="f1", metric_name="Macro F1",
                                          metric_value=round(results["macro_f1"], 2)))
        pipeline_tag = "text-classification"
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag=pipeline_tag,
        tags=["hf_charnn", "char-gru", "character-level", *(["text8"] if data["type"] == "text8" else [])],
        datasets=[data["type"]] if data["type"] not in ("text", "labeled texts") else None,
        model_name=repo_id.split("/")[-1], eval_results=evaluations,
    )
    values = dataclasses.asdict(config)
    # Settings the run did not use: the LM's windows for a classifier, the vowel task's prefix labels for other labels.
    not_used = () if task == "lm" else ("chunk_size", "carry_state", *(("prefix_labels",) if own_labels else ()))
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        results=results,
        test_results=test_results,
        data=data,
        curves=LEARNING_CURVES_FILE if curves else None,
        confusion=CONFUSION_MATRIX_FILE if confusion else None,
        own_labels=own_labels, label_column=config.label_column, text_column=config.text_column,
        example=_example_text(vocabulary, "some text to classify"),
        train_seconds=train_seconds,
        precision="bf16 mixed precision (loss in fp32)" if precision == "bf16" else "fp32",
        vocabulary=describe_vocabulary(vocabulary),
        vocab_kind=vocabulary.kind if vocabulary is not None else "text8", has_unk=bool(vocabulary is not None and vocabulary.unk),
        prompt=_example_text(vocabulary, " a person "), continuation=_example_text(vocabulary, "sits there"),
        rate=rate, rate_name=rate_name.lower(), unit="bytes" if rate == "bpb" else "characters",
        device="CUDA" if torch.cuda.is_available() and not config.cpu else f"CPU ({torch.get_num_threads()} threads)",
        hyperparameters={key: values[key] for key in CARD_HYPERPARAMETERS if values.get(key) is not None and key not in not_used},
    )


def _example_text(vocabulary, text: str) -> str:
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
    return f"chars: {vocabulary.size} symbols built from the training data (`{shown[:120]}`){', with <unk>' if vocabulary.unk else ''}"


def default_repo_id(task: str) -> str:
    """The repo id a card names until it is pushed (`push` puts the real one in)."""
    return f"hf-charnn/char-gru-{task}"


def card_for_repo(card: str, repo_id: str) -> str:
    """A card rendered before its push, naming the repo it is pushed to (title, model-index name, Use snippet)."""
    for task in ("lm", "classifier"):
        placeholder = default_repo_id(task)
        card = card.replace(placeholder, repo_id)
        name = placeholder.split("/")[-1]
        card = card.replace(f"# {name}\n", f"# {repo_id.split('/')[-1]}\n").replace(f"name: {name}\n", f"name: {repo_id.split('/')[-1]}\n")
    return card


def corpus_description(config) -> dict:
    """The training data in words, for the card: {"type": dataset id, "name": description, "train": what was read}."""
    if config.train_file:
        kind = "labeled texts" if config.task == "classifier" else "text"
        return {"type": kind, "name": Path(config.train_file).name, "train": f"the file `{Path(config.train_file).name}`"}
    if config.dataset_name:
        return {"type": config.dataset_name, "name": config.dataset_name, "train": f"the dataset `{config.dataset_name}`"}
    if config.corpus == "text8":
        return {"type": "text8", "name": "text8 (90M / 5M / 5M split)", "train": "the first 90M characters of text8"}
    return {"type": "text8", "name": "text8 (exercise dev text, 500 chars)", "train": "`text8-100k.txt` (the first 100,000 characters of text8)"}


SPACE_REQUIREMENTS = ["torch", "transformers>=5,<6", "huggingface_hub", "safetensors", "numpy"]
SPACE_APP_LAUNCHER = """

# -- The Space's entry point (written by `hf-charnn push --space`): the model loads by repo id, with its own code,
# at the commit it was pushed with (a later push to the model repo cannot change what this Space runs).
MODEL_ID = {model_id!r}
MODEL_REVISION = {revision!r}
CLASSIFIER_ID = {classifier_id!r}
CLASSIFIER_REVISION = {classifier_revision!r}

if __name__ == "__main__":
    model, classifier = load_models(MODEL_ID, CLASSIFIER_ID, revision=MODEL_REVISION, classifier_revision=CLASSIFIER_REVISION)
    build_demo(model, classifier, title={title!r}).launch()
"""


def space_files(
    model_id: str | None, space_id: str, revision: str | None = None, classifier_id: str | None = None,
    classifier_revision: str | None = None,
) -> dict[str, bytes]:
    """
    app.py (the demo module and a launcher for the LM `model_id` and/or the classifier `classifier_id`, each pinned to
    its revision), requirements.txt and README.md of a Gradio Space.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        gradio_version = version("gradio")
    except PackageNotFoundError:
        gradio_version = "6.31.0"  # the version the demo was written and tested with
    main_id = model_id or classifier_id
    title = f"{main_id.split('/')[-1]} demo"
    app = (Path(__file__).with_name("demo.py").read_text()
           + SPACE_APP_LAUNCHER.format(model_id=model_id, revision=revision, classifier_id=classifier_id,
                                       classifier_revision=classifier_revision, title=title))
    models = "".join(f"  - {repo}\n" for repo in (model_id, classifier_id) if repo)
    if model_id:
        about = (f"A live demo of the character-level GRU LM [{model_id}](https://huggingface.co/{model_id}), made with "
                 "hf_charnn: write with it and see which characters surprise it (a heat map of bits per character).\n")
    else:
        about = (f"A live demo of the character-level GRU classifier [{classifier_id}](https://huggingface.co/{classifier_id}), "
                 "made with hf_charnn: type a text and see every label's probability.\n")
    readme = (
        f"---\ntitle: {title}\nemoji: 🔤\ncolorFrom: blue\ncolorTo: red\nsdk: gradio\nsdk_version: {gradio_version}\n"
        f"app_file: app.py\nmodels:\n{models}pinned: false\n---\n\n# {title}\n\n{about}"
    )
    return {"app.py": app.encode(), "requirements.txt": ("\n".join(SPACE_REQUIREMENTS) + "\n").encode(), "README.md": readme.encode()}


def card_with_demo_link(card: str, space_id: str) -> str:
    """The model card with a link to its demo Space (before its "## Use" section, or at the end)."""
    section = f"## Demo\n\nTry it in the Space [{space_id}](https://huggingface.co/spaces/{space_id}).\n\n"
    if "## Demo" in card:
        return card
    return card.replace("## Use", section + "## Use", 1) if "## Use" in card else card.rstrip() + "\n\n" + section


# Files of a run folder that stay on the machine that trained it: checkpoints, tracker logs, a sweep's log and
# run settings (they name local paths), the LM-transfer recipe's intermediate LM.
LOCAL_ONLY = ("checkpoints", "runs", "train.log", "sweep_run_settings.json", "leak-free-lm")


def _portable_training_config(folder: Path) -> bytes | None:
    """training_config.json with no local paths (folders written before it was saved that way included them)."""
    import json

    from .config import TrainingConfig

    settings = read_training_config(folder)
    if not settings:
        return None
    known = {field.name for field in dataclasses.fields(TrainingConfig)}
    config = TrainingConfig(**{key: value for key, value in settings.items() if key in known})
    return (json.dumps(config.portable(), indent=2) + "\n").encode()


def push_model_folder(
    model_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None, space_id: str | None = None
) -> dict:
    """
    Upload a saved model folder (checked first) as one commit; with `space_id`, also create a Gradio Space that
    loads it by repo id, and link it from the model card. Returns the commit URLs ({"model": ..., "space": ...}).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError

    folder = check_model_folder(model_dir)
    missing = [name for name in HUB_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder}: not ready for the Hub, missing {', '.join(missing)}; train with hf-charnn or re-save the folder")
    no_token = UserError("no Hub token: pass --token, set HF_TOKEN, or run `hf auth login`")
    if token is None and get_token() is None:
        raise no_token
    files = {
        str(path.relative_to(folder)): path for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).parts[0] not in LOCAL_ONLY
    }
    card = card_for_repo((folder / "README.md").read_text(), repo_id)
    rewritten = {TRAINING_CONFIG_FILE: _portable_training_config(folder),
                 "README.md": (card_with_demo_link(card, space_id) if space_id else card).encode()}
    operations = [CommitOperationAdd(name, rewritten.get(name) or str(path)) for name, path in files.items()]
    api = HfApi(token=token)
    unreachable = f"cannot reach the Hub at {api.endpoint} ({{}}); check the network or HF_ENDPOINT"
    target = repo_id
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        model_commit = api.create_commit(repo_id, operations, commit_message="Upload hf_charnn model")
        commits = {"model": str(model_commit.commit_url)}
        if space_id:
            target = space_id
            api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            if is_classifier_folder(folder):  # a classifier's Space: the Classify tab
                files = space_files(None, space_id, classifier_id=repo_id, classifier_revision=model_commit.oid)
            else:
                files = space_files(repo_id, space_id, revision=model_commit.oid)
            space_operations = [CommitOperationAdd(name, data) for name, data in files.items()]
            commits["space"] = str(api.create_commit(space_id, space_operations, repo_type="space", commit_message="hf_charnn demo").commit_url)
    except LocalTokenNotFoundError:
        raise no_token from None
    except RepositoryNotFoundError:
        raise UserError(f"repository {target} not found, or this token cannot write to it") from None
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise UserError(f"the Hub refused the token ({status}): pass a token with write access to {target}") from None
        raise UserError(f"upload to {target} failed, nothing was reported as uploaded: {error}") from None
    except Exception as error:
        # Connection failures: OSErrors, or httpx transport errors (which are not OSErrors).
        if isinstance(error, OSError) or error.__class__.__module__.startswith(("httpx", "httpcore")):
            raise UserError(unreachable.format(error.__class__.__name__)) from None
        raise
    return commits
