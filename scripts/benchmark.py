#!/usr/bin/env python
"""
Benchmark the `default` presets against the classic `seed` run, on this machine, and print a table.

    python scripts/benchmark.py [--runs 3] [--output benchmark.md]

Per task: median over --runs of the wall time and final dev metric of the `default` preset; the time it took to
reach the `seed` preset's final quality (77.6 % / perplexity 6.23, the classic run's numbers); the `seed` preset's
time for its 10 epochs, extrapolated from a timed slice of one epoch (one example a step is too slow to run
whole); training throughput and model FLOPs utilisation against a matmul peak measured in the same run.
Generation speed and scoring throughput of the trained LM close the table.
"""

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from headless_browser import browser_missing, headless_chromium, serve_folder

from hf_charnn.cli import train_run as train
from hf_charnn.exercise.files import load_lm_texts
from hf_charnn.training import TrainingConfig
from hf_charnn.web import ORT_WEB_VERSION

SEED_QUALITY = {"lm": 6.23, "classifier": 77.6}  # the classic hand-rolled run (583 s / 1020 s on its machine)
TARGETS = {"lm": "ppl <= 4.0 in <= 120 s", "classifier": "acc >= 79 % in <= 20 s"}


def matmul_peak_gflops(dtype=torch.float32, size=2048, repeats=20) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def write_table(lines: list[str], output: str | None):
    """Print the markdown table, and write it to `output` too when given."""
    table = "\n".join(lines)
    print(table)
    if output:
        Path(output).write_text(table + "\n")


def run_command(command: list, output_dir: Path) -> tuple[dict, float]:
    """A training command as a user runs it (its own process): its summary (eval_results.json) and wall seconds."""
    import subprocess

    start = time.perf_counter()
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, command[:4]))} ... failed:\n{result.stderr[-3000:]}")
    return json.loads((Path(output_dir) / "eval_results.json").read_text()), wall


def reached(history: list[dict], task: str) -> float | None:
    """Training seconds until the dev metric first reached the seed run's final quality."""
    for record in history:
        good = (
            record["dev_perplexity"] <= SEED_QUALITY["lm"]
            if task == "lm"
            else record["dev_accuracy"] >= SEED_QUALITY["classifier"]
        )
        if good:
            return record["train_seconds"]
    return None


def run_default(task: str, data_dir: str, workdir: Path, run: int) -> dict:
    config = TrainingConfig.from_preset(
        task, "default", data_dir=data_dir, output_dir=str(workdir / f"{task}-{run}"), progress_bar=False
    )
    summary = train(config)
    history = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    metric = summary["results"]["perplexity"] if task == "lm" else summary["results"]["accuracy"]
    chars_per_second = statistics.median(record["train_chars_per_second"] for record in history)
    return {
        "config": config,
        "wall": summary["wall_seconds"],
        "train": summary["train_seconds"],
        "metric": metric,
        "to_seed_quality": reached(history, task),
        "chars_per_second": chars_per_second,
        "output_dir": config.output_dir,
    }


def time_seed_preset(task: str, data_dir: str, workdir: Path, rows: int) -> dict:
    """Seconds for the seed preset's full run, extrapolated from `rows` training rows of one epoch."""
    config = TrainingConfig.from_preset(
        task,
        "seed",
        data_dir=data_dir,
        output_dir=str(workdir / f"{task}-seed"),
        epochs=1,
        stop_after_epoch=1,
        max_train_rows=rows,
        progress_bar=False,
    )
    summary = train(config)
    full = TrainingConfig.from_preset(task, "seed", data_dir=data_dir)
    from hf_charnn.exercise.tasks import exercise_task

    task = exercise_task(full)
    task.load()
    total_rows = len(task.train_dataset)
    seconds = summary["train_seconds"] / rows * total_rows * full.epochs
    history = [json.loads(line) for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines()]
    return {"seconds": seconds, "chars_per_second": history[-1]["train_chars_per_second"], "config": full}


class BrowserPage:
    """
    The `export --web` page of `model` in a headless Chromium (scripts/headless_browser.py), served on loopback:
    `load()` opens it and times its first generated character, `rate()` its batch-1 greedy decoding.
    """

    def __init__(self, model, workdir: Path):
        from hf_charnn.web import export_web

        model.save_pretrained(workdir / "model")
        export_web(workdir / "model", workdir / "site")
        self.resources = contextlib.ExitStack()
        self.base = self.resources.enter_context(serve_folder(workdir / "site"))
        self.browser = headless_chromium(workdir / "profile")  # a fresh profile: the first load is cold
        self.resources.callback(self.browser.quit)

    def load(self, prompt: str) -> float:
        """Seconds from the start of loading the page to its first generated character (Generate clicked on ready)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser.get(f"{self.base}/index.html")
        WebDriverWait(self.browser, 60).until(
            lambda page: page.find_element(By.ID, "status").get_attribute("data-ready")
        )
        return self.browser.execute_async_script(
            "const [prompt, done] = arguments; const generated = document.getElementById('generated');"
            "new MutationObserver((_, observer) => { observer.disconnect(); done(performance.now() / 1000); })"
            ".observe(generated, {childList: true, characterData: true, subtree: true});"
            "document.getElementById('prompt').value = prompt; document.getElementById('generate').click();",
            prompt,
        )

    def rate(self, prompt: str, new_chars: int) -> tuple[float, str]:
        """(new characters a second, the text) of greedy `window.hfCharnn.generate` in the loaded page."""
        seconds, text = self.browser.execute_async_script(
            "const [prompt, count, done] = arguments; const start = performance.now();"
            "window.hfCharnn.generate(prompt, count).then((text) => done([(performance.now() - start) / 1000, text]));",
            prompt,
            new_chars,
        )
        return new_chars / seconds, text

    def close(self):
        self.resources.close()


def onnx_numbers(model_dir: str | None, data_dir: str, runs: int = 5, new_chars: int = 1000) -> dict:
    """
    Batch-1 greedy decoding, side by side and alternating: the torch lean `generate()` loop, and the onnxruntime
    loop (`hf_charnn.export.generate_greedy_or_sampled`, numpy only) on the fp32 and the int8 export; medians of `runs`.
    Also the dev text's bits per character through each (the int8 export's quality change). Where a Chromium runs,
    the `export --web` page too: onnxruntime-web's rate in the page, and its first character after loading.
    """
    from hf_charnn import CharGRUForCausalLM, CharTokenizer
    from hf_charnn.export import export_onnx, generate_greedy_or_sampled, log_prob_of, quantize_int8, session_for
    from hf_charnn.models.auto import load_model

    if model_dir:
        model = load_model(model_dir, "lm")
    else:
        model = CharGRUForCausalLM(TrainingConfig.from_preset("lm", "default").model_config()).eval()
    tokenizer = CharTokenizer.for_model(model.config)
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model_quantized.onnx"
        export_onnx(model, fp32)
        quantize_int8(fp32, int8)
        sessions = {"fp32": session_for(fp32), "int8": session_for(int8)}
        prompt = tokenizer(["the united states"], return_tensors="pt")
        layers, hidden = model.config.num_hidden_layers, model.config.hidden_size

        def torch_rate() -> float:
            start = time.perf_counter()
            model.generate(**prompt, max_new_tokens=new_chars, min_new_tokens=new_chars, do_sample=False)
            return new_chars / (time.perf_counter() - start)

        def onnx_rate(name: str) -> float:
            start = time.perf_counter()
            generate_greedy_or_sampled(sessions[name], prompt["input_ids"][0].numpy(), layers, hidden, new_chars)
            return new_chars / (time.perf_counter() - start)

        rates = {"torch": [], "fp32": [], "int8": [], "browser": []}
        missing = browser_missing()
        page = None if missing else BrowserPage(model, Path(tmp))
        first_character = [page.load("the united states")] if page else []  # cold: a fresh browser profile
        torch_rate(), onnx_rate("fp32"), onnx_rate("int8")  # warm-up
        if page:
            page.rate("the united states", new_chars)
        for _ in range(runs):
            rates["torch"].append(torch_rate())
            rates["fp32"].append(onnx_rate("fp32"))
            rates["int8"].append(onnx_rate("int8"))
            if page:
                first_character.append(page.load("the united states"))  # reloaded: onnxruntime-web from the cache
                rates["browser"].append(page.rate("the united states", new_chars)[0])
        greedy_torch = model.generate(**prompt, max_new_tokens=200, do_sample=False)[0, prompt["input_ids"].shape[1] :]
        greedy_onnx = generate_greedy_or_sampled(sessions["fp32"], prompt["input_ids"][0].numpy(), layers, hidden, 200)
        greedy_browser = page.rate("the united states", 200)[1] if page else None
        if page:
            page.close()
        _, dev_text = load_lm_texts(data_dir)
        ids = model.vocabulary.encode(dev_text)
        bpc = {"torch": model.score_long_text(ids) / -len(ids) / math.log(2)}
        bpc.update(
            {name: log_prob_of(session, model, ids) / -len(ids) / math.log(2) for name, session in sessions.items()}
        )
    ratio = lambda name: statistics.median(o / t for o, t in zip(rates[name], rates["torch"]))  # noqa: E731
    return {
        "rates": {name: statistics.median(values) if values else None for name, values in rates.items()},
        "ratio_fp32": ratio("fp32"),
        "ratio_int8": ratio("int8"),
        "ratio_browser": ratio("browser") if rates["browser"] else None,
        "same_greedy_text": greedy_torch.tolist() == greedy_onnx.tolist(),
        "same_greedy_text_browser": None
        if greedy_browser is None
        else model.vocabulary.decode(greedy_torch.tolist()) == greedy_browser,
        "first_character_s": {"cold": first_character[0], "reloaded": statistics.median(first_character[1:])}
        if first_character
        else None,
        "browser_missing": missing,
        "bpc": bpc,
    }


def generation_numbers(model_dir: str | None, data_dir: str, runs: int = 5) -> dict:
    """
    Generation and scoring speed of the trained LM (or, with no LM trained in this run, the default LM shape freshly
    initialised: speed does not depend on the weights). Batch-1 generate is timed side by side, alternating: the lean
    decoding loop (one GRU-cell step per character) and transformers' generic loop (`lean_generation = False`).
    """
    from hf_charnn import CharGRUForCausalLM, CharTokenizer
    from hf_charnn.models.auto import load_model

    if model_dir:
        model = load_model(model_dir, "lm")
    else:
        model = CharGRUForCausalLM(TrainingConfig.from_preset("lm", "default").model_config()).eval()
    tokenizer = CharTokenizer()

    def seconds_for(new_chars: int, batch: int, lean: bool = True) -> float:
        model.lean_generation = lean
        inputs = tokenizer(["the united states"] * batch, return_tensors="pt")
        start = time.perf_counter()
        model.generate(**inputs, max_new_tokens=new_chars, min_new_tokens=new_chars, do_sample=False)
        seconds = time.perf_counter() - start
        model.lean_generation = True
        return seconds

    seconds_for(10, 1), seconds_for(10, 1, lean=False)
    lean, generic = [], []
    for _ in range(runs):
        lean.append(1000 / seconds_for(1000, 1))
        generic.append(1000 / seconds_for(1000, 1, lean=False))
    t1000, t2000 = seconds_for(1000, 1), seconds_for(2000, 1)
    t_batch = seconds_for(1000, 32)
    train_text, _ = load_lm_texts(data_dir)
    start = time.perf_counter()
    model.get_log_prob_sequence(train_text, " ")
    score_seconds = time.perf_counter() - start
    return {
        "batch1_chars_per_second": statistics.median(lean),
        "batch1_generic_chars_per_second": statistics.median(generic),
        "batch1_ratio": statistics.median(a / b for a, b in zip(lean, generic)),
        "batch32_chars_per_second": 32 * 1000 / t_batch,
        "ratio_2000_vs_1000": t2000 / t1000,
        "score_chars_per_second": len(train_text) / score_seconds,
    }


def lm_transfer_row(data_dir: str, workdir: Path) -> str:
    """The LM-transfer classifier: leak-free LM, its zero-shot accuracy, then the fine-tuned classifier."""
    config = TrainingConfig.from_preset(
        "classifier", "lm-transfer", data_dir=data_dir, output_dir=str(workdir / "transfer"), progress_bar=False
    )
    start = time.perf_counter()
    summary = train(config)
    wall = time.perf_counter() - start
    return (
        f"| classifier | lm-transfer | acc >= 83 % | {wall:.1f} | {summary['total_train_seconds']:.1f} | "
        f"**{summary['results']['accuracy']:.1f} %** ({summary['chosen']} chosen on held-out training examples; dev: "
        "zero-shot "
        f"{summary['zero_shot']['dev']['accuracy']:.1f} %, fine-tuned {summary['fine_tuned']['dev']['accuracy']:.1f} "
        "%; "
        f"leak-free LM ppl {summary['lm_results']['perplexity']:.2f}) | | | | | | |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir", default=None, help="exercise data (default: $HF_CHARNN_DATA, else the packaged files)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each default preset (medians are reported)")
    parser.add_argument("--seed-rows", type=int, default=1000, help="training rows timed for the seed preset")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["lm", "classifier", "lm-transfer"],
        choices=["lm", "classifier", "lm-transfer", "generate", "onnx"],
        help="generate: only the inference table (on the default LM shape when no LM is trained in this run); "
        "onnx: batch-1 greedy decoding in onnxruntime (fp32, int8) against the torch loop",
    )
    parser.add_argument("--lm-dir", help="a trained LM folder for the generate / onnx tables (default: this run's)")
    parser.add_argument("--output", help="also write the table (markdown) here")
    args = parser.parse_args(argv)

    peak_fp32 = matmul_peak_gflops()
    lines = [
        # bf16 is timed small: without AMX / AVX512-BF16 it runs at about 1 GFLOP/s here.
        f"matmul peak measured now: fp32 {peak_fp32:.0f} GFLOP/s, bf16 "
        f"{matmul_peak_gflops(torch.bfloat16, size=256, repeats=2):.1f} GFLOP/s "
        f"(CPU capability {torch.backends.cpu.get_cpu_capability()}); "
        f"{torch.get_num_threads()} threads; medians of {args.runs} runs",
    ]
    if any(task not in ("generate", "onnx") for task in args.tasks):  # (only inference tables: no training header)
        lines += [
            "",
            "| task | preset | target | wall s | train s | dev metric | to seed quality s | seed preset s "
            "(extrapolated) | speed-up vs seed | train chars/s | GFLOP/s | MFU (fp32) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    lm_dir = args.lm_dir
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for task in args.tasks:
            if task in ("generate", "onnx"):
                continue  # timed below, after the LM runs
            if task == "lm-transfer":
                lines.append(lm_transfer_row(args.data_dir, workdir))
                continue
            runs = [run_default(task, args.data_dir, workdir, run) for run in range(args.runs)]
            seed = time_seed_preset(task, args.data_dir, workdir, args.seed_rows)
            median = lambda key, runs=runs: statistics.median(r[key] for r in runs)  # noqa: E731
            reached_times = [r["to_seed_quality"] for r in runs if r["to_seed_quality"] is not None]
            to_quality = statistics.median(reached_times) if reached_times else float("nan")
            flops = runs[0]["config"].training_flops_per_char(27 if task == "lm" else 2)
            seed_flops = seed["config"].training_flops_per_char(27 if task == "lm" else 2)
            unit = "ppl" if task == "lm" else "%"
            lines.append(
                f"| {task} | default | {TARGETS[task]} | {median('wall'):.1f} | {median('train'):.1f} | "
                f"{median('metric'):.3f} {unit} | {to_quality:.1f} | {seed['seconds']:.0f} | "
                f"{seed['seconds'] / to_quality:.0f}x | "
                f"{median('chars_per_second'):.0f} | {median('chars_per_second') * flops / 1e9:.1f} | "
                f"{100 * median('chars_per_second') * flops / 1e9 / peak_fp32:.1f} % |"
            )
            lines.append(
                f"| {task} | seed | classic run: {SEED_QUALITY[task]} | | | | | {seed['seconds']:.0f} | 1x | "
                f"{seed['chars_per_second']:.0f} | "
                f"{seed['chars_per_second'] * seed_flops / 1e9:.1f} | "
                f"{100 * seed['chars_per_second'] * seed_flops / 1e9 / peak_fp32:.1f} % |"
            )
            if task == "lm":
                lm_dir = runs[0]["output_dir"]
            print("\n".join(lines[-2:]), file=sys.stderr, flush=True)
        if "generate" in args.tasks or (lm_dir and args.lm_dir is None):
            numbers = generation_numbers(lm_dir, args.data_dir)
            lines += [
                "",
                f"| LM inference ({'the trained default LM' if lm_dir else 'default LM shape, untrained'}) | value | "
                "target |",
                "|---|---|---|",
                f"| generate, batch 1 (new chars/s, median of 5) | {numbers['batch1_chars_per_second']:.0f} | >= 1000 |",  # noqa: E501
                f"| generate, batch 1, transformers' generic loop (`lean_generation = False`) | "
                f"{numbers['batch1_generic_chars_per_second']:.0f} | |",
                f"| batch-1 speed-up of the lean loop (median of paired runs) | {numbers['batch1_ratio']:.2f}x | >= "
                "3x |",
                f"| generate, batch 32 (new chars/s) | {numbers['batch32_chars_per_second']:.0f} | |",
                f"| time for 2000 new chars / time for 1000 | {numbers['ratio_2000_vs_1000']:.2f} | <= 2.2 |",
                f"| get_log_prob_sequence over 100k chars (chars/s) | {numbers['score_chars_per_second']:.0f} | >= "
                "200000 |",
            ]
        if "onnx" in args.tasks:
            numbers = onnx_numbers(lm_dir, args.data_dir)
            what = "the trained LM" if lm_dir else "default LM shape, untrained"
            rates, bpc = numbers["rates"], numbers["bpc"]
            lines += [
                "",
                f"| batch-1 greedy decoding ({what}), median of 5 alternating runs | new chars/s | vs torch | dev bpc "
                "| target |",
                "|---|---|---|---|---|",
                f"| torch, lean `generate()` loop | {rates['torch']:.0f} | 1x | {bpc['torch']:.4f} | |",
                f"| onnxruntime fp32 (`onnx/model.onnx`, numpy loop) | {rates['fp32']:.0f} | "
                f"{numbers['ratio_fp32']:.2f}x | "
                f"{bpc['fp32']:.4f} | >= 1.5x |",
                f"| onnxruntime int8 (`onnx/model_quantized.onnx`) | {rates['int8']:.0f} | "
                f"{numbers['ratio_int8']:.2f}x | "
                f"{bpc['int8']:.4f} | |",
            ]
            if numbers["browser_missing"]:
                lines.append(
                    f"| onnxruntime-web in Chromium (`export --web`) | not run: {numbers['browser_missing']} | | | |"
                )
            else:
                first = numbers["first_character_s"]
                lines += [
                    f"| onnxruntime-web {ORT_WEB_VERSION} in headless Chromium (`export --web` page, wasm, 1 thread) | "
                    f"{rates['browser']:.0f} | {numbers['ratio_browser']:.2f}x | | |",
                    "",
                    "The page's first generated character, counted from the start of loading it: "
                    f"{first['cold']:.2f} s with a fresh browser profile, {first['reloaded']:.2f} s reloaded "
                    "(median; target <= 2 s). "
                    "Greedy text, 200 characters, equal to torch's `generate()`: in the page "
                    f"{numbers['same_greedy_text_browser']}.",
                ]
            lines += [
                "",
                "Greedy text of the fp32 export equals torch's `generate()` (200 characters): "
                f"{numbers['same_greedy_text']}.",
            ]
    write_table(lines, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
