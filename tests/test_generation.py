import pytest
import torch
from transformers import pipeline

import hf_charnn
from hf_charnn import CharTokenizer
from hf_charnn.cli import main


@pytest.fixture
def tokenizer():
    return CharTokenizer()


def greedy(model, tokenizer, prompts, **kwargs):
    inputs = tokenizer(prompts, return_tensors="pt", padding=True)
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False, **kwargs)
    return [tokenizer.decode(row, skip_special_tokens=True) for row in output]


def test_each_new_character_costs_one_gru_step(random_lm, tokenizer, monkeypatch):
    widths, steps = [], []
    original_forward, original_step = random_lm.char_gru.forward, random_lm._cell_step
    monkeypatch.setattr(
        random_lm.char_gru, "forward", lambda ids, **kw: widths.append(ids.shape[1]) or original_forward(ids, **kw)
    )
    monkeypatch.setattr(
        random_lm, "_cell_step", lambda ids, *rest: steps.append(ids.shape) or original_step(ids, *rest)
    )
    greedy(random_lm, tokenizer, ["the united states"])
    # The prompt is read once; then one GRU-cell step per new character (the 12th needs no step after it).
    assert widths == [len("the united states")]
    assert steps == [torch.Size([1])] * 11


@pytest.mark.parametrize("layers", [1, 2])
def test_lean_decoding_gives_the_tokens_of_transformers_loop(layers, tokenizer):
    torch.manual_seed(0)
    model = hf_charnn.CharGRUForCausalLM(
        hf_charnn.CharGRUConfig(embedding_size=8, hidden_size=16, num_hidden_layers=layers)
    ).eval()
    inputs = tokenizer(["the united states", "a", "some kind of"], return_tensors="pt", padding=True)
    runs = [
        dict(max_new_tokens=30, do_sample=False),
        dict(max_new_tokens=30, do_sample=True, temperature=0.8, top_k=5),
        dict(max_new_tokens=30, do_sample=True, top_p=0.9, repetition_penalty=1.3),
        dict(
            max_new_tokens=30, do_sample=False, eos_token_id=tokenizer.index_of("e"), pad_token_id=26
        ),  # rows stop early
    ]
    for settings in runs:
        outputs, streamed = [], []
        for lean in (True, False):
            model.lean_generation = lean
            streamer = _Collect()
            torch.manual_seed(3)
            outputs.append(model.generate(**inputs, streamer=streamer, **settings))
            streamed.append(streamer.tokens)
        model.lean_generation = True
        assert torch.equal(outputs[0], outputs[1]), settings
        assert streamed[0] == streamed[1], settings


class _Collect:
    """A streamer that records what generate() hands it."""

    def __init__(self):
        self.tokens = []

    def put(self, value):
        self.tokens.append(value.tolist())

    def end(self):
        self.tokens.append("end")


def test_without_cache_the_greedy_text_is_the_same(random_lm, tokenizer):
    assert greedy(random_lm, tokenizer, ["the united"], use_cache=False) == greedy(random_lm, tokenizer, ["the united"])


def test_padded_batch_gives_what_each_prompt_gives_alone(random_lm, tokenizer):
    prompts = ["the united states", "a", "some kind of"]
    assert greedy(random_lm, tokenizer, prompts) == [greedy(random_lm, tokenizer, [p])[0] for p in prompts]


def test_beam_search_and_sampling(random_lm, tokenizer):
    beams = greedy(random_lm, tokenizer, ["the ", "a person"], num_beams=3)
    assert all(len(text) == len(prompt) + 12 for text, prompt in zip(beams, ["the ", "a person"]))
    inputs = tokenizer(["the "], return_tensors="pt")
    torch.manual_seed(0)
    first = random_lm.generate(**inputs, max_new_tokens=20, do_sample=True, temperature=0.7, top_k=5, top_p=0.9)
    torch.manual_seed(0)
    again = random_lm.generate(**inputs, max_new_tokens=20, do_sample=True, temperature=0.7, top_k=5, top_p=0.9)
    assert torch.equal(first, again)
    assert int(first.max()) < 27  # only characters, never the padding id


def test_text_generation_pipeline(random_lm, tokenizer):
    generator = pipeline("text-generation", model=random_lm, tokenizer=tokenizer)
    result = generator("the united", max_new_tokens=8, do_sample=False)
    assert result[0]["generated_text"] == greedy(random_lm, tokenizer, ["the united"])[0][: len("the united") + 8]
    batched = generator(["the united", "a"], max_new_tokens=8, do_sample=False, batch_size=2)
    assert batched[1][0]["generated_text"] == greedy(random_lm, tokenizer, ["a"])[0][:9]


def test_generate_command(tmp_path, random_lm, tokenizer, capsys):
    random_lm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["generate", str(tmp_path), "--prompt", "the united", "--max-new-chars", "12"]) == 0
    assert capsys.readouterr().out.strip() == greedy(random_lm, tokenizer, ["the united"])[0].strip()
    assert main(["generate", str(tmp_path), "--prompt", "The United", "--max-new-chars", "5"]) == 2
    assert "or pass --normalize" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                str(tmp_path),
                "--prompt",
                "The 2 Towers",
                "--normalize",
                "--temperature",
                "0.8",
                "--top-k",
                "3",
                "--max-new-chars",
                "5",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith("the two towers")
