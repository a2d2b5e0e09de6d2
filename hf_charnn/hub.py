"""Uploading a saved model folder to the Hub (one commit), and its demo Space (Gradio, or a static page)."""

from pathlib import Path

from .card import card_for_repo
from .errors import UserError
from .models.auto import check_model_folder, is_classifier_folder
from .training.run_folder import TRAINING_CONFIG_FILE, read_training_config

HUB_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.json", "README.md")

SPACE_REQUIREMENTS = ["torch", "transformers>=5,<6", "huggingface_hub", "safetensors", "numpy"]
SPACE_APP_LAUNCHER = """

# -- The Space's entry point (written by `hf-charnn push --space`): the model loads by repo id, with its own code,
# at the commit it was pushed with (a later push to the model repo cannot change what this Space runs).
MODEL_ID = {model_id!r}
MODEL_REVISION = {revision!r}
CLASSIFIER_ID = {classifier_id!r}
CLASSIFIER_REVISION = {classifier_revision!r}
DEMO_OPTIONS = {demo_options!r}

if __name__ == "__main__":
    model, classifier = load_models(
        MODEL_ID, CLASSIFIER_ID, revision=MODEL_REVISION, classifier_revision=CLASSIFIER_REVISION
    )
    build_demo(model, classifier, title={title!r}, **DEMO_OPTIONS).launch()
"""


def space_files(
    model_id: str | None,
    space_id: str,
    revision: str | None = None,
    classifier_id: str | None = None,
    classifier_revision: str | None = None,
    demo_options: dict | None = None,
) -> dict[str, bytes]:
    """
    app.py (the demo module and a launcher for the LM `model_id` and/or the classifier `classifier_id`, each pinned to
    its revision, passing `demo_options` to `demo.build_demo`), requirements.txt and README.md of a Gradio Space.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        gradio_version = version("gradio")
    except PackageNotFoundError:
        gradio_version = "6.31.0"  # the version the demo was written and tested with
    main_id = model_id or classifier_id
    title = f"{main_id.split('/')[-1]} demo"
    app = Path(__file__).with_name("demo.py").read_text() + SPACE_APP_LAUNCHER.format(
        model_id=model_id,
        revision=revision,
        classifier_id=classifier_id,
        classifier_revision=classifier_revision,
        title=title,
        demo_options=demo_options or {},
    )
    models = "".join(f"  - {repo}\n" for repo in (model_id, classifier_id) if repo)
    if model_id:
        about = (
            f"A live demo of the character-level GRU LM [{model_id}](https://huggingface.co/{model_id}), made with "
            "hf_charnn: write with it and see which characters surprise it (a heat map of bits per character).\n"
        )
    else:
        about = (
            "A live demo of the character-level GRU classifier "
            f"[{classifier_id}](https://huggingface.co/{classifier_id}), "
            "made with hf_charnn: type a text and see every label's probability.\n"
        )
    readme = (
        f"---\ntitle: {title}\nemoji: 🔤\ncolorFrom: blue\ncolorTo: red\nsdk: gradio\nsdk_version: {gradio_version}\n"
        f"app_file: app.py\nmodels:\n{models}pinned: false\n---\n\n# {title}\n\n{about}"
    )
    return {
        "app.py": app.encode(),
        "requirements.txt": ("\n".join(SPACE_REQUIREMENTS) + "\n").encode(),
        "README.md": readme.encode(),
    }


def static_space_files(folder: Path, repo_id: str, space_id: str, revision: str) -> dict[str, bytes]:
    """
    The files of a static Space (`sdk: static`) running the model in the visitor's browser: the page of
    `hf-charnn export --web` (web.py), made from the folder pushed as `repo_id` at commit `revision` (the page names
    that commit: the Space runs the weights of that push, whatever is pushed later), and a README.md.
    """
    import tempfile

    from .web import export_web

    with tempfile.TemporaryDirectory() as scratch:
        site = export_web(folder, Path(scratch) / "site", source={"repo": repo_id, "revision": revision})
        root = Path(site["folder"])
        files = {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}
    title = f"{repo_id.split('/')[-1]} in the browser"
    readme = (
        f"---\ntitle: {title}\nemoji: 🔤\ncolorFrom: blue\ncolorTo: red\nsdk: static\napp_file: index.html\n"
        f"models:\n  - {repo_id}\npinned: false\n---\n\n# {title}\n\nThe {site['description']} "
        f"[{repo_id}](https://huggingface.co/{repo_id}) at commit {revision[:7]}, running in the visitor's browser "
        f"with onnxruntime-web {site['onnxruntime']['version']}: no server, nothing sent anywhere. Made with hf_charnn "
        "(`hf-charnn push MODEL --space NAME --static`).\n"
    )
    return {**files, "README.md": readme.encode()}


def card_with_demo_link(card: str, space_id: str) -> str:
    """The model card with a link to its demo Space (before its "## Use" section, or at the end)."""
    section = f"## Demo\n\nTry it in the Space [{space_id}](https://huggingface.co/spaces/{space_id}).\n\n"
    if "## Demo" in card:
        return card
    return card.replace("## Use", section + "## Use", 1) if "## Use" in card else card.rstrip() + "\n\n" + section


# Files of a run folder that stay on the machine that trained it: checkpoints, tracker logs, a sweep's log and
# run settings (they name local paths), a recipe's intermediate models (the exercise's leak-free LM).
LOCAL_ONLY = ("checkpoints", "runs", "train.log", "sweep_run_settings.json", "leak-free-lm")


def _portable_training_config(folder: Path) -> bytes | None:
    """training_config.json with no local paths (folders written before it was saved that way included them)."""
    import json

    from .training.settings import TrainingConfig

    settings = read_training_config(folder)
    if not settings:
        return None
    config = TrainingConfig.from_saved(settings)
    return (json.dumps(config.portable(), indent=2) + "\n").encode()


def push_model_folder(
    model_dir: str | Path,
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    space_id: str | None = None,
    demo_options: dict | None = None,
    static: bool = False,
) -> dict:
    """
    Upload a saved model folder (checked first) as one commit; with `space_id`, also create a Gradio Space that
    loads it by repo id (its demo built with `demo_options`), or (`static`) a static Space that runs it in the
    browser, and link it from the model card. Returns the commit URLs ({"model": ..., "space": ...}).
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, RepositoryNotFoundError

    folder = check_model_folder(model_dir)
    if static:
        if not space_id:
            raise UserError("--static makes the Space a static page: name it with --space user/name")
        from .export import require_onnx

        require_onnx()  # before anything is uploaded: the page runs the model's ONNX graph
    missing = [name for name in HUB_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(
            f"{folder}: not ready for the Hub, missing {', '.join(missing)}; train with hf-charnn or re-save the folder"
        )
    no_token = UserError("no Hub token: pass --token, set HF_TOKEN, or run `hf auth login`")
    if token is None and get_token() is None:
        raise no_token
    files = {
        str(path.relative_to(folder)): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).parts[0] not in LOCAL_ONLY
    }
    card = card_for_repo((folder / "README.md").read_text(), repo_id)
    rewritten = {
        TRAINING_CONFIG_FILE: _portable_training_config(folder),
        "README.md": (card_with_demo_link(card, space_id) if space_id else card).encode(),
    }
    operations = [CommitOperationAdd(name, rewritten.get(name) or str(path)) for name, path in files.items()]
    api = HfApi(token=token)
    unreachable = f"cannot reach the Hub at {api.endpoint} ({{}}); check the network or HF_ENDPOINT"
    target = repo_id
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        model_commit = api.create_commit(repo_id, operations, commit_message="Upload hf_charnn model")
        commits = {"model": str(model_commit.commit_url)}
        if space_id:
            target = space_id
            sdk = "static" if static else "gradio"
            api.create_repo(space_id, repo_type="space", space_sdk=sdk, private=private, exist_ok=True)
            if static:
                files = static_space_files(folder, repo_id, space_id, model_commit.oid)
            elif is_classifier_folder(folder):  # a classifier's Space: the Classify tab
                files = space_files(
                    None,
                    space_id,
                    classifier_id=repo_id,
                    classifier_revision=model_commit.oid,
                    demo_options=demo_options,
                )
            else:
                files = space_files(repo_id, space_id, revision=model_commit.oid, demo_options=demo_options)
            space_operations = [CommitOperationAdd(name, data) for name, data in files.items()]
            commits["space"] = str(
                api.create_commit(
                    space_id, space_operations, repo_type="space", commit_message="hf_charnn demo"
                ).commit_url
            )
    except LocalTokenNotFoundError:
        raise no_token from None
    except RepositoryNotFoundError:
        raise UserError(f"repository {target} not found, or this token cannot write to it") from None
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise UserError(
                f"the Hub refused the token ({status}): pass a token with write access to {target}"
            ) from None
        raise UserError(f"upload to {target} failed, nothing was reported as uploaded: {error}") from None
    except Exception as error:
        # Connection failures: OSErrors, or httpx transport errors (which are not OSErrors).
        if isinstance(error, OSError) or error.__class__.__module__.startswith(("httpx", "httpcore")):
            raise UserError(unreachable.format(error.__class__.__name__)) from None
        raise
    return commits
