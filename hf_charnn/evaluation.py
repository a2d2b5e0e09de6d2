"""
Scoring models, for any data: language models (loss, bits per character or byte, perplexity, exact or streamed) and
classifiers (accuracy, macro-F1, per-label precision / recall / F1, confusion matrix; for multi-label ones micro- and
macro-F1, per-label F1 and the exact-match ratio). The exercise's own harness (its
two checks, its words) is `hf_charnn.exercise.harness`, built on these.
"""

import math

import numpy as np

CLASSIFIER_BATCH = 256  # texts predicted at once (texts of any length: memory stays bounded)


# -- classifiers -------------------------------------------------------------------------------------------------------
def evaluate_labeled(model, texts: list[str], gold: list[int], label_names: list[str]) -> dict:
    """
    `classification_report` of `model` on `texts` (gold label ids into `label_names`; lists of ids a text for a
    multi-label model: `multi_label_report`). `model` needs `predict_batch(texts)` (hf_charnn's classifiers) or
    `predict(text)`.
    """
    predictions = predict_labels(model, texts)
    if gold and isinstance(gold[0], list):  # a set of labels a text (a multi-label model predicts lists too)
        return multi_label_report(gold, predictions, label_names)
    return classification_report(gold, predictions, label_names)


def predict_labels(model, texts: list[str]) -> list:
    """
    `model`'s label id for each of `texts` (a list of ids a text for a multi-label model), CLASSIFIER_BATCH texts at a
    time: `predict_batch(texts)` where the model has it (hf_charnn's classifiers), else `predict(text)`.
    """
    predictions = []
    for start in range(0, len(texts), CLASSIFIER_BATCH):
        batch = texts[start : start + CLASSIFIER_BATCH]
        if hasattr(model, "predict_batch"):
            predictions += [_as_label(prediction) for prediction in model.predict_batch(batch)]
        else:
            predictions += [_as_label(model.predict(text)) for text in batch]
    return predictions


def _as_label(prediction):
    """A prediction as a label id, or a multi-label model's list of ids."""
    return [int(index) for index in prediction] if isinstance(prediction, list) else int(prediction)


def multi_label_report(gold, predicted, label_names: list[str]) -> dict:
    """
    A multi-label classifier's scores: `gold` and `predicted` are a text's labels each, as a 0 / 1 array of
    `len(label_names)` columns or as lists of label ids. `micro_f1` (%, over every text-label pair), `macro_f1` (%,
    the mean F1 of the labels that occur in `gold` or `predicted`), `exact_match` (% of texts whose label set is
    exactly right; also `accuracy`, as scikit-learn's `accuracy_score` counts multi-label), `correct`, `total`, and
    `per_label` {name: precision, recall, f1 (%), support}.
    """
    gold, predicted = label_matrix(gold, len(label_names)), label_matrix(predicted, len(label_names))
    true_positives = (gold & predicted).sum(axis=0)
    support, predicted_count = gold.sum(axis=0), predicted.sum(axis=0)
    per_label, macro_f1 = _per_label(true_positives, predicted_count, support, label_names)
    correct, total = int((gold == predicted).all(axis=1).sum()), len(gold)
    exact_match = 100.0 * correct / total if total else 0.0
    return {
        "correct": correct,
        "total": total,
        "exact_match": exact_match,
        "accuracy": exact_match,
        "micro_f1": _f1(true_positives.sum(), predicted_count.sum(), support.sum())[2],
        "macro_f1": macro_f1,
        "per_label": per_label,
    }


def label_matrix(rows, size: int) -> np.ndarray:
    """
    Texts' labels, a 0 / 1 `(texts, size)` array or lists of label ids (a multi-label set each), as a boolean matrix:
    what the multi-label metrics, the linear part's one-against-the-rest fits and the BCE targets read.
    """
    if isinstance(rows, np.ndarray):
        return rows.astype(bool).reshape(len(rows), size)
    matrix = np.zeros((len(rows), size), dtype=bool)
    for index, ids in enumerate(rows):
        matrix[index, list(ids)] = True
    return matrix


def _f1(true_positives, predicted_count, support) -> tuple[float, float, float]:
    """(precision, recall, F1), in %, from counts (0 where a count is 0)."""
    precision = true_positives / predicted_count if predicted_count else 0.0
    recall = true_positives / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 100.0 * float(precision), 100.0 * float(recall), 100.0 * float(f1)


def _per_label(true_positives, predicted_count, support, label_names: list[str]) -> tuple[dict, float]:
    """
    Each label's {precision, recall, f1 (%), support} from its counts, and the macro-F1: the mean F1 over the labels
    that occur in the gold or the predicted labels, as scikit-learn averages.
    """
    per_label, f1_scores = {}, []
    for index, name in enumerate(label_names):
        precision, recall, f1 = _f1(true_positives[index], predicted_count[index], support[index])
        per_label[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(support[index])}
        if support[index] or predicted_count[index]:
            f1_scores.append(f1)
    return per_label, float(np.mean(f1_scores)) if f1_scores else 0.0


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
    per_label, macro_f1 = _per_label(np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1), label_names)
    correct, total = int(np.trace(matrix)), int(matrix.sum())
    return {
        "correct": correct,
        "total": total,
        "accuracy": 100.0 * correct / total if total else 0.0,
        "macro_f1": macro_f1,
        "per_label": per_label,
        "confusion_matrix": {"labels": list(label_names), "matrix": matrix.tolist()},
    }


def accuracy_and_macro_f1(gold: np.ndarray, predicted: np.ndarray, num_labels: int) -> tuple[float, float]:
    """Accuracy and macro-F1 (%, as `classification_report`'s) of label-id arrays, without the report's tables."""
    true_positives = np.bincount(gold[gold == predicted], minlength=num_labels)
    support, predicted_count = np.bincount(gold, minlength=num_labels), np.bincount(predicted, minlength=num_labels)
    present = (support + predicted_count) > 0
    f1 = 2 * true_positives[present] / (support[present] + predicted_count[present])
    return float(100 * np.mean(gold == predicted)), float(100 * f1.mean()) if f1.size else 0.0


def paired_bootstrap(gold, first, second, num_labels: int, draws: int = 1000, seed: int = 0) -> np.ndarray:
    """
    How much `first`'s predictions (label ids) beat `second`'s on the same `gold` rows, on accuracy and macro-F1
    (points): a `(draws + 1, 2)` array, the observed difference in row 0, then one a resample of the rows (drawn with
    replacement, the same rows for both: a paired bootstrap, seeded). Its spread says what the rows can tell apart.
    """
    gold, first, second = (np.asarray(labels, dtype=np.int64) for labels in (gold, first, second))
    rng = np.random.default_rng(seed)
    samples = [np.arange(len(gold))] + [rng.integers(0, len(gold), len(gold)) for _ in range(draws)]
    return np.asarray(
        [
            np.subtract(
                accuracy_and_macro_f1(gold[rows], first[rows], num_labels),
                accuracy_and_macro_f1(gold[rows], second[rows], num_labels),
            )
            for rows in samples
        ]
    )


# -- language models ---------------------------------------------------------------------------------------------------
def score_text(model, text, streams: int = 1, warmup: int = 256) -> float:
    """
    log P(text | start symbol) in nats. Models with `score_long_text` (the GRU LM) read long texts in bounded memory,
    exactly with one stream or as `streams` pieces side by side (each warmed up on the `warmup` symbols before it);
    other models answer through `get_log_prob_sequence(text, " ")`.
    """
    if hasattr(model, "score_long_text"):
        return float(model.score_long_text(text, num_streams=streams, warmup=warmup))
    return float(model.get_log_prob_sequence(text, " "))


def bits_per_symbol(log_prob: float, symbols: int) -> float:
    """
    Average negative log2 probability per symbol (log_prob is in nats): bits per character, or per byte for a bytes
    model (`scored_units` says which).
    """
    return -log_prob / symbols / math.log(2)


def scored_units(model, text) -> tuple[int, str, str]:
    """
    (how many symbols `text` is, the rate's key, the count's key): characters (`bpc`, `chars`), or bytes for a
    bytes model (`bpb`, `bytes`: its figures are per byte). `text` is a string or ids of the model's vocabulary.
    """
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is not None and vocabulary.kind == "bytes":
        return (len(text.encode("utf-8")) if isinstance(text, str) else len(text)), "bpb", "bytes"
    return len(text), "bpc", "chars"


def evaluate_lm(model, text, streams: int = 1, warmup: int = 256) -> dict:
    """
    `loss` (nats per symbol), `perplexity` and bits per character (`bpc`; per byte, `bpb`, for a bytes model) of
    `text` (a string, or ids of the model's vocabulary) scored after the start symbol, with the symbol count and
    the streams it was scored in (see `score_text`).
    """
    log_prob = score_text(model, text, streams, warmup)
    count, rate, units = scored_units(model, text)
    loss = -log_prob / count
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        rate: bits_per_symbol(log_prob, count),
        units: count,
        "streams": streams,
    }
