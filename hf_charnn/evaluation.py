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


CLASSIFIER_BATCH = 256  # texts predicted at once (texts of any length: memory stays bounded)


def evaluate_classifier(model, consonant_examples: list[str], vowel_examples: list[str]) -> dict:
    """The exercise's evaluation: consonant examples (label 0) and vowel examples (label 1); see `evaluate_labeled`."""
    texts = list(consonant_examples) + list(vowel_examples)
    gold = [0] * len(consonant_examples) + [1] * len(vowel_examples)
    return evaluate_labeled(model, texts, gold, ["consonant", "vowel"])


def evaluate_labeled(model, texts: list[str], gold: list[int], label_names: list[str]) -> dict:
    """Accuracy (in percent), macro-F1, per-label precision / recall / F1 and the confusion matrix of `model` on `texts`."""
    predictions = []
    for start in range(0, len(texts), CLASSIFIER_BATCH):
        batch = texts[start : start + CLASSIFIER_BATCH]
        if hasattr(model, "predict_batch"):
            predictions += [int(prediction) for prediction in model.predict_batch(batch)]
        else:
            predictions += [int(model.predict(text)) for text in batch]
    return classification_report(gold, predictions, label_names)


def classification_report(gold: list[int], predicted: list[int], label_names: list[str]) -> dict:
    """
    `correct`, `total`, `accuracy` (%), `macro_f1` (%, the mean F1 over the labels that occur in `gold` or
    `predicted`, as scikit-learn averages), `per_label` {name: precision, recall, f1 (%), support} and
    `confusion_matrix` {labels, matrix}: row = true label, column = predicted label.
    """
    size = len(label_names)
    matrix = np.zeros((size, size), dtype=np.int64)
    if len(gold):
        np.add.at(matrix, (np.asarray(gold), np.asarray(predicted)), 1)
    per_label, f1_scores = {}, []
    for index, name in enumerate(label_names):
        true_positives, support, predicted_count = matrix[index, index], matrix[index].sum(), matrix[:, index].sum()
        precision = true_positives / predicted_count if predicted_count else 0.0
        recall = true_positives / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {"precision": 100.0 * float(precision), "recall": 100.0 * float(recall), "f1": 100.0 * float(f1), "support": int(support)}
        if support or predicted_count:
            f1_scores.append(100.0 * f1)
    correct, total = int(np.trace(matrix)), int(matrix.sum())
    return {
        "correct": correct,
        "total": total,
        "accuracy": 100.0 * correct / total if total else 0.0,
        "macro_f1": float(np.mean(f1_scores)) if f1_scores else 0.0,
        "per_label": per_label,
        "confusion_matrix": {"labels": list(label_names), "matrix": matrix.tolist()},
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


def evaluate_lm(model, text, streams: int = 1, warmup: int = 256) -> dict:
    """
    Log probability, perplexity and bits per character (per byte for a bytes model: `bpb`, `bytes`) of `text` (a
    string, or ids of the model's vocabulary) scored after the context " " (exactly, or as `streams` warmed-up
    pieces: see `score_text`), plus the exercise's two checks.
    """
    log_prob = score_text(model, text, streams, warmup)
    vocabulary = _vocabulary(model)
    if vocabulary is not None and vocabulary.kind == "bytes":
        # A bytes model predicts bytes: its figures are per byte (bits per byte, perplexity per byte).
        count, rate, units = len(text.encode("utf-8")) if isinstance(text, str) else len(text), "bpb", "bytes"
    else:
        count, rate, units = len(text), "bpc", "chars"
    average = log_prob / count
    return {
        "sane": check_sanity(model),
        "normalizes": check_normalization(model),
        "log_prob": log_prob,
        "avg_log_prob": average,
        "perplexity": math.exp(-average),
        rate: bits_per_char(log_prob, count),
        units: count,
        "streams": streams,
    }
