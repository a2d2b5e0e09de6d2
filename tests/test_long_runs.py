"""Step-based runs on a corpus: schedules, checkpoints, kill -9 and resume, several processes, bpc, precision."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ACCELERATE_LAUNCH, free_port, generated_corpus, launch_env

import hf_charnn.models.auto
from hf_charnn import UserError
from hf_charnn.cli import main
from hf_charnn.cli import train_run as train
from hf_charnn.training import TrainingConfig
from hf_charnn.training.checkpoints import complete_checkpoints

TINY = dict(embedding_size=8, hidden_size=16, batch_size=4, chunk_size=16, progress_bar=False, mixed_precision="no")


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    text = generated_corpus(600_000, seed=1)
    (folder / "train.txt").write_text(text[:560_000])
    (folder / "valid.txt").write_text(text[560_000:580_000])
    (folder / "test.txt").write_text(text[580_000:])
    return folder


def rows(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def without_timings(records):
    return [{k: v for k, v in record.items() if "second" not in k} for record in records]


def corpus_config(corpus_files, output_dir, **settings):
    files = dict(
        train_file=str(corpus_files / "train.txt"),
        validation_file=str(corpus_files / "valid.txt"),
        test_file=str(corpus_files / "test.txt"),
    )
    return TrainingConfig.from_preset("lm", "default", output_dir=str(output_dir), **{**files, **TINY, **settings})


def test_steps_schedule_evaluations_checkpoints_and_bpc(tmp_path, corpus_cache, corpus_files):
    summary = train(
        corpus_config(
            corpus_files, tmp_path, max_steps=12, eval_steps=6, eval_chars=3000, save_steps=4, logging_steps=3
        )
    )
    history = rows(tmp_path)
    assert [row["step"] for row in history] == [3, 6, 9, 12]
    # Your own corpus: validation figures under names that do not say "dev"
    assert [("validation_bpc" in row) for row in history] == [False, True, False, True]
    assert not any(key.startswith("dev_") for row in history for key in row)
    assert all(row["train_bpc"] > 0 for row in history) and history[1]["epoch"] < 1
    assert [path.name for path in complete_checkpoints(tmp_path)] == ["step-8", "step-12"]
    results, test_results = summary["results"], summary["test_results"]
    assert results["chars"] == 20_000 and test_results["chars"] == 20_000
    assert results["bpc"] == pytest.approx(results["loss"] / 0.6931471805599453)
    card = (tmp_path / "README.md").read_text()
    assert "type: bpc" in card and f"value: {round(test_results['bpc'], 4)}" in card and "name: test" not in card
    assert "split: test" in card and "the file `train.txt`" in card
    assert json.loads((tmp_path / "eval_results.json").read_text())["test_results"] == test_results


def test_resume_latest_needs_a_checkpoint_and_skips_a_half_written_one(tmp_path, corpus_cache, corpus_files):
    with pytest.raises(UserError, match="--resume-from latest: no complete checkpoint in .*checkpoints"):
        train(corpus_config(corpus_files, tmp_path, max_steps=4, resume_from="latest"))
    train(corpus_config(corpus_files, tmp_path, max_steps=4, save_steps=2))
    (tmp_path / "checkpoints" / "step-6.partial").mkdir()  # a run killed while saving step 6
    (tmp_path / "checkpoints" / "step-8").mkdir()  # a folder without trainer_state.json
    assert complete_checkpoints(tmp_path)[-1].name == "step-4"


def test_a_validation_text_shorter_than_a_window(tmp_path, corpus_cache, corpus_files):
    (tmp_path / "short.txt").write_text("the end")
    config = corpus_config(corpus_files, tmp_path / "run", validation_file=str(tmp_path / "short.txt"), max_steps=1)
    with pytest.raises(UserError, match="validation text .* has 7 characters, fewer than one training window"):
        train(config)


def cli_command(corpus_files, output_dir, *extra):
    return [
        sys.executable,
        "-m",
        "hf_charnn",
        "train-lm",
        "--train-file",
        str(corpus_files / "train.txt"),
        "--validation-file",
        str(corpus_files / "valid.txt"),
        "--output-dir",
        str(output_dir),
        "--embedding-size",
        "16",
        "--hidden-size",
        "96",
        "--batch-size",
        "16",
        "--chunk-size",
        "64",
        "--max-steps",
        "160",
        "--eval-steps",
        "40",
        "--eval-chars",
        "4000",
        "--save-steps",
        "20",
        "--mixed-precision",
        "no",
        "--no-progress-bar",
        *extra,
    ]


def test_a_run_killed_with_sigkill_resumes_to_the_same_result(tmp_path, corpus_cache, corpus_files):
    env = {**os.environ, "HF_CHARNN_CACHE": str(corpus_cache), "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(
        cli_command(corpus_files, tmp_path / "whole"), capture_output=True, text=True, env=env, timeout=600
    )
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        cli_command(corpus_files, killed_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 300
    while (
        not (killed_dir / "checkpoints" / "step-60").is_dir() and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.005)
    time.sleep(0.05)  # a little past the checkpoint: killed mid-way between two of them
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed_dir / "eval_results.json").exists()
    latest = complete_checkpoints(killed_dir)[-1]
    assert 60 <= int(latest.name.split("-")[1]) < 160

    resumed = subprocess.run(
        cli_command(corpus_files, killed_dir, "--resume-from", "latest"),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {latest}" in resumed.stdout
    expected = json.loads((tmp_path / "whole" / "eval_results.json").read_text())
    got = json.loads((killed_dir / "eval_results.json").read_text())
    assert got["results"] == expected["results"] and got["steps"] == expected["steps"] == 160
    assert without_timings(rows(killed_dir)) == without_timings(rows(tmp_path / "whole"))


def test_two_processes_give_the_same_step_losses_as_one(tmp_path, corpus_cache, corpus_files):
    """Each process reads its share of the streams; the cached corpus is encoded once, by the main process."""
    env = launch_env(HF_CHARNN_CACHE=str(corpus_cache))
    settings = [
        "--train-file",
        str(corpus_files / "train.txt"),
        "--validation-file",
        str(corpus_files / "valid.txt"),
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--batch-size",
        "8",
        "--chunk-size",
        "16",
        "--max-steps",
        "10",
        "--logging-steps",
        "1",
        "--eval-steps",
        "10",
        "--eval-chars",
        "2000",
        "--mixed-precision",
        "no",
        "--no-progress-bar",
        "--dropout",
        "0",  # dropout masks depend on how the batch is split between processes
    ]
    launch = [
        *ACCELERATE_LAUNCH,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        "-m",
        "hf_charnn.train_lm",
        "--output-dir",
        str(tmp_path / "two"),
        *settings,
    ]
    two = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("encoding into the cache") == 2  # train and validation files, each once
    one = subprocess.run(
        [sys.executable, "-m", "hf_charnn", "train-lm", "--output-dir", str(tmp_path / "one"), *settings],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    assert "encoding" not in one.stdout  # the cache built by the 2-process run
    summary = json.loads((tmp_path / "two" / "eval_results.json").read_text())
    assert summary["num_processes"] == 2 and summary["steps_per_process"] == [10, 10]
    losses_two = [row["train_loss"] for row in rows(tmp_path / "two")]
    losses_one = [row["train_loss"] for row in rows(tmp_path / "one")]
    assert len(losses_one) == 10
    assert losses_two == pytest.approx(losses_one, abs=1e-5)


def test_streamed_scoring_is_close_to_exact_and_faster(tmp_path, corpus_cache, corpus_files, capsys):
    """README's figures: 16 warmed-up streams score within 0.002 bpc of the exact score, at least 3x faster."""
    import time

    train(corpus_config(corpus_files, tmp_path / "lm", hidden_size=32, max_steps=60))
    text = (corpus_files / "valid.txt").read_text()[:12_000]
    (tmp_path / "score.txt").write_text(text)
    results = {}
    for streams in ("1", "16"):
        capsys.readouterr()
        assert (
            main(
                [
                    "evaluate-lm",
                    str(tmp_path / "lm"),
                    "--text",
                    str(tmp_path / "score.txt"),
                    "--streams",
                    streams,
                    "--warmup",
                    "256",
                ]
            )
            == 0
        )
        results[streams] = json.loads(capsys.readouterr().out)
    from hf_charnn import CharGRUForCausalLM

    model = CharGRUForCausalLM.from_pretrained(tmp_path / "lm").eval()
    assert results["1"]["log_prob"] == pytest.approx(model.get_log_prob_sequence(text, " "), abs=1e-2)
    assert abs(results["16"]["bpc"] - results["1"]["bpc"]) <= 0.002
    assert results["16"]["streams"] == 16 and results["16"]["sane"]

    def fastest(streams):  # best of 5 on one thread: load from other processes only ever adds time
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            model.score_long_text(text, num_streams=streams, warmup=256)
            timings.append(time.perf_counter() - start)
        return min(timings)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert fastest(1) >= 3 * fastest(16)
    finally:
        torch.set_num_threads(threads)


def test_mixed_precision_choice_is_printed_and_saved(tmp_path, corpus_cache, corpus_files, capsys):
    summary = train(corpus_config(corpus_files, tmp_path, max_steps=3, mixed_precision="bf16", eval_chars=500))
    assert summary["mixed_precision"] == {"used": "bf16", "why": "asked for"}
    assert "mixed precision: bf16 (asked for)" in capsys.readouterr().out
    assert summary["results"]["perplexity"] > 1  # scoring stays fp32
    from hf_charnn.exercise.harness import check_normalization, check_sanity

    model = hf_charnn.models.auto.load_model(tmp_path, "lm")
    assert check_sanity(model) and check_normalization(model)
    assert json.loads((tmp_path / "eval_results.json").read_text())["mixed_precision"]["used"] == "bf16"


# Real multi-process launches, full runs and external clients: not in the fast tier (-m "not slow").
pytestmark = pytest.mark.slow
