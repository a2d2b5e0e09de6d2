"""The Gradio demo: its functions, the app through gradio_client, a real browser, the CLI, and the Space push."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a closed network: no calls home
gradio = pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")

from browser import headless_chromium  # noqa: E402
from conftest import free_port  # noqa: E402
from hub_server import LocalHub  # noqa: E402
from test_hub import BLOCK_HF_CHARNN, TOKEN, hub_env, push, run  # noqa: E402

from hf_charnn import CharGRUForCausalLM, demo  # noqa: E402
from hf_charnn.cli import train_run as train  # noqa: E402
from hf_charnn.exercise.files import VOWEL_GROUPS  # noqa: E402
from hf_charnn.training import TrainingConfig  # noqa: E402

SCREENSHOT_DIR = Path(os.environ.get("HF_CHARNN_SCREENSHOTS", "")) if os.environ.get("HF_CHARNN_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def trained_lm(tmp_path_factory, tiny_data_dir):
    folder = tmp_path_factory.mktemp("demo-lm")
    train(
        TrainingConfig.from_preset(
            "lm",
            "default",
            data_dir=str(tiny_data_dir),
            output_dir=str(folder),
            embedding_size=8,
            hidden_size=24,
            epochs=2,
            batch_size=4,
            chunk_size=16,
            progress_bar=False,
            mixed_precision="no",
        )
    )
    shutil.rmtree(folder / "checkpoints")
    return folder


@pytest.fixture(scope="module")
def lm(trained_lm):
    return CharGRUForCausalLM.from_pretrained(trained_lm).eval()


def test_write_normalizes_streams_and_caps(lm):
    updates = list(demo.generate_stream(lm, "The U.S. in 1984", temperature=0.8, top_k=5, length=40, seed=3))
    texts = [text for text, _ in updates]
    assert len(updates) == 5 and all(len(a) < len(b) for a, b in zip(texts, texts[1:]))  # text appears as it grows
    assert (
        texts[-1].startswith("the u s in one nine eight four ")
        and len(texts[-1]) == len("the u s in one nine eight four ") + 40
    )
    assert "Normalized into text8 form (a-z and space): 9 of 16 characters were not text8 symbols" in updates[-1][1]
    assert (
        texts[-1] == [text for text, _ in demo.generate_stream(lm, "The U.S. in 1984", 0.8, 5, 40, 3)][-1]
    )  # the seed
    text, note = list(demo.generate_stream(lm, "", 0.0, 0, 10**6, 0))[-1]
    assert len(text) == 1 + demo.MAX_GENERATE_CHARS
    assert "empty: starting from a space" in note and f"capped at {demo.MAX_GENERATE_CHARS}" in note
    # A huge prompt is cut (its end kept) before it is normalised or read.
    text, note = list(demo.generate_stream(lm, "x" * 5_000_000 + " the end", 0.0, 0, 8, 0))[-1]
    assert text.startswith("x" * (demo.MAX_PROMPT_CHARS - 8) + " the end") and len(text) == demo.MAX_PROMPT_CHARS + 8
    assert "Read the last 2,000 of 5,000,008 characters" in note


def test_score_gives_bits_and_top_five_per_character(lm):
    scored = demo.score(lm, "Hello, World")
    assert scored["text"] == "hello world" and len(scored["bits"]) == len(scored["alternatives"]) == 11
    assert "Normalized into text8 form" in scored["note"]
    exact = lm.get_log_prob_sequence("hello world", " ")
    assert sum(scored["bits"]) == pytest.approx(-exact / 0.6931471805599453, rel=1e-4)
    assert all(len(top) == 5 and sum(p for _, p in top) <= 1 + 1e-6 for top in scored["alternatives"])
    page = demo.heat_map_html(scored)
    assert page.count('class="hf-charnn-cell"') == 11 and "top 5:" in page
    long = demo.score(lm, "ab " * 10_000)
    assert len(long["bits"]) == demo.MAX_SCORE_CHARS and "Read the first 20,000 of 30,000" in long["note"]
    digits = demo.score(lm, "7" * 3_000_000)  # cut before normalising, which spells each digit out (x7)
    assert len(digits["text"]) == demo.MAX_SCORE_CHARS and "Read the first 20,000 of 3,000,000" in digits["note"]
    assert "Nothing to score" in demo.score(lm, "")["note"]


def test_vowel_predictions_from_the_lm_or_a_classifier(lm, random_classifier):
    text = "the quick brown fox jumps over the lazy dog"
    zero_shot = demo.group_predictions(lm, text, VOWEL_GROUPS)
    assert zero_shot["source"].startswith("LM")
    assert len(zero_shot["positions"]) == sum(char != " " for char in text[1:])  # every position a letter follows
    # Each probability is the LM's vowel mass over its letter mass after the 20 characters before that position.
    for index, p_vowel in zip(zero_shot["positions"], zero_shot["p_second"]):
        probs = np.exp(lm.get_next_char_log_probs(text[max(0, index - 20) : index]))
        assert p_vowel == pytest.approx(probs[[0, 4, 8, 14, 20]].sum() / probs[:26].sum(), abs=1e-5)
    is_vowel = [text[index] in "aeiou" for index in zero_shot["positions"]]
    right = sum((p >= 0.5) == vowel for p, vowel in zip(zero_shot["p_second"], is_vowel))
    assert zero_shot["accuracy"] == pytest.approx(100 * right / len(is_vowel))
    assert demo.serves_groups(random_classifier, VOWEL_GROUPS)
    with_classifier = demo.group_predictions(lm, text, VOWEL_GROUPS, random_classifier)
    assert with_classifier["source"] == "classifier" and with_classifier["p_second"] != zero_shot["p_second"]
    assert demo.groups_html(zero_shot, VOWEL_GROUPS).count("hf-charnn-group") == len(zero_shot["positions"])


@pytest.fixture(scope="module")
def running_app(lm):
    port = free_port()
    app = demo.build_demo(lm, title="test demo", symbol_groups=VOWEL_GROUPS)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.mark.slow
def test_the_app_through_gradio_client(running_app, lm):
    from gradio_client import Client

    client = Client(running_app, verbose=False)
    text, note = client.predict("the ", 0.0, 0, 30, 0, api_name="/generate")
    assert text.startswith("the ") and len(text) == 34 and note == ""
    summary, heat_map = client.predict("the cat sat", api_name="/score")
    assert "bits per character" in summary and heat_map.count('class="hf-charnn-cell"') == 11
    summary, vowels = client.predict("banana bread", api_name="/groups")
    assert "symbols predicted right" in summary and "LM consonant/vowel mass" in summary


@pytest.mark.slow
def test_the_page_in_a_real_browser(running_app, tmp_path):
    browser = headless_chromium(tmp_path / "profile")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as until
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        wait = WebDriverWait(browser, 60)
        browser.get(running_app)
        prompt = wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "#prompt textarea")))
        prompt.clear()
        prompt.send_keys("the history of ")
        browser.find_element(By.ID, "generate").click()
        output = browser.find_element(By.CSS_SELECTOR, "#generated textarea")
        wait.until(lambda _: len(output.get_attribute("value")) > len("the history of "))
        assert output.get_attribute("value").startswith("the history of ")

        next(tab for tab in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']") if tab.text == "Score").click()
        text = wait.until(until.element_to_be_clickable((By.CSS_SELECTOR, "#score-input textarea")))
        text.clear()
        text.send_keys("the cat sat on the mat")
        browser.find_element(By.ID, "score").click()
        wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#heat-map .hf-charnn-cell"))
        cells = browser.find_elements(By.CSS_SELECTOR, "#heat-map .hf-charnn-cell")
        assert len(cells) == len("the cat sat on the mat")
        assert "bits; top 5:" in cells[0].get_attribute("title")
        shot = (SCREENSHOT_DIR or tmp_path) / "demo_score.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()


@pytest.mark.slow
def test_demo_command_errors_are_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    for target, message in [
        (str(tmp_path / "missing"), "model folder not found"),
        ("nobody/no-such-model", "could not be loaded from the Hub"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "hf_charnn", "demo", target], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    no_gradio = "import sys; sys.modules['gradio'] = None\nfrom hf_charnn.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", no_gradio, "demo", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and 'pip install -e ".[demo]"' in result.stderr


@pytest.mark.slow
def test_the_demo_command_serves_the_page(trained_lm):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "hf_charnn", "demo", str(trained_lm), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 120
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (
                    process.stdout.read() if process.poll() is not None else "timeout"
                )
                time.sleep(0.5)
        assert "gradio" in page.lower()
    finally:
        process.terminate()
        process.wait(timeout=30)


SPACE_APP_CHECK = (
    BLOCK_HF_CHARNN
    + """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("space_app", sys.argv[1])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
model, classifier = app.load_models(app.MODEL_ID, app.CLASSIFIER_ID, revision=app.MODEL_REVISION)
scored = app.score(model, "the end")
print(app.MODEL_ID, type(model).__module__.split(".")[0], len(scored["bits"]), type(app.build_demo(model)).__name__,
      round(sum(scored["bits"]), 4))
"""
)


@pytest.mark.slow
def test_push_with_a_space(tmp_path, trained_lm):
    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint)
        result = push(trained_lm, "alice/char-lm", env, "--token", TOKEN, "--space", "alice/char-lm-demo")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "created the demo Space alice/char-lm-demo" in result.stdout
        model_files = hub.state.repos["alice/char-lm"]["files"]
        space = hub.state.spaces["alice/char-lm-demo"]
        assert space["sdk"] == "gradio" and set(space["files"]) == {"app.py", "requirements.txt", "README.md"}
        front_matter = space["files"]["README.md"].decode().split("---")[1]
        assert "sdk: gradio" in front_matter and "app_file: app.py" in front_matter and "alice/char-lm" in front_matter
        app = space["files"]["app.py"].decode()
        assert "MODEL_ID = 'alice/char-lm'" in app and not re.search(r"^\s*(from|import) hf_charnn", app, re.MULTILINE)
        assert "gradio" not in space["files"]["requirements.txt"].decode()  # the Space's SDK brings it
        card = model_files["README.md"].decode()
        assert "https://huggingface.co/spaces/alice/char-lm-demo" in card and "learning_curves.png" in card
        assert model_files["learning_curves.png"][:4] == b"\x89PNG"
        # The Space's app loads the model by its repo id, with the model's own code: hf_charnn is not importable.
        # It is pinned to the model commit it was pushed with: a later push of other weights does not change it.
        pushed_with = result.stdout.split("uploaded")[1].split("/commit/")[1].split()[0]
        assert f"MODEL_REVISION = '{pushed_with}'" in app
        expected_bits = round(sum(demo.score(CharGRUForCausalLM.from_pretrained(trained_lm), "the end")["bits"]), 4)
        retrained = tmp_path / "retrained"
        shutil.copytree(trained_lm, retrained)
        torch.manual_seed(1)
        CharGRUForCausalLM(CharGRUForCausalLM.from_pretrained(trained_lm).config).save_pretrained(retrained)
        assert push(retrained, "alice/char-lm", env, "--token", TOKEN).returncode == 0
        (tmp_path / "app.py").write_bytes(space["files"]["app.py"])
        loaded = run([sys.executable, "-c", SPACE_APP_CHECK, str(tmp_path / "app.py")], env)
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert loaded.stdout.split() == ["alice/char-lm", "transformers_modules", "7", "Blocks", str(expected_bits)]
        # The push uploaded no local path: training_config.json names files by their names alone.
        for name, data in hub.state.repos["alice/char-lm"]["files"].items():
            assert str(trained_lm) not in data.decode("utf-8", "replace") and str(tmp_path) not in data.decode(
                "utf-8", "replace"
            ), name
