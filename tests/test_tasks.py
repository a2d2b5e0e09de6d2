"""The task registry: each task owns its settings, flags, checks and presets; each rule has one home."""

import argparse
import ast
import dataclasses
import re
from pathlib import Path

import pytest
import torch

from hf_charnn import cli
from hf_charnn.errors import UserError
from hf_charnn.models.configuration_char_gru import CharGRUConfig
from hf_charnn.models.modeling_char_gru import CharGRUForCausalLM, CharGRUForSequenceClassification
from hf_charnn.training.settings import RunSettings
from hf_charnn.training.tasks import registered_tasks, task_settings

PACKAGE = Path(__file__).resolve().parents[1] / "hf_charnn"
TASK_HOMES = (PACKAGE / "training" / "tasks", PACKAGE / "training" / "settings.py")


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of a command; argparse's own refusals exit through SystemExit."""
    capsys.readouterr()
    try:
        code = cli.main([str(arg) for arg in argv])
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def package_sources(exclude=()):
    for path in sorted(PACKAGE.rglob("*.py")):
        if not any(path == home or home in path.parents for home in exclude):
            yield path, path.read_text()


def test_no_task_name_is_compared_outside_the_registry_and_the_tasks():
    names = {settings_class.task for settings_class in registered_tasks()}
    assert names >= {"lm", "classifier"}

    def constants(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return {item.value for item in node.elts if isinstance(item, ast.Constant)}
        return set()

    found = []
    for path, source in package_sources(exclude=TASK_HOMES):
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Compare):
                compared = set().union(*(constants(side) for side in [node.left, *node.comparators]))
                if compared & names:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("endswith", "startswith"):
                if any("perplexity" in str(getattr(arg, "value", "")) for arg in node.args):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)} (a task guessed)")
    assert not found, found


def test_the_shared_run_settings_are_few_and_each_task_owns_its_own():
    assert len(dataclasses.fields(RunSettings)) <= 25
    lm, classifier = task_settings("lm"), task_settings("classifier")
    assert {"chunk_size", "carry_state", "corpus", "eval_warmup"} <= lm.field_names()
    assert not {"chunk_size", "carry_state", "corpus", "eval_warmup"} & classifier.field_names()
    assert {"ngram_range", "bidirectional", "label_column", "class_weight"} <= classifier.field_names()
    assert not {"ngram_range", "bidirectional", "label_column", "class_weight"} & lm.field_names()
    # The exercise's settings are the exercise's (hf_charnn.exercise registers them over the general tasks').
    for settings_class in (lm, classifier):
        assert settings_class.__module__ == "hf_charnn.exercise.settings"
        general = settings_class.__mro__[2]
        assert general.__module__.startswith("hf_charnn.training.tasks.")
        assert not {"holdout_examples", "prefix_labels", "exclude_dev_examples"} & general.field_names()


def test_every_training_flag_comes_from_a_settings_field():
    assert "_add_training_flags" not in (PACKAGE / "cli.py").read_text()
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for settings_class in registered_tasks():
        command = commands.choices[settings_class.command]
        dests = {action.dest for action in command._actions} - {"help", "preset", "config", "output"}
        assert dests <= settings_class.field_names(), dests - settings_class.field_names()
        flagged = {
            field.name for field in dataclasses.fields(settings_class) if field.metadata.get("flags") is not False
        }
        assert flagged <= dests, flagged - dests
        # A flag's help shows a field's default only where no preset sets another (a run gets the preset's value).
        preset_set = {name for preset in settings_class.presets.values() for name in preset}
        for field in dataclasses.fields(settings_class):
            help_text = next((a.help or "" for a in command._actions if a.dest == field.name), "")
            assert (f"(default: {field.default})" in help_text) <= (field.name not in preset_set), field.name


def test_the_readout_choices_are_the_configs_to_check():
    uses = [path.name for path, source in package_sources() if "CLASSIFIER_READOUTS" in source]
    assert uses == ["configuration_char_gru.py"]
    with pytest.raises(ValueError, match="classifier_readout 'middle'"):
        CharGRUConfig(classifier_readout="middle")
    with pytest.raises(UserError, match="--classifier-readout 'middle': choose one of last, pooled"):
        task_settings("classifier").from_preset(classifier_readout="middle").check()


def test_an_lm_has_no_bidirectional_setting_and_the_model_refuses_one(capsys):
    assert "bidirectional" not in task_settings("lm").field_names()
    code, _, err = run_cli(capsys, "train-lm", "--bidirectional")
    assert code == 2 and "unrecognized arguments: --bidirectional" in err
    with pytest.raises(ValueError, match="an LM reads left to right"):
        CharGRUForCausalLM(CharGRUConfig(bidirectional=True))
    homes = [path.name for path, source in package_sources() if "an LM reads left to right" in source]
    assert homes == ["modeling_char_gru.py"]


def test_prefix_labels_have_one_rule_for_the_settings_and_the_model():
    homes = [path.name for path, source in package_sources() if "train the head on the state after every" in source]
    assert homes == ["configuration_char_gru.py"]
    with pytest.raises(UserError, match="--prefix-labels: prefix_labels train the head on the state after every"):
        task_settings("classifier").from_preset(preset="default", bidirectional=True).check()
    model = CharGRUForSequenceClassification(CharGRUConfig(bidirectional=True, hidden_size=8, embedding_size=4))
    with pytest.raises(ValueError, match="prefix_labels train the head on the state after every"):
        model(input_ids=torch.zeros(1, 3, dtype=torch.long), labels=torch.zeros(1, 3, dtype=torch.long))


def test_a_classifier_has_no_corpus_setting(capsys):
    with pytest.raises(UserError, match=r"unknown setting\(s\) corpus \(a lm setting\) for a classifier run"):
        task_settings("classifier").from_preset(corpus="text8")
    code, _, err = run_cli(capsys, "train-classifier", "--corpus", "text8")
    assert code == 2 and "unrecognized arguments: --corpus" in err
    assert "LM corpus" not in (PACKAGE / "data" / "labeled.py").read_text()


def test_the_symbol_limit_has_one_home():
    from hf_charnn.data import sources
    from hf_charnn.models import tokenization_char_gru

    assert sources.MAX_CHARS is tokenization_char_gru.MAX_SYMBOLS
    limit = re.compile(r"^(MAX_\w*|\w*_LIMIT) = 256\b", re.M)  # a limit of symbols, not a batch size
    homes = [path.name for path, source in package_sources() if limit.search(source)]
    assert homes == ["tokenization_char_gru.py"]


def test_a_labeled_file_is_read_for_a_model_as_training_reads_it(tmp_path):
    from hf_charnn.data.labeled import labeled_file_for_model
    from hf_charnn.errors import DataError
    from hf_charnn.models.tokenization_char_gru import Vocabulary

    assert "SimpleNamespace" not in (PACKAGE / "cli.py").read_text()
    file = tmp_path / "rows.csv"
    file.write_text("text,label\nabc,yes\nab d,no\n")
    split = labeled_file_for_model(file, ["no", "yes"], Vocabulary())
    assert split.texts == ["abc", "ab d"] and split.labels == [1, 0]
    file.write_text("text,label\nabc,yes\nabd,maybe\n")
    with pytest.raises(DataError, match=r"rows.csv, row 2: label 'maybe' does not appear in the model's labels"):
        labeled_file_for_model(file, ["no", "yes"], Vocabulary())
    file.write_text("text,label\nabc,yes\nAbd,no\n")
    with pytest.raises(DataError, match=r"rows.csv, row 2"):
        labeled_file_for_model(file, ["no", "yes"], Vocabulary())
    assert labeled_file_for_model(file, ["no", "yes"], Vocabulary(), normalize=True).texts == ["abc", "abd"]


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    def user_mistake(args):
        raise UserError("data.csv, row 3: no label; fill it in or remove the row")

    monkeypatch.setattr(cli, "cmd_baseline", user_mistake)
    code, _, err = run_cli(capsys, "baseline")
    assert code == 2 and err == "hf-charnn baseline: error: data.csv, row 3: no label; fill it in or remove the row\n"

    def our_bug(args):
        raise ValueError("an internal mistake")  # not the user's: the traceback must reach them (and us)

    monkeypatch.setattr(cli, "cmd_baseline", our_bug)
    with pytest.raises(ValueError, match="an internal mistake"):
        cli.main(["baseline"])
    monkeypatch.setattr(cli, "cmd_baseline", lambda args: open(Path("/nonexistent/x")))
    with pytest.raises(FileNotFoundError):
        cli.main(["baseline"])


def test_settings_files_of_folders_saved_before_the_split_still_load(tmp_path):
    # A classifier's training_config.json of the last release held every task's settings, at their defaults.
    old = {
        "task": "classifier",
        "hidden_size": 16,
        "chunk_size": 64,
        "carry_state": True,
        "corpus": None,
        "eval_warmup": 256,
        "exclude_dev_examples": False,
        "bidirectional": True,
    }
    settings_class = task_settings("classifier")
    assert settings_class.own_settings(old, "old.json") == {
        "task": "classifier",
        "hidden_size": 16,
        "bidirectional": True,
    }
    with pytest.raises(UserError, match=r"old.json: unknown setting\(s\) chunk_size \(a lm setting\)"):
        settings_class.own_settings({**old, "chunk_size": 32}, "old.json")
    # An LM's: the classifier's max_length at its default (None), though the tagger's default is another.
    old_lm = {"task": "lm", "chunk_size": 32, "max_length": None, "bidirectional": False, "ngram_range": None}
    assert task_settings("lm").own_settings(old_lm, "lm.json") == {"task": "lm", "chunk_size": 32}


def test_whether_a_run_names_its_data_is_decided_in_one_place():
    from hf_charnn.training.settings import DATA_SOURCES, names_data

    homes = [path.name for path, source in package_sources() if '"train_file", "dataset_name", "corpus"' in source]
    assert homes == ["settings.py"] and DATA_SOURCES == ("train_file", "dataset_name", "corpus")
    assert "names_data(settings)" in (PACKAGE / "cli.py").read_text()
    assert names_data({"corpus": "text8"}) and not names_data({"train_file": None})
    # The card describes what a run named; a run that named nothing is the exercise's, which describes its own.
    from hf_charnn.card import data_description

    with pytest.raises(ValueError, match="names no data"):
        data_description(task_settings("lm").from_preset(), "text")


def test_the_saved_fixtures_training_configs_train_again_with_config():
    """Each held-out folder's training_config.json (written by earlier releases) is a valid --config of its task."""
    import json

    folders = sorted((Path(__file__).parent / "fixtures" / "saved_models").glob("*/training_config.json"))
    assert len(folders) >= 4
    for file in folders:
        settings = json.loads(file.read_text())
        settings_class = task_settings(settings.get("task", "lm"))
        own = settings_class.own_settings(settings, str(file))
        own.pop("task", None)
        own.pop("preset", None)
        settings_class.from_preset(preset="seed", **own).check()


def test_a_reader_closing_the_pipe_is_no_traceback(tmp_path):
    """
    `hf-charnn ... | head -1`: the command stops quietly (exit 141, as a shell reports SIGPIPE), no traceback. `true`
    closes the pipe at once, long before the command (which imports torch) writes.
    """
    import subprocess
    import sys

    command = f"{sys.executable} -m hf_charnn baseline | true; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr and result.stdout.strip() == "141", result.stderr[-2000:]
