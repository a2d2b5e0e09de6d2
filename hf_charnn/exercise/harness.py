"""
The exercise's evaluation harness, in its words. It works on any object with the exercise's methods:
`predict(context)` (optionally `predict_batch(contexts)`) for classifiers, `get_next_char_log_probs(context)` and
`get_log_prob_sequence(next_chars, context)` for language models (hf_charnn's models, the baselines, your own).

- `evaluate_exercise_lm`: log probability, perplexity and bits per character of the dev text, and the two checks:
  *sane* (a sequence's log probability is the sum of its next-character log probabilities, within 1e-3) and
  *normalizes* (next-character probabilities sum to 1 +- 0.01);
- `evaluate_classifier`: accuracy and the rest of `evaluation.classification_report` on consonant / vowel examples.
"""

import math

import numpy as np

from ..evaluation import bits_per_symbol, evaluate_labeled, score_text, scored_units
from ..models.tokenization_char_gru import CHARACTERS

SANITY_CONTEXTS = (" ", " a person ", " some kind of person ")
SANITY_CONTINUATIONS = ("s", "sits", "sits there")
NORMALIZATION_CONTEXTS = (" ", " a person ")
SANITY_TOLERANCE = 1e-3
NORMALIZATION_TOLERANCE = 0.01


def evaluate_classifier(model, consonant_examples: list[str], vowel_examples: list[str]) -> dict:
    """The exercise's evaluation: consonant examples (label 0) and vowel examples (label 1); see `evaluate_labeled`."""
    texts = list(consonant_examples) + list(vowel_examples)
    gold = [0] * len(consonant_examples) + [1] * len(vowel_examples)
    return evaluate_labeled(model, texts, gold, ["consonant", "vowel"])


def evaluate_exercise_lm(model, text, streams: int = 1, warmup: int = 256) -> dict:
    """
    The exercise's report of an LM on `text` (a string, or ids of the model's vocabulary) scored after " ": its
    checks, log probability, perplexity and bits per character (per byte, `bpb`, for a bytes model).
    """
    log_prob = score_text(model, text, streams, warmup)
    count, rate, units = scored_units(model, text)
    average = log_prob / count
    return {
        "sane": check_sanity(model),
        "normalizes": check_normalization(model),
        "log_prob": log_prob,
        "avg_log_prob": average,
        "perplexity": math.exp(-average),
        rate: bits_per_symbol(log_prob, count),
        units: count,
        "streams": streams,
    }


def _vocabulary(model):
    """The model's `Vocabulary` (hf_charnn models), or None: then the 27 text8 symbols (the exercise's models)."""
    return getattr(model, "vocabulary", None)


def _checked_strings(model, contexts: tuple, continuations: tuple) -> tuple[tuple, tuple]:
    """
    The check's strings, where the model can read them (text8 and bytes always can); else strings of the model's
    own characters (a `chars` vocabulary without some of a-z or space).
    """
    vocabulary = _vocabulary(model)
    if vocabulary is None or vocabulary.kind != "chars":
        return contexts, continuations
    readable = set(vocabulary.to_id)
    if all(set(text) <= readable for text in contexts + continuations):
        return contexts, continuations
    symbols = [symbol for symbol in vocabulary.symbols if len(symbol) == 1][:4]
    own = "".join(symbols)
    return (symbols[0], own[::-1], own * 3)[: len(contexts)], (symbols[-1], own, own * 2)[: len(continuations)]


def check_sanity(model) -> bool:
    """Sequence log probs are <= 0 and equal the sum of the next-symbol log probs, within 1e-3."""
    vocabulary = _vocabulary(model)
    contexts, continuations = _checked_strings(model, SANITY_CONTEXTS, SANITY_CONTINUATIONS)
    for context in contexts:
        for continuation in continuations:
            sequence_log_prob = float(model.get_log_prob_sequence(continuation, context))
            stepwise = 0.0
            for position, char in enumerate(continuation):
                log_probs = np.asarray(model.get_next_char_log_probs(context + continuation[:position]))
                stepwise += float(log_probs[vocabulary.encode(char)[0] if vocabulary else CHARACTERS.index(char)])
            if not (sequence_log_prob <= 0 and abs(sequence_log_prob - stepwise) <= SANITY_TOLERANCE):
                return False
    return True


def check_normalization(model) -> bool:
    """
    Next-symbol probabilities sum to 1 +- 0.01 over the whole vocabulary, and so do the one-symbol sequence
    probabilities (for text8 and chars models: each character scored as a text; `<unk>` by its next-symbol mass).
    """
    vocabulary = _vocabulary(model)
    contexts, _ = _checked_strings(model, NORMALIZATION_CONTEXTS, ())
    for context in contexts:
        log_probs = np.asarray(model.get_next_char_log_probs(context), dtype=np.float64)
        if abs(float(np.exp(log_probs).sum()) - 1.0) > NORMALIZATION_TOLERANCE:
            return False
        if vocabulary is not None and vocabulary.kind == "bytes":
            continue  # a byte is not a text of its own (bytes above 127 are parts of characters)
        symbols = vocabulary.symbols if vocabulary is not None else CHARACTERS
        sequence_mass = sum(math.exp(model.get_log_prob_sequence(char, context)) for char in symbols if len(char) == 1)
        if vocabulary is not None and vocabulary.unk:
            sequence_mass += math.exp(log_probs[vocabulary.unk_id])
        if abs(sequence_mass - 1.0) > NORMALIZATION_TOLERANCE:
            return False
    return True
