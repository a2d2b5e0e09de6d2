"""
The classifier's linear n-gram part (`CharNgramLinear`), fitted before the GRU trains, and the weights of the two
parts' scores, chosen on validation after it.

The linear part is what a char n-gram SVM is (TF-IDF weighted n-grams, each text's vector of length 1, one weight
vector a label; for multi-label data one binary SVM a label, as scikit-learn's `OneVsRestClassifier(LinearSVC())`
fits them) and it is fitted the way scikit-learn's `LinearSVC` fits one: the L2-regularised squared hinge loss,
one label against the rest, the bias regularised as an extra feature of value 1, solved to convergence (by liblinear
itself, on the sparse matrix of the training texts' n-grams). A convex fit reaches in seconds what SGD on the same
weights reaches slowly or not at all. The n-grams are counted with the model's own hash and weighted as its
`occurrence_weights` weighs them, so what was fitted is what the model (and its ONNX graph) computes.
"""

import time
import warnings

import numpy as np
import torch

from ..evaluation import classification_report, label_matrix, multi_label_report
from ..models.modeling_char_gru import ngram_buckets, pad_ids, window_ngram_buckets

FEATURE_BATCH = 256  # texts a batch when the n-grams are counted
# The inverse regularisation strength (scikit-learn's C): 1.0 scored above the baseline SVM's 0.5 on validation on 3 of
# the 4 tuning sets it was tried on (docs/training.md, "Recipe measurements").
SVM_C = 1.0
# A tagger's (one SVM over each character's window of n-grams): 0.1 scored above 0.3 and 1.0 on validation of word
# boundaries, and fits fastest (docs/tagger.md, round 6).
TAGGER_SVM_C = 0.1
# A tagger's fit reads at most this many characters (its rows in order, the text before any shuffled copies): the fit
# holds ~1.1 KB a character (the matrix and liblinear's copy of it; measured: 0.75 GB at 250k characters).
TAGGER_MAX_CHARACTERS = 1_000_000
# A classifier's fit reads at most this many characters of its texts (a seeded sample of them, beyond it): it holds
# ~0.5 KB a character (the n-grams' coordinates, the matrix and liblinear's copy; measured 2.0 GB peak at 3.5M
# characters of short texts), and takes ~16 s a million characters with 54 labels.
CLASSIFIER_MAX_CHARACTERS = 10_000_000
# liblinear's dual solver, the fast one, to this many passes; past them, the primal Newton solver. The dual converged
# within 70 passes on 8 of the suite's 10 sets, within 250 on prose of up to 2,400 characters (3x faster there than
# the primal), and not within 1,000 on code snippets (where the primal took a third of its time).
DUAL_ITERATIONS = 300
# The weights tried for the linear scores beside the GRU's (whose weight is 1), and the linear part alone; the first
# best on validation wins (accuracy + macro-F1).
LINEAR_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
# A multi-label classifier's threshold a label is the one of these probabilities with the best F1 for that label on
# validation (a tie: the one nearest 0.5, which is also what a label with no validation examples keeps).
THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))


def _batches(rows: list, batch_size: int):
    order = sorted(range(len(rows)), key=lambda index: len(rows[index]))  # similar lengths: little padding
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.no_grad()
def ngram_counts(model, rows: list, batch_size: int = FEATURE_BATCH) -> torch.Tensor:
    """How often each hashed n-gram occurs in each row of ids: a sparse `(rows, buckets)` float64 matrix."""
    config, pad_id = model.config, model.config.vocab_size
    row_parts, bucket_parts = [], []
    for indices in _batches(rows, batch_size):
        input_ids, attention_mask = pad_ids([rows[index] for index in indices], pad_id)
        buckets, valid = ngram_buckets(input_ids, attention_mask, config)
        row_of = torch.as_tensor(indices)[:, None, None].expand_as(buckets)
        row_parts.append(row_of[valid])
        bucket_parts.append(buckets[valid])
    coordinates = torch.stack([torch.cat(row_parts), torch.cat(bucket_parts)])
    ones = torch.ones(coordinates.shape[1], dtype=torch.float64)
    return torch.sparse_coo_tensor(
        coordinates, ones, (len(rows), config.ngram_buckets), check_invariants=False
    ).coalesce()


def fit_ngram_linear(model, rows: list, labels, c: float = SVM_C, seed: int = 0) -> dict:
    """
    Fit `model.ngram_linear` (its `idf`, weights and bias) on training `rows` (id arrays) and their label ids (a list of
    ids a row for a multi-label model), and freeze it; returns what the summary says of the fit. Beyond
    CLASSIFIER_MAX_CHARACTERS it reads a sample of the rows drawn with `seed` (all of their labels, in proportion).
    """
    start = time.perf_counter()
    lengths = [len(row) for row in rows]
    rows_given, characters_given = len(rows), sum(lengths)
    characters = characters_given
    if characters_given > CLASSIFIER_MAX_CHARACTERS:
        # A random sample, not the first rows: a file sorted by label would otherwise lose its last labels.
        order = np.random.default_rng(seed).permutation(len(rows))
        count, characters = _rows_within([lengths[index] for index in order], CLASSIFIER_MAX_CHARACTERS)
        kept = np.sort(order[:count])
        rows, labels = [rows[index] for index in kept], [labels[index] for index in kept]
    linear, num_labels = model.ngram_linear, model.config.num_labels
    counts = ngram_counts(model, rows)
    (row_index, bucket), count = counts.indices(), counts.values()
    # Smoothed inverse document frequency, as scikit-learn's TfidfTransformer: log((1 + n) / (1 + df)) + 1.
    document_frequency = torch.bincount(bucket, minlength=model.config.ngram_buckets).to(torch.float64)
    idf = torch.log((1 + len(rows)) / (1 + document_frequency)) + 1
    # Each text's vector: count x idf, scaled to length 1 with every occurrence counted on its own (the model's way).
    length = torch.zeros(len(rows), dtype=torch.float64).index_add_(0, row_index, count * idf[bucket] ** 2).sqrt()
    values = count * idf[bucket] / length[row_index]
    # scikit-learn's LinearSVC itself (liblinear) on the training texts' matrix: the SVM's solution in about a second.
    from scipy.sparse import csr_matrix

    features = csr_matrix((values.numpy(), (row_index.numpy(), bucket.numpy())), shape=(len(rows), len(idf)))
    weights, bias = np.zeros((model.config.ngram_buckets, num_labels)), np.zeros(num_labels)
    if model.multi_label:  # one binary SVM a label (one against the rest), each label's yes / no on its own
        targets = label_matrix(labels, num_labels).astype(np.int64)
        fits = []
        for label in range(num_labels):
            column = targets[:, label]
            if column.min() == column.max():  # every training text has it, or none: a constant answer
                bias[label] = 1.0 if column[0] else -1.0
                continue
            svm, solver = _fit_svm(features, column, c)
            weights[:, label], bias[label] = svm.coef_[0], svm.intercept_[0]
            fits.append((solver, int(np.max(svm.n_iter_))))
        predicted = (features @ weights + bias) > 0
        train_accuracy = float(np.mean((predicted == targets.astype(bool)).all(axis=1)) * 100)  # exact match
        solver = "/".join(sorted({solver for solver, _ in fits})) or "none"
        iterations = max((iterations for _, iterations in fits), default=0)
    else:
        label_ids = np.asarray(labels)
        svm, solver = _fit_svm(features, label_ids, c)
        weights, bias = _label_weights(svm, model.config.ngram_buckets, num_labels)
        train_accuracy = float(np.mean(svm.predict(features) == label_ids) * 100)
        iterations = int(np.max(svm.n_iter_))
    with torch.no_grad():
        linear.idf.copy_(idf.to(linear.idf.dtype))
    _freeze(linear, weights, bias)
    return {
        "rows": len(rows),
        "rows_given": rows_given,
        "characters": characters,
        "characters_given": characters_given,
        "buckets_used": int(torch.count_nonzero(document_frequency)),
        "c": c,
        "solver": solver,
        "iterations": iterations,
        "train_accuracy": round(train_accuracy, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }


def fit_window_ngram_linear(model, rows: list, labels: list, c: float = TAGGER_SVM_C) -> dict:
    """
    Fit a tagger's `model.ngram_linear` (`CharWindowNgramLinear`: a weight row a bucket and a bias) on training `rows`
    (id arrays) and their tag ids (an array a row), one linear SVM per tag over each character's n-grams, and freeze
    it; returns what the summary says of the fit. Only the rows within the first TAGGER_MAX_CHARACTERS are read.
    """
    from scipy.sparse import csr_matrix

    start = time.perf_counter()
    lengths = [len(row) for row in rows]
    kept, _ = _rows_within(lengths, TAGGER_MAX_CHARACTERS)
    rows, labels = rows[:kept], labels[:kept]
    config, buckets = model.config, []
    with torch.no_grad():
        for first in range(0, len(rows), FEATURE_BATCH):
            input_ids, attention_mask = pad_ids(rows[first : first + FEATURE_BATCH], config.vocab_size)
            found = window_ngram_buckets(input_ids, attention_mask, config)[attention_mask.bool()]
            buckets.append(found.to(torch.int32))
    buckets = torch.cat(buckets).numpy()  # (characters, features), the rows' characters in order
    characters, width = buckets.shape
    # A row a character, each with `width` entries: built as CSR directly (no COO copy). Hashed n-grams that collide
    # around one character must add up, as they do in the model's sum: `sum_duplicates` merges them.
    features = csr_matrix(
        (np.ones(buckets.size), buckets.reshape(-1), np.arange(0, buckets.size + 1, width)),
        shape=(characters, config.ngram_buckets),
    )
    del buckets
    features.sum_duplicates()
    label_ids = np.concatenate([np.asarray(row) for row in labels])
    svm, solver = _fit_svm(features, label_ids, c)
    weights, bias = _label_weights(svm, config.ngram_buckets, config.num_labels)
    _freeze(model.ngram_linear, weights, bias)
    return {
        "rows": len(rows),
        "characters": len(label_ids),
        "characters_given": sum(lengths),
        "buckets_used": int(np.count_nonzero(np.asarray(features.sum(axis=0)))),
        "c": c,
        "solver": solver,
        "iterations": int(np.max(svm.n_iter_)),
        "train_accuracy": round(float(np.mean(svm.predict(features) == label_ids) * 100), 2),
        "seconds": round(time.perf_counter() - start, 2),
    }


def _rows_within(lengths: list, limit: int) -> tuple[int, int]:
    """How many rows of these `lengths`, in order, fit in `limit` characters (at least one), and their characters."""
    ends = np.cumsum(lengths)
    kept = max(1, int(np.searchsorted(ends, limit, side="right")))
    return kept, int(ends[kept - 1])


def _label_weights(svm, num_buckets: int, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted single-label SVM's weights, a row of label scores a bucket, and its biases (labels it never saw: 0)."""
    weights, bias = np.zeros((num_buckets, num_labels)), np.zeros(num_labels)
    coef, intercept = svm.coef_, svm.intercept_
    if coef.shape[0] == 1:  # two labels: one weight vector, the second label's; the first's is its negative
        coef, intercept = np.concatenate([-coef, coef]), np.concatenate([-intercept, intercept])
    weights[:, svm.classes_] = coef.T
    bias[svm.classes_] = intercept
    return weights, bias


def _freeze(linear, weights: np.ndarray, bias: np.ndarray):
    """Copy a fit into a linear part and freeze it: the GRU trains beside it; the fit is final."""
    with torch.no_grad():
        linear.weights.weight.copy_(torch.from_numpy(weights).to(linear.weights.weight.dtype))
        linear.bias.copy_(torch.from_numpy(bias).to(linear.bias.dtype))
    linear.requires_grad_(False)


def _fit_svm(features, targets: np.ndarray, c: float):
    """scikit-learn's LinearSVC on `features`: the dual solver, or the primal where the dual has not converged."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # not converged: the primal solver below
        svm = LinearSVC(C=c, dual=True, max_iter=DUAL_ITERATIONS, random_state=0).fit(features, targets)
    if np.max(svm.n_iter_) < DUAL_ITERATIONS:
        return svm, "dual"
    # Long texts (many n-grams a row) slow the dual's coordinate descent; liblinear's primal Newton solver converges
    # there in a dozen iterations (measured on code snippets: 5 s against 18 s unconverged).
    return LinearSVC(C=c, dual=False, random_state=0).fit(features, targets), "primal"


@torch.no_grad()
def _part_scores(model, rows: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's scores from the GRU's head and from the linear part, apart, in one pass over `rows`."""
    head = torch.zeros(len(rows), model.config.num_labels)
    linear = torch.zeros(len(rows), model.config.num_labels)
    for indices in _batches(rows, FEATURE_BATCH):
        input_ids, attention_mask = pad_ids([rows[index] for index in indices], model.config.vocab_size, model.device)
        outputs = model.char_gru(input_ids, attention_mask=attention_mask, return_dict=True)
        head[indices] = model._head(model._features(outputs, attention_mask, input_ids)).float().cpu()
        linear[indices] = model.ngram_linear(input_ids, attention_mask).float().cpu()
    return head, linear


@torch.no_grad()
def tag_part_scores(model, rows: list) -> tuple[torch.Tensor, torch.Tensor]:
    """
    A tagger's scores from the GRU's head and from the linear part, apart, at every real position of `rows` (id
    arrays), the rows' positions in order: two `(positions, labels)` tensors, in one pass over `rows`.
    """
    was_training = model.training
    model.eval()
    head, linear = [], []
    for first in range(0, len(rows), FEATURE_BATCH):
        input_ids, attention_mask = pad_ids(rows[first : first + FEATURE_BATCH], model.config.vocab_size, model.device)
        hidden = model.char_gru(input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
        real = attention_mask.bool()
        head.append(model.classifier(hidden)[real].float().cpu())
        linear.append(model.ngram_linear(input_ids, attention_mask)[real].float().cpu())
    model.train(was_training)
    return torch.cat(head), torch.cat(linear)


def choose_logit_scales(model, rows: list, labels: list, label_names: list) -> dict:
    """
    Set `model.config`'s `ngram_linear_scale` and `recurrent_scale` to the pair in LINEAR_SCALES (beside the GRU's 1)
    or (linear alone) that scores best on validation `rows` (accuracy + macro-F1; a multi-label model's: micro- +
    macro-F1, each pair with its own thresholds, `tune_thresholds`, which go in `config.label_thresholds`); returns
    every pair's figures.
    """
    was_training = model.training
    model.eval()
    recurrent, linear = _part_scores(model, rows)
    model.train(was_training)
    gold = label_matrix(labels, len(label_names)) if model.multi_label else None

    def judge(logits):
        if model.multi_label:
            probabilities = torch.sigmoid(logits).numpy()
            thresholds = tune_thresholds(probabilities, gold)
            report = multi_label_report(gold, probabilities >= np.asarray(thresholds), label_names)
            figures = {key: report[key] for key in ("micro_f1", "macro_f1", "exact_match")}
            return report["micro_f1"] + report["macro_f1"], {**figures, "thresholds": thresholds}
        report = classification_report(labels, logits.argmax(-1).tolist(), label_names)
        return report["accuracy"] + report["macro_f1"], {key: report[key] for key in ("accuracy", "macro_f1")}

    choice = weigh_parts(model.config, recurrent, linear, judge)
    if model.multi_label:
        model.config.label_thresholds = choice["chosen"]["thresholds"]
    return choice


def weigh_parts(config, recurrent: torch.Tensor, linear: torch.Tensor, judge) -> dict:
    """
    Set `config`'s `ngram_linear_scale` and `recurrent_scale` to the pair in LINEAR_SCALES (beside the GRU's 1), or the
    linear part alone, whose mixed scores `judge` rates best (the first best): `judge(logits)` returns a score and the
    figures to record. Returns every pair's figures, and the chosen one's.
    """
    candidates = [(scale, 1.0) for scale in LINEAR_SCALES] + [(1.0, 0.0)]
    tried, best = [], None
    for linear_scale, recurrent_scale in candidates:
        score, figures = judge(recurrent_scale * recurrent + linear_scale * linear)
        row = {"ngram_linear_scale": linear_scale, "recurrent_scale": recurrent_scale, **figures}
        tried.append(row)
        if best is None or score > best[0]:
            best = (score, row)
    chosen = best[1]
    config.ngram_linear_scale = chosen["ngram_linear_scale"]
    config.recurrent_scale = chosen["recurrent_scale"]
    return {"chosen": chosen, "tried": tried}


def tune_thresholds(probabilities: np.ndarray, gold: np.ndarray) -> list[float]:
    """
    A multi-label classifier's threshold a label: the probability in THRESHOLDS with the best F1 for that label on
    `probabilities` (texts x labels) against `gold` (0 / 1, the same shape); a tie goes to the one nearest 0.5.
    """
    grid = np.asarray(sorted(THRESHOLDS, key=lambda value: (abs(value - 0.5), value)))
    predicted = probabilities[:, :, None] >= grid  # texts x labels x thresholds
    positive = gold.astype(bool)[:, :, None]
    true_positives = (predicted & positive).sum(axis=0)
    denominator = predicted.sum(axis=0) + positive.sum(axis=0)
    f1 = np.where(denominator > 0, 2 * true_positives / np.maximum(denominator, 1), 0.0)
    return [float(grid[index]) for index in f1.argmax(axis=1)]  # (the first best: nearest 0.5)
