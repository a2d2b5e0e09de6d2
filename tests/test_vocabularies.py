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
from test_hub import BLOCK_HF_CHARNN, hub_env

from hf_charnn import CharGRUConfig, CharGRUForCausalLM, CharGRUForSequenceClassification, CharTokenizer, UserError
from hf_charnn.exercise.harness import evaluate_exercise_lm
from hf_charnn.models.auto import load_model
from hf_charnn.models.tokenization_char_gru import Vocabulary

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
    with pytest.raises(
        ValueError, match=r"character 'Z' at position 0 is not one of this model's 30 characters; .*--unk"
    ):
        chars.encode("Zoë")
    assert unk.size == chars.size + 1 and unk.encode("Zo").tolist() == [unk.unk_id, unk.to_id["o"]]
    assert raw.size == 256 and raw.decode(raw.encode(MANY_SCRIPTS)) == MANY_SCRIPTS
    emoji = Vocabulary("chars", "ab\U0001f600")  # beyond the Basic Multilingual Plane
    assert emoji.encode("\U0001f600ab").tolist() == [2, 0, 1]
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
    results = evaluate_exercise_lm(model, text)  # the exercise's checks hold in every vocabulary
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
    script = (
        BLOCK_HF_CHARNN
        + f"""
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
ids = model.generate(**tokenizer(["Speak"], return_tensors="pt"), max_new_tokens=8, do_sample=False)
print(type(model).__module__.split(".")[0], repr(round(model.get_log_prob_sequence({TEXTS[kind]!r}, " "), 4)), ids[0].tolist())  # noqa: E501
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        env=hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module, score, ids = result.stdout.split(" ", 2)
    expected_ids = model.generate(
        **CharTokenizer.for_model(model.config)(["Speak"], return_tensors="pt"), max_new_tokens=8, do_sample=False
    )[0].tolist()
    assert module == "transformers_modules" and float(score) == round(model.get_log_prob_sequence(TEXTS[kind], " "), 4)
    assert json.loads(ids) == expected_ids


def test_a_tokenizer_that_does_not_match_the_model_is_refused(tmp_path):
    model = model_for(VOCABULARIES["chars"]())
    model.save_pretrained(tmp_path)
    CharTokenizer().save_pretrained(tmp_path)  # text8's tokenizer beside a chars model
    with pytest.raises(
        UserError, match=r"the tokenizer's vocabulary \(text8, 27 symbols\) does not match the model's \(chars, 30\)"
    ):
        load_model(tmp_path, "lm")
    CharTokenizer.for_model(model.config).save_pretrained(tmp_path)
    assert load_model(tmp_path, "lm").vocabulary.kind == "chars"
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "characters": config["characters"][:-1]}))
    with pytest.raises(
        UserError,
        match=r"cannot load the model \(the config's vocabulary \(chars, 29 symbols\) does not match its vocab_size 30",
    ):
        load_model(tmp_path, "lm")


def test_text8_models_saved_before_vocabularies_load_unchanged(tmp_path, random_lm):
    random_lm.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("vocab_kind", "characters", "unk_token_id"):  # what a folder written before this change holds
        config.pop(key, None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = CharGRUForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.vocabulary.kind == "text8" and loaded.get_log_prob_sequence("sits", " a person ") == pytest.approx(
        random_lm.get_log_prob_sequence("sits", " a person ")
    )
    with pytest.raises(ValueError, match="symbol groups name 'aeiou', not in this LM's chars vocabulary"):
        CharGRUForSequenceClassification.from_lm(model_for(Vocabulary("chars", characters="XYZ ")), {"vowel": "aeiou"})
    assert np.allclose(np.exp(loaded.get_next_char_log_probs(" ")).sum(), 1.0, atol=1e-5)


# -- training in any vocabulary ------------------------------------------------------------------------------------
def punctuated_text(chars: int, seed: int = 0, extra: str = "") -> str:
    """Generated lines of capitalised words with punctuation and digits (and `extra` characters sprinkled in)."""
    rng = np.random.default_rng(seed)
    words = ["the", "king", "speak", "citizen", "hear", "me", "proceed", "rome", "good", "night", "O", "thou"]
    lines = []
    while sum(map(len, lines)) < chars:
        chosen = [str(rng.choice(words)) for _ in range(int(rng.integers(3, 9)))]
        chosen[0] = chosen[0].capitalize()
        line = " ".join(chosen) + str(rng.choice([".", ",", "!", "?", ";", " 42."]))
        if extra:
            line += " " + "".join(rng.choice(list(extra), size=3))
        lines.append(line)
    return "\n".join(lines)[:chars]


def train_argv(folder, train_text, valid_text, *extra):
    (folder / "train.txt").write_text(train_text, encoding="utf-8")
    (folder / "valid.txt").write_text(valid_text, encoding="utf-8")
    return [
        "train-lm",
        "--train-file",
        str(folder / "train.txt"),
        "--validation-file",
        str(folder / "valid.txt"),
        "--output-dir",
        str(folder / "run"),
        "--embedding-size",
        "8",
        "--hidden-size",
        "32",
        "--batch-size",
        "4",
        "--chunk-size",
        "32",
        "--max-steps",
        "20",
        "--save-steps",
        "10",
        "--logging-steps",
        "10",
        "--mixed-precision",
        "no",
        "--no-progress-bar",
        *extra,
    ]


def test_auto_builds_a_chars_vocabulary_from_all_the_texts_and_every_command_works(tmp_path, corpus_cache, capsys):
    from hf_charnn.cli import main

    train_text, valid_text = punctuated_text(20_000), punctuated_text(3_000, seed=1) + "\nZ"  # Z only in validation
    assert main(train_argv(tmp_path, train_text, valid_text)) == 0
    out = capsys.readouterr().out
    distinct = sorted(set(train_text + valid_text))
    assert (
        f"vocabulary: chars: auto ({len(distinct)} distinct characters in the training, validation and test texts)"
        in out
    )
    summary = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert summary["vocabulary"]["kind"] == "chars" and "loss" in summary["results"]
    assert "sane" not in summary["results"]  # the exercise's checks and words are the exercise's alone
    model = load_model(tmp_path / "run", "lm")
    assert model.vocabulary.symbols == distinct and model.config.vocab_size == len(distinct)
    assert -summary["results"]["loss"] * len(valid_text) == pytest.approx(model.score_long_text(valid_text), abs=1e-2)
    card = (tmp_path / "run" / "README.md").read_text()
    assert f"chars: {len(distinct)} symbols built from the training data" in card and "normalize_text" not in card

    assert main(["generate", str(tmp_path / "run"), "--prompt", "Good night, ", "--max-new-chars", "30"]) == 0
    generated = capsys.readouterr().out.rstrip("\n")
    assert generated.startswith("Good night, ") and len(generated) == len("Good night, ") + 30
    (tmp_path / "score.txt").write_text("Hear me speak!\nO Rome.")
    assert main(["evaluate-lm", str(tmp_path / "run"), "--text", str(tmp_path / "score.txt")]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["chars"] == 22 and -scored["loss"] * 22 == pytest.approx(
        model.get_log_prob_sequence("Hear me speak!\nO Rome.", " "), abs=1e-3
    )
    (tmp_path / "unseen.txt").write_text("Hear me é")
    assert main(["evaluate-lm", str(tmp_path / "run"), "--text", str(tmp_path / "unseen.txt")]) == 2
    assert "unseen.txt: character 'é' at position 8 is not one of this model's" in capsys.readouterr().err
    # The vocabulary is part of the run: a resume in another one is refused.
    assert main([*train_argv(tmp_path, train_text, valid_text, "--vocab", "bytes"), "--resume-from", "latest"]) == 2
    assert "vocab 'auto' -> 'bytes'" in capsys.readouterr().err


def test_auto_keeps_text8_for_text8_form_text_and_falls_back_to_bytes(tmp_path, corpus_cache, capsys):
    from hf_charnn.cli import main

    text8_form = "the king speaks to the citizens of rome " * 300
    (tmp_path / "a").mkdir()
    assert main(train_argv(tmp_path / "a", text8_form, text8_form[:2000])) == 0
    assert "vocabulary: text8: auto (every character of the corpus is a text8 symbol)" in capsys.readouterr().out
    assert load_model(tmp_path / "a" / "run", "lm").vocabulary.kind == "text8"

    many = "".join(chr(0x4E00 + index) for index in range(300))  # 300 distinct CJK characters
    (tmp_path / "b").mkdir()
    assert main(train_argv(tmp_path / "b", punctuated_text(8_000, extra=many), punctuated_text(2_000, 1))) == 0
    assert "vocabulary: bytes: auto (more than 255 distinct characters" in capsys.readouterr().out
    summary = json.loads((tmp_path / "b" / "run" / "eval_results.json").read_text())
    assert summary["vocabulary"]["kind"] == "bytes" and "bpb" in summary["results"] and "bytes" in summary["results"]
    assert "train_bpb" in (tmp_path / "b" / "run" / "metrics.jsonl").read_text()
    card = (tmp_path / "b" / "run" / "README.md").read_text()
    assert "type: bpb" in card and "Bits per byte" in card and "validation bits per byte" in card
    (tmp_path / "c").mkdir()
    assert (
        main(
            train_argv(
                tmp_path / "c", punctuated_text(8_000, extra=many), punctuated_text(2_000, 1), "--vocab", "chars"
            )
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "train.txt: more than 255 distinct characters" in err and "--vocab bytes" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1  # (the rest is the encoding progress bar)


def test_bad_corpora_for_other_vocabularies(tmp_path, corpus_cache, capsys):
    from hf_charnn.cli import main

    good = punctuated_text(4_000)
    broken = good[:1000].encode() + b"\xff\xfe" + good[1000:].encode()
    (tmp_path / "train.txt").write_bytes(broken)
    (tmp_path / "valid.txt").write_text(good[:1000])
    argv = train_argv(tmp_path, good, good[:1000])
    (tmp_path / "train.txt").write_bytes(broken)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "train.txt: not valid UTF-8 (byte 1000: invalid start byte); convert the file to UTF-8, or train with "
        "--vocab bytes" in err
    )
    assert not list(corpus_cache.glob("*.partial*")) and not (tmp_path / "run").exists()
    assert main([*argv, "--vocab", "bytes"]) == 0  # bytes reads anything
    (tmp_path / "train.txt").write_text("")
    assert main([*argv, "--output-dir", str(tmp_path / "empty")]) == 2
    assert "train.txt: file is empty" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["chars", "bytes"])
def test_the_demo_writes_and_scores_in_any_vocabulary(kind):
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    from hf_charnn import demo

    model = model_for(VOCABULARIES[kind]())
    text, note = list(demo.generate_stream(model, "Speak, Zoë", temperature=0.0, top_k=0, length=16, seed=0))[-1]
    expected_prompt = "Speak, o" if kind == "chars" else "Speak, Zoë"  # chars: unseen Z and ë are left out, with a note
    assert text.startswith(expected_prompt)
    assert ("Left out 2 of 10 characters this model has never seen" in note) == (kind == "chars")
    scored = demo.score(model, "All:\nSpeak ✓" if kind == "bytes" else "All:\nSpeak")
    exact = model.get_log_prob_sequence(scored["text"], " ")
    assert sum(scored["bits"]) == pytest.approx(-exact / np.log(2), rel=1e-4)
    if kind == "bytes":
        assert scored["unit"] == "byte" and len(scored["bits"]) == 14 and scored["units"][-3:] == ["✓", "·", "·"]
    else:
        assert scored["unit"] == "character" and scored["units"] == list("All:\nSpeak")
    assert demo.heat_map_html(scored).count('class="hf-charnn-cell"') == len(scored["bits"])
    app = demo.build_demo(model, title="test")
    assert "Vowel or consonant" not in str(app.config)  # that tab is text8's


HUB_LOAD_AND_USE = (
    BLOCK_HF_CHARNN
    + """
import json
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained({repo!r}, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained({repo!r}, trust_remote_code=True)
ids = model.generate(**tokenizer([{prompt!r}], return_tensors="pt"), max_new_tokens=12, do_sample=False)
print(json.dumps([type(model).__module__.split(".")[0], tokenizer.decode(ids[0], skip_special_tokens=True),
                  model.get_log_prob_sequence({text!r}, " ")]))
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["chars", "bytes"])
def test_trained_chars_and_bytes_models_push_to_the_hub_and_load_from_it(tmp_path, corpus_cache, capsys, kind):
    """train-lm in the vocabulary, push to the loopback Hub, then load by repo id where hf_charnn cannot be imported."""
    from hub_server import LocalHub
    from test_hub import TOKEN, push, run

    from hf_charnn.cli import main

    train_text, valid_text = (
        punctuated_text(6_000, extra=MANY_SCRIPTS if kind == "bytes" else ""),
        punctuated_text(2_000, seed=1),
    )
    assert main(train_argv(tmp_path, train_text, valid_text, "--vocab", kind)) == 0
    capsys.readouterr()
    folder = tmp_path / "run"
    local = load_model(folder, "lm")
    assert local.vocabulary.kind == kind
    prompt, text = ("Good night, ", "Hear me speak.") if kind == "chars" else ("Zoë, 東", "Ελλάδα ✓")
    expected_ids = local.generate(
        **CharTokenizer.for_model(local.config)([prompt], return_tensors="pt"), max_new_tokens=12, do_sample=False
    )
    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint)
        pushed = push(folder, f"alice/{kind}-lm", env, "--token", TOKEN)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        card = hub.state.repos[f"alice/{kind}-lm"]["files"]["README.md"].decode()
        assert f'"alice/{kind}-lm"' in card and ("Bits per byte" in card) == (kind == "bytes")
        loaded = run(
            [sys.executable, "-c", HUB_LOAD_AND_USE.format(repo=f"alice/{kind}-lm", prompt=prompt, text=text)], env
        )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    module, generated, score = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert module == "transformers_modules"
    assert generated == CharTokenizer.for_model(local.config).decode(expected_ids[0], skip_special_tokens=True)
    assert score == pytest.approx(local.get_log_prob_sequence(text, " "), abs=1e-4)
