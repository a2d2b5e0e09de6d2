"""
Runs that cannot hurt each other (issue 14): a run owns its output folder, a resume refuses what it cannot
continue, checkpoints are durable, and the precision choice is stable. Each test first reproduced one of the
issue's numbered problems.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ACCELERATE_LAUNCH, launch_env

from hf_charnn import UserError
from hf_charnn.cli import main
from hf_charnn.cli import train_run as train
from hf_charnn.data.sources import encode_blocks as _encode_blocks
from hf_charnn.data.sources import file_ids
from hf_charnn.training import TrainingConfig
from hf_charnn.training import precision as precision_module
from hf_charnn.training.checkpoints import TRAINER_STATE_FILE, complete_checkpoints

TINY = dict(embedding_size=8, hidden_size=16, batch_size=4, chunk_size=16, progress_bar=False, mixed_precision="no")
CLASSIFIER_TINY = {name: value for name, value in TINY.items() if name != "chunk_size"}  # (an LM's own setting)


def config(data_dir, output_dir, **settings):
    return TrainingConfig.from_preset(
        "lm", "default", data_dir=str(data_dir), output_dir=str(output_dir), **{**TINY, **settings}
    )


def steps_of(output_dir):
    return [path.name for path in complete_checkpoints(output_dir)]


def metrics(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def without_timings(records):
    return [{k: v for k, v in record.items() if "second" not in k} for record in records]


# -- 1. a run owns its output folder -----------------------------------------------------------------------------------
def test_a_new_run_refuses_a_folder_holding_another_run(tmp_path, tiny_data_dir, capsys):
    train(config(tiny_data_dir, tmp_path, max_steps=40, save_steps=20))
    assert steps_of(tmp_path) == ["step-20", "step-40"]
    # Before: the new run's step-5 / step-10 were pruned (the old run's step numbers are higher), and a later
    # --resume-from latest "resumed" the old run and wrote its weights out as the new run's model.
    with pytest.raises(
        UserError,
        match=r"holds another run \(2 checkpoint\(s\) \(step-20, step-40\), model.safetensors, "
        r"eval_results.json\); pass --resume-from latest .* --overwrite-output-dir",
    ):
        train(config(tiny_data_dir, tmp_path, max_steps=10, save_steps=5))
    code = main(["train-lm", "--data-dir", str(tiny_data_dir), "--output-dir", str(tmp_path), "--max-steps", "10"])
    assert code == 2 and "holds another run" in capsys.readouterr().err

    fresh = train(config(tiny_data_dir, tmp_path, max_steps=10, save_steps=5, eval_steps=5, overwrite_output_dir=True))
    assert steps_of(tmp_path) == ["step-5", "step-10"]  # the old run's checkpoints were removed first
    assert [row["step"] for row in metrics(tmp_path)] == [5, 10]
    resumed = train(config(tiny_data_dir, tmp_path, max_steps=10, save_steps=5, eval_steps=5, resume_from="latest"))
    assert resumed["steps"] == 10 and resumed["results"] == fresh["results"]


def test_pruning_removes_only_this_runs_checkpoints(tmp_path, tiny_data_dir):
    train(config(tiny_data_dir, tmp_path / "other", max_steps=2, save_steps=1))
    train(config(tiny_data_dir, tmp_path / "run", max_steps=6, save_steps=3, stop_after_epoch=None))
    # A checkpoint of another run, copied in by hand, with a lower step number than this run's.
    shutil.copytree(tmp_path / "other" / "checkpoints" / "step-2", tmp_path / "run" / "checkpoints" / "step-2")
    train(config(tiny_data_dir, tmp_path / "run", max_steps=12, save_steps=3, save_total_limit=1, resume_from="latest"))
    assert steps_of(tmp_path / "run") == ["step-2", "step-12"]


# -- 2. checked resumes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"--batch-size": "8"},
            "batch_size 4 -> 8",
        ),  # before: RuntimeError: Expected hidden size (1, 8, 16), got [1, 4, 16]
        ({"--hidden-size": "24"}, "hidden_size 16 -> 24"),  # before: a state-dict size-mismatch dump
        (
            {"--hidden-size": "24", "--chunk-size": "8", "--seed": "1"},
            "chunk_size 16 -> 8; hidden_size 16 -> 24; seed 42 -> 1",
        ),
        ({"--carry-state": None}, "carry_state True -> False"),
        ({"--optimizer": "sgd"}, "optimizer 'adamw' -> 'sgd'"),
    ],
)
def test_a_resume_with_other_model_or_data_settings_is_refused(tmp_path, tiny_data_dir, capsys, changes, message):
    settings = {
        "--data-dir": str(tiny_data_dir),
        "--output-dir": str(tmp_path),
        "--embedding-size": "8",
        "--hidden-size": "16",
        "--batch-size": "4",
        "--chunk-size": "16",
        "--max-steps": "4",
        "--save-steps": "2",
        "--optimizer": "adamw",
        "--mixed-precision": "no",
        "--carry-state": None,
        "--no-progress-bar": None,
    }

    def argv(values):
        return [
            "train-lm",
            *[item for flag, value in values.items() for item in ([flag] if value is None else [flag, value])],
        ]

    assert main(argv(settings)) == 0
    capsys.readouterr()
    changed = {**settings, **changes}
    if "--carry-state" in changes:
        changed = {("--no-carry-state" if flag == "--carry-state" else flag): value for flag, value in changed.items()}
    code = main([*argv(changed), "--resume-from", "latest"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"cannot resume {tmp_path}/checkpoints/step-4 with other settings or data: {message}. " in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_resume_with_other_data_is_refused_and_schedule_changes_are_reported(tmp_path, corpus_cache, capsys):
    from conftest import generated_corpus

    text = generated_corpus(30_000, seed=3)
    (tmp_path / "train.txt").write_text(text[:25_000])
    (tmp_path / "valid.txt").write_text(text[25_000:])
    files = dict(train_file=str(tmp_path / "train.txt"), validation_file=str(tmp_path / "valid.txt"))
    train(config(None, tmp_path / "run", max_steps=4, save_steps=2, **files))
    capsys.readouterr()
    resumed = train(
        config(None, tmp_path / "run", max_steps=6, save_steps=3, eval_steps=3, resume_from="latest", **files)
    )
    assert resumed["steps"] == 6
    out = capsys.readouterr().out
    assert "resuming with changed schedule settings: eval_steps None -> 3; max_steps 4 -> 6; save_steps 2 -> 3" in out
    # The same size and modification time, other text: the corpus fingerprint (and the cache key) still see it.
    stat = os.stat(tmp_path / "train.txt")
    edited = text[:25_000].replace("the", "eht")
    assert len(edited) == 25_000 and edited != text[:25_000]
    (tmp_path / "train.txt").write_text(edited)
    os.utime(tmp_path / "train.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(UserError, match=r"cannot resume .* data train: 25000:\w+ -> 25000:\w+"):
        train(config(None, tmp_path / "run", max_steps=8, save_steps=3, eval_steps=3, resume_from="latest", **files))


def test_the_corpus_cache_key_is_the_content(tmp_path, corpus_cache):
    path = tmp_path / "text.txt"
    path.write_text("abc def ghi")
    first = file_ids(path).copy()
    stat = os.stat(path)
    path.write_text("xyz def ghi")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same modification time
    assert list(file_ids(path)[:3]) == [23, 24, 25] and list(first[:3]) == [0, 1, 2]
    moved = tmp_path / "elsewhere.txt"
    shutil.copy(path, moved)
    assert len(list(corpus_cache.glob("*.bin"))) == 2
    file_ids(moved)  # the same content at another path: the cache is reused
    assert len(list(corpus_cache.glob("*.bin"))) == 2


def test_normalize_reads_block_by_block():
    """--normalize encodes each block as it is read (it used to read every block into a list first)."""
    pulled = []

    def blocks():
        for index in range(5):
            pulled.append(index)
            yield b"Hello, World! 42 " * 10

    written_after = []
    _encode_blocks(blocks(), "source", normalize=True, write=lambda ids: written_after.append(len(pulled)))
    assert written_after[:3] == [1, 2, 3]


# -- 4. precision `auto` ----------------------------------------------------------------------------------------------
@pytest.fixture
def probe(monkeypatch, tmp_path):
    """Injects the probe's timings and counts its calls; a private verdict cache."""
    monkeypatch.setenv("HF_CHARNN_PRECISION_CACHE", str(tmp_path / "precision.json"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls = []

    def inject(fp32_ms, bf16_ms):
        calls.clear()

        def timed(shape, repeats=5):
            calls.append(shape)
            return fp32_ms / 1e3, bf16_ms / 1e3

        monkeypatch.setattr(precision_module, "time_training_steps", timed)
        return calls

    return inject


@pytest.fixture
def tf32_off():
    """TF32 flags off for the test, restored after (they are process-wide switches, not attributes to patch)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def run_shape(**settings):
    return TrainingConfig.from_preset("lm", "default", **settings)


def test_auto_picks_bf16_only_where_it_is_clearly_faster_and_caches_the_verdict(probe):
    calls = probe(fp32_ms=10.0, bf16_ms=5.0)
    assert precision_module.choose_mixed_precision("auto", run_shape())[0] == "bf16"
    assert calls == [{"embedding_size": 64, "hidden_size": 384, "num_hidden_layers": 1, "rows": 32, "length": 64}]
    used, why = precision_module.choose_mixed_precision("auto", run_shape())
    assert used == "bf16" and len(calls) == 1 and "measured on an earlier run, cached in" in why  # reused, not probed
    # Another shape is probed on its own: a near tie (1.1x) stays fp32.
    calls = probe(fp32_ms=11.0, bf16_ms=10.0)
    used, why = precision_module.choose_mixed_precision("auto", run_shape(hidden_size=128, num_hidden_layers=2))
    assert used == "no" and calls[0]["num_hidden_layers"] == 2 and "10.0 ms in bf16 vs 11.0 ms in fp32" in why
    assert precision_module.choose_mixed_precision("bf16", run_shape(hidden_size=128)) == ("bf16", "asked for")


def test_auto_honours_the_cpu_flags_and_gpu_bf16_support(probe, monkeypatch, tf32_off):
    calls = probe(fp32_ms=10.0, bf16_ms=20.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Test GPU")
    supported = {"value": False}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: supported["value"])
    assert precision_module.choose_mixed_precision("auto", run_shape())[0] == "no"  # no native bf16: fp32 + TF32
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 and not calls
    supported["value"] = True
    assert precision_module.choose_mixed_precision("auto", run_shape())[0] == "bf16"
    # --cpu, and ACCELERATE_USE_CPU (README's 2-process CPU command), mean the CPU probe even with a GPU present.
    assert precision_module.choose_mixed_precision("auto", run_shape(), cpu_flag=True)[0] == "no" and len(calls) == 1
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    assert precision_module.choose_mixed_precision("auto", run_shape())[0] == "no" and len(calls) == 1


def test_a_resumed_auto_run_keeps_its_precision_and_restores_tf32(probe, monkeypatch, tf32_off):
    calls = probe(fp32_ms=10.0, bf16_ms=5.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    used, why = precision_module.run_precision(run_shape(), resumed="no", checkpoint="ckpt")
    assert (used, why) == ("no", "auto: as chosen when ckpt was saved") and not calls
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


# -- 5. durable checkpoints -------------------------------------------------------------------------------------------
def test_save_total_limit_must_keep_one(tmp_path, tiny_data_dir):
    for limit in (0, -1):
        with pytest.raises(UserError, match=f"--save-total-limit must be at least 1 .*not {limit}"):
            train(config(tiny_data_dir, tmp_path, max_steps=2, save_total_limit=limit))


KILL_DURING_SAVE = """
import os, signal, sys
from accelerate import Accelerator
from hf_charnn.cli import main

save_state = Accelerator.save_state

def save_then_die(self, output_dir=None, **kwargs):
    result = save_state(self, output_dir, **kwargs)
    if output_dir.endswith("step-4.partial"):  # Accelerate's files are written, ours are not: killed between files
        os.kill(os.getpid(), signal.SIGKILL)
    return result

Accelerator.save_state = save_then_die
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_while_saving_resumes_from_the_checkpoint_before(tmp_path, tiny_data_dir):
    command = [
        "train-lm",
        "--data-dir",
        str(tiny_data_dir),
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--batch-size",
        "4",
        "--chunk-size",
        "16",
        "--max-steps",
        "8",
        "--save-steps",
        "2",
        "--logging-steps",
        "1",
        "--mixed-precision",
        "no",
        "--no-progress-bar",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(
        [sys.executable, "-m", "hf_charnn", *command, "--output-dir", str(tmp_path / "whole")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_SAVE, *command, "--output-dir", str(tmp_path / "killed")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert (checkpoints / "step-4.partial" / "model.safetensors").is_file()  # half-written: weights, no trainer state
    assert not (checkpoints / "step-4.partial" / TRAINER_STATE_FILE).exists()
    assert steps_of(tmp_path / "killed") == ["step-2"]
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_charnn",
            *command,
            "--output-dir",
            str(tmp_path / "killed"),
            "--resume-from",
            "latest",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "step-2 (step 2)" in resumed.stdout
    assert without_timings(metrics(tmp_path / "killed")) == without_timings(metrics(tmp_path / "whole"))
    expected = json.loads((tmp_path / "whole" / "eval_results.json").read_text())["results"]
    assert json.loads((tmp_path / "killed" / "eval_results.json").read_text())["results"] == expected
    assert not (checkpoints / "step-4.partial").exists() and steps_of(tmp_path / "killed") == ["step-6", "step-8"]


def test_torch_loads_only_weights(tmp_path):
    """Every torch.load in the package passes weights_only=True (checkpoints are not trusted pickles)."""
    import ast
    from pathlib import Path

    import hf_charnn

    for path in Path(hf_charnn.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "load"
                and getattr(node.func.value, "id", None) == "torch"
            ):
                keywords = {keyword.arg: getattr(keyword.value, "value", None) for keyword in node.keywords}
                assert keywords.get("weights_only") is True, f"{path.name}:{node.lineno}"


# -- 9. start-up, and the import graph --------------------------------------------------------------------------------
def test_version_and_help_import_no_heavy_library():
    script = textwrap.dedent("""
        import sys
        from hf_charnn.cli import main
        for argv in (["--version"], ["train-lm", "--help"], ["train-classifier", "--help"], ["sweep", "--help"]):
            try:
                main(argv)
            except SystemExit:
                pass
        heavy = sorted(name for name in ("torch", "transformers", "accelerate", "datasets") if name in sys.modules)
        print("heavy:", heavy, file=sys.stderr)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stderr


def test_importing_hf_charnn_registers_the_auto_classes_in_either_order():
    for first, second in (("hf_charnn", "transformers"), ("transformers", "hf_charnn")):
        script = (
            f"import {first}, {second}, sys\n"
            "from transformers.models.auto.configuration_auto import CONFIG_MAPPING\n"
            "from hf_charnn.models.modeling_char_gru import CharGRUForCausalLM\n"
            "print('char_gru' in CONFIG_MAPPING, CharGRUForCausalLM._auto_class)\n"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == "True AutoModelForCausalLM", result.stderr[-2000:]


def test_the_import_graph_has_no_cycle():
    """Every import between hf_charnn's modules, at module level or inside functions."""
    import ast
    from pathlib import Path

    import hf_charnn

    package = Path(hf_charnn.__file__).parent
    graph = {}
    for path in package.glob("*.py"):
        name = path.stem
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                edges |= {node.module} if node.module else {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hf_charnn."):
                edges.add(node.module.split(".")[1])
        graph[name] = {edge.split(".")[0] for edge in edges if (package / f"{edge.split('.')[0]}.py").is_file()} - {
            name
        }
    graph.pop("__init__")  # the package's lazy attributes load modules by name; they import nothing back

    def visit(node, trail):
        assert node not in trail, "import cycle: " + " -> ".join([*trail, node])
        for edge in graph.get(node, ()):
            visit(edge, [*trail, node])

    for module in graph:
        visit(module, [])


# -- 3. every process's own state; several machines; 6. classifier validation at any process count -------------------
TWO_PROCESS_RUN = [
    "--embedding-size",
    "8",
    "--hidden-size",
    "16",
    "--batch-size",
    "16",
    "--chunk-size",
    "16",
    "--max-steps",
    "40",
    "--save-steps",
    "10",
    "--logging-steps",
    "7",
    "--eval-steps",
    "25",
    "--mixed-precision",
    "no",
    "--no-progress-bar",
]
# Dropout stays on (each process's RNG is restored), and rows fall between checkpoints (7, 14, 21, 25, 28, 35): each
# checkpoint holds training-loss sums not yet written to a row, which every process must restore.


def launch(output_dir, data_dir, *extra, machines=None, port=None):
    """`accelerate launch` of train-lm on 2 CPU processes: one machine, or (machines=(rank, port)) one of two."""
    from conftest import free_port

    where = ["--num_processes", "2", "--num_machines", "1", "--main_process_port", str(port or free_port())]
    if machines is not None:
        where = [
            "--num_processes",
            "2",
            "--num_machines",
            "2",
            "--machine_rank",
            str(machines),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            str(port),
        ]
    return [
        *ACCELERATE_LAUNCH,
        *where,
        "-m",
        "hf_charnn.train_lm",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(output_dir),
        *TWO_PROCESS_RUN,
        *extra,
    ]


def kill_tree(pid: int):
    """SIGKILL a process and every process below it, found through /proc (as a crash or `kill -9` on each would)."""
    children = {}
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat))
    tree, index = [pid], 0
    while index < len(tree):
        tree += children.get(tree[index], [])
        index += 1
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def two_process_reference(tmp_path_factory, tiny_data_dir):
    output = tmp_path_factory.mktemp("two-processes")
    result = subprocess.run(
        launch(output, tiny_data_dir), capture_output=True, text=True, env=launch_env(), timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def test_two_processes_killed_with_sigkill_resume_to_the_same_rows(tmp_path, tiny_data_dir, two_process_reference):
    import time

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        launch(killed, tiny_data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=launch_env()
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "step-20").is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)
    kill_tree(process.pid)  # the launcher, torchrun and both training processes (torchrun starts its own sessions)
    process.wait()
    assert not (killed / "eval_results.json").exists(), "the run ended before it could be killed"
    latest = complete_checkpoints(killed)[-1]
    assert latest.name in ("step-20", "step-30")
    counters = [json.loads((latest / f"process_state_{rank}.json").read_text()) for rank in (0, 1)]
    assert all(counter["loss_sum"] > 0 and counter["targets"] > 0 for counter in counters)
    resumed = subprocess.run(
        launch(killed, tiny_data_dir, "--resume-from", "latest"),
        capture_output=True,
        text=True,
        env=launch_env(),
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {latest} " in resumed.stdout, resumed.stdout[:1000]
    # Rows after the resume reduce both processes' restored counters (only the main process's were saved before).
    assert without_timings(metrics(killed)) == without_timings(metrics(two_process_reference))
    expected = json.loads((two_process_reference / "eval_results.json").read_text())
    got = json.loads((killed / "eval_results.json").read_text())
    assert got["results"] == expected["results"] and got["steps_per_process"] == [40, 40]


def test_two_machines_train_checkpoint_and_resume_like_one(tmp_path, tiny_data_dir, two_process_reference):
    """`--num_machines 2 --machine_rank 0|1` on this one box, one process per "machine", a shared output folder."""
    from conftest import free_port

    output = tmp_path / "two-machines"

    def both(*extra):
        port = free_port()
        processes = [
            subprocess.Popen(
                launch(output, tiny_data_dir, *extra, machines=rank, port=port),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=launch_env(),
            )
            for rank in (0, 1)
        ]
        outputs = [process.communicate(timeout=600) for process in processes]
        for process, (_, err) in zip(processes, outputs):
            assert process.returncode == 0, err[-3000:]
        return outputs

    both("--stop-after-epoch", "1")  # an epoch is 16 steps here: stopped there, with a checkpoint
    assert not (output / "eval_results.json").exists() and steps_of(output)[-1] == "step-16"
    (out_0, _), (out_1, _) = both("--resume-from", "latest")
    assert "resumed from" in out_0
    assert without_timings(metrics(output)) == without_timings(metrics(two_process_reference))
    expected = json.loads((two_process_reference / "eval_results.json").read_text())["results"]
    assert json.loads((output / "eval_results.json").read_text())["results"] == expected


def test_a_resume_on_another_process_count_is_refused(tmp_path, tiny_data_dir, two_process_reference, capsys):
    shutil.copytree(two_process_reference / "checkpoints", tmp_path / "checkpoints")
    args = [
        "train-lm",
        "--data-dir",
        str(tiny_data_dir),
        "--output-dir",
        str(tmp_path),
        *TWO_PROCESS_RUN,
        "--resume-from",
        "latest",
    ]
    assert main(args) == 2
    assert "processes 2 -> 1 (each process's share of the streams is saved)" in capsys.readouterr().err


def test_classifier_validation_at_three_processes(tmp_path, tiny_data_dir):
    """A validation batch split three ways, an uneven last batch: the gathered accuracy counts each example once."""
    from conftest import free_port

    command = [
        *ACCELERATE_LAUNCH,
        "--num_processes",
        "3",
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        "-m",
        "hf_charnn.train_classifier",
        "--data-dir",
        str(tiny_data_dir),
        "--output-dir",
        str(tmp_path),
        "--embedding-size",
        "8",
        "--hidden-size",
        "16",
        "--batch-size",
        "6",
        "--epochs",
        "2",
        "--mixed-precision",
        "no",
        "--no-progress-bar",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=launch_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "eval_results.json").read_text())
    assert summary["num_processes"] == 3 and summary["results"]["total"] == 100
    # The last mid-run validation (3 processes, gathered) equals the final evaluation (one process, the harness).
    assert metrics(tmp_path)[-1]["dev_accuracy"] == pytest.approx(summary["results"]["accuracy"])


def test_classifier_validation_prepares_one_loader_per_run(tmp_path, tiny_data_dir, monkeypatch):
    """Three validations, one prepared validation loader (each validation used to prepare, and keep, another)."""
    from accelerate import Accelerator

    prepared = []
    prepare_data_loader = Accelerator.prepare_data_loader

    def counting(self, *args, **kwargs):
        prepared.append(len(args[0].dataset) if args else None)
        return prepare_data_loader(self, *args, **kwargs)

    monkeypatch.setattr(Accelerator, "prepare_data_loader", counting)
    train(
        TrainingConfig.from_preset(
            "classifier",
            "default",
            data_dir=str(tiny_data_dir),
            output_dir=str(tmp_path),
            **{**CLASSIFIER_TINY, "epochs": 3},
        )
    )
    assert len(metrics(tmp_path)) == 3 and prepared == [200, 100]  # the training rows, then the dev examples once


def test_a_launched_script_trains_run_after_run(tmp_path, tiny_data_dir):
    """
    A script under `accelerate launch` may train more than once (the LM-transfer recipe does): a run leaves the
    process group to the process (before, the first run destroyed it and the second failed), and `close_distributed`
    ends it once the collectives are settled (see training.settle_collectives).
    """
    from conftest import free_port

    script = tmp_path / "two_runs.py"
    script.write_text(
        textwrap.dedent(f"""
        import json, os
        from pathlib import Path
        from hf_charnn.cli import train_run as train
        from hf_charnn.training import TrainingConfig, close_distributed

        for name in ("first", "second"):
            settings = dict(embedding_size=8, hidden_size=16, batch_size=4, chunk_size=16, max_steps=6, progress_bar=False,  # noqa: E501
                            mixed_precision="no", data_dir={str(tiny_data_dir)!r}, output_dir={str(tmp_path)!r} + "/" + name)  # noqa: E501
            summary = train(TrainingConfig.from_preset("lm", "default", **settings))
            # a file per process (the processes' stdout lines interleave)
            Path(settings["output_dir"], "steps-" + os.environ["RANK"]).write_text(json.dumps(summary["steps_per_process"]))  # noqa: E501
        close_distributed()
    """)
    )
    command = [
        *ACCELERATE_LAUNCH,
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--main_process_port",
        str(free_port()),
        str(script),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=launch_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("first", "second"):
        assert [json.loads((tmp_path / name / f"steps-{rank}").read_text()) for rank in (0, 1)] == [[6, 6], [6, 6]]
    assert json.loads((tmp_path / "second" / "eval_results.json").read_text())["results"]["sane"]


# Real multi-process launches, full runs and external clients: not in the fast tier (-m "not slow").
pytestmark = pytest.mark.slow
