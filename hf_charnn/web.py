"""
The model in a browser: `hf-charnn export MODEL --web DIR` writes a static site that runs the model client-side on
onnxruntime-web, with no server beyond one that serves files (a static Hugging Face Space, `python -m http.server`).

    DIR/index.html     the page: generate and score (LM), label probabilities as you type (classifier), tags (tagger)
    DIR/hf_charnn.js   the JS module the page uses (`load()`, then generate / score / classify / tag); importable alone
    DIR/model.onnx     the fp32 ONNX graph (`export.py`: checked against PyTorch to 1e-4 before anything is written)
    DIR/model.json     what the page needs: task, vocabulary, sizes, labels, thresholds, the length training cut
                       texts to, where onnxruntime-web is
    DIR/ort/           onnxruntime-web (ORT_WEB_VERSION: its wasm bundle and binary), unless it loads from the CDN

onnxruntime-web comes from `--ort-dir` (a local copy: the package's `dist/` folder), else from the npm registry at
export time (`npm pack`, cached under the Hugging Face cache), else the page loads it from CDN_URL, pinned to the
same version (`--ort-cdn` asks for that: a site 15 MB smaller that needs the CDN).
"""

import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from .errors import UserError

ORT_WEB_VERSION = "1.31.1"  # the onnxruntime-web the page was written and tested with
ORT_WEB_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")  # the bundle, and the binary it loads
CDN_URL = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
PAGE_FILES = ("index.html", "hf_charnn.js")  # hf_charnn/web_page/
SITE_FILE = "model.json"
GRAPH_FILE = "model.onnx"
NPM_TIMEOUT_S = 180


def _cached_onnxruntime_web() -> Path:
    from .data.cache import cache_home

    return cache_home() / f"onnxruntime-web-{ORT_WEB_VERSION}"


def onnxruntime_web_from_npm() -> tuple[Path | None, str]:
    """
    (a folder holding ORT_WEB_FILES, how it was found) from the npm registry (`npm pack`, once: the files are kept
    under the Hugging Face cache); (None, why not) where npm is missing or the registry cannot be reached.
    """
    folder = _cached_onnxruntime_web()
    if all((folder / name).is_file() for name in ORT_WEB_FILES):
        return folder, f"npm (onnxruntime-web@{ORT_WEB_VERSION}, cached in {folder})"
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed"
    with tempfile.TemporaryDirectory() as scratch:
        try:
            packed = subprocess.run(
                [npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--pack-destination", scratch, "--silent"]
                + ["--fetch-retries", "0", "--fetch-timeout", "30000"],
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return None, f"npm pack took more than {NPM_TIMEOUT_S} s"
        archives = list(Path(scratch).glob("onnxruntime-web-*.tgz"))
        if packed.returncode != 0 or not archives:
            last = (packed.stderr.strip().splitlines() or ["no archive"])[-1]
            return None, f"npm pack failed: {last}"
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archives[0]) as archive:
            for name in ORT_WEB_FILES:
                source = archive.extractfile(f"package/dist/{name}")
                (partial / name).write_bytes(source.read())
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)  # whole or not at all: a cut download never passes for the package
    return folder, f"npm (onnxruntime-web@{ORT_WEB_VERSION}, fetched with npm pack)"


def _local_onnxruntime_web(ort_dir: str | Path) -> Path:
    """`--ort-dir`: onnxruntime-web's dist/ folder (or the package folder holding it), checked for ORT_WEB_FILES."""
    folder = Path(ort_dir)
    if (folder / "dist").is_dir() and not (folder / ORT_WEB_FILES[0]).is_file():
        folder = folder / "dist"
    missing = [name for name in ORT_WEB_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"--ort-dir {ort_dir}: no {', '.join(missing)} there; point it at onnxruntime-web's dist/ folder "
            f"(npm install onnxruntime-web@{ORT_WEB_VERSION}: node_modules/onnxruntime-web/dist), or drop --ort-dir"
        )
    return folder


def _has_labels(model) -> bool:
    """A classifier's or a tagger's model (its config's labels are its outputs); an LM predicts symbols."""
    from .models.modeling_char_gru import CharGRUForCausalLM

    return not isinstance(model, CharGRUForCausalLM)


def describe(model, what: str) -> str:
    """A few words on the model (`what` it is) for the page: 'character-level GRU language model (text8, 2 x 256)'."""
    config = model.config
    sizes = f"{config.num_hidden_layers} x {config.hidden_size}{', bidirectional' if config.bidirectional else ''}"
    labels = f", {config.num_labels} labels" if _has_labels(model) else ""
    return f"character-level GRU {what} ({model.vocabulary.kind} vocabulary, {sizes}{labels})"


def trained_max_length(folder: Path) -> int | None:
    """
    The length a classifier's texts were cut to in training and evaluation (its tokenizer's `model_max_length`, which
    `pipeline(..., truncation=True)` cuts to as well); None where there is none.
    """
    try:
        length = json.loads((Path(folder) / "tokenizer_config.json").read_text()).get("model_max_length")
    except (OSError, ValueError):
        return None
    return int(length) if isinstance(length, int) and 0 < length < 10**9 else None


def site_config(
    model, task, name: str, onnxruntime: dict, difference: float, source: dict | None, max_length: int | None
) -> dict:
    """
    model.json: what the page and hf_charnn.js read (the vocabulary travels here, never in the JS), for a model of
    `task` (its settings class).
    """
    vocabulary = model.vocabulary
    config = model.config
    site = {
        "format": 1,
        "name": name,
        "kind": task.task,
        "description": describe(model, task.model_noun),
        "model": GRAPH_FILE,
        "vocabulary": {
            "kind": vocabulary.kind,
            "symbols": vocabulary.symbols,
            "unk_id": vocabulary.unk_id,
            "start_id": vocabulary.start_id,
        },
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "onnxruntime": onnxruntime,
        "largest_difference": difference,  # the graph against PyTorch, over random inputs of several shapes
    }
    if _has_labels(model):
        site["labels"] = [config.id2label[index] for index in range(config.num_labels)]
        site["multi_label"] = getattr(config, "problem_type", None) == "multi_label_classification"
        if site["multi_label"]:
            site["thresholds"] = [float(value) for value in model.thresholds().tolist()]
        if max_length:
            site["max_length"] = max_length
    if source:
        site["source"] = source
    return site


def export_web(
    model_dir: str | Path,
    web_dir: str | Path,
    ort_dir: str | Path | None = None,
    ort_cdn: bool = False,
    overwrite: bool = False,
    source: dict | None = None,
) -> dict:
    """
    Write the static site of a saved model folder (or a Hub model id) into `web_dir` (module docstring); returns
    model.json with the folder and how onnxruntime-web was found. `source` ({"repo", "revision"}) names the Hub
    commit the page shows (a Hub id: the commit it was downloaded at).
    An existing `web_dir` is kept unless `overwrite`; nothing is left half-written.
    """
    from .export import export_checked, require_onnx
    from .models.auto import load_model, looks_like_repo_id, task_of_folder

    require_onnx()
    if looks_like_repo_id(str(model_dir)):  # a Hub model: its files at the newest commit, which the page then names
        from .training.starting_model import download_model

        snapshot = download_model(str(model_dir), None, flag="MODEL")
        source = source or {"repo": str(model_dir), "revision": snapshot.name}
        model_dir = snapshot
    target = Path(web_dir)
    if target.exists() and not overwrite:
        raise UserError(f"{target} exists; pass --overwrite to replace it, or name another folder")
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is a file, not a folder: name another --web folder")
    task = task_of_folder(model_dir)
    model = load_model(model_dir, task.task)
    local_ort = _local_onnxruntime_web(ort_dir) if ort_dir else None
    if local_ort is None and not ort_cdn:
        local_ort, found = onnxruntime_web_from_npm()
    else:
        found = f"--ort-dir {ort_dir}" if local_ort else "--ort-cdn"
    if local_ort is not None:
        onnxruntime = {"source": found, "module": f"ort/{ORT_WEB_FILES[0]}", "wasm": f"ort/{ORT_WEB_FILES[1]}"}
    else:
        onnxruntime = {
            "source": f"CDN ({found})",
            "module": CDN_URL + ORT_WEB_FILES[0],
            "wasm": CDN_URL + ORT_WEB_FILES[1],
        }
    onnxruntime["version"] = ORT_WEB_VERSION

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        site_dir = Path(scratch) / "site"
        site_dir.mkdir()
        difference = export_checked(model, site_dir / GRAPH_FILE)  # (the scratch folder goes if it raises)
        page = Path(__file__).with_name("web_page")
        for name in PAGE_FILES:
            shutil.copyfile(page / name, site_dir / name)
        if local_ort is not None:
            (site_dir / "ort").mkdir()
            for name in ORT_WEB_FILES:
                shutil.copyfile(local_ort / name, site_dir / "ort" / name)
        name = source["repo"] if source else Path(model_dir).resolve().name
        site = site_config(model, task, name, onnxruntime, difference, source, trained_max_length(model_dir))
        (site_dir / SITE_FILE).write_text(json.dumps(site, indent=1, ensure_ascii=False) + "\n")
        if target.exists():
            shutil.rmtree(target)
        site_dir.rename(target)
    return {**site, "folder": str(target), "files": sorted(str(path.relative_to(target)) for path in target.rglob("*"))}
