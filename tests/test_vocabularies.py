"""
Vocabularies beyond text8 (issue 15, first part): `chars` and `bytes` tokenizers and models, saved, loaded (installed
and as remote code), generating and scoring; text8 folders keep loading unchanged.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hf_charnn import CharGRUConfig, CharGRUForCausalLM, CharGRUForSequenceClassification, CharTokenizer, UserError
from hf_charnn.evaluation import evaluate_lm
from hf_charnn.loading import load_model
from hf_charnn.tokenization_char_gru import Vocabulary

from test_hub import BLOCK_HF_CHARNN, hub_env

SHAKESPEARE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
MANY_SCRIPTS = "Zoë, Ångström; Ελλάδα — 東京 ✓\n"
VOCABULARIES = {
    "chars": lambda: Vocabulary("chars", "".join(sorted(set(SHAKESPEARE)))),
    "chars+unk": lambda: Vocabulary("chars", "".join(sorted(set(SHAKESPEARE))), unk=True),
    "bytes": lambda: Vocabulary("bytes"),
}
TEXTS = {"chars": SHAKESPEARE, "chars+unk": SHAKESPEARE + "Zoë", "bytes": SHAKESPEARE + MANY_SCRIPTS}


def model_for(vocabulary: Vocabulary) -> CharGRUForCausalLM:
    torch.manual_seed(0)
    return CharGRUForCausalLM(CharGRUConfig(embedding_size=8, hidden_size=16, **vocabulary.config_kwargs())).eval()


def test_the_three_kinds():
    text8, chars, unk, raw = Vocabulary(), VOCABULARIES["chars"](), VOCABULARIES["chars+unk"](), Vocabulary("bytes")
    assert text8.size == 27 and text8.encode("az ").tolist() == [0, 25, 26]
    assert chars.size == len(set(SHAKESPEARE)) and chars.decode(chars.encode(SHAKESPEARE)) == SHAKESPEARE
    assert chars.symbols == sorted(chars.symbols)  # code-point order
    with pytest.raises(ValueError, match=r"character 'Z' at position 0 is not one of this model's 30 characters; .*--unk"):
        chars.encode("Zoë")
    assert unk.size == chars.size + 1 and unk.encode("Zo").tolist() == [unk.unk_id, unk.to_id["o"]]
    assert raw.size == 256 and raw.decode(raw.encode(MANY_SCRIPTS)) == MANY_SCRIPTS
    assert len(raw.encode("ë")) == 2 and raw.decode(raw.encode("ë")[:1]) == "\ufffd"  # a cut character never raises
    with pytest.raises(ValueError, match="at most 256 symbols"):
        Vocabulary("chars", "".join(chr(0x4E00 + index) for index in range(300)))


@pytest.mark.parametrize("kind", list(VOCABULARIES))
def test_tokenizer_saves_and_loads_its_vocabulary(tmp_path, kind):
    from transformers import AutoTokenizer

    model = model_for(VOCABULARIES[kind]())
    tokenizer = CharTokenizer.for_model(model.config)
    tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["vocab_kind"] == kind.split("+")[0]
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.vocabulary.symbols == model.vocabulary.symbols and loaded.pad_token_id == model.config.vocab_size
    ids = loaded(TEXTS[kind])["input_ids"]
    assert ids == model.vocabulary.encode(TEXTS[kind]).tolist()
    expected = TEXTS[kind].replace("Zoë", "<unk>o<unk>") if kind == "chars+unk" else TEXTS[kind]
    assert loaded.decode(ids) == expected


@pytest.mark.parametrize("kind", list(VOCABULARIES))
def test_a_model_of_each_kind_scores_sanely_and_generates(kind):
    model = model_for(VOCABULARIES[kind]())
    text = TEXTS[kind]
    results = evaluate_lm(model, text)
    assert results["sane"] and results["normalizes"]
    units = len(text.encode("utf-8")) if kind == "bytes" else len(text)
    assert results["bytes" if kind == "bytes" else "chars"] == units
    assert ("bpb" in results) == (kind == "bytes") and ("bpc" in results) == (kind != "bytes")
    exact = model.get_log_prob_sequence(text, " ")
    assert model.score_long_text(text) == pytest.approx(exact, abs=1e-3)
    assert model.score_long_text(text, num_streams=4, warmup=0) == pytest.approx(exact, rel=0.2)
    assert model.get_next_char_log_probs("Speak").shape == (model.config.vocab_size,)
    tokenizer = CharTokenizer.for_model(model.config)
    output = model.generate(**tokenizer(["Speak"], return_tensors="pt"), max_new_tokens=12, do_sample=False)
    assert output.shape == (1, len(model.vocabulary.encode("Speak")) + 12)
    assert tokenizer.decode(output[0]).startswith("Speak")  # bytes: cut characters decode as U+FFFD, never an error


@pytest.mark.parametrize("kind", ["chars+unk", "bytes"])
def test_saved_models_of_other_vocabularies_load_as_remote_code(tmp_path, kind):
    model = model_for(VOCABULARIES[kind]())
    model.save_pretrained(tmp_path)
    CharTokenizer.for_model(model.config).save_pretrained(tmp_path)
    script = BLOCK_HF_CHARNN + f"""
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
ids = model.generate(**tokenizer(["Speak"], return_tensors="pt"), max_new_tokens=8, do_sample=False)
print(type(model).__module__.split(".")[0], repr(round(model.get_log_prob_sequence({TEXTS[kind]!r}, " "), 4)), ids[0].tolist())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                            env=hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    module, score, ids = result.stdout.split(" ", 2)
    expected_ids = model.generate(**CharTokenizer.for_model(model.config)(["Speak"], return_tensors="pt"), max_new_tokens=8,
                                  do_sample=False)[0].tolist()
    assert module == "transformers_modules" and float(score) == round(model.get_log_prob_sequence(TEXTS[kind], " "), 4)
    assert json.loads(ids) == expected_ids


def test_a_tokenizer_that_does_not_match_the_model_is_refused(tmp_path):
    model = model_for(VOCABULARIES["chars"]())
    model.save_pretrained(tmp_path)
    CharTokenizer().save_pretrained(tmp_path)  # text8's tokenizer beside a chars model
    with pytest.raises(UserError, match=r"the tokenizer's vocabulary \(text8, 27 symbols\) does not match the model's \(chars, 30\)"):
        load_model(tmp_path, "lm")
    CharTokenizer.for_model(model.config).save_pretrained(tmp_path)
    assert load_model(tmp_path, "lm").vocabulary.kind == "chars"
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "characters": config["characters"][:-1]}))
    with pytest.raises(UserError, match=r"cannot load the model \(the config's vocabulary \(chars, 29 symbols\) does not match its vocab_size 30"):
        load_model(tmp_path, "lm")


def test_text8_models_saved_before_vocabularies_load_unchanged(tmp_path, random_lm):
    random_lm.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("vocab_kind", "characters", "unk_token_id"):  # what a folder written before this change holds
        config.pop(key, None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = CharGRUForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.vocabulary.kind == "text8" and loaded.get_log_prob_sequence("sits", " a person ") == pytest.approx(
        random_lm.get_log_prob_sequence("sits", " a person "))
    with pytest.raises(ValueError, match="vowel-mass head reads text8 ids; this LM's vocabulary is bytes"):
        CharGRUForSequenceClassification.from_lm(model_for(Vocabulary("bytes")))
    assert np.allclose(np.exp(loaded.get_next_char_log_probs(" ")).sum(), 1.0, atol=1e-5)
