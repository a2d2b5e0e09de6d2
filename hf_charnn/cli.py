"""
The `hf-charnn` command line. Bad input gives one line on stderr and exit code 2, never a traceback.

The command line is where the layers meet: a run that names no data trains the text8 exercise
(`hf_charnn.exercise`), and text8 models are scored and demoed with the exercise's checks and tabs. It is the only
module that imports the exercise.
"""

import argparse
import dataclasses
import json
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
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text + "\n")


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


def _labeled_file_for(model, args) -> tuple[list[str], list[int]]:
    """A labeled file's texts (checked against the model's vocabulary) and its labels as the model's label ids."""
    from types import SimpleNamespace

    from .data.labeled import read_labeled_file, text_and_label_columns
    from .models.tokenization_char_gru import normalize_text

    columns = SimpleNamespace(text_column=args.text_column, label_column=args.label_column)
    texts, labels, names = text_and_label_columns(read_labeled_file(args.file), args.file, columns)
    label2id = {str(name): index for name, index in model.config.label2id.items()}
    gold = []
    for row, label in enumerate(labels):
        name = names[label] if names is not None else str(label)
        if name not in label2id:
            raise UserError(
                f"{args.file}, row {row + 1}: label {name!r} is not one of the model's labels ({', '.join(label2id)})"
            )
        gold.append(label2id[name])
    if args.normalize:
        texts = [normalize_text(text) for text in texts]
    for row, text in enumerate(texts):
        try:
            model.vocabulary.encode(text, source=f"{args.file}, row {row + 1}")
        except ValueError as error:
            raise UserError(str(error)) from None
    return texts, gold


def train_run(config) -> dict:
    """A run of the command line: the one loop on the data the config names, or the exercise when it names none."""
    if config.names_data():
        from .training.loop import train

        return train(config)
    from .exercise import train_exercise

    return train_exercise(config)


def cmd_train(args):
    from .training.processes import close_distributed
    from .training.settings import AUTO_PRESET, TrainingConfig

    fields = {field.name for field in dataclasses.fields(TrainingConfig)} - {"task", "preset"}
    # The preset, then the --config file, then the flags given: each layer overrides the one before.
    from_file = _read_settings_file(args.config) if args.config else {}
    if from_file.pop("task", args.task) != args.task:
        other = "a classifier" if args.task == "lm" else "an LM"
        raise UserError(f"{args.config}: settings of {other} run; use the other train command")
    file_preset = from_file.pop("preset", None)
    flags = {key: value for key, value in vars(args).items() if key in fields and value is not None}
    settings = {"output_dir": f"runs/{args.task}", **from_file, **flags}
    names_data = any(settings.get(name) for name in ("train_file", "dataset_name", "corpus"))
    # One's own data and no preset: a recipe sized to it (training/recipes.py); the exercise keeps its defaults.
    preset = args.preset or file_preset or (AUTO_PRESET if names_data else "default")
    summary = train_run(TrainingConfig.from_preset(args.task, preset, **settings))
    _print_result(summary, args.output)
    close_distributed()  # under `accelerate launch`: this process trains no more


def _read_settings_file(path: str) -> dict:
    """TrainingConfig settings from a JSON object (a run's training_config.json, or a sweep's run settings)."""
    from .training.settings import TrainingConfig

    file = Path(path)
    if not file.is_file():
        raise UserError(f"{file}: config file not found")
    try:
        settings = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{file}: not valid JSON ({error})") from None
    if not isinstance(settings, dict):
        raise UserError(f"{file}: needs a JSON object of training settings")
    TrainingConfig.check_setting_names(settings, str(file))
    return settings


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
        args.model_dir, args.repo_id, private=args.private, token=args.token, space_id=args.space, demo_options=options
    )
    print(f"uploaded {args.model_dir} to {args.repo_id}: {commits['model']}")
    if args.space:
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

    if not args.onnx:
        raise UserError("name the format: --onnx (the only one so far)")
    require_onnx()
    result = export_folder(args.model_dir, output_dir=args.output, quantize=args.quantize, overwrite=args.overwrite)
    if args.text or args.file:
        result["scores"] = _scores_of_export(args, result)
    _print_result(result, None)


def _scores_of_export(args, result: dict) -> dict:
    """The exported graphs scored beside the PyTorch model: bits per character of --text (LM), accuracy of --file."""
    from pathlib import Path

    from .evaluation import bits_per_char, classification_report
    from .export import log_prob_of, session_for
    from .models.auto import load_model
    from .models.modeling_char_gru import pad_ids

    root = Path(result["folder"]).parent
    if result["kind"] == "lm":
        model = load_model(args.model_dir, "lm")
        ids = _text_ids(model, args.text, args.normalize)
        scores = {"torch": bits_per_char(model.score_long_text(ids), len(ids))}
        for name, file in result["files"].items():
            scores[name] = bits_per_char(log_prob_of(session_for(root / file), model, ids), len(ids))
        return {"text": str(args.text), "bpc" if model.vocabulary.kind != "bytes" else "bpb": scores}
    model = load_model(args.model_dir, "classifier")
    texts, gold = _labeled_file_for(model, args)
    input_ids, attention_mask = pad_ids([model.vocabulary.encode(text) for text in texts], model.vocabulary.size)
    labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
    scores = {"torch": classification_report(gold, model.predict_batch(texts), labels)["accuracy"]}
    for name, file in result["files"].items():
        (logits,) = session_for(root / file).run(
            None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        )
        scores[name] = classification_report(gold, logits.argmax(-1).tolist(), labels)["accuracy"]
    return {"file": str(args.file), "accuracy": scores}


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


def _add_training_flags(parser: argparse.ArgumentParser, task: str):
    from . import exercise  # noqa: F401  (registers its presets: lm-transfer)
    from .training.settings import (
        AUTO_PRESET,
        BEST_MODEL_METRICS,
        CLASS_WEIGHTS,
        CLASSIFIER_READOUTS,
        LR_SCHEDULES,
        MIXED_PRECISION_CHOICES,
        OPTIMIZERS,
        PRESETS,
        REPORT_TO_CHOICES,
    )

    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--output-dir", help=f"where checkpoints, metrics and the model go (default: runs/{task})")
    parser.add_argument(
        "--preset",
        choices=sorted([*PRESETS[task], AUTO_PRESET]),
        help="starting hyperparameters (default: the --config file's; else with --train-file / --dataset-name / "
        "--corpus, auto: a recipe sized to the data, printed with its reasons; else default, the exercise's)",
    )
    parser.add_argument(
        "--config",
        help="a JSON object of training settings (e.g. a run's training_config.json): over the preset, under flags",
    )
    group = parser.add_argument_group("hyperparameters (each overrides the preset)")
    group.add_argument("--embedding-size", type=int)
    group.add_argument("--hidden-size", type=int)
    group.add_argument("--num-hidden-layers", type=int)
    group.add_argument("--dropout", type=float)
    group.add_argument("--optimizer", choices=OPTIMIZERS)
    group.add_argument("--learning-rate", "--lr", type=float)
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--momentum", type=float, help="SGD momentum")
    group.add_argument("--lr-schedule", choices=LR_SCHEDULES)
    group.add_argument("--warmup-ratio", type=float)
    group.add_argument("--max-grad-norm", type=float, help="gradient clipping (0 turns it off)")
    group.add_argument("--batch-size", type=int)
    group.add_argument("--epochs", type=int)
    group.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (overrides --epochs)")
    group.add_argument("--seed", type=int)
    group.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISION_CHOICES,
        help="auto (default): bf16 on CUDA GPUs that support it, and on a CPU only where a bf16 step of this run's "
        "shape "
        "measures faster (the verdict is cached); loss stays fp32",
    )
    if task == "lm":
        group.add_argument("--chunk-size", type=int, help="characters per training window")
        group.add_argument(
            "--carry-state",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="carry the GRU state across consecutive windows (truncated BPTT)",
        )
    else:
        group.add_argument(
            "--bidirectional",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="the GRU also reads each text backwards",
        )
        group.add_argument(
            "--classifier-readout",
            choices=CLASSIFIER_READOUTS,
            help="what the head reads: the last state, or pooled (mean + max over the real characters)",
        )
        group.add_argument(
            "--ngram-range",
            type=int,
            nargs=2,
            metavar=("MIN", "MAX"),
            help="also read the text's hashed character n-grams of MIN to MAX characters, as a bag beside the GRU",
        )
        group.add_argument(
            "--no-ngrams", dest="ngram_range", action="store_const", const=[], help="no n-gram bag (the GRU alone)"
        )
        group.add_argument("--ngram-buckets", type=int, help="hash buckets of the n-gram bag (default 65536)")
        group.add_argument(
            "--ngram-embedding-size",
            type=int,
            help="width of the n-gram bag (default 64; 0: no bag, with --ngram-linear)",
        )
        group.add_argument(
            "--ngram-linear",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="also a linear classifier over the same n-grams (an SVM's, fitted first); its scores add to the GRU's",
        )
        group.add_argument(
            "--ngram-learning-rate-scale", type=float, help="the bag's learning rate as a multiple of --learning-rate"
        )
        group.add_argument("--max-length", type=int, help="cut texts to their first N characters")
        group.add_argument(
            "--group-by-length",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="batches of texts of similar lengths (less padding; the same batches for the same seed)",
        )
        group.add_argument(
            "--class-weight", choices=CLASS_WEIGHTS, help="balanced: weigh each label's loss by 1 / its share"
        )
        group.add_argument(
            "--prefix-labels",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="vowel/consonant task: also train on every prefix of each example (its next character's label)",
        )
    _add_data_flags(parser, task)
    run = parser.add_argument_group("run")
    run.add_argument("--eval-steps", type=int, help="validate every N steps (default: after each epoch)")
    if task == "lm":
        run.add_argument(
            "--eval-chars", type=int, help="mid-run validation reads the first N characters (the end reads all)"
        )
        run.add_argument(
            "--eval-streams",
            type=int,
            help="score validation text as N warmed-up streams (default: 1 up to 20k chars, then more)",
        )
        run.add_argument("--eval-warmup", type=int, help="characters that warm each scoring stream up (default 256)")
    run.add_argument(
        "--metric-for-best-model",
        help=f"{', '.join(BEST_MODEL_METRICS[task])}: keep the best validation step's model (its checkpoint is never "
        "pruned) and save it at the end",
    )
    run.add_argument(
        "--early-stopping-patience",
        type=int,
        help="stop after N validations without a better --metric-for-best-model (default metric: "
        + ("loss" if task == "lm" else "accuracy")
        + ")",
    )
    run.add_argument(
        "--lr-plateau-patience",
        type=int,
        help="cut the learning rate after every N validations without a better --metric-for-best-model",
    )
    run.add_argument("--lr-plateau-factor", type=float, help="what each such cut multiplies the rate by (0.3)")
    run.add_argument(
        "--max-train-time", help="a training-time budget (90s, 5m, 2h): the schedule is fitted to it, then it stops"
    )
    run.add_argument("--logging-steps", type=int, help="also log the training loss every N steps")
    run.add_argument("--save-steps", type=int, help="checkpoint every N steps (default: after each epoch)")
    run.add_argument("--save-total-limit", type=int, help="checkpoints of this run kept, at least 1 (default 2)")
    run.add_argument(
        "--resume-from",
        help="latest, or a checkpoints/step-N folder: continue that run (its model and data settings must not change)",
    )
    run.add_argument(
        "--overwrite-output-dir",
        action="store_true",
        default=None,
        help="start a new run in an output dir that holds another run's checkpoints or model (removes them first)",
    )
    run.add_argument("--stop-after-epoch", type=int, help="stop after this epoch (the checkpoint stays resumable)")
    run.add_argument("--normalize", action="store_true", default=None, help="map input text into text8 form")
    run.add_argument("--report-to", choices=REPORT_TO_CHOICES, help="an experiment tracker")
    run.add_argument("--cpu", action="store_true", default=None, help="train on the CPU even if a GPU is present")
    run.add_argument("--no-progress-bar", dest="progress_bar", action="store_false", default=None)
    run.add_argument("--output", help="also write the final summary JSON here")
    parser.set_defaults(func=cmd_train, task=task)


def _add_data_flags(parser: argparse.ArgumentParser, task: str):
    """
    Where a run's texts come from: for the LM a corpus, for the classifier labeled texts (default: the exercise's).
    """
    from .training.settings import CORPORA, VOCABS

    if task == "lm":
        data = parser.add_argument_group("corpus (default: the exercise's text8-100k.txt and text8-dev.txt)")
        data.add_argument("--train-file", help="plain text to train on (.txt, .gz or .zip)")
        data.add_argument(
            "--validation-file", help="plain text to validate on (default: the last 5 %% of --train-file)"
        )
        data.add_argument("--test-file", help="plain text scored once at the end")
    else:
        data = parser.add_argument_group("labeled texts (default: the exercise's vowel/consonant example files)")
        data.add_argument(
            "--train-file", help="labeled texts to train on: .csv, .tsv, .json or .jsonl with a text and a label column"
        )
        data.add_argument(
            "--validation-file",
            help="labeled texts to validate on (default: a stratified 5 %% of --train-file, see below)",
        )
        data.add_argument("--test-file", help="labeled texts scored once at the end")
    data.add_argument("--dataset-name", help="datasets.load_dataset name: a Hub id or a local folder / builder")
    data.add_argument("--dataset-config", help="the dataset's configuration name")
    data.add_argument("--text-column", help="the text column of the files or dataset (default: text)")
    if task == "lm":
        data.add_argument("--corpus", choices=CORPORA, help="text8: the whole text8, split 90M / 5M / 5M")
        data.add_argument("--text8-source", help="text8's URL (default), a local text8.zip, or the text8 file")
    else:
        data.add_argument(
            "--label-column", help="the label column (default: label); its values become the model's labels"
        )
    data.add_argument(
        "--validation-split-percentage",
        type=float,
        help="held out of the training data when no validation data is given (5; for labeled texts, 5 %% of each label)",  # noqa: E501
    )
    data.add_argument(
        "--vocab",
        choices=VOCABS,
        help="auto (default): text8 when every character is a text8 symbol, else the data's own characters when "
        "there are at most 255, else bytes; chars; bytes (any text%s); text8"
        % (", metrics per byte" if task == "lm" else ""),
    )
    data.add_argument(
        "--unk",
        action="store_true",
        default=None,
        help="a chars vocabulary gets <unk>, where unseen characters go at inference",
    )


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

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
    evaluate_lm.add_argument(
        "--warmup", type=int, default=256, help="characters that warm each stream's state up (not scored)"
    )
    evaluate_lm.add_argument("--output", help="also write the JSON here")
    dynamic = evaluate_lm.add_argument_group("dynamic evaluation (a separate `dynamic` block: a different metric)")
    dynamic.add_argument("--dynamic", action="store_true", help="also score the text adapting to it as it is read")
    # (defaults: hf_charnn.dynamic_evaluation's, which imports torch, so they are named here only in the help)
    dynamic.add_argument("--dynamic-lr", type=float, help="eta, the step size (default 1e-4)")
    dynamic.add_argument(
        "--dynamic-decay", type=float, help="lambda, the decay toward the trained weights (default 2e-3)"
    )
    dynamic.add_argument("--dynamic-segment", type=int, help="symbols scored between two steps (default 20)")
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
    evaluate_clf.add_argument("--data-dir", help=DATA_DIR_HELP)
    evaluate_clf.add_argument(
        "--split", default="dev", choices=["dev", "train"], help="the exercise's examples: which split"
    )
    evaluate_clf.add_argument("--normalize", action="store_true", help="map the texts into text8 form first")
    evaluate_clf.add_argument("--confusion-matrix", help="also draw the confusion matrix into this PNG")
    evaluate_clf.add_argument("--output", help="also write the JSON here")
    evaluate_clf.set_defaults(func=cmd_evaluate_classifier)

    _add_training_flags(commands.add_parser("train-lm", help="train the character LM"), "lm")
    _add_training_flags(
        commands.add_parser(
            "train-classifier", help="train a classifier: your labeled texts, or the vowel/consonant exercise"
        ),
        "classifier",
    )

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
    export.add_argument("--onnx", action="store_true", help="write onnx/model.onnx (the only format so far)")
    export.add_argument("--quantize", choices=["int8"], help="also write onnx/model_quantized.onnx (dynamic int8)")
    export.add_argument("--output", help="write onnx/ into this folder instead of the model folder")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in the same place")
    export.add_argument(
        "--text", help="LM: also score this text with PyTorch and each exported graph (bits per character)"
    )
    export.add_argument(
        "--file", help="classifier: also score these labeled texts (.csv, .tsv, .json, .jsonl): accuracy"
    )
    export.add_argument("--text-column", default="text", help="--file's text column (default: text)")
    export.add_argument("--label-column", default="label", help="--file's label column (default: label)")
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
    except (UserError, OSError, ValueError) as error:
        print(f"hf-charnn {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"hf-charnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
