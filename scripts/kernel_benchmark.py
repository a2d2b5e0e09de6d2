#!/usr/bin/env python
"""
Where does a training step's time go on this CPU, and which kernel choices help? Prints a table.

    python scripts/kernel_benchmark.py [--steps 30] [--output docs/kernel_benchmark.md]

For the shapes the presets train (one training step: forward, loss, backward, optimizer step of the real
model classes), each variant is timed as the median of --steps steps after warm-up:
  eager       `nn.GRU` as the models run it (PyTorch's CPU GRU: one gate matmul per character)
  1 thread    the same with one thread: what each of two side-by-side sweep jobs gets
  compile     `torch.compile` of the model (Inductor C++ kernels, `allow_rnn`; compile time in "first step s")
  scan        a hand-written GRU with the input projection for all characters hoisted out of the loop
  scan+compile  the hand-written GRU under `torch.compile` (fusing the gate arithmetic of each step)
  bf16        CPU bf16 autocast (needs AMX / AVX512-BF16 to be fast)
MFU is against the fp32 matmul peak measured at the start of the same run.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hf_charnn import CharGRUConfig, CharGRUForCausalLM, CharGRUForSequenceClassification
from hf_charnn.training import TrainingConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import matmul_peak_gflops, write_table  # noqa: E402

# (name, task, embedding, hidden, batch, sequence length, also time the compiled variants): the presets'
# training shapes. Compiling unrolls the recurrence and takes minutes, so only three shapes try it.
SHAPES = [
    ("classifier default", "classifier", 32, 128, 128, 20, True),
    ("classifier default, batch 512", "classifier", 32, 128, 512, 20, False),
    ("LM default", "lm", 64, 384, 32, 64, True),
    ("LM default, batch 128", "lm", 64, 384, 128, 64, False),
    ("Part 1 sweep, smallest", "classifier", 10, 20, 32, 20, False),
    ("Part 1 sweep, largest", "classifier", 200, 300, 32, 20, True),
]


def scan_gru(inputs, weight_ih, bias_ih, weight_hh, bias_hh) -> torch.Tensor:
    """`nn.GRU` (one layer, batch first) written out: all input projections in one matmul, then the recurrence."""
    projected = F.linear(inputs, weight_ih, bias_ih)
    state = inputs.new_zeros(inputs.shape[0], weight_hh.shape[1])
    outputs = []
    for step in range(inputs.shape[1]):
        recurrent = F.linear(state, weight_hh, bias_hh)
        input_reset, input_update, input_new = projected[:, step].chunk(3, -1)
        state_reset, state_update, state_new = recurrent.chunk(3, -1)
        reset = torch.sigmoid(input_reset + state_reset)
        update = torch.sigmoid(input_update + state_update)
        candidate = torch.tanh(input_new + reset * state_new)
        state = candidate + update * (state - candidate)
        outputs.append(state)
    return torch.stack(outputs, 1)


def make_step(variant: str, task: str, embedding: int, hidden: int, batch: int, length: int):
    torch.manual_seed(0)
    config = CharGRUConfig(embedding_size=embedding, hidden_size=hidden)
    model = (CharGRUForCausalLM if task == "lm" else CharGRUForSequenceClassification)(config).train()
    input_ids = torch.randint(0, 27, (batch, length))
    labels = (
        {"shift_labels": torch.randint(0, 27, (batch, length))}
        if task == "lm"
        else {"labels": torch.randint(0, 2, (batch,))}
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    if variant.startswith("scan"):
        # Plain tensors, not the nn.GRU module: Dynamo refuses to trace any frame that touches an RNN module.
        gru = model.char_gru.gru
        weights = (gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0, gru.bias_hh_l0)
        embedding = model.char_gru.embeddings.weight
        head = model.lm_head if task == "lm" else model.classifier
        head_weights = (head.weight, head.bias)

        def loss_of():
            states = scan_gru(F.embedding(input_ids, embedding), *weights)
            if task == "lm":
                return F.cross_entropy(F.linear(states, *head_weights).flatten(0, 1), labels["shift_labels"].flatten())
            return F.cross_entropy(F.linear(states[:, -1], *head_weights), labels["labels"])
    else:

        def loss_of():
            return model(input_ids=input_ids, **labels).loss

    if variant.endswith("compile"):
        # Without allow_rnn, Dynamo falls back to eager for the whole model (it "does not support RNN, GRU, or LSTM").
        torch._dynamo.config.allow_rnn = True
        torch._dynamo.reset()
        loss_of = torch.compile(loss_of)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            loss = loss_of()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_variant(variant: str, shape: tuple, steps: int) -> dict:
    _, task, embedding, hidden, batch, length, _ = shape
    shape_config = TrainingConfig.from_preset(task, embedding_size=embedding, hidden_size=hidden)
    threads = torch.get_num_threads()
    if variant == "1 thread":
        torch.set_num_threads(1)
    try:
        step = make_step(variant, task, embedding, hidden, batch, length)
        start = time.perf_counter()
        step()  # the first step compiles
        first = time.perf_counter() - start
        for _ in range(2):
            step()
        times = []
        for _ in range(steps if variant != "bf16" else max(3, steps // 10)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    seconds = statistics.median(times)
    return {
        "ms": 1e3 * seconds,
        "first_s": first,
        "chars_per_s": batch * length / seconds,
        "gflops": batch
        * length
        * shape_config.training_flops_per_char(27 if task == "lm" else 2)  # the kernel benchmark times text8 shapes
        / seconds
        / 1e9,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant (median reported)")
    parser.add_argument(
        "--variants", nargs="+", default=["eager", "1 thread", "compile", "scan", "scan+compile", "bf16"]
    )
    parser.add_argument("--output", help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    # Time compilation cold, as a first training run pays it: no FX-graph or kernel cache from an earlier run.
    torch.compiler.config.force_disable_caches = True

    peak = matmul_peak_gflops()
    lines = [
        f"fp32 matmul peak measured now: {peak:.0f} GFLOP/s; {torch.get_num_threads()} threads; "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; torch {torch.__version__}",
        "",
        "| shape (embedding/hidden, batch x length) | variant | ms/step | train chars/s | GFLOP/s | MFU | first step "
        "s |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in SHAPES:
        name, _, embedding, hidden, batch, length, try_compile = shape
        for variant in args.variants:
            if variant.endswith("compile") and not try_compile:
                continue
            numbers = time_variant(variant, shape, args.steps)
            lines.append(
                f"| {name} ({embedding}/{hidden}, {batch}x{length}) | {variant} | {numbers['ms']:.1f} | "
                f"{numbers['chars_per_s']:.0f} | {numbers['gflops']:.1f} | {100 * numbers['gflops'] / peak:.0f} % | "
                f"{numbers['first_s']:.1f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)
    write_table(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
