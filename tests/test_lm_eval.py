"""
lm-evaluation-harness, a real client of transformers LMs, runs saved models as `--model hf` with no extra arguments.
"""

import json
import math
import subprocess
import sys

import pytest
import torch

import hf_charnn

pytest.importorskip("lm_eval")

DOCS = ["The cat sat on the mat.", "A person sits there, twice: 2x!"]
TASK = """\
task: charnn_rolling
dataset_path: json
dataset_kwargs:
  data_files:
    test: {docs}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: bits_per_byte
    aggregation: bits_per_byte
    higher_is_better: false
"""
# Run in a fresh interpreter that never imports hf_charnn: the model and tokenizer come from the folder's remote code.
RUN = """\
import json, sys
import lm_eval
from lm_eval.tasks import TaskManager
results = {}
for pair in sys.argv[2:]:
    task, folder = pair.split("=", 1)
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={folder},trust_remote_code=True", tasks=[task],
                                  task_manager=TaskManager(include_path=sys.argv[1]), device="cpu", batch_size=2)
    results[folder] = out["results"][task]["bits_per_byte,none"]
    assert "hf_charnn" not in sys.modules
print(json.dumps(results))
"""


def _saved_lm(folder, vocabulary: hf_charnn.Vocabulary):
    torch.manual_seed(0)
    config = hf_charnn.CharGRUConfig(**vocabulary.config_kwargs(), embedding_size=8, hidden_size=16)
    model = hf_charnn.CharGRUForCausalLM(config).eval()
    model.save_pretrained(folder)
    hf_charnn.CharTokenizer.for_model(config).save_pretrained(folder)
    return model


def test_lm_eval_rolling_loglikelihood_matches_our_scores(tmp_path):
    characters = "".join(sorted(set("".join(DOCS))))
    models = {  # name: (model, the task's texts)
        "text8": (
            _saved_lm(tmp_path / "text8", hf_charnn.Vocabulary()),
            [hf_charnn.normalize_text(doc) for doc in DOCS],
        ),
        "chars": (_saved_lm(tmp_path / "chars", hf_charnn.Vocabulary("chars", characters)), DOCS),
        "bytes": (_saved_lm(tmp_path / "bytes", hf_charnn.Vocabulary("bytes")), DOCS),
    }
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for name, (_, docs) in models.items():
        (tasks / f"{name}.jsonl").write_text("".join(json.dumps({"text": doc}) + "\n" for doc in docs))
        (tasks / f"{name}.yaml").write_text(
            TASK.format(docs=tasks / f"{name}.jsonl").replace("charnn_rolling", f"charnn_rolling_{name}")
        )
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(tasks), *(f"charnn_rolling_{name}={tmp_path / name}" for name in models)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (model, docs) in models.items():
        # lm-eval prefixes each text with the tokenizer's BOS (the start symbol, a space), as our scoring does.
        log_prob = sum(model.score_texts(docs, context=" "))
        expected = -log_prob / sum(len(doc.encode("utf-8")) for doc in docs) / math.log(2)
        assert measured[str(tmp_path / name)] == pytest.approx(expected, rel=1e-4), name


def test_tokenizer_declares_its_start_symbol_as_bos_and_decoding_keeps_it():
    for tokenizer in (hf_charnn.CharTokenizer(), hf_charnn.CharTokenizer(vocab_kind="bytes")):
        assert tokenizer.bos_token == " " and tokenizer.bos_token_id == tokenizer.vocabulary.start_id
        assert len(tokenizer) == tokenizer.vocabulary.size + 1  # no new id: only <pad> after the vocabulary
        ids = tokenizer.encode("a b  a")
        assert ids[0] != tokenizer.bos_token_id  # never added by encoding
        assert tokenizer.decode(ids + [tokenizer.pad_token_id], skip_special_tokens=True) == "a b  a"
    chars = hf_charnn.CharTokenizer(vocab_kind="chars", characters="\nAb")
    assert chars.bos_token == "\n" and chars.decode(chars.encode("A\nb"), skip_special_tokens=True) == "A\nb"


def test_an_unknown_character_is_named_at_its_position_in_the_whole_text():
    # (the tokenizer splits texts at its bos symbol, a space, before encoding the pieces)
    with pytest.raises(ValueError, match="character 'é' at position 6 is not one of"):
        hf_charnn.CharTokenizer(vocab_kind="chars", characters=" Sakep")("Speak é")


# Real multi-process launches, full runs and external clients: not in the fast tier (-m "not slow").
pytestmark = pytest.mark.slow
