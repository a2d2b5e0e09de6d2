import pytest

from hf_charnn import UserError
from hf_charnn.cli import main
from hf_charnn.sweep import expand_runs, load_spec

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
    spec = {"task": "lm", "base": {"epochs": 2}, "runs": [{"hidden_size": 4}], "grid": {"dropout": [0.0, 0.1], "seed": [1, 2]}}
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


def test_sweep_runs_skips_finished_runs_and_reports(tmp_path, tiny_data_dir, capsys):
    (tmp_path / "sweep.yaml").write_text(SPEC)
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--output-dir", str(out), "--data-dir", str(tiny_data_dir)]) == 0
    table = (out / "results.md").read_text().splitlines()
    assert len(table) == 2 + 3
    assert "01-learning_rate=0.01" in table[2] and "02-hidden_size=8" in table[3]
    for metric in ("train_loss", "train_accuracy", "dev_accuracy"):
        assert (out / f"{metric}.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "sweep.yaml"), "--output-dir", str(out), "--data-dir", str(tiny_data_dir)]) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 3
    (out / "results.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "results.md").read_text().splitlines() == table
