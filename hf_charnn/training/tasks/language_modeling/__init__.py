"""
The language-modeling task, declared: its settings (`LanguageModelingSettings`), presets and metrics. The task itself
(`LanguageModelingTask`, `task.py`) reads a corpus as TBPTT streams and predicts each next symbol.
"""

import dataclasses

from ...settings import DATA, HYPERPARAMETERS, RUN, TrainingConfig, register_task, setting

CORPORA = ("text8",)

# `seed` is the classic hand-rolled run (one example a step, plain SGD); `default` is tuned for this 2-core CPU;
# `text8` is sized for the full text8 on one modern GPU (see docs/training.md).
PRESETS = {
    "seed": dict(
        embedding_size=200,
        hidden_size=300,
        optimizer="sgd",
        learning_rate=5e-3,
        epochs=10,
        batch_size=1,
        chunk_size=20,
        carry_state=False,
    ),
    "default": dict(
        embedding_size=64,
        hidden_size=384,
        dropout=0.25,
        optimizer="adamw",
        learning_rate=4e-3,
        weight_decay=0.1,
        lr_schedule="cosine",
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        epochs=14,
        batch_size=32,
        chunk_size=64,
        carry_state=True,
    ),
    # Your own text of about a megabyte (tinyshakespeare: see README, "Your own text"): the default LM with less
    # dropout (measured on tinyshakespeare: 0.1 reached 1.53 nats/char in 1,300 steps), over the corpus's own
    # characters by default (--vocab auto).
    "small-corpus": dict(
        embedding_size=64,
        hidden_size=384,
        dropout=0.1,
        optimizer="adamw",
        learning_rate=4e-3,
        weight_decay=0.1,
        lr_schedule="cosine",
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        epochs=10,
        batch_size=32,
        chunk_size=64,
        carry_state=True,
        eval_chars=20_000,
    ),
    "text8": dict(
        embedding_size=256,
        hidden_size=1536,
        num_hidden_layers=2,
        dropout=0.1,
        optimizer="adamw",
        learning_rate=2e-3,
        weight_decay=0.01,
        lr_schedule="cosine",
        warmup_ratio=0.02,
        max_grad_norm=1.0,
        epochs=1,
        batch_size=256,
        chunk_size=256,
        carry_state=True,
        eval_steps=500,
        eval_chars=500_000,
        save_steps=500,
    ),
}


@register_task
@dataclasses.dataclass
class LanguageModelingSettings(TrainingConfig):
    """A character LM's run: the shared settings, its corpus, its windows and how its long texts are scored."""

    task = "lm"
    command = "train-lm"
    command_help = "train the character LM"
    data_title = "corpus (default: the exercise's text8-100k.txt and text8-dev.txt)"
    flag_help = {
        "train_file": "plain text to train on (.txt, .gz or .zip)",
        "validation_file": "plain text to validate on (default: the last 5% of --train-file)",
        "test_file": "plain text scored once at the end",
        "validation_split_percentage": "held out of the training text when no validation text is given",
        "vocab": "auto: text8 when every character is a text8 symbol, else the data's own characters when there are "
        "at most 255, else bytes; chars; bytes (any text, metrics per byte); text8",
    }
    presets = PRESETS
    best_model_metrics = {"loss": False, "bpc": False, "perplexity": False}
    default_best_metric = "loss"
    headline_metric = "perplexity"
    task_class = "hf_charnn.training.tasks.language_modeling.task:LanguageModelingTask"
    auto_class = "AutoModelForCausalLM"
    architecture = "CharGRUForCausalLM"
    onnx_graph = "hf_charnn.training.tasks.language_modeling.task:LanguageModelStep"
    card_template = "lm.md"
    model_noun = "language model"

    corpus: str | None = setting(None, "text8: the whole text8, split 90M / 5M / 5M", group=DATA, choices=CORPORA)
    text8_source: str | None = setting(None, "text8's URL (default), a local text8.zip, or the text8 file", group=DATA)
    chunk_size: int = setting(64, "characters per training window", group=HYPERPARAMETERS, at_least=1)
    carry_state: bool = setting(
        True, "carry the GRU state across consecutive windows (truncated BPTT)", group=HYPERPARAMETERS
    )
    eval_chars: int | None = setting(
        None, "mid-run validation reads the first N characters (the end reads all)", group=RUN, at_least=1
    )
    eval_streams: int | None = setting(
        None,
        "score validation text as N warmed-up streams (default: 1 up to 20k chars, then more)",
        group=RUN,
        at_least=1,
    )
    eval_warmup: int = setting(256, "characters that warm each scoring stream up", group=RUN)
