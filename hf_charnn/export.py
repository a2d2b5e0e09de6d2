"""
ONNX export of a saved model, checked in onnxruntime against the PyTorch model it came from.

    hf-charnn export runs/lm --onnx [--quantize int8] [--output DIR] [--text valid.txt]

writes `onnx/model.onnx` (and `onnx/model_quantized.onnx` with `--quantize int8`: onnxruntime's dynamic
quantization) into the model folder, or into DIR, with `onnx/export.json` (what was exported and how close it came).
- An LM is its step graph: inputs `input_ids` (int64, batch x sequence) and `state` (float32, layers x batch x
  hidden); outputs `logits` (batch x sequence x vocabulary) and `state_out` (ONNX names each value once: the state
  read is `state`, the state written `state_out`). Feed `state_out` back as `state` to continue a text.
- A classifier: inputs `input_ids` and `attention_mask` (padding on either side); output `logits` (batch x labels).
- A tagger: the classifier's inputs; output `logits` (batch x sequence x tags).
Each task declares its graph (`onnx_graph` in its settings: a wrapper in its own `task.py`).
Batch and sequence axes are dynamic. Exporters have shipped GRU translations that were silently wrong, so every
export is run in onnxruntime on random inputs of several shapes and refused if it differs from PyTorch by more than
1e-4. `generate_greedy_or_sampled` is a generation loop on onnxruntime and numpy alone (no torch), the one the
model card shows.
"""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from .errors import UserError

ONNX_DIR = "onnx"
MODEL_FILE = "model.onnx"
QUANTIZED_FILE = "model_quantized.onnx"
EXPORT_FILE = "export.json"
TOLERANCE = 1e-4
OPSET = 17
CHECK_SHAPES = ((1, 1), (1, 50), (4, 1), (4, 50))  # (batch, sequence) every export is checked at


def require_onnx():
    """onnx and onnxruntime, or a one-line error naming the extra that installs them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise UserError(
            f'the ONNX export needs onnx and onnxruntime ({error.name} is missing): pip install -e ".[onnx]" '
            "(or pip install onnx onnxruntime onnxscript)"
        ) from None


def graph_class(model):
    """
    The ONNX graph of a model's task (its settings' `onnx_graph`, a module of the task's own): a wrapper whose
    `padded` says what it reads (True: `input_ids` and `attention_mask`; False: `input_ids` and a `state`) and whose
    `logits_axes` name the dynamic axes of its logits.
    """
    from .training.tasks import load_class, task_for_architectures

    settings_class = task_for_architectures([type(model).__name__])
    if settings_class is None or not settings_class.onnx_graph:
        raise UserError(f"{type(model).__name__}: no task of hf_charnn exports this model to ONNX")
    return load_class(settings_class.onnx_graph)


def _reads_padded_batches(model) -> bool:
    """Whether a model's graph reads padded batches (input_ids and attention_mask), not a state."""
    return graph_class(model).padded


def sample_inputs(model, batch: int, length: int, seed: int = 0) -> dict:
    """Random inputs of a shape, as numpy (a classifier's rows padded on alternating sides)."""
    rng = np.random.default_rng(seed + 1000 * batch + length)
    input_ids = rng.integers(0, model.config.vocab_size, size=(batch, length), dtype=np.int64)
    if not _reads_padded_batches(model):
        state = rng.standard_normal((model.config.num_hidden_layers, batch, model.config.hidden_size)).astype(
            np.float32
        )
        return {"input_ids": input_ids, "state": state}
    attention_mask = np.ones((batch, length), dtype=np.int64)
    for row in range(batch):
        real = max(1, length - 3 * row)
        if row % 2:  # left padding, as the tokenizer pads
            attention_mask[row, : length - real] = 0
        else:
            attention_mask[row, real:] = 0
        input_ids[row][attention_mask[row] == 0] = model.config.vocab_size  # the padding id
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def torch_outputs(model, inputs: dict) -> list:
    """What the PyTorch model gives for `inputs` (its own forward pass: the padded GRU loop, the full head)."""
    import torch

    with torch.no_grad():
        tensors = {name: torch.from_numpy(value) for name, value in inputs.items()}
        if _reads_padded_batches(model):
            return [model(**tensors).logits.float().numpy()]
        outputs = model(input_ids=tensors["input_ids"], state=tensors["state"], use_cache=True, return_dict=True)
        return [outputs.logits.float().numpy(), outputs.state.float().numpy()]


def largest_difference(session, model, shapes=CHECK_SHAPES) -> float:
    """The largest absolute difference between onnxruntime and PyTorch over random inputs of `shapes`."""
    worst = 0.0
    for batch, length in shapes:
        inputs = sample_inputs(model, batch, length)
        for got, expected in zip(session.run(None, inputs), torch_outputs(model, inputs)):
            worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def export_onnx(model, path: Path):
    """Write `model` (an hf_charnn model of any task, eval mode) as ONNX to `path`, as its task's graph."""
    import torch

    graph_type = graph_class(model)
    model = model.eval().float()
    graph = graph_type(model)
    if graph_type.padded:
        names, outputs = ["input_ids", "attention_mask"], ["logits"]
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
    else:
        names, outputs = ["input_ids", "state"], ["logits", "state_out"]
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "state": {1: "batch"}, "state_out": {1: "batch"}}
    axes["logits"] = graph_type.logits_axes
    graph.eval()  # (a wrapper starts in training mode, and the exporter keeps the top module's mode: dropout on)
    example = tuple(torch.from_numpy(value) for value in sample_inputs(model, 2, 5).values())
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter: torch 2.13's export-based one specialised the GRU's sequence axis in the output
        # shapes it declared (checked); the equality check below guards the translation either way.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            example,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def export_checked(model, path: Path) -> float:
    """
    `export_onnx` to `path`, then the graph run in onnxruntime against PyTorch: its largest difference, or (beyond
    TOLERANCE) a UserError, after which the caller removes what it wrote.
    """
    export_onnx(model, path)
    difference = largest_difference(session_for(path), model)
    if difference > TOLERANCE:
        raise UserError(
            f"the ONNX graph differs from the PyTorch model by {difference:.2e} (more than {TOLERANCE}); nothing kept"
        )
    return difference


def quantize_int8(source: Path, target: Path):
    """
    onnxruntime's dynamic int8 quantization: MatMul / Gemm weights (the output head) in int8, activations float; the
    ONNX `GRU` ops keep their fp32 weights (it does not rewrite them).
    """
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice is for convolutional models
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def session_for(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_folder(
    model_dir: str | Path, output_dir: str | Path | None = None, quantize: str | None = None, overwrite: bool = False
) -> dict:
    """
    Export a saved model folder to `onnx/` (in the folder, or in `output_dir`), check it in onnxruntime, and write
    `onnx/export.json`; returns what it holds. An `onnx/` that holds another export is kept unless `overwrite`.
    """
    require_onnx()
    from .models.auto import load_model, task_of_folder

    folder = Path(model_dir)
    kind = task_of_folder(folder).task
    model = load_model(folder, kind)
    target = Path(output_dir or folder) / ONNX_DIR
    if (target / MODEL_FILE).exists() and not overwrite:
        raise UserError(
            f"{target} holds another export ({MODEL_FILE}); pass --overwrite to replace it, or another --output"
        )
    if overwrite:
        shutil.rmtree(target, ignore_errors=True)
    try:
        difference = export_checked(model, target / MODEL_FILE)
    except UserError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    record = {
        "kind": kind,
        "inputs": list(sample_inputs(model, 1, 1)),
        "outputs": ["logits"] if _reads_padded_batches(model) else ["logits", "state_out"],
        "opset": OPSET,
        "files": {"fp32": f"{ONNX_DIR}/{MODEL_FILE}"},
        "checked_shapes": [list(shape) for shape in CHECK_SHAPES],
        "largest_difference": {"fp32": difference},
    }
    if quantize == "int8":
        quantize_int8(target / MODEL_FILE, target / QUANTIZED_FILE)
        record["files"]["int8"] = f"{ONNX_DIR}/{QUANTIZED_FILE}"
        record["largest_difference"]["int8"] = largest_difference(session_for(target / QUANTIZED_FILE), model)
    (target / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if output_dir is None and (folder / "README.md").is_file():
        card = folder / "README.md"
        card.write_text(card_with_onnx_section(card.read_text(), _reads_padded_batches(model), model.vocabulary.kind))
    return {**record, "folder": str(target)}


def card_with_onnx_section(card: str, padded: bool, vocab_kind: str) -> str:
    """
    The model card with an "ONNX" section (how to run `onnx/model.onnx` in onnxruntime), before "## Training": an LM's
    step loop, or (`padded`) a classifier's or tagger's padded batch.
    """
    if "## ONNX" in card:
        return card
    if not padded:
        encode = (
            'ids = np.array([["abcdefghijklmnopqrstuvwxyz ".index(c) for c in "the united states"]])'
            if vocab_kind == "text8"
            else ('ids = np.array([tokenizer("Hello")["input_ids"]])  # the tokenizer of this repo (transformers)')
        )
        body = f"""```python
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("onnx/model.onnx")
layers, hidden = ...  # config.json: num_hidden_layers, hidden_size
{encode}
logits, state = session.run(None, {{"input_ids": ids, "state": np.zeros((layers, 1, hidden), np.float32)}})
for _ in range(50):  # greedy: one step a character, the state fed back
    next_id = logits[:, -1].argmax(-1)[:, None]
    logits, state = session.run(None, {{"input_ids": next_id, "state": state}})
```
"""
    else:
        body = """```python
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("onnx/model.onnx")
# input_ids and attention_mask as the tokenizer of this repo gives them (return_tensors="np")
(logits,) = session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
```
"""
    section = (
        f"## ONNX\n\n`onnx/model.onnx` runs in onnxruntime (checked against the PyTorch model to 1e-4; "
        f"`onnx/export.json` says how it was made):\n\n{body}\n"
    )
    return (
        card.replace("## Training", section + "## Training", 1)
        if "## Training" in card
        else card.rstrip() + "\n\n" + section
    )


def generate_greedy_or_sampled(
    session,
    prompt_ids,
    layers: int,
    hidden: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """
    New ids after `prompt_ids` (one row) from an exported LM on onnxruntime and numpy alone: greedy when
    `temperature` is 0, else sampled (top-k optional) from a seeded numpy generator, one step a character.
    """
    rng = np.random.default_rng(seed)
    ids = np.asarray(prompt_ids, dtype=np.int64)[None, :]
    logits, state = session.run(None, {"input_ids": ids, "state": np.zeros((layers, 1, hidden), np.float32)})
    new = []
    for _ in range(max_new_tokens):
        scores = logits[0, -1].astype(np.float64)
        if temperature <= 0:
            next_id = int(scores.argmax())
        else:
            scores = scores / temperature
            if top_k:
                scores[scores < np.sort(scores)[-top_k]] = -np.inf
            probs = np.exp(scores - scores.max())
            next_id = int(rng.choice(len(probs), p=probs / probs.sum()))
        new.append(next_id)
        logits, state = session.run(None, {"input_ids": np.array([[next_id]], dtype=np.int64), "state": state})
    return np.array(new, dtype=np.int64)


def log_prob_of(session, model, ids) -> float:
    """log P(ids | start symbol) through an exported LM graph: exact, 512 symbols a call, the state carried."""
    sequence = np.concatenate([[model.vocabulary.start_id], np.asarray(ids)]).astype(np.int64)
    state = np.zeros((model.config.num_hidden_layers, 1, model.config.hidden_size), np.float32)
    total = 0.0
    for start in range(0, len(sequence) - 1, 512):
        chunk = sequence[start : start + 513]
        logits, state = session.run(None, {"input_ids": chunk[None, :-1], "state": state})
        logits = logits[0].astype(np.float64)
        log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        total += float(log_probs[np.arange(len(chunk) - 1), chunk[1:]].sum())
    return total
