"""The character tagger: its data (tags, spans, derived tasks), its metrics, its model, and the whole command."""

import json
import random
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT

import hf_charnn
from hf_charnn.cli import main
from hf_charnn.data.labeled import PaddedBatches
from hf_charnn.errors import DataError
from hf_charnn.training.tasks.tagging.data import (
    TaggedTexts,
    read_tagged_file,
    truecase_rows,
    with_shuffled_copies,
    word_boundary_rows,
)
from hf_charnn.training.tasks.tagging.task import spans_of, tagger_recipe, tagging_report

WORDS = "the cat sat on a mat and then it ran to see the dog who was not there at all".split()
TINY = ["--embedding-size", "8", "--hidden-size", "16", "--batch-size", "8", "--no-progress-bar"]


def run_cli(capsys, *argv):
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def prose(count: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(count))


def test_word_boundaries_run_the_words_together_and_mark_where_each_starts():
    texts, tags = word_boundary_rows("the cat sat on a mat", max_length=8)
    assert texts == ["thecat", "satona", "mat"]
    assert tags[0] == ["B-WORD", "I-WORD", "I-WORD", "B-WORD", "I-WORD", "I-WORD"]
    assert all(len(text) == len(row) <= 8 for text, row in zip(texts, tags))
    texts, _ = word_boundary_rows("abcdefghijkl x", max_length=5)  # a word longer than a row is cut
    assert texts == ["abcde", "fghij", "klx"]


def words_of(texts, tags):
    words = []
    for text, row in zip(texts, tags):
        starts = [i for i, tag in enumerate(row) if tag == "B-WORD"] + [len(text)]
        words += [text[start:end] for start, end in zip(starts, starts[1:])]
    return words


def test_shuffled_copies_are_the_same_words_in_a_new_seeded_order():
    texts, tags = word_boundary_rows(prose(399, 3), max_length=16)
    split = TaggedTexts(texts, tags, "t.txt")
    copied = with_shuffled_copies(split, 2, 16, seed=5)
    assert copied.texts[: len(texts)] == texts and copied.tags[: len(tags)] == tags  # the text itself first
    assert all(len(text) == len(row) <= 16 for text, row in zip(copied.texts, copied.tags))
    words = words_of(texts, tags)
    copies = words_of(copied.texts[len(texts) :], copied.tags[len(tags) :])
    assert sorted(copies) == sorted(words * 2) and copies[: len(words)] != words  # every word twice, reordered

    def runs(sequence):  # (399 words: runs of 3 from the start line up with the shuffled runs)
        return sorted(tuple(sequence[i : i + 3]) for i in range(0, len(sequence), 3))

    assert runs(copies[: len(words)]) == runs(words)  # three neighbouring words stay together
    assert with_shuffled_copies(split, 2, 16, seed=5) == copied and with_shuffled_copies(split, 2, 16, 6) != copied


def test_the_recipe_reads_the_same_characters_with_shuffled_copies():
    presets = {"default": {"epochs": 1}}
    plain = tagger_recipe(50_000, 800, presets, "truecase", None).settings
    words = tagger_recipe(50_000, 800, presets, "word-boundaries", None).settings
    assert plain["shuffled_copies"] == 0 and plain["epochs"] == 20
    assert words["shuffled_copies"] == 1 and words["epochs"] == 10  # the text and its copy: half the epochs
    assert tagger_recipe(50_000, 800, presets, "word-boundaries", 3).settings["epochs"] == 5  # the user's copies


def test_the_recipe_gives_the_linear_part_to_word_boundaries_and_to_other_tags_only_when_asked():
    presets = {"default": {"epochs": 1, "ngram_range": [1, 4]}}
    assert tagger_recipe(50_000, 800, presets, "word-boundaries", None).settings["ngram_range"] == [1, 4]
    for derive in ("truecase", None):  # None: JSON lines with their own tags
        recipe = tagger_recipe(50_000, 800, presets, derive, None)
        assert recipe.settings["ngram_range"] is None and "--ngram-range 1 4 adds it" in recipe.reasons[-1]
        asked = tagger_recipe(50_000, 800, presets, derive, None, linear_asked=True)
        assert asked.settings["ngram_range"] == [1, 4] and len(asked.reasons) == 1


def test_truecase_lowercases_and_marks_the_capitals():
    texts, tags = truecase_rows("The NASA cat.\nok", max_length=40)
    assert texts == ["the nasa cat.", "ok"]
    assert [i for i, tag in enumerate(tags[0]) if tag == "UPPER"] == [0, 4, 5, 6, 7]


def test_spans_become_bio_tags_and_bad_rows_name_their_line(tmp_path):
    file = tmp_path / "spans.jsonl"
    file.write_text(json.dumps({"text": "go to Paris now", "spans": [[6, 11, "LOC"]]}) + "\n")
    split = read_tagged_file(file, None, 256)
    assert split.tags[0][5:12] == ["O", "B-LOC", "I-LOC", "I-LOC", "I-LOC", "I-LOC", "O"]
    cases = [
        ({"text": "abc", "tags": ["A", "B"]}, "line 1: 3 characters but 2 tags"),
        ({"text": "abc", "spans": [[2, 5, "X"]]}, "does not lie inside the text"),
        ({"text": "abcd", "spans": [[0, 2, "X"], [1, 3, "Y"]]}, "overlaps another"),
        ({"text": "abc"}, "neither `tags` nor `spans`"),
    ]
    for row, message in cases:
        file.write_text(json.dumps(row) + "\n")
        with pytest.raises(DataError, match=message):
            read_tagged_file(file, None, 256)
    file.write_text("not json\n")
    with pytest.raises(DataError, match=r"spans.jsonl, line 1: not a JSON object"):
        read_tagged_file(file, None, 256)
    with pytest.raises(DataError, match="pass --derive"):
        read_tagged_file(tmp_path / "plain.txt", None, 256)


def test_spans_and_the_report_count_what_a_person_would():
    assert spans_of(["B-WORD", "I-WORD", "B-WORD", "I-WORD", "I-WORD"]) == {(0, 2, "WORD"), (2, 5, "WORD")}
    assert spans_of(["O", "UPPER", "UPPER", "O", "UPPER"]) == {(1, 3, "UPPER"), (4, 5, "UPPER")}
    names = ["B-WORD", "I-WORD"]
    gold = [[0, 1, 0, 1, 1]]  # two words: "ab" "cde"
    predicted = [[0, 1, 1, 0, 1]]  # "abc" "de": both boundaries but one right
    report = tagging_report(gold, predicted, names)
    assert report["accuracy"] == pytest.approx(60.0)
    assert report["per_tag"]["B-WORD"]["precision"] == pytest.approx(50.0)
    assert report["span_f1"] == 0.0 and report["spans"] == 2
    assert tagging_report(gold, gold, names)["span_f1"] == pytest.approx(100.0)


def test_padded_rows_tag_as_each_text_alone_in_either_direction():
    torch.manual_seed(0)
    vocabulary = hf_charnn.Vocabulary()
    config = hf_charnn.CharGRUConfig(
        **vocabulary.config_kwargs(), embedding_size=8, hidden_size=12, num_hidden_layers=2, bidirectional=True
    )
    config.num_labels = 3
    model = hf_charnn.CharGRUForTokenClassification(config).eval()
    texts = ["thecat", "a", "satonamatandthen"]
    rows = [
        {"input_ids": torch.from_numpy(vocabulary.encode(text)), "labels": torch.zeros(len(text))} for text in texts
    ]
    batch = PaddedBatches(vocabulary.size)(rows)
    with torch.no_grad():
        batched = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        left = batch["attention_mask"].flip(1)  # the same rows padded on the left
        left_ids = torch.where(left.bool(), 0, vocabulary.size)
        for row, text in enumerate(texts):
            alone = model(torch.from_numpy(vocabulary.encode(text))[None]).logits[0]
            torch.testing.assert_close(batched[row, : len(text)], alone, atol=1e-5, rtol=1e-5)
            left_ids[row, -len(text) :] = torch.from_numpy(vocabulary.encode(text))
        shifted = model(input_ids=left_ids, attention_mask=left).logits
        for row, text in enumerate(texts):
            torch.testing.assert_close(shifted[row, -len(text) :], batched[row, : len(text)], atol=1e-5, rtol=1e-5)
    assert model.predict_tags(texts + [""])[-1] == [] and len(model.predict_tags(texts)[2]) == len(texts[2])


def expected_window_buckets(ids: list[int], config) -> list[list[int]]:
    """`window_ngram_buckets` of one unpadded row, written out in plain Python from the hash's definition."""
    from hf_charnn.models.modeling_char_gru import NGRAM_HASH_MODULUS as modulus
    from hf_charnn.models.modeling_char_gru import NGRAM_HASH_PRIME as prime

    window, (smallest, largest) = config.ngram_window, config.ngram_range
    marked = [config.vocab_size + 2] * window + [i + 1 for i in ids] + [config.vocab_size + 3] * window
    rows = []
    for position in range(len(ids)):
        row, feature = [], 0
        for n in range(smallest, largest + 1):
            for offset in range(-window, window - n + 2):
                feature += 1
                value = 0
                for symbol in marked[window + position + offset : window + position + offset + n]:
                    value = (value * prime + symbol) % modulus
                row.append((value * prime + feature) % modulus % config.ngram_buckets)
        rows.append(row)
    return rows


def test_the_linear_part_hashes_the_ngrams_around_each_character_and_tags_padded_rows_as_alone():
    from hf_charnn.models.modeling_char_gru import window_ngram_buckets

    torch.manual_seed(0)
    vocabulary = hf_charnn.Vocabulary()
    config = hf_charnn.CharGRUConfig(
        **vocabulary.config_kwargs(), embedding_size=8, hidden_size=12, bidirectional=True, ngram_range=[2, 3],
        ngram_window=2, ngram_linear=True, ngram_embedding_size=0, ngram_buckets=97, ngram_linear_scale=2.0,
    )  # fmt: skip
    config.num_labels = 3
    model = hf_charnn.CharGRUForTokenClassification(config).eval()
    torch.nn.init.normal_(model.ngram_linear.weights.weight)
    texts = ["thecat", "a", "satonamatandthen"]
    ids = [vocabulary.encode(text).tolist() for text in texts]
    input_ids, attention_mask = hf_charnn.models.modeling_char_gru.pad_ids(ids, vocabulary.size)
    buckets = window_ngram_buckets(input_ids, attention_mask, config)
    assert buckets.shape == (3, 16, 4 + 3)  # 2-grams at 4 places, 3-grams at 3, within 2 characters each side
    for row, text_ids in enumerate(ids):
        assert buckets[row, : len(text_ids)].tolist() == expected_window_buckets(text_ids, config)
    with torch.no_grad():
        batched = model(input_ids, attention_mask=attention_mask).logits
        left = attention_mask.flip(1)
        left_ids = torch.where(left.bool(), 0, vocabulary.size)
        for row, text_ids in enumerate(ids):
            alone = model(torch.tensor([text_ids])).logits[0]
            torch.testing.assert_close(batched[row, : len(text_ids)], alone, atol=1e-5, rtol=1e-5)
            left_ids[row, -len(text_ids) :] = torch.tensor(text_ids)
        shifted = model(input_ids=left_ids, attention_mask=left).logits
        for row, text_ids in enumerate(ids):
            n = len(text_ids)
            torch.testing.assert_close(shifted[row, -n:], batched[row, :n], atol=1e-5, rtol=1e-5)
        head = model.classifier(model.char_gru(input_ids, attention_mask=attention_mask).last_hidden_state)
        linear = model.ngram_linear(input_ids, attention_mask)
        torch.testing.assert_close(batched, head + 2.0 * linear)  # the config's scales: 1 x head + 2 x linear


def test_the_fitted_linear_part_finds_word_starts_and_is_frozen(monkeypatch):
    from hf_charnn.training import linear
    from hf_charnn.training.linear import fit_window_ngram_linear, weigh_parts
    from hf_charnn.training.tasks.tagging.data import TaggedRows

    vocabulary = hf_charnn.Vocabulary()
    texts, tags = word_boundary_rows(prose(400, 4), max_length=32)
    rows = TaggedRows(TaggedTexts(texts, tags, "t.txt"), vocabulary, ["B-WORD", "I-WORD"])
    config = hf_charnn.CharGRUConfig(
        **vocabulary.config_kwargs(), embedding_size=8, hidden_size=8, ngram_range=[1, 4], ngram_window=4,
        ngram_linear=True, ngram_embedding_size=0, ngram_buckets=4096,
        id2label={0: "B-WORD", 1: "I-WORD"}, label2id={"B-WORD": 0, "I-WORD": 1},
    )  # fmt: skip
    model = hf_charnn.CharGRUForTokenClassification(config).eval()
    fit = fit_window_ngram_linear(model, rows.ids, rows.labels)
    assert fit["characters"] == sum(len(text) for text in texts) and fit["train_accuracy"] > 97
    assert not any(parameter.requires_grad for parameter in model.ngram_linear.parameters())
    test_texts, test_tags = word_boundary_rows(prose(60, 5), max_length=32)
    model.config.recurrent_scale = 0.0  # the linear part alone: a 22-word language's boundaries from n-grams
    predicted = [["B-WORD", "I-WORD"][i] for row in model.predict_tags(test_texts) for i in row]
    assert sum(p == g for p, g in zip(predicted, sum(test_tags, []))) / len(predicted) > 0.97
    # Weighing picks the first best pair: here every pair scores the same, so the first (linear scale 0).
    choice = weigh_parts(model.config, torch.zeros(4, 2), torch.ones(4, 2), lambda logits: (1.0, {}))
    assert choice["chosen"] == {"ngram_linear_scale": 0.0, "recurrent_scale": 1.0} and len(choice["tried"]) == 9
    assert (model.config.ngram_linear_scale, model.config.recurrent_scale) == (0.0, 1.0)
    # A large text: the fit reads the rows within its first TAGGER_MAX_CHARACTERS (its memory grows with them).
    monkeypatch.setattr(linear, "TAGGER_MAX_CHARACTERS", 100)
    fit = fit_window_ngram_linear(model, rows.ids, rows.labels)
    assert fit["characters"] == sum(len(text) for text in texts[: fit["rows"]]) <= 100 < fit["characters_given"]
    assert fit["characters"] + len(texts[fit["rows"]]) > 100  # every row that fits, and no more


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagger")
    (folder / "train.txt").write_text(prose(300, 0))
    (folder / "test.txt").write_text(prose(60, 1))
    argv = ["train-tagger", "--train-file", folder / "train.txt", "--test-file", folder / "test.txt"]
    argv += ["--derive", "word-boundaries", "--output-dir", folder / "model", "--epochs", "40", "--max-length", "32"]
    argv += [*TINY, "--bidirectional", "--num-hidden-layers", "1", "--learning-rate", "0.03", "--seed", "1"]
    assert main([str(arg) for arg in argv]) == 0
    return folder


def test_the_command_trains_reports_every_metric_and_writes_a_card(trained):
    model_dir = trained / "model"
    summary = json.loads((model_dir / "eval_results.json").read_text())
    results = summary["test_results"]
    assert set(results["per_tag"]) == {"B-WORD", "I-WORD"}
    assert {"accuracy", "span_f1", "span_precision", "span_recall", "macro_f1"} <= set(results)
    assert results["accuracy"] > 80  # a tiny model on a 22-word language learns where words start
    card = (model_dir / "README.md").read_text()
    assert "pipeline_tag: token-classification" in card and "`B-WORD`" in card and "span F1" in card
    assert summary["recipe"]["settings"]["shuffled_copies"] == 1 and "1 shuffled copy of its words" in card
    # The linear part: fitted on the text and one more shuffled copy than the GRU, then weighed on validation.
    mix = summary["ngram_linear"]
    assert mix["fit"]["shuffled_copies"] == 2 and len(mix["tried"]) == 9
    config = json.loads((model_dir / "config.json").read_text())
    assert config["ngram_window"] == 4 and config["ngram_linear_scale"] == mix["chosen"]["ngram_linear_scale"]
    assert "1- to 4-grams within 4 characters each side" in card and "2 shuffled copies" in card
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["CharGRUForTokenClassification"]


def test_evaluate_tagger_scores_a_file_as_the_run_did(trained, capsys):
    code, out, _ = run_cli(
        capsys,
        "evaluate-tagger",
        trained / "model",
        "--file",
        trained / "test.txt",
        "--derive",
        "word-boundaries",
        "--max-length",
        "32",
    )
    assert code == 0
    expected = json.loads((trained / "model" / "eval_results.json").read_text())["test_results"]
    assert json.loads(out)["span_f1"] == pytest.approx(expected["span_f1"])
    code, _, err = run_cli(capsys, "evaluate-tagger", trained / "model", "--file", trained / "test.txt")
    assert code == 2 and "pass --derive" in err and err.count("\n") == 1


def test_the_token_classification_pipeline_groups_characters_into_words(trained):
    from transformers import pipeline

    tag = pipeline("token-classification", model=str(trained / "model"), aggregation_strategy="simple")
    words = tag("thecatsatonamat")
    assert words and all(entity["entity_group"] == "WORD" for entity in words)
    assert "".join(entity["word"] for entity in words) == "thecatsatonamat"
    every = pipeline("token-classification", model=str(trained / "model"), ignore_labels=[])("thecat")
    assert [entity["entity"] for entity in every][0] == "B-WORD" and len(every) == 6


def test_a_tagger_saves_the_tokenizers_backend_and_the_pipeline_aggregates_by_word(trained, tmp_path):
    from transformers import AutoTokenizer, pipeline

    from hf_charnn.models.tokenization_char_gru import CharTokenizersBackend

    folder = trained / "model"
    assert type(AutoTokenizer.from_pretrained(folder)).__name__ == "CharTokenizersBackend"
    assert (folder / "vocab.json").is_file() and (folder / "tokenizer.json").is_file()
    assert (
        hf_charnn.CharTokenizer.from_pretrained(folder)("thecat")["input_ids"]
        == (AutoTokenizer.from_pretrained(folder)("thecat")["input_ids"])
    )
    # A tagger whose vocabulary has a space, so that its texts have words: each strategy tags whole words.
    torch.manual_seed(0)
    vocabulary = hf_charnn.Vocabulary("chars", " abcdehnorst")
    config = hf_charnn.CharGRUConfig(
        **vocabulary.config_kwargs(), embedding_size=8, hidden_size=12, num_hidden_layers=1, bidirectional=True
    )
    config.id2label, config.label2id = {0: "O", 1: "NOUN", 2: "VERB"}, {"O": 0, "NOUN": 1, "VERB": 2}
    model = hf_charnn.CharGRUForTokenClassification(config).eval()
    model.save_pretrained(tmp_path)
    CharTokenizersBackend.for_model(config).save_pretrained(tmp_path)
    text = "the cat sat on the stand"
    tags = [config.id2label[index] for index in model.predict_tags([text])[0]]
    # Words: runs of characters other than a space, and each space on its own (transformers' rule, and the backend's)
    starts = [i for i in range(len(text)) if i == 0 or " " in (text[i], text[i - 1])]
    for strategy in ("first", "average", "max"):
        with pytest.warns(UserWarning, match="fallback heuristic"):  # transformers' word rule: exactly ours
            entities = pipeline("token-classification", model=str(tmp_path), aggregation_strategy=strategy)(text)
        for entity in entities:  # whole words (neighbours of one tag grouped, as transformers groups them)
            assert entity["start"] in starts and (entity["end"] in starts or entity["end"] == len(text))
        if strategy == "first":  # each word the tag of its first character; runs of words of one tag grouped
            firsts = [tags[start] for start in starts]
            expected = [
                (start, tag)
                for i, (start, tag) in enumerate(zip(starts, firsts))
                if tag != "O" and firsts[i - 1 : i] != [tag]
            ]
            assert [(entity["start"], entity["entity_group"]) for entity in entities] == expected
    with pytest.raises(ValueError, match="character 'x' at position 4"):
        pipeline("token-classification", model=str(tmp_path), aggregation_strategy="first")("the xat")


@pytest.mark.slow
def test_a_tagger_loads_as_remote_code_in_a_pipeline(trained):
    script = (
        "import sys; sys.modules['hf_charnn'] = None\n"
        "from transformers import pipeline\n"
        f"tag = pipeline('token-classification', model={str(trained / 'model')!r}, trust_remote_code=True,"
        " aggregation_strategy='first')\n"
        "print(len(tag('thecatsat')), type(tag.model).__module__.split('.')[0], type(tag.tokenizer).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT.parent
    )
    assert result.returncode == 0, result.stderr[-3000:]
    count, module, tokenizer = result.stdout.split()
    assert module == "transformers_modules" and int(count) >= 1 and tokenizer == "CharTokenizersBackend"


def test_the_onnx_graph_tags_as_pytorch(trained, tmp_path):
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from hf_charnn.export import export_folder

    record = export_folder(trained / "model", output_dir=tmp_path)
    assert record["kind"] == "tagger" and record["largest_difference"]["fp32"] < 1e-4
    assert record["inputs"] == ["input_ids", "attention_mask"]


def test_bad_tagger_settings_give_one_line(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(prose(400, 2))  # enough rows to hold 5 % out: the checks after loading run
    for argv, message in [
        (["--normalize"], "--normalize changes a text's length"),
        (["--derive", "truecase"], "every character has the tag 'O'"),
        (["--derive", "truecase", "--shuffled-copies", "1"], "--shuffled-copies reorders the training text's words"),
        (["--derive", "word-boundaries", "--shuffled-copies", "-1"], "--shuffled-copies"),
        (["--derive", "word-boundaries", "--ngram-range", "3", "1"], "needs 1 <= min <= max"),
        (["--derive", "word-boundaries", "--ngram-window", "1"], "does not fit in 3"),
        (["--derive", "word-boundaries", "--ngram-buckets", "0"], "must be at least 1"),
        (["--derive", "word-boundaries", "--no-ngrams", "--ngram-window", "2"], "--ngram-window shapes the linear"),
    ]:
        code, _, err = run_cli(
            capsys, "train-tagger", "--train-file", tmp_path / "t.txt", *argv, "--output-dir", tmp_path / "o"
        )
        assert code == 2 and message in err and err.count("\n") == 1, err


def test_no_ngrams_trains_the_gru_alone_and_saved_taggers_without_them_load(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(prose(400, 6))
    argv = ["train-tagger", "--train-file", tmp_path / "t.txt", "--derive", "word-boundaries", "--no-ngrams"]
    code, out, _ = run_cli(capsys, *argv, "--output-dir", tmp_path / "m", "--epochs", "1", *TINY)
    assert code == 0 and "linear part" not in out
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert not saved["ngram_linear"] and saved["ngram_range"] is None
    # A folder saved before the linear part existed (no ngram_window in its config) loads and tags as it did.
    for key in ("ngram_window", "ngram_linear", "ngram_range"):
        saved.pop(key)
    (tmp_path / "m" / "config.json").write_text(json.dumps(saved))
    model = hf_charnn.CharGRUForTokenClassification.from_pretrained(tmp_path / "m")
    assert model.ngram_linear is None and len(model.predict_tags(["thecat"])[0]) == 6


def test_other_tags_train_the_gru_alone_unless_a_flag_asks_for_the_linear_part(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(prose(400, 6).replace("the ", "The "))
    argv = ["train-tagger", "--train-file", tmp_path / "t.txt", "--derive", "truecase", "--epochs", "1", *TINY]
    code, out, _ = run_cli(capsys, *argv, "--output-dir", tmp_path / "alone")
    assert code == 0 and "the GRU alone" in out and "linear part:" not in out
    code, out, _ = run_cli(capsys, *argv, "--ngram-window", "3", "--output-dir", tmp_path / "asked")
    assert code == 0 and "linear part: fitted" in out
    assert json.loads((tmp_path / "asked" / "config.json").read_text())["ngram_window"] == 3
