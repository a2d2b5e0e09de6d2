import pytest
import torch
from transformers import pipeline

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
    widths = []
    original = random_lm.char_gru.forward
    monkeypatch.setattr(random_lm.char_gru, "forward", lambda ids, **kw: widths.append(ids.shape[1]) or original(ids, **kw))
    greedy(random_lm, tokenizer, ["the united states"])
    assert widths[0] == len("the united states") and set(widths[1:]) == {1}
    assert len(widths) == 12


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
    assert main(["generate", str(tmp_path), "--prompt", "The 2 Towers", "--normalize", "--temperature", "0.8", "--top-k", "3", "--max-new-chars", "5"]) == 0
    assert capsys.readouterr().out.startswith("the two towers")
