"""
The exercise's evaluation harness. It works on any object with the exercise's methods: `predict(context)`
(optionally `predict_batch(contexts)`) for classifiers, `get_next_char_log_probs(context)` and
`get_log_prob_sequence(next_chars, context)` for language models.
"""

import math

import numpy as np

from .tokenization_char_gru import CHARACTERS

SANITY_CONTEXTS = (" ", " a person ", " some kind of person ")
SANITY_CONTINUATIONS = ("s", "sits", "sits there")
NORMALIZATION_CONTEXTS = (" ", " a person ")
SANITY_TOLERANCE = 1e-3
NORMALIZATION_TOLERANCE = 0.01


def evaluate_classifier(model, consonant_examples: list[str], vowel_examples: list[str]) -> dict:
    """Accuracy (in percent) on consonant examples (label 0) and vowel examples (label 1)."""
    contexts = list(consonant_examples) + list(vowel_examples)
    gold = [0] * len(consonant_examples) + [1] * len(vowel_examples)
    if hasattr(model, "predict_batch"):
        predictions = model.predict_batch(contexts)
    else:
        predictions = [model.predict(context) for context in contexts]
    correct = sum(int(prediction) == label for prediction, label in zip(predictions, gold))
    total = len(gold)
    return {"correct": correct, "total": total, "accuracy": 100.0 * correct / total if total else 0.0}


def check_sanity(model) -> bool:
    """Sequence log probs are <= 0 and equal the sum of the next-char log probs, within 1e-3."""
    for context in SANITY_CONTEXTS:
        for continuation in SANITY_CONTINUATIONS:
            sequence_log_prob = float(model.get_log_prob_sequence(continuation, context))
            stepwise = 0.0
            for position, char in enumerate(continuation):
                log_probs = np.asarray(model.get_next_char_log_probs(context + continuation[:position]))
                stepwise += float(log_probs[CHARACTERS.index(char)])
            if not (sequence_log_prob <= 0 and abs(sequence_log_prob - stepwise) <= SANITY_TOLERANCE):
                return False
    return True


def check_normalization(model) -> bool:
    """Next-char probabilities sum to 1 +- 0.01, and so do the 27 one-character sequence probabilities."""
    for context in NORMALIZATION_CONTEXTS:
        next_char_mass = float(np.exp(np.asarray(model.get_next_char_log_probs(context), dtype=np.float64)).sum())
        sequence_mass = sum(math.exp(model.get_log_prob_sequence(char, context)) for char in CHARACTERS)
        if abs(next_char_mass - 1.0) > NORMALIZATION_TOLERANCE or abs(sequence_mass - 1.0) > NORMALIZATION_TOLERANCE:
            return False
    return True


def score_text(model, text: str, streams: int = 1, warmup: int = 256) -> float:
    """
    log P(text | " "). Models with `score_long_text` (the GRU LM) read long texts in bounded memory, exactly with
    one stream or as `streams` pieces side by side; other models answer through the exercise's
    `get_log_prob_sequence`.
    """
    if hasattr(model, "score_long_text"):
        return float(model.score_long_text(text, num_streams=streams, warmup=warmup))
    return float(model.get_log_prob_sequence(text, " "))


def bits_per_char(log_prob: float, chars: int) -> float:
    """Average negative log2 probability per character (log_prob is in nats)."""
    return -log_prob / chars / math.log(2)


def evaluate_lm(model, text: str, streams: int = 1, warmup: int = 256) -> dict:
    """
    Log probability, perplexity and bits per character of `text` scored after the context " " (exactly, or as
    `streams` warmed-up pieces: see `score_text`), plus the exercise's two checks.
    """
    log_prob = score_text(model, text, streams, warmup)
    average = log_prob / len(text)
    return {
        "sane": check_sanity(model),
        "normalizes": check_normalization(model),
        "log_prob": log_prob,
        "avg_log_prob": average,
        "perplexity": math.exp(-average),
        "bpc": bits_per_char(log_prob, len(text)),
        "chars": len(text),
        "streams": streams,
    }
