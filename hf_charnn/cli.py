"""
The `hf-charnn` command line. Bad input (a `UserError` or `DataError`, or a flag argparse refuses) gives one line on
stderr and exit code 2; any other exception is a bug of ours and keeps its traceback.

The command line is where the layers meet: a run that names no data trains the text8 exercise
(`hf_charnn.exercise`), and text8 models are scored and demoed with the exercise's checks and tabs. It is the only
module that imports the exercise.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import UserError

EXIT_USER_ERROR = 2
DATA_DIR_HELP = "folder of the exercise files (default: $HF_CHARNN_DATA, else the files packaged with hf_charnn)"


def _print_result(result: dict, output: str | None):
    text = json.dumps(result, indent=2)
    print(text)
    if output:
        try:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text + "\n")
        except OSError as error:
            raise UserError(f"{output}: cannot write the result ({error.strerror}); give another --output") from None


def cmd_baseline(args):
    from .exercise.baselines import FrequencyClassifier, UniformLanguageModel
    from .exercise.files import load_classification_examples, load_lm_texts
    from .exercise.harness import evaluate_classifier, evaluate_exercise_lm

    classifier = FrequencyClassifier.fit(*load_classification_examples(args.data_dir, "train"))
    _, dev_text = load_lm_texts(args.data_dir)
    _print_result(
        {
            "frequency_classifier": evaluate_classifier(
                classifier, *load_classification_examples(args.data_dir, "dev")
            ),
            "uniform_lm": evaluate_exercise_lm(UniformLanguageModel(), dev_text),
        },
        args.output,
    )


def cmd_evaluate_lm(args):
    from .evaluation import evaluate_lm
    from .exercise.harness import evaluate_exercise_lm
    from .models.auto import load_model

    if args.streams < 1 or args.warmup < 0:
        raise UserError("--streams must be at least 1 and --warmup at least 0")
    model = load_model(args.model_dir, "lm")
    text = _text_ids(model, args.text, args.normalize)
    start = time.perf_counter()
    # A text8 model is the exercise's kind: it is scored as the exercise scores (its checks, its words).
    evaluate = evaluate_exercise_lm if model.vocabulary.kind == "text8" else evaluate_lm
    result = evaluate(model, text, streams=args.streams, warmup=args.warmup)
    result["seconds"] = time.perf_counter() - start
    if args.dynamic:
        result["dynamic"] = _dynamic_block(model, args, text)
    _print_result(result, args.output)


def _text_ids(model, path: str, normalize: bool = False):
    """
    A text file as ids of the model's vocabulary: a text8 model's text checked (errors name the line) or, with
    `normalize`, mapped into text8 form; any other model's text as it is (errors name the character and position).
    """
    from .data.sources import read_text_file

    if model.vocabulary.kind == "text8":
        return model.vocabulary.encode(read_text_file(path, normalize=normalize))
    try:
        return model.vocabulary.encode(read_text_file(path, as_is=True), source=path)
    except ValueError as error:
        raise UserError(str(error)) from None


def _dynamic_block(model, args, ids) -> dict:
    """`evaluate-lm --dynamic`: the text scored under dynamic evaluation, with the statistics the folder holds or
    `--dynamic-stats-from` gives, and the settings given or tuned on `--dynamic-tune-on` (never on the scored text)."""
    from . import dynamic_evaluation as dynamic

    lr = dynamic.DEFAULT_LR if args.dynamic_lr is None else args.dynamic_lr
    decay = dynamic.DEFAULT_DECAY if args.dynamic_decay is None else args.dynamic_decay
    segment = dynamic.DEFAULT_SEGMENT if args.dynamic_segment is None else args.dynamic_segment
    if segment < 1 or lr < 0 or decay < 0:
        raise UserError("--dynamic-segment must be at least 1, --dynamic-lr and --dynamic-decay at least 0")
    if args.dynamic_stats_from:
        stats, source = (
            dynamic.gradient_statistics(model, _text_ids(model, args.dynamic_stats_from, args.normalize)),
            args.dynamic_stats_from,
        )
    else:
        saved = dynamic.load_statistics(args.model_dir)
        if saved is None:
            raise UserError(
                f"{args.model_dir} holds no {dynamic.STATS_FILE} (saved by training since this release): pass "
                "--dynamic-stats-from TRAINING_TEXT to compute them"
            )
        stats, source = saved
    tuned = None
    if args.dynamic_tune_on:
        if Path(args.dynamic_tune_on).resolve() == Path(args.text).resolve():
            raise UserError("--dynamic-tune-on must not be the text it scores (--text): give a separate tuning text")
        tuned = dynamic.tune(model, _text_ids(model, args.dynamic_tune_on, args.normalize), stats, segment)
        lr, decay = tuned["lr"], tuned["decay"]
    block = dynamic.evaluate_dynamic(model, ids, stats, lr, decay, segment, stats_source=source)
    if tuned is not None:
        block["tuned_on"] = {"text": args.dynamic_tune_on, "grid": tuned["grid"]}
    return block


def _is_vowel_classifier(model) -> bool:
    labels = {str(label) for label in model.config.id2label.values()}
    return model.vocabulary.kind == "text8" and labels == {"consonant", "vowel"}


def cmd_evaluate_classifier(args):
    from .evaluation import evaluate_labeled
    from .models.auto import load_model

    model = load_model(args.model_dir, "classifier")
    if args.confusion_matrix and model.multi_label:
        raise UserError(
            f"--confusion-matrix: {args.model_dir} is multi-label (a yes / no a label), which has no confusion matrix; "
            "its per-label precision / recall / F1 are in the result"
        )
    if args.file:
        texts, gold = _labeled_file_for(model, args)
        result = evaluate_labeled(
            model, texts, gold, [model.config.id2label[index] for index in range(model.config.num_labels)]
        )
    else:
        from .exercise.files import load_classification_examples
        from .exercise.harness import evaluate_classifier

        if not _is_vowel_classifier(model):
            labels = ", ".join(sorted(str(name) for name in model.config.id2label.values()))
            raise UserError(
                f"{args.model_dir} classifies into {labels}, not vowel/consonant: pass --file with labeled texts"
            )
        result = evaluate_classifier(
            model, *load_classification_examples(args.data_dir, args.split, normalize=args.normalize)
        )
    if args.confusion_matrix:
        from .card import plot_confusion_matrix

        plot_confusion_matrix(result["confusion_matrix"], Path(args.confusion_matrix))
    _print_result(result, args.output)


def cmd_evaluate_tagger(args):
    from .models.auto import load_model
    from .training.tasks.tagging.data import tagged_file_for_model
    from .training.tasks.tagging.task import evaluate_tagger

    model = load_model(args.model_dir, "tagger")
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    texts, gold = tagged_file_for_model(
        args.file, labels, model.vocabulary, args.derive, args.max_length, args.text_column
    )
    _print_result(evaluate_tagger(model, texts, gold, labels), args.output)


def _labeled_file_for(model, args) -> tuple[list[str], list[int]]:
    """A labeled file's texts (checked against the model's vocabulary) and its labels as the model's label ids."""
    from .data.labeled import labeled_file_for_model

    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    split = labeled_file_for_model(
        args.file,
        labels,
        model.vocabulary,
        args.text_column,
        args.label_column,
        normalize=args.normalize,
        multi_label=model.multi_label,
        label_separator=args.label_separator,
    )
    return split.texts, split.labels


def train_run(config) -> dict:
    """A run of the command line: the one loop on the data the config names, or the exercise when it names none."""
    if config.names_data():
        from .training.loop import train

        return train(config)
    from .exercise import train_exercise

    return train_exercise(config)


def cmd_train(args):
    from .training.processes import close_distributed
    from .training.settings import AUTO_PRESET, names_data, settings_from_flags
    from .training.tasks import task_settings

    settings_class = args.settings_class
    # The preset, then the --config file, then the flags given: each layer overrides the one before.
    from_file = _read_settings_file(args.config, settings_class) if args.config else {}
    file_task = from_file.pop("task", settings_class.task)
    if file_task != settings_class.task:
        raise UserError(
            f"{args.config}: settings of a {file_task} run; train them with "
            f"`hf-charnn {task_settings(file_task).command}`"
        )
    file_preset = from_file.pop("preset", None)
    settings = {**from_file, **settings_from_flags(args, settings_class)}
    # One's own data and no preset: a recipe sized to it (training/recipes.py); the exercise keeps its defaults.
    preset = args.preset or file_preset or (AUTO_PRESET if names_data(settings) else "default")
    summary = train_run(settings_class.from_preset(preset=preset, **settings))
    _print_result(summary, args.output)
    close_distributed()  # under `accelerate launch`: this process trains no more


def _read_settings_file(path: str, settings_class) -> dict:
    """A task's settings from a JSON object (a run's training_config.json, or a sweep's run settings)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{file}: config file not found")
    try:
        settings = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(settings, dict):
        raise UserError(f"{file}: needs a JSON object of training settings")
    return settings_class.own_settings(settings, str(file))


def cmd_prepare_data(args):
    from .data.sources import load_text8
    from .exercise.files import prepare_exercise_data

    corpus = next(iter(load_text8(args.text8, streaming=True)))["text"]
    _print_result(prepare_exercise_data(corpus, args.out, seed=args.seed), None)


def cmd_generate(args):
    import torch

    from .models.auto import load_model
    from .models.tokenization_char_gru import CharTokenizer, normalize_text

    model = load_model(args.model_dir, "lm")
    tokenizer = CharTokenizer.for_model(model.config)
    prompt = normalize_text(args.prompt) if args.normalize else args.prompt
    if not prompt:
        raise UserError("the prompt is empty: give at least one character")
    try:
        inputs = tokenizer([prompt], return_tensors="pt")
    except ValueError as error:
        raise UserError(f"prompt: {error}, or pass --normalize") from None
    torch.manual_seed(args.seed)
    sampling = args.temperature > 0
    output = model.generate(
        **inputs,
        max_new_tokens=args.max_new_chars,
        min_new_tokens=args.max_new_chars,
        do_sample=sampling,
        temperature=args.temperature if sampling else None,
        top_k=args.top_k if sampling else None,
        top_p=args.top_p if sampling else None,
        num_beams=args.num_beams,
    )
    print(tokenizer.decode(output[0], skip_special_tokens=True))


def _demo_options(vocabulary) -> dict:
    """What the demo shows beyond Write, Score and Classify: for a text8 LM, the exercise's vowel-or-consonant tab."""
    if vocabulary.kind != "text8":
        return {}
    from .exercise.files import EXAMPLE_LENGTH, VOWEL_GROUPS

    return {"symbol_groups": VOWEL_GROUPS, "context_chars": EXAMPLE_LENGTH}


def cmd_push(args):
    from .hub import push_model_folder
    from .models.auto import is_classifier_folder, read_vocabulary

    options = {} if is_classifier_folder(args.model_dir) else _demo_options(read_vocabulary(args.model_dir))
    commits = push_model_folder(
        args.model_dir,
        args.repo_id,
        private=args.private,
        token=args.token,
        space_id=args.space,
        demo_options=options,
        static=args.static,
    )
    print(f"uploaded {args.model_dir} to {args.repo_id}: {commits['model']}")
    if args.space and args.static:
        print(
            f"created the static Space {args.space} (the page runs {args.repo_id} in the browser): {commits['space']}"
        )
    elif args.space:
        print(f"created the demo Space {args.space} (it loads {args.repo_id}): {commits['space']}")


def cmd_demo(args):
    import os

    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError('the demo needs gradio: pip install -e ".[demo]" (or pip install gradio)') from None
    from .demo import build_demo
    from .models.auto import is_classifier_folder, load_model

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a closed network
    if is_classifier_folder(args.model):  # a classifier alone: the Classify tab
        model, classifier, what = None, load_model(args.model, "classifier"), "character-level GRU classifier"
    else:
        model, what = load_model(args.model, "lm"), "character-level GRU LM"
        classifier = load_model(args.classifier, "classifier") if args.classifier else None
    options = _demo_options(model.vocabulary) if model is not None else {}
    demo = build_demo(model, classifier, title=f"{Path(args.model).name or args.model}: {what}", **options)
    print(f"serving the demo of {args.model} on http://{args.host}:{args.port}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port)


def cmd_export(args):
    from .export import export_folder, require_onnx

    if not (args.onnx or args.web):
        raise UserError("name the format: --onnx (the ONNX graph), --web DIR (a static page that runs it), or both")
    if (args.ort_dir or args.ort_cdn) and not args.web:
        raise UserError("--ort-dir and --ort-cdn say where the --web page finds onnxruntime-web: add --web DIR")
    require_onnx()
    if args.onnx:
        result = export_folder(args.model_dir, output_dir=args.output, quantize=args.quantize, overwrite=args.overwrite)
        if args.text or args.file:
            result["scores"] = _scores_of_export(args, result)
        _print_result(result, None)
    if args.web:
        from .web import export_web

        site = export_web(
            args.model_dir, args.web, ort_dir=args.ort_dir, ort_cdn=args.ort_cdn, overwrite=args.overwrite
        )
        runtime = site["onnxruntime"]
        print(
            f"wrote the page of {args.model_dir} into {site['folder']} (onnxruntime-web {runtime['version']} from "
            f"{runtime['source']}); serve it, e.g. python -m http.server -d {site['folder']} 8000, and open "
            "http://127.0.0.1:8000"
        )


def _scores_of_export(args, result: dict) -> dict:
    """The exported graphs scored beside the PyTorch model: bits per character of --text (LM), accuracy of --file."""
    from pathlib import Path

    from .evaluation import bits_per_symbol, classification_report, multi_label_report
    from .export import log_prob_of, session_for
    from .models.auto import load_model
    from .models.modeling_char_gru import pad_ids

    root = Path(result["folder"]).parent
    model = load_model(args.model_dir, result["kind"])
    if hasattr(model, "predict_tags"):
        raise UserError(
            f"{args.model_dir} is a tagger: --text / --file score LMs and classifiers (its export was checked against "
            "PyTorch on random inputs); score it with evaluate-tagger"
        )
    if not hasattr(model, "predict_batch"):  # an LM: bits per character of --text
        if not args.text:
            raise UserError(f"{args.model_dir} is an LM: score --text with it (--file is for classifiers)")
        ids = _text_ids(model, args.text, args.normalize)
        scores = {"torch": bits_per_symbol(model.score_long_text(ids), len(ids))}
        for name, file in result["files"].items():
            scores[name] = bits_per_symbol(log_prob_of(session_for(root / file), model, ids), len(ids))
        return {"text": str(args.text), "bpc" if model.vocabulary.kind != "bytes" else "bpb": scores}
    if not args.file:
        raise UserError(f"{args.model_dir} is a classifier: score --file with it (--text is for LMs)")
    texts, gold = _labeled_file_for(model, args)
    input_ids, attention_mask = pad_ids([model.vocabulary.encode(text) for text in texts], model.vocabulary.size)
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    # A multi-label model's headline is micro-F1; the decision (argmax, or each label's threshold) is the model's.
    report, metric = (multi_label_report, "micro_f1") if model.multi_label else (classification_report, "accuracy")
    scores = {"torch": report(gold, model.predict_batch(texts), labels)[metric]}
    for name, file in result["files"].items():
        (logits,) = session_for(root / file).run(
            None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        )
        scores[name] = report(gold, model.labels_of(logits), labels)[metric]
    return {"file": str(args.file), metric: scores}


def cmd_sweep(args):
    from .training.sweep import run_sweep

    written = run_sweep(
        args.sweep_file,
        args.output_dir,
        data_dir=args.data_dir,
        launcher=args.launcher,
        jobs=args.jobs,
        train_function=train_run,
    )
    print(f"wrote {written}")


def cmd_report(args):
    from .training.sweep import write_report

    print(f"wrote {write_report(args.sweep_dir)}")


def _add_train_command(commands, settings_class):
    """A task's training command: its preset, a --config file, and one flag per field of its settings."""
    from .training.settings import AUTO_PRESET, add_setting_flags

    parser = commands.add_parser(settings_class.command, help=settings_class.command_help)
    parser.add_argument(
        "--preset",
        choices=sorted([*settings_class.presets, AUTO_PRESET]),
        help="starting hyperparameters (default: the --config file's; else with --train-file / --dataset-name / "
        "--corpus, auto: a recipe sized to the data, printed with its reasons; else default, the exercise's)",
    )
    parser.add_argument(
        "--config",
        help="a JSON object of training settings (e.g. a run's training_config.json): over the preset, under flags",
    )
    parser.add_argument("--output", help="also write the final summary JSON here")
    add_setting_flags(parser, settings_class)
    parser.set_defaults(func=cmd_train, settings_class=settings_class)


def build_parser() -> argparse.ArgumentParser:
    from . import (
        __version__,
        exercise,  # noqa: F401  (registers its settings: its fields, its presets)
    )
    from .training.tasks import registered_tasks, task_settings

    # prog is fixed so that `python -m hf_charnn` and the `hf-charnn` script print the same help.
    parser = argparse.ArgumentParser(
        prog="hf-charnn",
        description="Character-level GRU language models and classifiers (the text8 exercise by default).",
    )
    parser.add_argument("--version", action="version", version=f"hf-charnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    baseline = commands.add_parser("baseline", help="evaluate the frequency classifier and the uniform LM")
    baseline.add_argument("--data-dir", help=DATA_DIR_HELP)
    baseline.add_argument("--output", help="also write the JSON here")
    baseline.set_defaults(func=cmd_baseline)

    evaluate_lm = commands.add_parser(
        "evaluate-lm", help="perplexity, bits per character and checks of a saved LM on a text file"
    )
    evaluate_lm.add_argument("model_dir")
    evaluate_lm.add_argument(
        "--text", required=True, help="file to score (text8 form for a text8 model, e.g. text8-dev.txt)"
    )
    evaluate_lm.add_argument("--normalize", action="store_true", help="map the text into text8 form first")
    evaluate_lm.add_argument(
        "--streams", type=int, default=1, help="score the text as N contiguous streams in one batch (1 = exact)"
    )
    warmup = task_settings("lm").__dataclass_fields__["eval_warmup"].default  # as training scores
    evaluate_lm.add_argument(
        "--warmup", type=int, default=warmup, help=f"characters that warm each stream's state up, not scored ({warmup})"
    )
    evaluate_lm.add_argument("--output", help="also write the JSON here")
    dynamic = evaluate_lm.add_argument_group("dynamic evaluation (a separate `dynamic` block: a different metric)")
    dynamic.add_argument("--dynamic", action="store_true", help="also score the text adapting to it as it is read")
    # (None: hf_charnn.dynamic_evaluation's measured defaults; the result names the values used)
    dynamic.add_argument("--dynamic-lr", type=float, help="eta, the step size (default: the measured best)")
    dynamic.add_argument(
        "--dynamic-decay", type=float, help="lambda, the decay toward the trained weights (default: the measured best)"
    )
    dynamic.add_argument(
        "--dynamic-segment", type=int, help="symbols scored between two steps (default: the measured best)"
    )
    dynamic.add_argument("--dynamic-stats-from", help="training text to compute the gradient statistics from")
    dynamic.add_argument(
        "--dynamic-tune-on", help="a validation text (not --text) to choose lr and decay on, from a grid"
    )
    evaluate_lm.set_defaults(func=cmd_evaluate_lm)

    evaluate_clf = commands.add_parser(
        "evaluate-classifier",
        help="accuracy, macro-F1, per-label precision/recall and confusion matrix of a saved classifier",
    )
    evaluate_clf.add_argument("model_dir")
    evaluate_clf.add_argument(
        "--file", help="labeled texts (.csv, .tsv, .json, .jsonl); default: the exercise's examples"
    )
    evaluate_clf.add_argument("--text-column", default="text", help="the file's text column (default: text)")
    evaluate_clf.add_argument("--label-column", default="label", help="the file's label column (default: label)")
    evaluate_clf.add_argument(
        "--label-separator", help="a multi-label model's file: split each label cell at this string (say '|')"
    )
    evaluate_clf.add_argument("--data-dir", help=DATA_DIR_HELP)
    evaluate_clf.add_argument(
        "--split", default="dev", choices=["dev", "train"], help="the exercise's examples: which split"
    )
    evaluate_clf.add_argument("--normalize", action="store_true", help="map the texts into text8 form first")
    evaluate_clf.add_argument("--confusion-matrix", help="also draw the confusion matrix into this PNG")
    evaluate_clf.add_argument("--output", help="also write the JSON here")
    evaluate_clf.set_defaults(func=cmd_evaluate_classifier)

    for settings_class in registered_tasks():
        _add_train_command(commands, settings_class)

    evaluate_tagger = commands.add_parser(
        "evaluate-tagger", help="character accuracy, per-tag precision/recall/F1 and span F1 of a saved tagger"
    )
    evaluate_tagger.add_argument("model_dir")
    evaluate_tagger.add_argument(
        "--file", required=True, help="tagged texts (.jsonl: text and tags or spans), or plain text with --derive"
    )
    tagger_fields = task_settings("tagger").__dataclass_fields__
    evaluate_tagger.add_argument(
        "--derive",
        choices=tagger_fields["derive"].metadata["choices"],
        help="derive the tags from plain text, as the model was trained",
    )
    evaluate_tagger.add_argument("--text-column", default="text", help="the JSON lines' text field (default: text)")
    rows = tagger_fields["max_length"].default  # as training cuts them
    evaluate_tagger.add_argument("--max-length", type=int, default=rows, help=f"rows of at most N characters ({rows})")
    evaluate_tagger.add_argument("--output", help="also write the JSON here")
    evaluate_tagger.set_defaults(func=cmd_evaluate_tagger)

    generate = commands.add_parser("generate", help="continue a prompt with a saved LM")
    generate.add_argument("model_dir")
    generate.add_argument(
        "--prompt", required=True, help="text to continue (text8 models: a-z and space, or --normalize)"
    )
    generate.add_argument("--max-new-chars", type=int, default=200)
    generate.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; > 0 samples")
    generate.add_argument("--top-k", type=int, default=None, help="sample from the k likeliest characters")
    generate.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass")
    generate.add_argument("--num-beams", type=int, default=1, help="beam search width (greedy only)")
    generate.add_argument("--seed", type=int, default=0, help="seed for sampling")
    generate.add_argument("--normalize", action="store_true", help="map the prompt into text8 form first")
    generate.set_defaults(func=cmd_generate)

    push = commands.add_parser("push", help="upload a saved model folder to the Hugging Face Hub")
    push.add_argument("model_dir")
    push.add_argument("--repo-id", required=True, help="user/name on the Hub")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--token", help="Hub token with write access (default: HF_TOKEN or the saved login)")
    push.add_argument("--space", help="also create this Gradio Space (user/name-demo) running the demo on the model")
    push.add_argument(
        "--static",
        action="store_true",
        help="make --space a static Space: the export --web page, run in the visitor's browser (no Python server)",
    )
    push.set_defaults(func=cmd_push)

    demo = commands.add_parser(
        "demo", help="a Gradio app: write, score (surprisal heat map), vowel or consonant, classify"
    )
    demo.add_argument("model", help="a saved LM folder or a Hub repo id (or a classifier folder: a Classify-only demo)")
    demo.add_argument(
        "--classifier",
        help="a saved classifier folder or repo id: a Classify tab (and, for the vowel/consonant one, the Vowel "
        "tab's predictions)",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=7860)
    demo.set_defaults(func=cmd_demo)

    export = commands.add_parser(
        "export", help='export a saved model to ONNX, checked in onnxruntime (pip install -e ".[onnx]")'
    )
    export.add_argument("model_dir")
    export.add_argument("--onnx", action="store_true", help="write onnx/model.onnx")
    export.add_argument(
        "--web", metavar="DIR", help="write a static page into DIR that runs the model in the browser (onnxruntime-web)"
    )
    export.add_argument("--ort-dir", help="--web: copy onnxruntime-web from this local dist/ folder (no npm, no CDN)")
    export.add_argument(
        "--ort-cdn", action="store_true", help="--web: load onnxruntime-web from the CDN instead of copying it in"
    )
    export.add_argument("--quantize", choices=["int8"], help="also write onnx/model_quantized.onnx (dynamic int8)")
    export.add_argument("--output", help="write onnx/ into this folder instead of the model folder")
    export.add_argument(
        "--overwrite", action="store_true", help="replace an earlier export in the same place (--web: DIR)"
    )
    export.add_argument(
        "--text", help="LM: also score this text with PyTorch and each exported graph (bits per character)"
    )
    export.add_argument(
        "--file", help="classifier: also score these labeled texts (.csv, .tsv, .json, .jsonl): accuracy"
    )
    export.add_argument("--text-column", default="text", help="--file's text column (default: text)")
    export.add_argument("--label-column", default="label", help="--file's label column (default: label)")
    export.add_argument(
        "--label-separator", help="a multi-label classifier's --file: split each label cell at this string"
    )
    export.add_argument("--normalize", action="store_true", help="map --text / --file into text8 form first")
    export.set_defaults(func=cmd_export)

    sweep = commands.add_parser("sweep", help="run a list or grid of training configurations (restartable)")
    sweep.add_argument("sweep_file", help="YAML: task, preset, base, runs and/or grid (see scripts/sweeps/)")
    sweep.add_argument("--output-dir", required=True, help="one folder per run, plus results.md and PNG curves")
    sweep.add_argument("--data-dir", help=DATA_DIR_HELP)
    sweep.add_argument("--launcher", help='run each training under this, e.g. "accelerate launch --num_processes 2"')
    sweep.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at once, each in its own process with its share of the CPU threads",
    )
    sweep.set_defaults(func=cmd_sweep)

    report = commands.add_parser("report", help="re-render results.md and the plots of a sweep folder")
    report.add_argument("sweep_dir")
    report.set_defaults(func=cmd_report)

    prepare = commands.add_parser("prepare-data", help="derive exercise-format files from a text8-form corpus")
    prepare.add_argument("--text8", required=True, help="the text8 file, text8.zip, or its URL")
    prepare.add_argument("--out", required=True, help="folder to write the files to")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the example sampling")
    prepare.set_defaults(func=cmd_prepare_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # weight loading/saving bars would bury the JSON
    try:
        args.func(args)
    except UserError as error:  # (DataError too) bad input, named; any other exception is a bug: its traceback shows
        print(f"hf-charnn {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"hf-charnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (`| head`): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (so that exit's flush cannot raise again)
        return 141  # 128 + SIGPIPE, as a shell reports a writer cut off
    return 0


if __name__ == "__main__":
    sys.exit(main())
