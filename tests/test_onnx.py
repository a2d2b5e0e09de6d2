"""ONNX export: every graph checked in onnxruntime against the PyTorch model it came from."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

from hf_charnn import CharGRUConfig, CharGRUForCausalLM, CharGRUForSequenceClassification, CharTokenizer  # noqa: E402
from hf_charnn.cli import main  # noqa: E402
from hf_charnn.export import (  # noqa: E402
    export_folder,
    export_onnx,
    generate_greedy_or_sampled,
    sample_inputs,
    session_for,
    torch_outputs,
)

FIXTURES = Path(__file__).parent / "fixtures" / "saved_models"


def random_model(kind: str, layers: int, **config):
    torch.manual_seed(layers)
    settings = dict(embedding_size=8, hidden_size=16, num_hidden_layers=layers, dropout=0.3, **config)
    model_class = CharGRUForCausalLM if kind == "lm" else CharGRUForSequenceClassification
    return model_class(CharGRUConfig(**settings)).eval()


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["lm", "classifier"])
def test_logits_and_state_match_pytorch_for_random_weights(tmp_path, kind, layers):
    """Batch 1 and 4, sequence 1 and 50; a classifier's rows padded on either side (see sample_inputs)."""
    model = random_model(kind, layers)  # dropout in the config: the export must run in eval mode
    export_onnx(model, tmp_path / "model.onnx")
    session = session_for(tmp_path / "model.onnx")
    for batch in (1, 4):
        for length in (1, 50):
            inputs = sample_inputs(model, batch, length, seed=7)
            got, expected = session.run(None, inputs), torch_outputs(model, inputs)
            assert len(got) == (2 if kind == "lm" else 1)
            for onnx_value, torch_value in zip(got, expected):
                assert onnx_value.shape == torch_value.shape
                np.testing.assert_allclose(onnx_value, torch_value, atol=1e-4, rtol=0)
    if kind == "classifier":  # padded rows give what each text gives alone
        inputs = sample_inputs(model, 4, 50, seed=7)
        (logits,) = session.run(None, inputs)
        for row in range(4):
            real = inputs["attention_mask"][row] == 1
            (alone,) = session.run(
                None,
                {
                    "input_ids": inputs["input_ids"][row][real][None],
                    "attention_mask": np.ones((1, int(real.sum())), np.int64),
                },
            )
            np.testing.assert_allclose(logits[row], alone[0], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "name", ["text8-lm", "bytes-lm", "vowel-classifier", "vowel-mass-classifier", "labels-classifier"]
)
def test_trained_folders_export_and_match(tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    record = export_folder(folder, quantize="int8")
    assert record["largest_difference"]["fp32"] <= 1e-4
    saved = json.loads((folder / "onnx" / "export.json").read_text())
    assert saved["files"] == {"fp32": "onnx/model.onnx", "int8": "onnx/model_quantized.onnx"}
    assert record["largest_difference"]["int8"] < 0.1  # int8 weights: close, not equal
    if (folder / "README.md").is_file():  # (the vowel-mass fixture was saved without a card)
        card = (folder / "README.md").read_text()
        assert card.index("## ONNX") < card.index("## Training") and "onnxruntime.InferenceSession" in card
    session = session_for(folder / "onnx" / "model.onnx")
    assert [i.name for i in session.get_inputs()] == saved["inputs"]
    assert [o.name for o in session.get_outputs()] == saved["outputs"]


def test_the_numpy_loop_generates_the_text_of_generate(tmp_path):
    model = CharGRUForCausalLM.from_pretrained(FIXTURES / "text8-lm").eval()
    export_onnx(model, tmp_path / "model.onnx")
    session = session_for(tmp_path / "model.onnx")
    tokenizer = CharTokenizer.for_model(model.config)
    prompt = tokenizer(["the united states"], return_tensors="pt")
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    expected = model.generate(**prompt, max_new_tokens=60, do_sample=False)[0, prompt["input_ids"].shape[1] :]
    greedy = generate_greedy_or_sampled(session, prompt["input_ids"][0].numpy(), layers, hidden, 60)
    assert greedy.tolist() == expected.tolist()
    sampled = [
        generate_greedy_or_sampled(session, [0, 1], layers, hidden, 40, temperature=0.8, top_k=5, seed=3)
        for _ in range(2)
    ]
    assert sampled[0].tolist() == sampled[1].tolist() and len(set(sampled[0].tolist())) > 1
    other = generate_greedy_or_sampled(session, [0, 1], layers, hidden, 40, temperature=0.8, top_k=5, seed=4)
    assert other.tolist() != sampled[0].tolist()


def test_the_export_command_scores_the_graphs_and_refuses_bad_input(tmp_path, capsys, data_dir):
    folder = tmp_path / "lm"
    shutil.copytree(FIXTURES / "text8-lm", folder)
    assert main(["export", str(folder), "--onnx", "--quantize", "int8", "--text", str(data_dir / "text8-dev.txt")]) == 0
    result = json.loads(capsys.readouterr().out)
    bpc = result["scores"]["bpc"]
    assert bpc["fp32"] == pytest.approx(bpc["torch"], abs=1e-4) and bpc["int8"] == pytest.approx(bpc["torch"], abs=0.05)
    # Bad input: one line, exit 2.
    assert main(["export", str(folder), "--onnx"]) == 2
    assert "holds another export (model.onnx); pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(folder), "--onnx", "--overwrite"]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "nothing"), "--onnx"]) == 2
    assert "model folder not found" in capsys.readouterr().err
    assert main(["export", str(folder), "--onnx", "--output", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "onnx" / "model.onnx").is_file()
    capsys.readouterr()
    classifier = tmp_path / "classifier"
    shutil.copytree(FIXTURES / "labels-classifier", classifier)
    (tmp_path / "texts.csv").write_text('text,label\n"Who is it?",question\n"STOP THAT!",shout\n"the cat.",plain\n')
    assert main(["export", str(classifier), "--onnx", "--quantize", "int8", "--file", str(tmp_path / "texts.csv")]) == 0
    accuracy = json.loads(capsys.readouterr().out)["scores"]["accuracy"]
    assert accuracy["fp32"] == accuracy["torch"]


def test_a_missing_extra_is_named(tmp_path):
    script = (
        "import sys; sys.modules['onnxruntime'] = None\nfrom hf_charnn.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "export", str(FIXTURES / "text8-lm"), "--onnx"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        'the ONNX export needs onnx and onnxruntime (onnxruntime is missing): pip install -e ".[onnx]"' in result.stderr
    )


@pytest.mark.slow
def test_push_uploads_the_export_and_its_card_section(tmp_path):
    from hub_server import LocalHub
    from test_hub import TOKEN, hub_env, push

    folder = tmp_path / "lm"
    shutil.copytree(FIXTURES / "text8-lm", folder)
    export_folder(folder, quantize="int8")
    with LocalHub(TOKEN) as hub:
        result = push(folder, "alice/char-lm-onnx", hub_env(tmp_path, hub.endpoint), "--token", TOKEN)
        assert result.returncode == 0, result.stderr
        files = hub.state.repos["alice/char-lm-onnx"]["files"]
        assert {"onnx/model.onnx", "onnx/model_quantized.onnx", "onnx/export.json"} <= set(files)
        assert "## ONNX" in files["README.md"].decode()
