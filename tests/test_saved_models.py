"""Model folders saved by the release before the layout change (tests/fixtures/saved_models) load and score the same."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_hub import BLOCK_HF_CHARNN

import hf_charnn  # noqa: F401  (registers the Auto classes)
from hf_charnn import CharTokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "saved_models"
SCORES = json.loads((FIXTURES / "scores.json").read_text())
LMS = ["text8-lm", "chars-lm", "bytes-lm"]
CLASSIFIERS = ["vowel-classifier", "vowel-mass-classifier", "labels-classifier"]


def score_folder(folder: str, kind: str, spec: dict, remote: bool) -> dict:
    """What a folder computes: here with the installed classes, or (as a script) with the folder's own remote code."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
    with torch.no_grad():
        if kind == "lm":
            model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=remote).eval()
            inputs = tokenizer([spec["context"]], return_tensors="pt")
            return {
                "score_texts": model.score_texts(spec["continuations"], context=spec["context"]),
                "next_log_probs": model.get_next_char_log_probs(spec["context"]).tolist(),
                "score_long_text": model.score_long_text(spec["long_text"]),
                "greedy": tokenizer.decode(model.generate(**inputs, max_new_tokens=12, do_sample=False)[0]),
            }
        model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=remote).eval()
        batch = tokenizer(spec["texts"], return_tensors="pt", padding=True)
        return {
            "logits": model(**batch).logits.tolist(),
            "predictions": model.predict_batch(spec["texts"]),
            "id2label": {str(key): value for key, value in model.config.id2label.items()},
            "module": type(model).__module__,
        }


def scores_of(name: str, remote: bool) -> dict:
    kind = "lm" if name in LMS else "classifier"
    if not remote:
        return score_folder(str(FIXTURES / name), kind, SCORES[name], remote=False)
    # A fresh interpreter where `import hf_charnn` fails: only the folder's own code can load it.
    script = (
        BLOCK_HF_CHARNN
        + "import json, sys\n"
        + inspect.getsource(score_folder)
        + ("print(json.dumps(score_folder(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), remote=True)))\n")
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(FIXTURES / name), kind, json.dumps(SCORES[name])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_same(name: str, now: dict):
    saved = SCORES[name]
    if name in LMS:
        assert now["score_texts"] == pytest.approx(saved["score_texts"], abs=1e-4)
        assert now["next_log_probs"] == pytest.approx(saved["next_log_probs"], abs=1e-4)
        assert now["score_long_text"] == pytest.approx(saved["score_long_text"], abs=1e-3)
        assert now["greedy"] == saved["greedy"]
    else:
        assert torch.tensor(now["logits"]).allclose(torch.tensor(saved["logits"]), atol=1e-4)
        assert now["predictions"] == saved["predictions"] and now["id2label"] == saved["id2label"]


@pytest.mark.parametrize("remote", [False, True], ids=["installed", "remote code"])
@pytest.mark.parametrize("name", LMS + CLASSIFIERS)
def test_a_folder_saved_by_the_earlier_release_scores_the_same(name, remote):
    now = scores_of(name, remote)
    assert_same(name, now)
    if name in CLASSIFIERS:  # installed: today's classes; remote: the folder's own files
        assert now["module"].startswith("transformers_modules." if remote else "hf_charnn.models.")


def test_the_vowel_mass_head_loads_as_symbol_groups_and_survives_a_resave(tmp_path):
    from hf_charnn.models.auto import load_model

    model = load_model(FIXTURES / "vowel-mass-classifier", "classifier")
    assert model.config.symbol_groups == {"consonant": "bcdfghjklmnpqrstvwxyz", "vowel": "aeiou"}
    model.save_pretrained(tmp_path)
    CharTokenizer.for_model(model.config).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert "vowel_mass_head" not in saved and saved["symbol_groups"]["vowel"] == "aeiou"
    again = load_model(tmp_path, "classifier")
    texts = SCORES["vowel-mass-classifier"]["texts"]
    assert again.predict_batch(texts) == SCORES["vowel-mass-classifier"]["predictions"]
