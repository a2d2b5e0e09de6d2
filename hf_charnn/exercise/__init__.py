"""
The text8 exercise, as one task among others: its packaged files and their loaders (`files.py`), its two tasks
(`tasks.py`: the LM on text8-100k scored on the dev text, and the vowel/consonant classifier), its evaluation harness
with the *sane* / *normalizes* checks (`harness.py`), its baselines (`baselines.py`) and the LM-transfer recipe
(`transfer.py`). Only the command line imports this package; the rest of hf_charnn knows nothing of the exercise.

    from hf_charnn.exercise import train_exercise
    from hf_charnn.training import TrainingConfig
    train_exercise(TrainingConfig.from_preset("lm", "default", output_dir="runs/lm"))   # dev perplexity 3.979

Importing it is cheap (the command line reads its preset while building `--help`): the rest loads when used.
"""

from ..training.settings import register_preset

# The LM-transfer recipe (transfer.py): train the `default` LM with every dev example's window masked out of its
# targets, score it zero-shot, then fine-tune a classifier that starts from its embedding and GRU (the LM's sizes).
LM_TRANSFER = dict(
    transfer_from_lm=True,
    holdout_examples=500,
    dropout=0.25,
    optimizer="adamw",
    learning_rate=3e-3,
    weight_decay=0.05,
    lr_schedule="cosine",
    warmup_ratio=0.05,
    max_grad_norm=1.0,
    epochs=3,
    batch_size=128,
    prefix_labels=True,
)
register_preset("classifier", "lm-transfer", LM_TRANSFER)


def train_exercise(config) -> dict:
    """
    Train the exercise: `config` names no data (the packaged files, or `data_dir`). The LM-transfer recipe
    (`transfer_from_lm`) trains its leak-free LM first; every other run is the one loop on the exercise's task.
    """
    from ..training.loop import train
    from .tasks import exercise_task

    config.check()  # before a recipe's LM trains for minutes
    if config.task == "classifier" and config.transfer_from_lm and not config.init_from:
        from .transfer import train_lm_transfer

        return train_lm_transfer(config)
    return train(config, exercise_task(config))
