"""Hub-ready model folders (remote code, model card) and uploading them."""

import dataclasses
import os
from pathlib import Path

import torch

from .errors import UserError
from .loading import check_model_folder

CARD_TEMPLATES = Path(os.environ.get("HF_CHARNN_CARD_TEMPLATES", Path(__file__).resolve().parent / "model_cards"))
HUB_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.json", "README.md")
CARD_HYPERPARAMETERS = (
    "embedding_size", "hidden_size", "num_hidden_layers", "dropout", "optimizer", "learning_rate", "weight_decay",
    "lr_schedule", "warmup_ratio", "max_grad_norm", "batch_size", "epochs", "chunk_size", "carry_state",
    "prefix_labels", "seed",
)


def model_card(task: str, results: dict, config, train_seconds: float, repo_id: str | None = None, test_results: dict | None = None):
    """
    The model card rendered from `model_cards/{lm,classifier}.md` with the eval results as `model-index`: for an
    LM, perplexity and bits per character on the validation text, and on the test split when there is one.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    template = CARD_TEMPLATES / ("lm.md" if task == "lm" else "classifier.md")
    if not template.is_file():
        raise UserError(f"model card template {template} not found; set HF_CHARNN_CARD_TEMPLATES to the model_cards folder")
    repo_id = repo_id or f"hf-charnn/char-gru-{task}"
    data = corpus_description(config)
    if task == "lm":
        evaluations = []
        for split, scored in (("validation", results), ("test", test_results)):
            if scored is None:
                continue
            common = dict(task_type="text-generation", dataset_type=data["type"], dataset_name=data["name"], dataset_split=split)
            evaluations += [
                EvalResult(**common, metric_type="perplexity", metric_name="Perplexity", metric_value=round(scored["perplexity"], 4)),
                EvalResult(**common, metric_type="bpc", metric_name="Bits per character", metric_value=round(scored["bpc"], 4)),
            ]
        pipeline_tag = "text-generation"
    else:
        evaluations = [EvalResult(
            task_type="text-classification", dataset_type="text8", dataset_name="text8 vowel/consonant (exercise dev)",
            dataset_split="dev", metric_type="accuracy", metric_name="Accuracy", metric_value=round(results["accuracy"], 2),
        )]
        pipeline_tag = "text-classification"
    card_data = ModelCardData(
        language="en", license="apache-2.0", library_name="transformers", pipeline_tag=pipeline_tag,
        tags=["hf_charnn", "char-gru", "character-level", "text8"], datasets=["text8"],
        model_name=repo_id.split("/")[-1], eval_results=evaluations,
    )
    values = dataclasses.asdict(config)
    return ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        results=results,
        test_results=test_results,
        data=data,
        train_seconds=train_seconds,
        device="CUDA" if torch.cuda.is_available() and not config.cpu else f"CPU ({torch.get_num_threads()} threads)",
        hyperparameters={key: values[key] for key in CARD_HYPERPARAMETERS if key in values and values[key] is not None},
    )


def corpus_description(config) -> dict:
    """The training data in words, for the card: {"type": dataset id, "name": description, "train": what was read}."""
    if config.train_file:
        return {"type": "text", "name": Path(config.train_file).name, "train": f"the file `{Path(config.train_file).name}`"}
    if config.dataset_name:
        return {"type": config.dataset_name, "name": config.dataset_name, "train": f"the dataset `{config.dataset_name}`"}
    if config.corpus == "text8":
        return {"type": "text8", "name": "text8 (90M / 5M / 5M split)", "train": "the first 90M characters of text8"}
    return {"type": "text8", "name": "text8 (exercise dev text, 500 chars)", "train": "`text8-100k.txt` (the first 100,000 characters of text8)"}


def push_model_folder(model_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None) -> str:
    """Upload a saved model folder (checked first) as one commit; returns the commit URL."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError

    folder = check_model_folder(model_dir)
    missing = [name for name in HUB_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder}: not ready for the Hub, missing {', '.join(missing)}; train with hf-charnn or re-save the folder")
    no_token = UserError("no Hub token: pass --token, set HF_TOKEN, or run `hf auth login`")
    if token is None and get_token() is None:
        raise no_token
    api = HfApi(token=token)
    unreachable = f"cannot reach the Hub at {api.endpoint} ({{}}); check the network or HF_ENDPOINT"
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message="Upload hf_charnn model",
            ignore_patterns=["checkpoints/**", "runs/**"],
        )
    except LocalTokenNotFoundError:
        raise no_token from None
    except RepositoryNotFoundError:
        raise UserError(f"repository {repo_id} not found, or this token cannot write to it") from None
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise UserError(f"the Hub refused the token ({status}): pass a token with write access to {repo_id}") from None
        raise UserError(f"upload to {repo_id} failed, nothing was reported as uploaded: {error}") from None
    except Exception as error:
        # Connection failures: OSErrors, or httpx transport errors (which are not OSErrors).
        if isinstance(error, OSError) or error.__class__.__module__.startswith(("httpx", "httpcore")):
            raise UserError(unreachable.format(error.__class__.__name__)) from None
        raise
    return str(commit.commit_url)
