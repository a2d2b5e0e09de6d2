#!/usr/bin/env python
"""
Batch-1 generation speed of two checkouts side by side (say, before and after a change to the LM's forward or its
cache), in alternating runs on the same machine:

    git worktree add /tmp/before <commit>
    python scripts/generation_speed.py --before /tmp/before [--pairs 4]

For each checkout (each in its own process, its `hf_charnn` first on the path): a randomly initialised default-size
LM (64-wide embedding, 512 hidden, text8), greedy `generate()` of 2,000 new characters through the lean loop and 300
through transformers' own loop (`lean_generation = False`), medians of 5 in a run; and whether the greedy text, a
seeded sample and a 3-beam search are the same in both checkouts. It prints the medians over the pairs and their
ratio.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

RUN = r"""
import json, statistics, sys, time, torch
sys.path.insert(0, sys.argv[1])
from hf_charnn import CharGRUConfig, CharGRUForCausalLM, CharTokenizer
torch.manual_seed(0)
model = CharGRUForCausalLM(CharGRUConfig(embedding_size=64, hidden_size=512)).eval()
inputs = CharTokenizer()(["the king "], return_tensors="pt")
def timed(n, **kw):
    runs = []
    for _ in range(5):
        start = time.perf_counter(); out = model.generate(**inputs, max_new_tokens=n, **kw)
        runs.append(time.perf_counter() - start)
    return n / statistics.median(runs), out[0].tolist()
lean, greedy = timed(2000, do_sample=False)
model.lean_generation = False
loop, _ = timed(300, do_sample=False)
model.lean_generation = True
torch.manual_seed(1)
sampled = model.generate(**inputs, max_new_tokens=50, do_sample=True, temperature=0.8)[0].tolist()
beams = model.generate(**inputs, max_new_tokens=60, num_beams=3, num_return_sequences=2).tolist()
print(json.dumps({"lean": lean, "loop": loop, "texts": [greedy, sampled, beams]}))
"""


def run(checkout: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", RUN, str(checkout)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the other checkout (its repository root)")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    runs = {"before": [], "after": []}
    run(args.before)  # (a first run warms the disk cache and the CPU up; not counted)
    for _ in range(args.pairs):
        for name in runs:
            runs[name].append(run(getattr(args, name)))
    same = all(r["texts"] == runs["before"][0]["texts"] for r in runs["before"] + runs["after"])
    print("| loop | before (new chars/s) | after | after / before |")
    print("|---|---|---|---|")
    for key, name in (("lean", "lean generate() loop, greedy"), ("loop", "transformers' own loop, greedy")):
        before, after = (statistics.median(r[key] for r in runs[name]) for name in ("before", "after"))
        print(f"| {name} | {before:,.0f} | {after:,.0f} | {after / before:.3f} |")
    print(
        f"\nmedians of {args.pairs} alternating pairs; greedy, sampled and beam-search texts the same in both: {same}"
    )


if __name__ == "__main__":
    main()
