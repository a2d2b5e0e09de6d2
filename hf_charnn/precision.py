"""
`--mixed-precision auto|no|bf16`: which precision a run trains in (loss and softmax always stay fp32).

`auto` is bf16 on CUDA (with TF32 matmuls for what stays fp32). On a CPU it is bf16 only where a bf16 GRU step
measures faster than fp32 at start-up: CPUs with AMX / AVX512-BF16 run it faster, AVX2-only CPUs many times slower.
"""

import time

import torch

_CPU_PROBES: dict[tuple, tuple[float, float]] = {}  # (hidden, rows) -> (fp32 s, bf16 s), once per process
BF16_MIN_SPEEDUP = 1.2  # bf16 must win clearly: near-ties would flip from run to run, and change the results


def _time_gru_steps(hidden_size: int, rows: int, repeats: int = 5) -> tuple[float, float]:
    """
    (fp32 seconds, bf16 seconds) of a GRU training step. The two precisions are timed in turns and each keeps its
    fastest step: a load spike from another process only ever adds time, and must then hit every step of one
    precision and none of the other to flip the choice (timing all fp32 steps first, then all bf16 ones, did flip
    under load: 376 ms fp32 vs 166 ms bf16 on a CPU where fp32 takes 25 ms).
    """
    gru = torch.nn.GRU(hidden_size, hidden_size, batch_first=True)
    inputs = torch.randn(rows, 4, hidden_size)
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


def choose_mixed_precision(requested: str, hidden_size: int, batch_size: int, use_cpu: bool) -> tuple[str, str]:
    """(Accelerate's mixed_precision value, "no" or "bf16"; why it was chosen), for the line printed at start-up."""
    if requested != "auto":
        return requested, "asked for"
    if torch.cuda.is_available() and not use_cpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return "bf16", "auto: CUDA (TF32 on for fp32 matmuls)"
    key = (hidden_size, min(batch_size, 32))
    if key not in _CPU_PROBES:
        # The probe must not move the random streams the run is seeded with.
        with torch.random.fork_rng(devices=[]):
            _CPU_PROBES[key] = _time_gru_steps(*key)
    fp32_seconds, bf16_seconds = _CPU_PROBES[key]
    chosen = "bf16" if bf16_seconds * BF16_MIN_SPEEDUP < fp32_seconds else "no"
    why = (
        f"auto: a GRU step (hidden {hidden_size}) took {bf16_seconds * 1e3:.1f} ms in bf16 vs {fp32_seconds * 1e3:.1f} ms "
        f"in fp32 on this CPU ({torch.backends.cpu.get_cpu_capability()})"
    )
    return chosen, why
