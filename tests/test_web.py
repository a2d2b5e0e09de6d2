"""
`hf-charnn export --web`: the static page and its JS module, run in a real headless Chromium on onnxruntime-web and
compared with the PyTorch model; the files and errors of the export; the static Space push.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("onnxruntime", reason="the ONNX extra is not installed")

from browser import headless_chromium, serve_folder  # noqa: E402

import hf_charnn  # noqa: E402
from hf_charnn import demo, web  # noqa: E402
from hf_charnn.cli import train_run  # noqa: E402
from hf_charnn.evaluation import evaluate_lm  # noqa: E402
from hf_charnn.models.tokenization_char_gru import CharTokenizer  # noqa: E402
from hf_charnn.training import TrainingConfig  # noqa: E402

SCREENSHOT_DIR = Path(os.environ["HF_CHARNN_SCREENSHOTS"]) if os.environ.get("HF_CHARNN_SCREENSHOTS") else None
ROOT = Path(__file__).resolve().parents[1]
SAVED = ROOT / "tests" / "fixtures" / "saved_models"
SENTENCES = [
    "The cat sat on the mat.",
    "A dog ran after the cat!",
    "Then the dog sat, and the cat ran.",
    "Who sat on the mat? The cat did.",
]


def cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hf_charnn", *map(str, args)], capture_output=True, text=True, timeout=300, env=env
    )


def saved_random(folder: Path, model_class, characters: str, labels: list[str], **settings) -> Path:
    """A model of random weights over a chars vocabulary, saved with its tokenizer (pipeline reads the folder)."""
    torch.manual_seed(0)
    vocabulary = hf_charnn.Vocabulary("chars", characters)
    config = hf_charnn.CharGRUConfig(
        **vocabulary.config_kwargs(),
        embedding_size=8,
        hidden_size=12,
        num_hidden_layers=2,
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
        **settings,
    )
    model = model_class(config).eval()
    with torch.no_grad():  # weights large enough that the probabilities differ from label to label
        for parameter in model.parameters():
            parameter.mul_(4)
    model.save_pretrained(folder)
    CharTokenizer.for_model(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def chars_lm(tmp_path_factory) -> Path:
    """A small LM trained on sentences with capitals and punctuation (a chars vocabulary)."""
    folder = tmp_path_factory.mktemp("web-lm")
    text = folder / "train.txt"
    text.write_text(" ".join(SENTENCES * 40))
    train_run(
        TrainingConfig.from_preset(
            "lm",
            "default",
            train_file=str(text),
            output_dir=str(folder / "model"),
            embedding_size=8,
            hidden_size=48,
            epochs=40,
            batch_size=8,
            chunk_size=32,
            progress_bar=False,
            mixed_precision="no",
        )
    )
    return folder / "model"


@pytest.fixture(scope="module")
def sites(tmp_path_factory, chars_lm) -> Path:
    """Every page the browser tests open, each in its own folder under one root served on loopback."""
    root = tmp_path_factory.mktemp("sites")
    runtime, how = web.onnxruntime_web_from_npm()  # the real onnxruntime-web, fetched once (the CDN is not reachable)
    if runtime is None:
        pytest.skip(f"onnxruntime-web is not available here: {how}")
    characters = "".join(sorted(set(" ".join(SENTENCES))))
    classifier = saved_random(
        root.parent / "classifier",
        hf_charnn.CharGRUForSequenceClassification,
        characters,
        ["question", "statement", "exclamation"],
        bidirectional=True,
        classifier_readout="pooled",
        ngram_range=[1, 3],
        ngram_buckets=64,
    )
    multi = saved_random(
        root.parent / "multi", hf_charnn.CharGRUForSequenceClassification, characters, ["cat", "dog", "mat"]
    )
    config = json.loads((multi / "config.json").read_text())
    config.update(problem_type="multi_label_classification", label_thresholds=[0.3, 0.5, 0.7])
    (multi / "config.json").write_text(json.dumps(config))
    tagger = saved_random(root.parent / "tagger", hf_charnn.CharGRUForTokenClassification, characters, ["O", "B-WORD"])
    cut = root.parent / "cut"  # a classifier trained on texts cut to 12 characters (its tokenizer says so)
    shutil.copytree(classifier, cut)
    tokenizer_config = json.loads((cut / "tokenizer_config.json").read_text())
    (cut / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "model_max_length": 12}))
    for name, folder in [
        ("lm", chars_lm),
        ("text8", SAVED / "text8-lm"),
        ("bytes", SAVED / "bytes-lm"),
        ("classifier", classifier),
        ("multi", multi),
        ("tagger", tagger),
        ("cut", cut),
    ]:
        web.export_web(folder, root / name, ort_dir=runtime)
    return root


@pytest.fixture(scope="module")
def browser(tmp_path_factory, sites):
    browser = headless_chromium(tmp_path_factory.mktemp("profile"))
    with serve_folder(sites) as base:
        browser.base = base
        yield browser
    browser.quit()


def open_page(browser, name: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # start the console log afresh
    browser.get(f"{browser.base}/{name}/index.html")
    WebDriverWait(browser, 60).until(
        lambda _: (
            browser.find_element(By.ID, "status").get_attribute("data-ready")
            or browser.find_element(By.ID, "error").text
        )
    )
    assert browser.find_element(By.ID, "error").text == ""
    return browser


def call(browser, expression: str):
    """The value of a Promise-returning JS expression (window.hfCharnn...), or the error it rejected with."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"Promise.resolve().then(() => {expression}).then(done, (error) => done({{error: String(error)}}));"
    )


def console_errors(browser) -> list:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def type_into(browser, element_id: str, text: str):
    from selenium.webdriver.common.by import By

    element = browser.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)
    return element


def torch_greedy(folder: Path, prompt: str, length: int) -> str:
    model = hf_charnn.CharGRUForCausalLM.from_pretrained(folder).eval()
    ids = torch.from_numpy(model.vocabulary.encode(prompt))[None]
    generated = model.generate(ids, max_new_tokens=length, do_sample=False)
    return model.vocabulary.decode(generated[0, ids.shape[1] :].tolist())


# -- in the browser ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_lm_page_generates_and_scores_as_pytorch(browser, chars_lm):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, "lm")
    type_into(browser, "prompt", "The dog")
    type_into(browser, "max-chars", "200")
    browser.find_element(By.ID, "generate").click()
    generated = browser.find_element(By.ID, "generated")
    WebDriverWait(browser, 60).until(lambda _: len(generated.text) >= 200)
    expected = torch_greedy(chars_lm, "The dog", 200)
    assert len(set(expected)) > 3  # a text, not one repeated symbol
    # (the page shows a space as itself; .text collapses nothing inside pre-wrap)
    assert generated.get_attribute("textContent") == expected

    text = "Who ran after the dog? The cat, then the dog."
    type_into(browser, "score-text", text)
    browser.find_element(By.ID, "score").click()
    bpc = WebDriverWait(browser, 60).until(lambda _: browser.find_element(By.ID, "bpc").get_attribute("data-value"))
    model = hf_charnn.CharGRUForCausalLM.from_pretrained(chars_lm).eval()
    assert float(bpc) == pytest.approx(evaluate_lm(model, text)["bpc"], abs=1e-4)
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap span")
    assert len(cells) == len(text)
    # Hover: the surprisal and the five likeliest characters there, as the Gradio demo gives them
    expected = demo.score(model, text)
    for position in (0, 1, 9):
        bits, top = cells[position].get_attribute("title").split(" bits; top 5: ")
        assert float(bits) == pytest.approx(expected["bits"][position], abs=0.006)
        shown = [entry.rsplit(" ", 1)[0] for entry in top.removesuffix("%").split("%, ")]
        assert shown == ["␣" if symbol == " " else symbol for symbol, _ in expected["alternatives"][position]]
    assert call(browser, f"window.hfCharnn.score({json.dumps(text)})") == pytest.approx(float(bpc), abs=1e-9)
    assert call(browser, "window.hfCharnn.model.surprisal('').then((result) => result.bits.length)") == 0
    # Sampling: seeded (the same text for the same seed), and not the greedy text.
    sampled = [
        call(browser, f"window.hfCharnn.generate('The ', 60, {{temperature: 1.0, topK: 5, seed: {s}}})")
        for s in (1, 1, 2)
    ]
    assert sampled[0] == sampled[1] != sampled[2] and len(sampled[0]) == 60
    assert call(browser, "window.hfCharnn.generate('The ', 30)") == torch_greedy(chars_lm, "The ", 30)
    assert console_errors(browser) == []
    shot = (SCREENSHOT_DIR or chars_lm.parent) / "web_lm_page.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


@pytest.mark.slow
def test_an_unknown_symbol_gives_the_page_message_and_no_console_error(browser, chars_lm):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, "lm")
    type_into(browser, "prompt", "The #cat")
    browser.find_element(By.ID, "generate").click()
    error = WebDriverWait(browser, 30).until(lambda _: browser.find_element(By.ID, "error").text)
    vocabulary = hf_charnn.CharGRUForCausalLM.from_pretrained(chars_lm).vocabulary
    with pytest.raises(ValueError) as python_error:
        vocabulary.encode("The #cat")
    assert error == str(python_error.value)  # Python's own words: the character, its position, the fix
    assert "character '#' at position 4" in error
    assert console_errors(browser) == []
    rejected = call(browser, "window.hfCharnn.score('é')")
    assert "UnknownSymbolError: character 'é' at position 0" in rejected["error"]


@pytest.mark.slow
def test_text8_and_bytes_pages(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for name, folder, text in [
        ("text8", SAVED / "text8-lm", "the history of the united states"),
        ("bytes", SAVED / "bytes-lm", "Voilà: naïve café, 1984 — ok"),
    ]:
        open_page(browser, name)
        model = hf_charnn.CharGRUForCausalLM.from_pretrained(folder).eval()
        rate = "bpb" if name == "bytes" else "bpc"
        assert call(browser, f"window.hfCharnn.score({json.dumps(text)})") == pytest.approx(
            evaluate_lm(model, text)[rate], abs=1e-4
        )
        assert call(browser, "window.hfCharnn.generate('the ', 200)") == torch_greedy(folder, "the ", 200)
    # A text8 page normalizes what is typed (the box is ticked), or says what is not a text8 symbol.
    open_page(browser, "text8")
    type_into(browser, "score-text", "In 1984, Orwell!")
    browser.find_element(By.ID, "score").click()
    WebDriverWait(browser, 30).until(lambda _: browser.find_element(By.ID, "bpc").get_attribute("data-value"))
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap span")
    assert "".join(cell.text for cell in cells).replace("␣", " ") == hf_charnn.normalize_text("In 1984, Orwell!")
    browser.find_element(By.ID, "normalize").click()
    browser.find_element(By.ID, "score").click()
    error = WebDriverWait(browser, 30).until(lambda _: browser.find_element(By.ID, "error").text)
    assert error.startswith("character 'I' at position 0 is not one of the 27 text8 symbols")
    assert console_errors(browser) == []


@pytest.mark.slow
def test_classifier_pages_match_the_pipeline(browser, sites):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from transformers import pipeline

    for name in ("classifier", "multi"):
        folder = sites.parent / name
        classify = pipeline("text-classification", model=str(folder))
        open_page(browser, name)
        for text in ["The cat sat.", "Who ran?", "A dog ran after the cat!"]:
            expected = {entry["label"]: entry["score"] for entry in classify(text, top_k=None)}
            got = call(browser, f"window.hfCharnn.classify({json.dumps(text)})")
            assert got.keys() == expected.keys()
            for label, probability in expected.items():
                assert got[label] == pytest.approx(probability, abs=1e-4)
        # Typed, the page shows every label's probability as it changes, the predicted one(s) marked.
        type_into(browser, "classify-text", "Who sat on the mat?")
        rows = WebDriverWait(browser, 30).until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#labels .label"))
        shown = {row.get_attribute("data-label"): float(row.get_attribute("data-probability")) for row in rows}
        expected = {entry["label"]: entry["score"] for entry in classify("Who sat on the mat?", top_k=None)}
        assert shown == pytest.approx(expected, abs=1e-4)
        chosen = {row.get_attribute("data-label") for row in rows if "chosen" in row.get_attribute("class")}
        if name == "multi":
            assert chosen == {label for label, t in zip(["cat", "dog", "mat"], [0.3, 0.5, 0.7]) if expected[label] >= t}
        else:
            assert chosen == {max(expected, key=expected.get)}
        assert console_errors(browser) == []


@pytest.mark.slow
def test_a_classifier_trained_on_cut_texts_reads_their_first_characters(browser, sites):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(sites.parent / "cut"))
    text = "A dog ran after the cat! Then the cat sat."
    cut = {entry["label"]: entry["score"] for entry in classify(text, top_k=None, truncation=True)}
    whole = {entry["label"]: entry["score"] for entry in classify(text, top_k=None)}
    assert cut != pytest.approx(whole, abs=1e-4)  # (the cut matters for this text)
    open_page(browser, "cut")
    assert call(browser, f"window.hfCharnn.classify({json.dumps(text)})") == pytest.approx(cut, abs=1e-4)
    type_into(browser, "classify-text", text)
    note = WebDriverWait(browser, 30).until(lambda _: browser.find_element(By.ID, "classify-note").text)
    assert note == f"Read the first 12 of {len(text)} characters, as training read its texts."


@pytest.mark.slow
def test_the_tagger_page_shows_each_characters_tag(browser, sites):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = hf_charnn.CharGRUForTokenClassification.from_pretrained(sites.parent / "tagger").eval()
    text = "The cat sat on the mat."
    expected = [model.config.id2label[index] for index in model.predict_tags([text])[0]]
    open_page(browser, "tagger")
    type_into(browser, "tag-text", text)
    cells = WebDriverWait(browser, 30).until(
        lambda _: (
            browser.find_elements(By.CSS_SELECTOR, "#tags .tagged")
            if len(browser.find_elements(By.CSS_SELECTOR, "#tags .tagged")) == len(text)
            else None
        )
    )
    assert [cell.get_attribute("data-tag") for cell in cells] == expected
    assert [entry["tag"] for entry in call(browser, f"window.hfCharnn.tag({json.dumps(text)})")] == expected
    assert console_errors(browser) == []


# -- the export's files and errors -------------------------------------------------------------------------------------
def test_the_site_holds_the_page_the_graph_and_what_the_page_needs(tmp_path):
    site = web.export_web(SAVED / "labels-classifier", tmp_path / "site", ort_cdn=True)
    folder = Path(site["folder"])
    assert sorted(path.name for path in folder.iterdir()) == ["hf_charnn.js", "index.html", "model.json", "model.onnx"]
    written = json.loads((folder / "model.json").read_text())
    model = hf_charnn.CharGRUForSequenceClassification.from_pretrained(SAVED / "labels-classifier")
    assert written["kind"] == "classifier" and written["labels"] == [
        model.config.id2label[index] for index in range(model.config.num_labels)
    ]
    assert written["vocabulary"]["symbols"] == model.vocabulary.symbols and written["largest_difference"] < 1e-4
    # --ort-cdn: the page loads the pinned onnxruntime-web from the CDN
    assert written["onnxruntime"]["module"] == web.CDN_URL + "ort.wasm.bundle.min.mjs"
    assert f"onnxruntime-web@{web.ORT_WEB_VERSION}/" in written["onnxruntime"]["wasm"]


def test_ort_dir_copies_a_local_onnxruntime_web(tmp_path):
    local = tmp_path / "node_modules" / "onnxruntime-web" / "dist"
    local.mkdir(parents=True)
    for name in web.ORT_WEB_FILES:
        (local / name).write_bytes(name.encode())
    site = web.export_web(SAVED / "chars-lm", tmp_path / "site", ort_dir=local.parent)
    assert (tmp_path / "site" / "ort" / web.ORT_WEB_FILES[1]).read_bytes() == web.ORT_WEB_FILES[1].encode()
    assert (
        site["onnxruntime"]["module"] == "ort/ort.wasm.bundle.min.mjs" and "--ort-dir" in site["onnxruntime"]["source"]
    )


@pytest.mark.slow
def test_without_npm_the_page_loads_onnxruntime_web_from_the_cdn(tmp_path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "HF_HOME": str(tmp_path / "hf-home")}
    assert shutil.which("npm", path=env["PATH"]) is None
    result = cli("export", SAVED / "chars-lm", "--web", tmp_path / "site", env=env)
    assert result.returncode == 0, result.stderr
    assert "from CDN (npm is not installed)" in result.stdout
    site = json.loads((tmp_path / "site" / "model.json").read_text())
    assert site["onnxruntime"]["module"].startswith(web.CDN_URL) and not (tmp_path / "site" / "ort").exists()


@pytest.mark.slow
def test_onnxruntime_web_from_npm(tmp_path, monkeypatch):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    folder, how = web.onnxruntime_web_from_npm()
    if folder is None and "npm pack failed" in how:
        pytest.skip(f"the npm registry cannot be reached: {how}")
    assert folder is not None, how
    assert (folder / web.ORT_WEB_FILES[1]).read_bytes()[:4] == b"\0asm" and "fetched with npm pack" in how
    assert web.onnxruntime_web_from_npm() == (
        folder,
        f"npm (onnxruntime-web@{web.ORT_WEB_VERSION}, cached in {folder})",
    )


@pytest.mark.slow
def test_export_web_errors_are_one_line_and_write_nothing(tmp_path):
    bidirectional_lm = tmp_path / "bidirectional-lm"
    shutil.copytree(SAVED / "chars-lm", bidirectional_lm)
    config = json.loads((bidirectional_lm / "config.json").read_text())
    (bidirectional_lm / "config.json").write_text(json.dumps({**config, "bidirectional": True}))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    not_ours = tmp_path / "not-ours"
    not_ours.mkdir()
    (not_ours / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    save_file({"weight": torch.zeros(2)}, str(not_ours / "model.safetensors"))
    for args, message in [
        ([bidirectional_lm, "--web", tmp_path / "a"], "an LM reads left to right"),
        ([SAVED / "chars-lm", "--web", existing, "--ort-cdn"], "exists; pass --overwrite"),
        ([not_ours, "--web", tmp_path / "b"], "names none of hf_charnn's models"),
        ([SAVED / "chars-lm", "--web", tmp_path / "c", "--ort-dir", tmp_path], "no ort.wasm.bundle.min.mjs"),
        ([SAVED / "chars-lm", "--ort-cdn"], "name the format"),
    ]:
        result = cli("export", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    assert [path.name for path in existing.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".*"))  # no half-written site left beside
    replaced = cli("export", SAVED / "chars-lm", "--web", existing, "--ort-cdn", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert "python -m http.server" in replaced.stdout and not (existing / "keep.txt").exists()


@pytest.mark.slow
def test_push_a_static_space(tmp_path):
    from hub_server import LocalHub
    from test_hub import TOKEN, hub_env, push

    model = tmp_path / "model"
    shutil.copytree(SAVED / "chars-lm", model)
    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint)
        result = push(model, "alice/char-lm", env, "--token", TOKEN, "--space", "alice/char-lm-web", "--static")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "created the static Space alice/char-lm-web" in result.stdout
        space = hub.state.spaces["alice/char-lm-web"]
        assert space["sdk"] == "static"
        assert {"index.html", "hf_charnn.js", "model.onnx", "model.json", "README.md"} <= set(space["files"])
        front_matter = space["files"]["README.md"].decode().split("---")[1]
        assert (
            "sdk: static" in front_matter and "app_file: index.html" in front_matter and "alice/char-lm" in front_matter
        )
        pushed_with = result.stdout.split("uploaded")[1].split("/commit/")[1].split()[0]
        site = json.loads(space["files"]["model.json"])
        assert site["source"] == {"repo": "alice/char-lm", "revision": pushed_with} and site["name"] == "alice/char-lm"
        card = hub.state.repos["alice/char-lm"]["files"]["README.md"].decode()
        assert "https://huggingface.co/spaces/alice/char-lm-web" in card
        refused = push(model, "alice/char-lm", env, "--token", TOKEN, "--static")
        assert refused.returncode == 2 and "name it with --space" in refused.stderr
        # A Hub model's page, made from its newest commit, names that commit.
        exported = cli("export", "alice/char-lm", "--web", tmp_path / "from-hub", "--ort-cdn", env=env)
        assert exported.returncode == 0, exported.stderr[-2000:]
        from_hub = json.loads((tmp_path / "from-hub" / "model.json").read_text())
        assert from_hub["source"] == {"repo": "alice/char-lm", "revision": pushed_with}
        missing = cli("export", "alice/no-such-model", "--web", tmp_path / "none", "--ort-cdn", env=env)
        assert missing.returncode == 2 and "MODEL alice/no-such-model: no such model on the Hub" in missing.stderr
        assert not (tmp_path / "none").exists()
    assert math.isfinite(site["largest_difference"])
