"""Hub sharing without the internet: a local Hub-protocol server (HF_ENDPOINT), an offline cache, remote code."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import free_port
from hub_server import LocalHub

from hf_charnn import CharTokenizer
from hf_charnn.cli import train_run as train
from hf_charnn.hub import HUB_FILES
from hf_charnn.training import TrainingConfig

TOKEN = "hf_test_token"
BLOCK_HF_CHARNN = "import sys; sys.modules['hf_charnn'] = None\n"  # `import hf_charnn` now raises ImportError


@pytest.fixture(scope="module")
def trained_lm(tmp_path_factory, tiny_data_dir):
    folder = tmp_path_factory.mktemp("hub-lm")
    train(
        TrainingConfig.from_preset(
            "lm",
            "default",
            data_dir=str(tiny_data_dir),
            output_dir=str(folder),
            embedding_size=8,
            hidden_size=16,
            epochs=1,
            batch_size=4,
            chunk_size=16,
            progress_bar=False,
        )
    )
    shutil.rmtree(folder / "checkpoints")
    return folder


def hub_env(tmp_path, endpoint, **extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_CACHE=str(tmp_path / "hub-cache"),
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONPATH=os.path.dirname(__file__),
    )
    env.update(extra)
    return env


def run(args, env, timeout=180):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)


def push(model_dir, repo_id, env, *extra):
    return run([sys.executable, "-m", "hf_charnn", "push", str(model_dir), "--repo-id", repo_id, *extra], env)


LOAD_AND_SCORE = """
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained({source!r}, trust_remote_code={remote})
tokenizer = AutoTokenizer.from_pretrained({source!r}, trust_remote_code={remote})
ids = model.generate(**tokenizer(["the "], return_tensors="pt"), max_new_tokens=5, do_sample=False)
print(type(model).__module__, round(model.get_log_prob_sequence("sits", " a person "), 5), tokenizer.decode(ids[0]))
"""


def local_score(folder):
    from hf_charnn import CharGRUForCausalLM

    model = CharGRUForCausalLM.from_pretrained(folder).eval()
    ids = model.generate(**CharTokenizer()(["the "], return_tensors="pt"), max_new_tokens=5, do_sample=False)
    return round(model.get_log_prob_sequence("sits", " a person "), 5), CharTokenizer().decode(ids[0])


def test_saved_folder_is_hub_ready(trained_lm):
    for name in HUB_FILES + (
        "generation_config.json",
        "modeling_char_gru.py",
        "configuration_char_gru.py",
        "tokenization_char_gru.py",
    ):
        assert (trained_lm / name).is_file(), name
    config = json.loads((trained_lm / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_char_gru.CharGRUForCausalLM"
    card = (trained_lm / "README.md").read_text()
    results = json.loads((trained_lm / "eval_results.json").read_text())["results"]
    assert "model-index:" in card and "type: perplexity" in card
    assert f"value: {round(results['perplexity'], 4)}" in card
    assert "27" in card and "normalize_text" in card  # limits: the vocabulary and the normalisation
    # The Results section is one markdown table: every row from its header to the training time, no blank line.
    results_section = card.split("## Results\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert all(line.startswith("| ") and line.endswith(" |") for line in results_section[2:]), results_section
    rows = [line.split(" | ")[0].lstrip("| ") for line in results_section[2:]]
    assert rows[-5:] == [
        "sane (sequence log prob = sum of next-char log probs)",
        "normalizes (next-char probabilities sum to 1)",
        "dynamic evaluation (200 characters; a different metric: the model adapts to the text as it reads it)",
        "vocabulary",
        "training time",
    ]
    assert results_section[-1].endswith("CPU (2 threads), fp32 |") or ", fp32 |" in results_section[-1]


@pytest.mark.slow
def test_push_then_load_by_repo_id_through_http(tmp_path, trained_lm):
    with LocalHub(TOKEN) as hub:
        env = hub_env(tmp_path, hub.endpoint)
        result = push(trained_lm, "alice/char-lm", env, "--token", TOKEN)
        assert result.returncode == 0, result.stderr
        assert "uploaded" in result.stdout and hub.state.commits == 1
        assert {"README.md", "model.safetensors", "modeling_char_gru.py"} <= set(
            hub.state.repos["alice/char-lm"]["files"]
        )
        card = hub.state.repos["alice/char-lm"]["files"]["README.md"].decode()
        # The card names the repo it was pushed to: title, model-index, the Use snippet.
        assert "\n# char-lm\n" in card and "- name: char-lm\n" in card
        assert 'from_pretrained("alice/char-lm")' in card and "hf-charnn/char-gru" not in card
        for remote in (False, True):
            script = ("import hf_charnn\n" if not remote else BLOCK_HF_CHARNN) + LOAD_AND_SCORE.format(
                source="alice/char-lm", remote=remote
            )
            loaded = run([sys.executable, "-c", script], env)
            assert loaded.returncode == 0, loaded.stderr[-3000:]
            module, score, text = loaded.stdout.split(" ", 2)
            assert module.startswith("hf_charnn." if not remote else "transformers_modules.")
            assert (float(score), text.rstrip("\n")) == local_score(trained_lm)


def test_load_from_hub_cache_offline(tmp_path, trained_lm):
    snapshot = tmp_path / "hub-cache" / "models--alice--char-lm" / "snapshots" / ("a" * 40)
    shutil.copytree(trained_lm, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("a" * 40)
    env = hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    loaded = run(
        [sys.executable, "-c", "import hf_charnn\n" + LOAD_AND_SCORE.format(source="alice/char-lm", remote=False)], env
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.split(" ")[1]) == local_score(trained_lm)[0]


def test_remote_code_loads_where_hf_charnn_cannot_be_imported(tmp_path, trained_lm):
    script = BLOCK_HF_CHARNN + "try:\n    import hf_charnn\nexcept ImportError:\n    print('blocked', end=' ')\n"
    script += LOAD_AND_SCORE.format(source=str(trained_lm), remote=True)
    loaded = run([sys.executable, "-c", script], hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.startswith("blocked transformers_modules.")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no token", "wrong token", "repo not found", "server error", "unreachable"])
def test_push_errors_are_clear_and_upload_nothing(tmp_path, trained_lm, case):
    with LocalHub(TOKEN) as hub:
        endpoint = f"http://127.0.0.1:{free_port()}" if case == "unreachable" else hub.endpoint
        args = {"no token": [], "wrong token": ["--token", "hf_wrong"]}.get(case, ["--token", TOKEN])
        repo_id = "bob/char-lm" if case == "repo not found" else "alice/char-lm"
        hub.state.fail_commits = case == "server error"
        result = push(trained_lm, repo_id, hub_env(tmp_path, endpoint), *args)
        expected = {
            "no token": "no Hub token: pass --token",
            "wrong token": "refused the token (401)",
            "repo not found": "repository bob/char-lm not found",
            "server error": "upload to alice/char-lm failed, nothing was reported as uploaded",
            "unreachable": "cannot reach the Hub",
        }[case]
        assert result.returncode == 2
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert "uploaded" not in result.stdout
        assert all(not repo["files"] for repo in hub.state.repos.values())


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing card", "corrupted weights"])
def test_push_refuses_a_broken_folder(tmp_path, trained_lm, damage):
    folder = tmp_path / "model"
    shutil.copytree(trained_lm, folder)
    if damage == "missing card":
        (folder / "README.md").unlink()
        expected = "missing README.md"
    else:
        weights = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
        expected = "corrupted or truncated weights"
    with LocalHub(TOKEN) as hub:
        result = push(folder, "alice/char-lm", hub_env(tmp_path, hub.endpoint), "--token", TOKEN)
        assert result.returncode == 2 and expected in result.stderr
        assert hub.state.repos == {}


USER_SCRIPT = """
import hf_charnn
config = hf_charnn.CharGRUConfig(embedding_size=8, hidden_size=16)
hf_charnn.{model_class}(config).save_pretrained({folder!r})
hf_charnn.CharTokenizer().save_pretrained({folder!r})
"""


@pytest.mark.slow
def test_a_model_saved_from_a_users_script_is_self_contained(tmp_path):
    """Five lines that build and save an LM: the folder loads and generates where hf_charnn cannot be imported."""
    folder = tmp_path / "my-lm"
    env = hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    saved = run([sys.executable, "-c", USER_SCRIPT.format(model_class="CharGRUForCausalLM", folder=str(folder))], env)
    assert saved.returncode == 0, saved.stderr[-3000:]
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_char_gru.CharGRUConfig",
        "AutoModelForCausalLM": "modeling_char_gru.CharGRUForCausalLM",
    }
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert tokenizer_config["auto_map"]["AutoTokenizer"][0] == "tokenization_char_gru.CharTokenizer"
    loaded = run([sys.executable, "-c", BLOCK_HF_CHARNN + LOAD_AND_SCORE.format(source=str(folder), remote=True)], env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    module, score, text = loaded.stdout.split(" ", 2)
    # 5 new characters after "the " (an untrained model may well pick spaces: count them, do not strip them)
    assert module.startswith("transformers_modules.") and text.startswith("the ") and len(text.rstrip("\n")) == 9


CLASSIFY_REMOTELY = (
    BLOCK_HF_CHARNN
    + """
from transformers import AutoModelForSequenceClassification, pipeline
model = AutoModelForSequenceClassification.from_pretrained({folder!r}, trust_remote_code=True)
classify = pipeline("text-classification", model={folder!r}, trust_remote_code=True)
print(type(model).__module__.split(".")[0], model.predict("orums in abu dhabi t"), classify(["zones part of the re"])[0]["label"])
"""
)


@pytest.mark.slow
def test_a_saved_classifier_loads_remotely_and_in_a_pipeline(tmp_path):
    folder = tmp_path / "my-classifier"
    env = hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    saved = run(
        [sys.executable, "-c", USER_SCRIPT.format(model_class="CharGRUForSequenceClassification", folder=str(folder))],
        env,
    )
    assert saved.returncode == 0, saved.stderr[-3000:]
    assert "AutoModelForSequenceClassification" in json.loads((folder / "config.json").read_text())["auto_map"]
    loaded = run([sys.executable, "-c", CLASSIFY_REMOTELY.format(folder=str(folder))], env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    module, prediction, label = loaded.stdout.split()
    from hf_charnn import CharGRUForSequenceClassification

    local = CharGRUForSequenceClassification.from_pretrained(folder).eval()
    assert module == "transformers_modules" and int(prediction) == local.predict("orums in abu dhabi t")
    assert label == local.config.id2label[local.predict("zones part of the re")]


REMOTE_OUTPUTS = (
    BLOCK_HF_CHARNN
    + """
import json, torch, transformers
model = getattr(transformers, {auto_class!r}).from_pretrained({folder!r}, trust_remote_code=True).eval()
outputs = model(input_ids=torch.tensor([[19, 7, 4, 26, 2, 0, 19]]))
tensor = outputs.logits if {auto_class!r} != "AutoModel" else outputs.last_hidden_state
print(type(model).__module__.split(".")[0], type(model).__name__, json.dumps(tensor.tolist()))
"""
)


@pytest.mark.parametrize("kind", ["lm", "classifier", "zero-shot vowel-mass classifier", "backbone"])
def test_every_kind_of_saved_model_loads_as_remote_code(tmp_path, tiny_config, kind):
    """Each kind of model hf_charnn saves gives, where hf_charnn cannot be imported, the outputs it gives here."""
    import torch

    from hf_charnn import CharGRUForCausalLM, CharGRUForSequenceClassification, CharGRUModel

    torch.manual_seed(0)
    model, auto_class = {
        "lm": (lambda: CharGRUForCausalLM(tiny_config), "AutoModelForCausalLM"),
        "classifier": (lambda: CharGRUForSequenceClassification(tiny_config), "AutoModelForSequenceClassification"),
        "zero-shot vowel-mass classifier": (
            lambda: CharGRUForSequenceClassification.from_lm(
                CharGRUForCausalLM(tiny_config), {"consonant": "bcd", "vowel": "aeiou"}
            ),
            "AutoModelForSequenceClassification",
        ),
        "backbone": (lambda: CharGRUModel(tiny_config), "AutoModel"),
    }[kind]
    model = model().eval()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["auto_map"][auto_class].startswith("modeling_char_gru.")
    with torch.no_grad():
        outputs = model(input_ids=torch.tensor([[19, 7, 4, 26, 2, 0, 19]]))
    expected = outputs.logits if kind != "backbone" else outputs.last_hidden_state
    env = hub_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1")
    loaded = run([sys.executable, "-c", REMOTE_OUTPUTS.format(auto_class=auto_class, folder=str(folder))], env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    module, class_name, values = loaded.stdout.split(" ", 2)
    assert module == "transformers_modules" and class_name == type(model).__name__
    torch.testing.assert_close(torch.tensor(json.loads(values)), expected, atol=1e-5, rtol=1e-5)
