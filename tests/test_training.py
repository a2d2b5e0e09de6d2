import json
import re
import subprocess

import pytest
from conftest import ACCELERATE_LAUNCH, free_port, launch_env

from hf_charnn import CharGRUForCausalLM, CharGRUForSequenceClassification, UserError
from hf_charnn.cli import train_run as train
from hf_charnn.training import TrainingConfig, TrainingDiverged

# fp32 pinned: `auto` measures bf16 against fp32 at start-up, and these tests compare runs number for number.
TINY = dict(embedding_size=8, hidden_size=16, epochs=3, batch_size=4, progress_bar=False, mixed_precision="no")
TINY_WINDOWS = {"lm": dict(chunk_size=16), "classifier": {}}  # (an LM's own setting)


def tiny_config(task, data_dir, output_dir, **overrides):
    return TrainingConfig.from_preset(
        task,
        "default",
        data_dir=str(data_dir),
        output_dir=str(output_dir),
        **{**TINY, **TINY_WINDOWS[task], **overrides},
    )


def metrics(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def without_timings(records):
    return [{k: v for k, v in record.items() if "second" not in k} for record in records]


@pytest.mark.parametrize("task", ["lm", "classifier"])
def test_training_writes_model_metrics_and_eval_results(tmp_path, tiny_data_dir, task):
    summary = train(tiny_config(task, tiny_data_dir, tmp_path))
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "vocab.json",
        "metrics.jsonl",
        "eval_results.json",
    ):
        assert (tmp_path / name).is_file(), name
    assert len(metrics(tmp_path)) == 3
    results = json.loads((tmp_path / "eval_results.json").read_text())["results"]
    assert results == summary["results"]
    if task == "lm":
        assert results["sane"] and results["normalizes"] and results["perplexity"] < 27
        assert isinstance(CharGRUForCausalLM.from_pretrained(tmp_path), CharGRUForCausalLM)
    else:
        assert results["total"] == 100
        assert isinstance(CharGRUForSequenceClassification.from_pretrained(tmp_path), CharGRUForSequenceClassification)
    steps = [record["step"] for record in metrics(tmp_path)]
    assert [record["epoch"] for record in metrics(tmp_path)] == [1, 2, 3] and steps[2] == 3 * steps[0]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"step-{steps[1]}", f"step-{steps[2]}"]


@pytest.mark.parametrize("task", ["lm", "classifier"])
def test_same_seed_gives_identical_metrics(tmp_path, tiny_data_dir, task):
    train(tiny_config(task, tiny_data_dir, tmp_path / "a"))
    train(tiny_config(task, tiny_data_dir, tmp_path / "b"))
    assert without_timings(metrics(tmp_path / "a")) == without_timings(metrics(tmp_path / "b"))


@pytest.mark.parametrize("task", ["lm", "classifier"])
def test_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_data_dir, task):
    train(tiny_config(task, tiny_data_dir, tmp_path / "whole"))
    interrupted = train(tiny_config(task, tiny_data_dir, tmp_path / "parts", stop_after_epoch=1))
    assert interrupted["epochs_done"] == 1 and not (tmp_path / "parts" / "model.safetensors").exists()
    train(tiny_config(task, tiny_data_dir, tmp_path / "parts", resume_from="latest"))
    assert without_timings(metrics(tmp_path / "parts")) == without_timings(metrics(tmp_path / "whole"))
    whole = json.loads((tmp_path / "whole" / "eval_results.json").read_text())["results"]
    assert json.loads((tmp_path / "parts" / "eval_results.json").read_text())["results"] == whole


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, tiny_data_dir, monkeypatch):
    train(tiny_config("lm", tiny_data_dir, tmp_path, stop_after_epoch=1))
    original = CharGRUForCausalLM.forward

    def poisoned(self, *args, **kwargs):
        outputs = original(self, *args, **kwargs)
        outputs.loss = outputs.loss * float("nan")
        return outputs

    monkeypatch.setattr(CharGRUForCausalLM, "forward", poisoned)
    first_epoch_steps = metrics(tmp_path)[0]["step"]
    with pytest.raises(
        TrainingDiverged, match=rf"loss became nan at epoch 2, step {first_epoch_steps + 1};.*last good checkpoint"
    ):
        train(tiny_config("lm", tiny_data_dir, tmp_path, resume_from="latest"))
    assert (tmp_path / "checkpoints" / f"step-{first_epoch_steps}" / "model.safetensors").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    assert [record["epoch"] for record in metrics(tmp_path)] == [1]


def test_resume_from_a_folder_that_is_not_a_checkpoint(tmp_path, tiny_data_dir):
    with pytest.raises(
        UserError,
        match=f"{tmp_path}: not a training checkpoint \\(no trainer_state.json\\); pass a checkpoints/step-N folder",
    ):
        train(tiny_config("lm", tiny_data_dir, tmp_path, resume_from=str(tmp_path)))


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, tiny_data_dir):
    """Real 2-process DDP over gloo through `accelerate launch` (see shared/HF_NOTES.md for the flags)."""
    command = [
        *ACCELERATE_LAUNCH,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        "-m",
        "hf_charnn.train_lm",
        "--data-dir",
        str(tiny_data_dir),
        "--output-dir",
        str(tmp_path),
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--chunk-size",
        "16",
        "--no-progress-bar",
    ]
    # (600 s: gloo processes that share two cores with other work slow down by an order of magnitude)
    result = subprocess.run(command, capture_output=True, text=True, env=launch_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "eval_results.json").read_text())
    assert summary["num_processes"] == 2
    steps = summary["steps_per_process"]
    assert len(steps) == 2 and steps[0] == steps[1] > 0
    saved = re.findall(r"saved the model to .* \(process (\d+)\)", result.stdout)
    assert saved == ["0"]
    assert summary["results"]["sane"]


def test_tensorboard_tracker_writes_events(tmp_path, tiny_data_dir):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    train(tiny_config("classifier", tiny_data_dir, tmp_path, epochs=1, report_to="tensorboard"))
    assert list(tmp_path.rglob("events.out.tfevents.*"))


def test_a_checkpoint_of_an_earlier_release_is_refused_in_one_line(tmp_path, tiny_data_dir):
    """A run folder from before the run record (or another layout) may not resume, and says so in one line."""
    old = tmp_path / "checkpoints" / "step-4"
    old.mkdir(parents=True)
    (old / "trainer_state.json").write_text('{"step": 4, "epoch": 1, "step_in_epoch": 0, "train_seconds": 1.0}')
    with pytest.raises(UserError, match="step-4: a checkpoint of an earlier hf_charnn release, which this one cannot "):
        train(tiny_config("lm", tiny_data_dir, tmp_path, resume_from="latest"))
