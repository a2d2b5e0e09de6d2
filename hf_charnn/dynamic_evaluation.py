"""
Dynamic evaluation (Krause et al., "Dynamic Evaluation of Neural Sequence Models", 2018): an LM adapts to the text it
is reading. The text is read in segments, the GRU state carried from one to the next; each segment is scored first,
then one gradient step is taken on it, and the weights decay back toward the trained ones (the RMS rule):

    MS       = RMS of the gradients on training text, per parameter (`gradient_statistics`, saved with the model)
    decay    = MS / mean(MS), clipped at 1/lambda
    theta   <- theta - eta * g / (MS + eps) + lambda * decay * (theta_0 - theta)

A symbol's probability never depends on itself or on anything after it (each segment is scored before its step),
and the model's weights are restored afterwards. This is a different metric from the static score: reported apart.
"""

import math
from pathlib import Path

import numpy as np
import torch

from .errors import UserError

STATS_FILE = "dynamic_eval_stats.safetensors"
DEFAULT_LR = 1e-4  # eta: the best of the grid on two corpora (tinyshakespeare, text8-form; docs/evaluation.md)
DEFAULT_DECAY = 2e-3  # lambda (the same measurements)
DEFAULT_SEGMENT = 20  # symbols a step
EPSILON = 1e-5
STATS_CHARS = 50_000  # training symbols the statistics are computed over (a bounded slice)
STATS_SEGMENT = 64  # symbols a gradient of the statistics reads, per stream
REPORT_CHARS = 20_000  # the end of training scores dynamically at most this many validation symbols
TUNE_GRID = {"lr": (3e-5, 1e-4, 3e-4), "decay": (0.0, 2e-3, 2e-2)}


def _ids(model, text) -> np.ndarray:
    return model.vocabulary.encode(text) if isinstance(text, str) else np.asarray(text, dtype=np.int64)


def gradient_statistics(
    model, text, segment: int = DEFAULT_SEGMENT, streams: int = 32, max_chars: int = STATS_CHARS
) -> dict:
    """
    RMS of the loss gradients of every parameter over (at most `max_chars` of) training text, read as `streams`
    contiguous streams in segments with the state carried (as training reads it), at the model's own weights.
    """
    ids = _ids(model, text)[:max_chars].astype(np.int64)
    streams = max(1, min(streams, (len(ids) - 1) // max(segment, 1)))
    length = (len(ids) - 1) // streams
    if length < 1:
        raise UserError(f"{len(ids)} symbols of training text are too few for dynamic-evaluation statistics")
    rows = np.stack([ids[row * length : row * length + length + 1] for row in range(streams)])
    squares = {name: torch.zeros_like(parameter) for name, parameter in model.named_parameters()}
    was_training, count, state = model.training, 0, None
    model.eval()  # no dropout: the statistics of the model as it scores
    try:
        for start in range(0, length, segment):
            window = torch.from_numpy(rows[:, start : start + segment + 1]).to(model.device)
            if window.shape[1] < 2:
                break
            model.zero_grad(set_to_none=True)
            outputs = model(
                input_ids=window[:, :-1],
                state=state,
                shift_labels=window[:, 1:].contiguous(),
                use_cache=True,
                return_dict=True,
            )
            outputs.loss.backward()
            state = outputs.state.detach()
            for name, parameter in model.named_parameters():
                if parameter.grad is not None:
                    squares[name] += parameter.grad.detach() ** 2
            count += 1
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {name: (total / max(count, 1)).sqrt().cpu() for name, total in squares.items()}


def save_statistics(stats: dict, folder: str | Path, source: str):
    from safetensors.torch import save_file

    save_file(
        {name: value.contiguous() for name, value in stats.items()},
        str(Path(folder) / STATS_FILE),
        metadata={"source": source},
    )


def load_statistics(folder: str | Path) -> tuple[dict, str] | None:
    """(the statistics, where they came from) saved in a model folder, or None."""
    path = Path(folder) / STATS_FILE
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        source = (handle.metadata() or {}).get("source", "unknown")
        return {name: handle.get_tensor(name) for name in handle.keys()}, source


@torch.no_grad()
def _restore(model, originals: dict):
    for name, parameter in model.named_parameters():
        parameter.copy_(originals[name])


def dynamic_log_prob(
    model, text, stats: dict, lr: float = DEFAULT_LR, decay: float = DEFAULT_DECAY, segment: int = DEFAULT_SEGMENT
) -> float:
    """
    log P(text | start symbol) under dynamic evaluation (one stream, exact order); the model's weights are the same
    afterwards. `lr` 0 gives the static score.
    """
    return float(dynamic_log_probs(model, text, stats, lr, decay, segment).sum())


def dynamic_log_probs(
    model, text, stats: dict, lr: float = DEFAULT_LR, decay: float = DEFAULT_DECAY, segment: int = DEFAULT_SEGMENT
) -> np.ndarray:
    """Each symbol's log probability under dynamic evaluation (see `dynamic_log_prob`)."""
    ids = _ids(model, text).astype(np.int64)
    if len(ids) == 0:
        return np.zeros(0)
    sequence = torch.from_numpy(np.concatenate([[model.vocabulary.start_id], ids])).to(model.device)
    parameters = dict(model.named_parameters())
    missing = sorted(set(parameters) - set(stats))
    if missing:
        raise UserError(
            f"the dynamic-evaluation statistics have no entry for {', '.join(missing[:3])}: compute them again"
        )
    originals = {name: parameter.detach().clone() for name, parameter in parameters.items()}
    ms = {name: stats[name].to(parameter.device, parameter.dtype) for name, parameter in parameters.items()}
    mean_ms = torch.stack([value.mean() for value in ms.values()]).mean()
    rates = {
        name: (value / mean_ms).clamp(max=1.0 / decay) if decay > 0 else torch.zeros_like(value)
        for name, value in ms.items()
    }
    was_training, scored, state = model.training, [], None
    model.eval()
    try:
        for start in range(0, len(ids), segment):
            window = sequence[start : start + segment + 1][None]
            model.zero_grad(set_to_none=True)
            with torch.enable_grad():
                outputs = model(input_ids=window[:, :-1], state=state, use_cache=True, return_dict=True)
                log_probs = torch.log_softmax(outputs.logits.float(), dim=-1)
                per_symbol = log_probs.gather(2, window[:, 1:, None])[..., 0]
                scored.append(per_symbol.detach()[0].double().cpu().numpy())  # scored before this segment's step
                if lr > 0:
                    (-per_symbol.mean()).backward()
            state = outputs.state.detach()
            if lr > 0:
                with torch.no_grad():
                    for name, parameter in parameters.items():
                        if parameter.grad is not None:
                            parameter -= lr * parameter.grad / (ms[name] + EPSILON)
                        parameter += decay * rates[name] * (originals[name] - parameter)
    finally:
        model.zero_grad(set_to_none=True)
        _restore(model, originals)
        model.train(was_training)
    return np.concatenate(scored)


def evaluate_dynamic(
    model,
    text,
    stats: dict,
    lr: float = DEFAULT_LR,
    decay: float = DEFAULT_DECAY,
    segment: int = DEFAULT_SEGMENT,
    stats_source: str = "",
) -> dict:
    """The `dynamic` block of a report: loss, bits per symbol, perplexity under dynamic evaluation, and its settings."""
    from .evaluation import scored_units

    log_prob = dynamic_log_prob(model, text, stats, lr, decay, segment)
    count, rate, units = scored_units(model, text)
    loss = -log_prob / count
    static_loss = -float(model.score_long_text(_ids(model, text))) / count  # the same symbols, scored statically
    return {
        "static_loss": static_loss,
        "gain": static_loss - loss,
        "loss": loss,
        "perplexity": math.exp(loss),
        rate: loss / math.log(2),
        units: count,
        "lr": lr,
        "decay": decay,
        "segment": segment,
        "statistics_from": stats_source,
    }


def tune(model, text, stats: dict, segment: int = DEFAULT_SEGMENT, grid: dict = TUNE_GRID) -> dict:
    """The grid point (lr, decay) with the lowest dynamic loss on `text` (a tuning text, never the scored one)."""
    ids = _ids(model, text)
    results = []
    for lr in grid["lr"]:
        for decay in grid["decay"]:
            log_prob = dynamic_log_prob(model, ids, stats, lr, decay, segment)
            results.append({"lr": lr, "decay": decay, "loss": -log_prob / len(ids)})
    best = min(results, key=lambda result: result["loss"])
    return {"lr": best["lr"], "decay": best["decay"], "grid": results}
