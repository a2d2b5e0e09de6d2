import json
import subprocess
import sys

import pytest

import hf_charnn
from hf_charnn import CharTokenizer
from hf_charnn.cli import main


def run_cli(capsys, *argv):
    capsys.readouterr()  # what fixtures printed (e.g. a save_pretrained progress bar) is not the command's output
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lm_dir(tmp_path, random_lm):
    folder = tmp_path / "lm"
    random_lm.save_pretrained(folder)
    CharTokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def classifier_dir(tmp_path, random_classifier):
    folder = tmp_path / "classifier"
    random_classifier.save_pretrained(folder)
    return folder


def test_baseline_prints_and_writes_json(capsys, data_dir, tmp_path):
    code, out, _ = run_cli(capsys, "baseline", "--data-dir", data_dir, "--output", tmp_path / "b.json")
    assert code == 0
    result = json.loads(out)
    assert result["frequency_classifier"]["accuracy"] == pytest.approx(71.4)
    assert result["uniform_lm"]["perplexity"] == pytest.approx(27.0)
    assert json.loads((tmp_path / "b.json").read_text()) == result


def test_evaluate_lm_and_classifier(capsys, data_dir, lm_dir, classifier_dir):
    code, out, _ = run_cli(capsys, "evaluate-lm", lm_dir, "--text", data_dir / "text8-dev.txt")
    assert code == 0 and json.loads(out)["sane"] is True
    code, out, _ = run_cli(capsys, "evaluate-classifier", classifier_dir, "--data-dir", data_dir, "--split", "train")
    assert code == 0 and json.loads(out)["total"] == 10_000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["baseline", "--data-dir", "{tmp}/missing"], "data folder {tmp}/missing does not exist"),
        (["evaluate-lm", "{tmp}/missing", "--text", "{data}/text8-dev.txt"], "model folder not found"),
        (["evaluate-lm", "{tmp}", "--text", "{data}/text8-dev.txt"], "missing config.json, model.safetensors"),
        (["evaluate-lm", "{lm}", "--text", "{tmp}/nope.txt"], "nope.txt: file not found"),
        (["evaluate-lm", "{lm}", "--text", "{tmp}/bad.txt"], "bad.txt: character 'T' at position 0"),
        (["evaluate-classifier", "{classifier}", "--data-dir", "{tmp}"], "dev-consonant-examples.txt: file not found"),
        (["evaluate-lm", "{corrupt}", "--text", "{data}/text8-dev.txt"], "corrupted or truncated weights"),
        (["train-lm", "--data-dir", "{tmp}", "--output-dir", "{tmp}/run"], "text8-100k.txt: file not found"),
        (["train-lm", "--config", "{tmp}/bad.txt"], "bad.txt: not valid JSON"),
        (["train-lm", "--config", "{tmp}/typo.json"], "typo.json: unknown setting(s) hiden_size"),
        (["train-lm", "--config", "{tmp}/none.json"], "none.json: config file not found"),
        (["train-lm", "--config", "{tmp}/classifier.json"], "classifier.json: settings of a classifier run"),
    ],
)
def test_error_paths_give_one_line_and_exit_2(capsys, tmp_path, data_dir, lm_dir, classifier_dir, argv, message):
    (tmp_path / "bad.txt").write_text("The end")
    (tmp_path / "typo.json").write_text('{"hiden_size": 3}')
    (tmp_path / "classifier.json").write_text('{"task": "classifier", "preset": "seed"}')
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((lm_dir / "config.json").read_text())
    (corrupt / "model.safetensors").write_bytes((lm_dir / "model.safetensors").read_bytes()[:100])
    names = dict(tmp=tmp_path, data=data_dir, lm=lm_dir, classifier=classifier_dir, corrupt=corrupt)
    code, out, err = run_cli(capsys, *[arg.format(**names) for arg in argv])
    assert code == 2
    assert message.format(**names) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_exits_2_without_traceback(tmp_path, data_dir):
    result = subprocess.run(
        [sys.executable, "-m", "hf_charnn", "evaluate-lm", str(tmp_path), "--text", str(data_dir / "text8-dev.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "missing config.json" in result.stderr


@pytest.mark.parametrize(
    "command", ["baseline", "evaluate-lm", "evaluate-classifier", "train-lm", "train-classifier", "prepare-data"]
)
def test_every_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: hf-charnn " + command in capsys.readouterr().out


def test_a_runs_training_config_trains_it_again(capsys, tmp_path, tiny_data_dir):
    """--config layers a JSON of settings over the preset; flags given still win."""
    (tmp_path / "settings.json").write_text(
        json.dumps({"embedding_size": 6, "hidden_size": 10, "epochs": 1, "batch_size": 16})
    )
    first = tmp_path / "first"
    code, _, _ = run_cli(
        capsys,
        "train-classifier",
        "--config",
        tmp_path / "settings.json",
        "--data-dir",
        tiny_data_dir,
        "--output-dir",
        first,
        "--no-progress-bar",
        "--seed",
        3,
    )
    assert code == 0
    config = json.loads((first / "training_config.json").read_text())
    assert (config["hidden_size"], config["epochs"], config["seed"], config["prefix_labels"]) == (10, 1, 3, True)
    # Portable: it is uploaded with the model, so it names no local path (folders by their names alone).
    assert str(tmp_path) not in (first / "training_config.json").read_text() and "output_dir" not in config
    assert config["data_dir"] == tiny_data_dir.name
    again = tmp_path / "again"
    code, _, _ = run_cli(
        capsys,
        "train-classifier",
        "--config",
        first / "training_config.json",
        "--output-dir",
        again,
        "--data-dir",
        tiny_data_dir,
    )
    assert code == 0
    rerun = json.loads((again / "training_config.json").read_text())
    assert rerun == config
    assert (
        json.loads((again / "eval_results.json").read_text())["results"]
        == json.loads((first / "eval_results.json").read_text())["results"]
    )


def test_version_and_module_help_match_the_console_script(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"hf-charnn {hf_charnn.__version__}"
    module_help = subprocess.run(
        [sys.executable, "-m", "hf_charnn", "--help"], capture_output=True, text=True, timeout=120
    )
    with pytest.raises(SystemExit):
        main(["--help"])
    assert module_help.returncode == 0 and module_help.stdout == capsys.readouterr().out
    assert module_help.stdout.startswith("usage: hf-charnn ")


def test_training_without_a_data_flag_uses_the_packaged_data(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_CHARNN_DATA", raising=False)
    code, out, _ = run_cli(
        capsys,
        "train-lm",
        "--output-dir",
        tmp_path,
        "--epochs",
        "1",
        "--hidden-size",
        "8",
        "--embedding-size",
        "4",
        "--no-progress-bar",
    )
    assert code == 0, out
    assert json.loads((tmp_path / "eval_results.json").read_text())["results"]["sane"]
