"""
`--mixed-precision auto|no|bf16`: which precision a run trains in (loss and softmax always stay fp32).

`auto`:
- on a CUDA GPU (unless `--cpu` or ACCELERATE_USE_CPU): bf16 where the GPU supports it natively
  (`torch.cuda.is_bf16_supported`), else fp32; TF32 matmuls either way, for what stays fp32;
- on a CPU: bf16 only where a training step of this run's shape (its embedding and hidden sizes, its layers, a real
  window) measures clearly faster in bf16 than in fp32. CPUs with AMX / AVX512-BF16 can run it faster, AVX2-only
  CPUs run it many times slower. The verdict is cached (under the HF cache, keyed by CPU model, torch version and
  shape), so the same machine makes the same choice on every run: a probe near a tie would otherwise flip between
  runs, and the same seed would give different results.
A resumed run keeps the precision it started with (see loop.py).
"""

import json
import os
import platform
import time
from pathlib import Path

import torch

from ..data.cache import cache_home
from .run_folder import write_atomically

BF16_MIN_SPEEDUP = 1.2  # bf16 must win clearly
PROBE_ROWS = 32  # the probe's batch rows and window length are capped so that it costs about a second
PROBE_MAX_LENGTH = 64
VERDICTS_ENV = "HF_CHARNN_PRECISION_CACHE"


def verdicts_file() -> Path:
    """$HF_CHARNN_PRECISION_CACHE, else hf_charnn/precision.json under the Hugging Face cache."""
    if os.environ.get(VERDICTS_ENV):
        return Path(os.environ[VERDICTS_ENV])
    return cache_home() / "precision.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_training_steps(shape: dict, repeats: int = 5) -> tuple[float, float]:
    """
    (fp32 seconds, bf16 seconds) of a GRU training step of `shape`. The two precisions are timed in turns and
    each keeps its fastest step: a load spike from another process only ever adds time, and must then hit every
    step of one precision and none of the other to flip the choice.
    """
    gru = torch.nn.GRU(
        shape["embedding_size"],
        shape["hidden_size"],
        num_layers=shape["num_hidden_layers"],
        batch_first=True,
        bidirectional=shape.get("bidirectional", False),
    )
    inputs = torch.randn(shape["rows"], shape["length"], shape["embedding_size"])
    best = {False: float("inf"), True: float("inf")}
    for turn in range(repeats + 1):
        for bf16 in (False, True):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                outputs, _ = gru(inputs)
            outputs.float().sum().backward()
            if turn:  # the first turn warms up (allocations, kernel selection)
                best[bf16] = min(best[bf16], time.perf_counter() - start)
    return best[False], best[True]


def cpu_requested(cpu_flag: bool) -> bool:
    """`--cpu`, or ACCELERATE_USE_CPU as Accelerate reads it (what `accelerate launch --cpu` sets)."""
    from accelerate.utils import parse_flag_from_env

    return bool(cpu_flag) or parse_flag_from_env("ACCELERATE_USE_CPU")


def use_cpu(cpu_flag: bool) -> bool:
    """Whether the run trains on the CPU: asked for (`cpu_requested`), or no CUDA GPU."""
    return cpu_requested(cpu_flag) or not torch.cuda.is_available()


def enable_tf32():
    """TF32 for fp32 matmuls on CUDA (set on every start, a resumed one too: it is process state, not saved)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def choose_mixed_precision(
    requested: str, config, cpu_flag: bool = False, length: int = PROBE_MAX_LENGTH
) -> tuple[str, str]:
    """(Accelerate's mixed_precision value, "no" or "bf16"; why it was chosen), for the line printed at start-up."""
    on_cpu = use_cpu(cpu_flag)
    if not on_cpu:
        enable_tf32()
    if requested != "auto":
        return requested, "asked for"
    if not on_cpu:
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return "bf16", f"auto: {torch.cuda.get_device_name()} supports bf16 (TF32 on for fp32 matmuls)"
        return "no", f"auto: {torch.cuda.get_device_name()} has no native bf16; fp32 with TF32 matmuls"
    shape = {
        "embedding_size": config.embedding_size,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "rows": min(config.batch_size, PROBE_ROWS),
        "length": min(length, PROBE_MAX_LENGTH),  # the run's own sequence length (the task's `sequence_length`)
    }
    if config.model_config().bidirectional:  # (one-way shapes keep their earlier cache keys)
        shape["bidirectional"] = True
    key = json.dumps({"cpu": cpu_model(), "torch": torch.__version__, **shape}, sort_keys=True)
    verdicts = _read_verdicts()
    cached = key in verdicts
    if not cached:
        # The probe must not move the random streams the run is seeded with.
        with torch.random.fork_rng(devices=[]):
            fp32_seconds, bf16_seconds = time_training_steps(shape)
        verdicts[key] = {
            "fp32_ms": fp32_seconds * 1e3,
            "bf16_ms": bf16_seconds * 1e3,
            "bf16": bf16_seconds * BF16_MIN_SPEEDUP < fp32_seconds,
        }
        _write_verdicts(verdicts)
    verdict = verdicts[key]
    why = (
        f"auto: a training step of this run's shape took {verdict['bf16_ms']:.1f} ms in bf16 vs "
        f"{verdict['fp32_ms']:.1f} ms "
        f"in fp32 on this CPU ({torch.backends.cpu.get_cpu_capability()}; bf16 needs {BF16_MIN_SPEEDUP}x)"
        + (f"; measured on an earlier run, cached in {verdicts_file()}" if cached else "")
    )
    return ("bf16" if verdict["bf16"] else "no"), why


def run_precision(
    config, length: int = PROBE_MAX_LENGTH, resumed: str | None = None, checkpoint=None
) -> tuple[str, str]:
    """The run's precision: a resumed `auto` run keeps the one it started with (TF32 set again on CUDA)."""
    if resumed is not None and config.mixed_precision == "auto":
        if not use_cpu(config.cpu):
            enable_tf32()
        return resumed, f"auto: as chosen when {checkpoint} was saved"
    return choose_mixed_precision(config.mixed_precision, config, config.cpu, length)


def _read_verdicts() -> dict:
    try:
        verdicts = json.loads(verdicts_file().read_text())
    except (OSError, ValueError):
        return {}
    return verdicts if isinstance(verdicts, dict) else {}


def _write_verdicts(verdicts: dict):
    """Best effort: a read-only cache only means the next run probes again."""
    path = verdicts_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(verdicts, indent=1) + "\n")
    except OSError:
        pass
