import numpy as np
import pytest
from transformers import AutoTokenizer

import hf_charnn
from hf_charnn import CharTokenizer, Vocabulary, encode_text, normalize_text

decode_ids = Vocabulary().decode


def test_ids_follow_the_exercise_indexer():
    tokenizer = CharTokenizer()
    assert [tokenizer.index_of(c) for c in "az "] == [0, 25, 26]
    assert tokenizer.get_object(0) == "a" and tokenizer.get_object(26) == " "
    assert tokenizer.index_of("A") == -1 and tokenizer.get_object(99) is None
    assert tokenizer.vocab_size == 27 and tokenizer.pad_token_id == 27 and len(tokenizer) == 28


def test_round_trip():
    tokenizer = CharTokenizer()
    text = " the quick brown fox jumps over the lazy dog "
    ids = tokenizer(text)["input_ids"]
    assert ids == [hf_charnn.CHARACTERS.index(c) for c in text]
    assert tokenizer.decode(ids) == text


def test_unknown_character_names_character_and_position():
    with pytest.raises(ValueError, match=r"'Q' at position 4"):
        CharTokenizer()("abcdQ")


def test_padding_is_left_by_default():
    batch = CharTokenizer()(["ab", "abcd"], padding=True)
    assert batch["input_ids"][0] == [27, 27, 0, 1]
    assert batch["attention_mask"][0] == [0, 0, 1, 1]


def test_save_and_load_through_auto_tokenizer(tmp_path):
    CharTokenizer().save_pretrained(tmp_path)
    assert (tmp_path / "vocab.json").is_file()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded("hello world")["input_ids"] == CharTokenizer()("hello world")["input_ids"]


def test_a_foreign_vocab_file_is_refused(tmp_path):
    CharTokenizer().save_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 1, "b": 0}')
    with pytest.raises(ValueError, match="not the 27-character"):
        AutoTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("In 1984, Orwell!", "in one nine eight four orwell "),
        ("Hello   World", "hello world"),
        ("café-au-lait", "cafe au lait"),
        ("a\n\tb", "a b"),
        ("text8 form", "text eight form"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected
    assert set(normalize_text(raw)) <= set(hf_charnn.CHARACTERS)


def test_bulk_encoding_matches_tokenizer_and_reports_bad_characters():
    text = " anarchism originated as a term of abuse"
    ids = encode_text(text)
    assert ids.dtype == np.uint8
    assert ids.tolist() == CharTokenizer()(text)["input_ids"]
    assert decode_ids(ids) == text
    with pytest.raises(ValueError, match=r"notes\.txt: character 'é' at position 4 \(line 1\)"):
        encode_text("ab cé", source="notes.txt")


@pytest.mark.parametrize(
    "settings, text",
    [
        ({}, "the cat sat"),
        ({"vocab_kind": "chars", "characters": "\n !,.?ABCabc"}, "Abc, cab!\nCC"),
        ({"vocab_kind": "chars", "characters": "abc ", "unk": True}, "abz cab"),
    ],
)
def test_the_tokenizers_backend_gives_the_python_tokenizers_ids_padding_and_text(settings, text, tmp_path):
    from hf_charnn import CharTokenizersBackend

    backend, python = CharTokenizersBackend(**settings), CharTokenizer(**settings)
    assert backend.is_fast and len(backend) == len(python) and backend.get_vocab() == python.get_vocab()
    assert (backend.pad_token_id, backend.bos_token_id) == (python.pad_token_id, python.bos_token_id)
    batch, expected = backend([text, "a"], padding=True), python([text, "a"], padding=True)
    assert batch["input_ids"] == expected["input_ids"] and batch["attention_mask"] == expected["attention_mask"]
    assert backend.decode(batch["input_ids"][1], skip_special_tokens=True) == "a"  # left padding dropped
    assert backend.decode(batch["input_ids"][0], skip_special_tokens=True) == python.decode(
        expected["input_ids"][0], skip_special_tokens=True
    )
    # Offsets and word ids: what only a tokenizers backend gives (a word: a run of non-whitespace; each space its own)
    encoded = backend(text, return_offsets_mapping=True)
    assert encoded["offset_mapping"] == [(i, i + 1) for i in range(len(text))]
    words = encoded.word_ids()
    assert all(
        (words[i] == words[i - 1]) == (not text[i].isspace() and not text[i - 1].isspace()) for i in range(1, len(text))
    )
    backend.save_pretrained(tmp_path)
    assert {"vocab.json", "tokenizer.json", "tokenizer_config.json"} <= {path.name for path in tmp_path.iterdir()}
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert type(again).__name__ == "CharTokenizersBackend" and again(text)["input_ids"] == python(text)["input_ids"]
    assert CharTokenizer.from_pretrained(tmp_path)(text)["input_ids"] == python(text)["input_ids"]


def test_the_tokenizers_backend_refuses_unknown_characters_as_the_python_one_does():
    from hf_charnn import CharTokenizersBackend

    for text in ["the Cat", ["fine", "caf\u00e9"]]:
        with pytest.raises(ValueError) as backend_error:
            CharTokenizersBackend()(text)
        with pytest.raises(ValueError) as python_error:
            CharTokenizer()(text)
        assert str(backend_error.value) == str(python_error.value)
    with pytest.raises(ValueError, match="use CharTokenizer"):
        CharTokenizersBackend(vocab_kind="bytes")
