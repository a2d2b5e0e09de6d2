import json

import pytest
from conftest import ACCELERATE_LAUNCH, free_port, launch_env

from hf_charnn import UserError
from hf_charnn.cli import main
from hf_charnn.training.sweep import expand_runs, load_spec, write_report

SPEC = """
task: classifier
preset: default
base: {embedding_size: 8, hidden_size: 16, epochs: 2, batch_size: 8}
runs:
  - {learning_rate: 1.0e-2}
grid:
  hidden_size: [8, 12]
"""


def test_runs_and_grid_expand_over_the_base():
    spec = {
        "task": "lm",
        "base": {"epochs": 2},
        "runs": [{"hidden_size": 4}],
        "grid": {"dropout": [0.0, 0.1], "seed": [1, 2]},
    }
    runs = expand_runs(spec)
    assert runs[0] == {"epochs": 2, "hidden_size": 4}
    assert len(runs) == 5 and {"epochs": 2, "dropout": 0.1, "seed": 2} in runs


def test_bad_sweep_files(tmp_path):
    (tmp_path / "a.yaml").write_text("task: classifier\nruns: [{hiden_size: 3}]\n")
    with pytest.raises(UserError, match="unknown setting.*hiden_size"):
        load_spec(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("task: translate\n")
    with pytest.raises(UserError, match="needs `task: lm`"):
        load_spec(tmp_path / "b.yaml")
    with pytest.raises(UserError, match="not found"):
        load_spec(tmp_path / "missing.yaml")
    (tmp_path / "c.yaml").write_text("task: lm\nruns: [{a: 1}\n  b: 2\n")
    with pytest.raises(UserError, match="c.yaml: not valid YAML") as error:
        load_spec(tmp_path / "c.yaml")
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="missing: sweep folder not found"):
        write_report(tmp_path / "missing")


def test_sweep_runs_skips_finished_runs_and_reports(tmp_path, tiny_data_dir, capsys):
    (tmp_path / "sweep.yaml").write_text(SPEC)
    out = tmp_path / "out"
    assert (
        main(["sweep", str(tmp_path / "sweep.yaml"), "--output-dir", str(out), "--data-dir", str(tiny_data_dir)]) == 0
    )
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + 3 + 2 and table[-1].startswith("Last `hf-charnn sweep` call: 3 run(s) trained 1 at a time")
    assert "01-learning_rate=0.01" in table[2] and "02-hidden_size=8" in table[3]
    for metric in ("train_loss", "train_accuracy", "dev_accuracy"):
        assert (out / f"{metric}.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert (
        main(["sweep", str(tmp_path / "sweep.yaml"), "--output-dir", str(out), "--data-dir", str(tiny_data_dir)]) == 0
    )
    assert capsys.readouterr().out.count("finished earlier, skipped") == 3
    (out / "results.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "results.md").read_text().splitlines() == table


def _run_settings(run_dir):
    return json.loads((run_dir / "training_config.json").read_text())  # portable: no output_dir, no local paths


@pytest.mark.slow
def test_parallel_jobs_train_the_same_configurations_as_in_process(tmp_path, tiny_data_dir, capsys):
    (tmp_path / "sweep.yaml").write_text(SPEC)
    sequential, parallel = tmp_path / "sequential", tmp_path / "parallel"
    args = ["sweep", str(tmp_path / "sweep.yaml"), "--data-dir", str(tiny_data_dir)]
    assert main([*args, "--output-dir", str(sequential)]) == 0
    capsys.readouterr()
    assert main([*args, "--output-dir", str(parallel), "--jobs", "2"]) == 0
    started = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if ": training" in line]
    assert started[-1] == "02-hidden_size=8"  # largest first: hidden 16 and 12 start together, the smallest waits
    runs = sorted(path.name for path in sequential.iterdir() if path.is_dir())
    assert runs == sorted(path.name for path in parallel.iterdir() if path.is_dir()) and len(runs) == 3
    for name in runs:
        assert _run_settings(parallel / name) == _run_settings(sequential / name)
        assert "dev_accuracy" in (parallel / name / "train.log").read_text()
        assert (parallel / name / "model.safetensors").is_file()
    assert "trained 2 at a time" in (parallel / "results.md").read_text()


@pytest.mark.slow
def test_each_run_under_accelerate_launch(tmp_path, tiny_data_dir, monkeypatch):
    """The `--launcher` path: one run as a real 2-process DDP job (gloo on CPU)."""
    for key, value in launch_env().items():
        monkeypatch.setenv(key, value)  # the launcher's environment is this process's
    (tmp_path / "sweep.yaml").write_text(
        "task: lm\npreset: default\nbase: {embedding_size: 8, hidden_size: 16, epochs: 1, batch_size: 4, chunk_size: "
        "16}\n"
        "runs: [{learning_rate: 1.0e-2}]\n"
    )
    launcher = " ".join(
        [*ACCELERATE_LAUNCH, "--num_processes", "2", "--num_machines", "1", "--main_process_port", str(free_port())]
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "sweep.yaml"),
                "--output-dir",
                str(out),
                "--data-dir",
                str(tiny_data_dir),
                "--launcher",
                launcher,
            ]
        )
        == 0
    )
    summary = json.loads((out / "01-learning_rate=0.01" / "eval_results.json").read_text())
    assert summary["num_processes"] == 2 and summary["results"]["sane"]
    assert "under `" in (out / "results.md").read_text()


@pytest.mark.slow
def test_a_failed_run_names_its_log(tmp_path, tiny_data_dir, capsys):
    (tmp_path / "sweep.yaml").write_text(
        "task: lm\nbase: {epochs: 1, batch_size: 3, chunk_size: 0}\nruns: [{seed: 1}]\n"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "sweep.yaml"),
                "--output-dir",
                str(out),
                "--data-dir",
                str(tiny_data_dir),
                "--jobs",
                "2",
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "1 run(s) failed" in error and str(out / "01-seed=1" / "train.log") in error
    assert "--chunk-size must be at least 1, not 0" in (out / "01-seed=1" / "train.log").read_text()


def test_a_sweep_over_vocabularies_on_a_users_text(tmp_path, capsys, corpus_cache):
    text = "".join(f"Line {index}: the King speaks; ROME listens, naïvely?\n" for index in range(300))
    (tmp_path / "train.txt").write_text(text, encoding="utf-8")
    (tmp_path / "sweep.yaml").write_text(
        "task: lm\npreset: small-corpus\n"
        f"base: {{train_file: {str(tmp_path / 'train.txt')!r}, embedding_size: 8, hidden_size: 16, batch_size: 4, chunk_size: 16, "  # noqa: E501
        "max_steps: 6, eval_steps: 3, eval_chars: 500}\ngrid:\n  vocab: [chars, bytes]\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--output-dir", str(out)]) == 0
    rows = (out / "results.md").read_text().splitlines()[2:4]
    distinct = len(set(text))
    assert "vocab=chars" in rows[0] and f"| chars ({distinct}) |" in rows[0]
    assert "vocab=bytes" in rows[1] and "| bytes (256, per byte) |" in rows[1]
    for run, kind in zip(sorted(path for path in out.iterdir() if path.is_dir()), ("chars", "bytes")):
        assert json.loads((run / "config.json").read_text())["vocab_kind"] == kind
