"""
Unlabeled texts that help a classifier (`--unlabeled-file` / `--unlabeled-dataset`): before the classifier trains, a
character LM is trained on those texts and the training texts (one a line), within its share of the run's time, and
saved beside the classifier (`OUTPUT_DIR/unlabeled-lm`, with the texts it read); the classifier then starts from its
embedding and GRU, as any run starts from a model (`--model-name-or-path`, training/starting_model.py), which is the
exercise's LM-transfer recipe for labels of one's own. With `--model-name-or-path` too, that model is the LM's start
(an LM continued on the unlabeled texts).
"""

from pathlib import Path

from ....errors import DataError, UserError
from ...settings import TrainingConfig, parse_duration
from ...starting_model import BACKBONE_SIZES

UNLABELED_LM_DIR = "unlabeled-lm"
TEXTS_FILE = "texts.txt"  # what the LM read, beside it


def read_unlabeled_texts(config) -> tuple[list[str], str]:
    """The unlabeled texts (a file's non-empty lines, or a dataset's `text_column`), and where they came from."""
    if config.unlabeled_file:
        path = Path(config.unlabeled_file)
        if not path.is_file():
            raise DataError(f"{path}: file not found (--unlabeled-file: one text a line)")
        texts = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        source = str(path)
    else:
        from datasets import load_dataset

        try:
            dataset = load_dataset(config.unlabeled_dataset, split="train")
        except Exception as error:  # noqa: BLE001 (any of datasets' own errors: not found, offline, a bad builder)
            raise DataError(
                f"--unlabeled-dataset {config.unlabeled_dataset}: cannot be loaded ({str(error).splitlines()[0][:200]})"
            ) from None
        if config.text_column not in dataset.column_names:
            raise DataError(
                f"--unlabeled-dataset {config.unlabeled_dataset}: no column {config.text_column!r} (columns: "
                f"{', '.join(dataset.column_names)}); pass --text-column"
            )
        texts = [str(text) for text in dataset[config.text_column] if text is not None and str(text).strip()]
        source = f"dataset {config.unlabeled_dataset}"
    if not texts:
        raise DataError(
            f"{source}: no texts (the unlabeled texts are one a line, not empty); give some or leave it out"
        )
    if config.normalize:  # as the labeled texts are read
        from ....models.tokenization_char_gru import normalize_text

        texts = [text for text in (normalize_text(text) for text in texts) if text.strip()]
    return texts, source


def lm_budget(config) -> tuple[str, str | None]:
    """(the LM's time, the classifier's time left): a share of an explicit --max-train-time, else the LM's own."""
    if config.max_train_time and "max_train_time" in config.explicit_settings:
        total = parse_duration(config.max_train_time)
        return f"{total * config.unlabeled_share:g}s", f"{total * (1 - config.unlabeled_share):g}s"
    return config.unlabeled_lm_time, config.max_train_time


def train_unlabeled_lm(config, train_texts: list[str]) -> dict:
    """
    Train (or, resumed, finish or reuse) the LM on the unlabeled texts and `train_texts`, and point `config` at it:
    the classifier starts from its backbone, reading characters only its validation or test texts have in new rows.
    Returns what the summary says of the LM.
    """
    from ...loop import train_or_reuse

    texts, source = read_unlabeled_texts(config)
    if config.model_name_or_path and config.extend_vocab is False and "extend_vocab" in config.explicit_settings:
        raise UserError("--unlabeled-file with --no-extend-vocab: the LM's vocabulary grows with the texts it reads")
    lm_dir = Path(config.output_dir) / UNLABELED_LM_DIR
    lm_dir.mkdir(parents=True, exist_ok=True)
    corpus = lm_dir / TEXTS_FILE
    corpus.write_text("\n".join([*texts, *train_texts]) + "\n", encoding="utf-8")
    lm_time, classifier_time = lm_budget(config)
    # Sizes given for the classifier are the LM's (the classifier takes its sizes from the model it starts from).
    sizes = {name: getattr(config, name) for name in BACKBONE_SIZES if name in config.explicit_settings}
    lm_config = TrainingConfig.from_preset(
        "lm",
        "auto",
        train_file=str(corpus),
        output_dir=str(lm_dir),
        max_train_time=lm_time,
        **config.stage_settings(),
        model_name_or_path=config.model_name_or_path,
        revision=config.revision,
        extend_vocab=bool(config.model_name_or_path),
        **sizes,
    )
    summary = train_or_reuse(lm_config)
    # The classifier: from the LM's backbone; its budget what is left of an explicit one.
    config.model_name_or_path, config.revision, config.extend_vocab = str(lm_dir), None, True
    config.max_train_time = classifier_time
    return {
        "folder": UNLABELED_LM_DIR,
        "texts": len(texts),
        "source": source,
        "training_texts": len(train_texts),
        "max_train_time": lm_time,
        "train_seconds": summary.get("train_seconds"),
        "results": summary.get("results"),
    }
