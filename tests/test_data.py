import zipfile

import pytest
import torch

from hf_charnn import DataError, UserError
from hf_charnn.data.sources import encode_text, load_text8
from hf_charnn.data.windows import LMWindows
from hf_charnn.exercise.files import (
    PACKAGED_DATA_DIR,
    classification_dataset,
    load_exercise_dataset,
    prepare_exercise_data,
    read_examples,
    read_text_file,
    resolve_data_dir,
)


def lm_dataset(text, chunk_size, num_streams=1, carry_state=True, exclude_windows=()):
    return LMWindows(encode_text(text), chunk_size, num_streams, carry_state, exclude_windows)


def test_lm_windows_are_shifted_by_one_and_streams_interleave():
    text = "abcdefghijklmnopqrstuvwxy"  # 25 chars -> 2 streams of 12 positions
    dataset = lm_dataset(text, chunk_size=5, num_streams=2)
    ids = encode_text(text).tolist()
    rows = [(row["input_ids"].tolist(), row["shift_labels"].tolist()) for row in dataset]
    assert rows[0] == (ids[0:5], ids[1:6])  # stream 0, window 0
    assert rows[1] == (ids[12:17], ids[13:18])  # stream 1, window 0
    assert rows[2] == (ids[5:10], ids[6:11])  # stream 0, window 1 continues stream 0
    assert rows[4] == (ids[10:12], ids[11:13])  # last, shorter window
    assert len(rows) == 6


def test_lm_windows_without_state_are_equal_length_and_teach_each_target_once():
    dataset = lm_dataset("abcdefghij", chunk_size=4, num_streams=3, carry_state=False)
    assert [row["input_ids"].tolist() for row in dataset] == [[0, 1, 2, 3], [4, 5, 6, 7], [5, 6, 7, 8]]
    assert dataset[2]["shift_labels"].tolist() == [-100, -100, -100, 9]
    targets = [label for row in dataset for label in row["shift_labels"].tolist() if label != -100]
    assert targets == list(range(1, 10))
    # Shuffled batches of several windows stack (the classic chunk-20 LM at batch 32 needs this).
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3, shuffle=True)))
    assert batch["input_ids"].shape == (3, 4)


def test_excluded_spans_are_never_targets():
    dataset = lm_dataset("abcdefghij", chunk_size=10, carry_state=False, exclude_windows=[(3, 6)])
    labels = dataset[0]["shift_labels"].tolist()
    # Targets are characters 1..9; characters 3, 4, 5 are masked.
    assert labels == [1, 2, -100, -100, -100, 6, 7, 8, 9]


def test_classification_rows_and_prefix_labels():
    dataset = classification_dataset(["ab cd"], ["xyzab"], prefix_labels=True)
    assert dataset[0]["labels"].tolist() == [0, -100, 0, 0, 0]  # b, space, c, d follow; then the label
    assert dataset[1]["labels"].tolist() == [0, 0, 1, 0, 1]
    assert [row["labels"].item() for row in classification_dataset(["ab cd"], ["xyzab"])] == [0, 1]


def test_missing_empty_and_bad_files_name_the_file_and_place(tmp_path):
    with pytest.raises(DataError, match="nope.txt: file not found"):
        read_text_file(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty.txt: file is empty"):
        read_text_file(tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_text("hello World")
    with pytest.raises(DataError, match=r"bad.txt: character 'W' at position 6.*--normalize"):
        read_text_file(tmp_path / "bad.txt")


def test_normalize_fixes_text_and_reports_it(tmp_path, capsys):
    (tmp_path / "raw.txt").write_text("Hello, World 42")
    assert read_text_file(tmp_path / "raw.txt", normalize=True) == "hello world four two "
    assert "normalized into text8 form (5 of 15 characters were not text8 symbols)" in capsys.readouterr().out


def test_wrong_length_example_names_file_and_line(tmp_path):
    path = tmp_path / "train-vowel-examples.txt"
    path.write_text("a" * 20 + "\n" + "b" * 19 + "\n")
    with pytest.raises(DataError, match=r"train-vowel-examples.txt, line 2: example has 19 characters, expected 20"):
        read_examples(path)
    path.write_text("a" * 19 + "7\n")
    with pytest.raises(DataError, match=r"line 1: character '7' at position 19"):
        read_examples(path)
    path.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_examples(path)


def test_data_dir_from_argument_environment_or_package(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_CHARNN_DATA", raising=False)
    assert resolve_data_dir(None) == PACKAGED_DATA_DIR
    monkeypatch.setenv("HF_CHARNN_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    assert resolve_data_dir(PACKAGED_DATA_DIR) == PACKAGED_DATA_DIR  # --data-dir wins over the environment
    with pytest.raises(UserError, match="does not exist"):
        resolve_data_dir(tmp_path / "missing")


def test_exercise_as_one_dataset_dict(monkeypatch):
    monkeypatch.delenv("HF_CHARNN_DATA", raising=False)
    exercise = load_exercise_dataset()
    assert set(exercise) == {"lm_train", "lm_dev", "train", "dev"}
    assert len(exercise["lm_train"][0]["text"]) == 100_000 and len(exercise["lm_dev"][0]["text"]) == 500
    assert exercise["train"].num_rows == 10_000 and exercise["dev"].num_rows == 1_000
    assert exercise["dev"].features["label"].names == ["consonant", "vowel"]
    assert sum(exercise["dev"]["label"]) == 500
    vowel_rows = exercise["train"].filter(lambda row: row["label"] == 1)
    assert all(len(text) == 20 and text in exercise["lm_train"][0]["text"] for text in vowel_rows["text"][:50])


@pytest.fixture
def corpus(data_dir):
    """A text8-form corpus long enough to prepare exercise files from (the shared text, repeated)."""
    return ((data_dir / "text8-100k.txt").read_text() * 2)[:115_000]


def test_text8_loads_from_a_local_file_and_its_zip(tmp_path, corpus):
    (tmp_path / "text8").write_text(corpus)
    with zipfile.ZipFile(tmp_path / "text8.zip", "w") as archive:
        archive.write(tmp_path / "text8", "text8")
    for source in (tmp_path / "text8", tmp_path / "text8.zip"):
        row = next(iter(load_text8(str(source), streaming=True)))
        assert row["text"] == corpus
    with pytest.raises(DataError, match="file not found"):
        load_text8(str(tmp_path / "missing.zip"))


def test_prepare_data_is_deterministic_and_holds_dev_examples_out(tmp_path, corpus):
    first = prepare_exercise_data(corpus, tmp_path / "a", dev_examples=50, train_examples=200)
    prepare_exercise_data(corpus, tmp_path / "b", dev_examples=50, train_examples=200)
    names = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert names == sorted(
        ["text8-100k.txt", "text8-dev.txt", "text8-test.txt"]
        + [f"{s}-{label}-examples.txt" for s in ("train", "dev") for label in ("consonant", "vowel")]
    )
    for name in names:
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert first["examples"]["dev"] == {"consonant": 50, "vowel": 50}
    train_text = (tmp_path / "a" / "text8-100k.txt").read_text()
    assert train_text == corpus[:100_000]
    for example in read_examples(tmp_path / "a" / "train-vowel-examples.txt"):
        assert example in train_text
    dev_positions = [
        corpus.find(example, 101_000) for example in read_examples(tmp_path / "a" / "dev-vowel-examples.txt")
    ]
    assert all(position >= 101_000 for position in dev_positions)
