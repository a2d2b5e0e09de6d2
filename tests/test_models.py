import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

import hf_charnn
from hf_charnn import CharGRUForCausalLM, CharGRUForSequenceClassification


def test_config_defaults_and_labels():
    config = hf_charnn.CharGRUConfig()
    assert config.model_type == "char_gru"
    assert config.id2label == {0: "LABEL_0", 1: "LABEL_1"} and config.num_labels == 2  # transformers' default labels


def test_lm_logits_cover_exactly_27_characters(random_lm):
    outputs = random_lm(torch.tensor([[0, 1, 2]]))
    assert outputs.logits.shape == (1, 3, 27)
    assert outputs.state.shape == (2, 1, 16)


def test_lm_round_trip_through_auto_classes(tmp_path, random_lm):
    random_lm.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert AutoConfig.from_pretrained(tmp_path).model_type == "char_gru"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CharGRUForCausalLM)
    ids = torch.tensor([[3, 4, 26, 5]])
    for name, tensor in random_lm.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    # Same weights; BLAS may still round differently at another memory alignment, hence 1e-6 and not 0.
    torch.testing.assert_close(loaded(ids).logits, random_lm(ids).logits, rtol=0, atol=1e-6)
    assert loaded.get_log_prob_sequence("sits", " a person ") == pytest.approx(
        random_lm.get_log_prob_sequence("sits", " a person "), abs=1e-6
    )


def test_classifier_round_trip_through_auto_classes(tmp_path, random_classifier):
    random_classifier.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CharGRUForSequenceClassification)
    for name, tensor in random_classifier.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    ids = torch.tensor([[3, 4, 26, 5]])
    torch.testing.assert_close(loaded(ids).logits, random_classifier(ids).logits, rtol=0, atol=1e-6)
    contexts = ["orums in abu dhabi t", "zones part of the re"]
    assert loaded.predict_batch(contexts) == random_classifier.predict_batch(contexts)


def test_lm_backbone_loads_into_a_classifier(tmp_path, random_lm):
    random_lm.save_pretrained(tmp_path)
    classifier = CharGRUForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(classifier.char_gru.gru.weight_hh_l0, random_lm.char_gru.gru.weight_hh_l0)


def test_init_weights_covers_the_gru_when_a_checkpoint_lacks_it(tmp_path, random_lm):
    random_lm.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    kept = {name: tensor for name, tensor in weights.items() if ".gru." not in name}
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded = CharGRUForCausalLM.from_pretrained(tmp_path)
    bound = loaded.config.hidden_size**-0.5
    for parameter in loaded.char_gru.gru.parameters():
        assert torch.isfinite(parameter).all() and parameter.abs().max() <= bound
    torch.testing.assert_close(loaded.lm_head.weight, random_lm.lm_head.weight)


def test_sequence_log_prob_is_one_pass_and_equals_prefix_sum(random_lm, monkeypatch):
    context, continuation = " some kind of person ", "sits there"
    stepwise = 0.0
    for position, char in enumerate(continuation):
        log_probs = random_lm.get_next_char_log_probs(context + continuation[:position])
        stepwise += log_probs[hf_charnn.CHARACTERS.index(char)]
    calls = []
    original = random_lm.char_gru.forward
    monkeypatch.setattr(random_lm.char_gru, "forward", lambda *a, **k: calls.append(a[0].shape) or original(*a, **k))
    one_pass = random_lm.get_log_prob_sequence(continuation, context)
    assert calls == [torch.Size([1, len(context) + len(continuation) - 1])]
    assert one_pass == pytest.approx(stepwise, abs=1e-4)


def test_next_char_log_probs_are_a_normalised_numpy_vector(random_lm):
    log_probs = random_lm.get_next_char_log_probs(" a person ")
    assert isinstance(log_probs, np.ndarray) and log_probs.shape == (27,)
    assert np.exp(log_probs).sum() == pytest.approx(1.0, abs=1e-5)
    assert np.exp(random_lm.get_next_char_log_probs("")).sum() == pytest.approx(1.0, abs=1e-5)


def test_batched_scoring_equals_one_at_a_time(random_lm):
    texts = ["s", "sits", "sits there", ""]
    batched = random_lm.score_texts(texts, context=" a person ")
    single = [random_lm.get_log_prob_sequence(text, " a person ") for text in texts]
    assert batched == pytest.approx(single, abs=1e-4)
    assert batched[-1] == 0.0


def test_padding_on_either_side_changes_nothing(random_lm):
    short, long = torch.tensor([[5, 6, 7]]), torch.tensor([[1, 2, 3, 4, 5]])
    alone = random_lm(short).logits[0]
    right = random_lm(
        torch.tensor([[5, 6, 7, 27, 27], [1, 2, 3, 4, 5]]), attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1] * 5])
    )
    left = random_lm(
        torch.tensor([[27, 27, 5, 6, 7], [1, 2, 3, 4, 5]]), attention_mask=torch.tensor([[0, 0, 1, 1, 1], [1] * 5])
    )
    torch.testing.assert_close(right.logits[0, :3], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(left.logits[0, 2:], alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(left.state[:, 0], random_lm(short).state[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(left.logits[1], random_lm(long).logits[0], atol=1e-5, rtol=0)


def test_state_continues_a_text(random_lm):
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    whole = random_lm(ids).logits
    first = random_lm(ids[:, :4])
    rest = random_lm(ids[:, 4:], state=first.state).logits
    torch.testing.assert_close(torch.cat([first.logits, rest], dim=1), whole, atol=1e-5, rtol=0)


def test_classifier_predict_and_batch_agree(random_classifier):
    contexts = ["orums in abu dhabi t", "zones part of the re", "ab"]
    batched = random_classifier.predict_batch(contexts)
    assert batched == [random_classifier.predict(context) for context in contexts]
    assert set(batched) <= {0, 1}


def test_classifier_loss_with_one_label_or_one_per_position(random_classifier):
    ids = torch.tensor([[0, 1, 2], [3, 4, 5]])
    assert random_classifier(ids, labels=torch.tensor([0, 1])).loss.item() > 0
    per_position = torch.tensor([[1, -100, 0], [0, 1, 1]])
    assert random_classifier(ids, labels=per_position).loss.item() > 0


def test_lm_loss_shifts_labels_like_every_causal_lm(random_lm):
    ids = torch.tensor([[0, 1, 2, 3]])
    shifted = random_lm(ids, labels=ids).loss
    aligned = random_lm(ids[:, :-1], shift_labels=ids[:, 1:]).loss
    torch.testing.assert_close(shifted, aligned)


def test_unknown_character_in_exercise_interface(random_lm):
    with pytest.raises(ValueError, match="'X' at position 2"):
        random_lm.get_log_prob_sequence("s", "abX")


def test_return_dict_false_gives_tuples_as_transformers_models_do(random_lm, random_classifier):
    input_ids = torch.tensor([[19, 7, 4, 26]])
    as_dict = random_lm(input_ids=input_ids, labels=input_ids)
    loss, logits, cache, state = random_lm(input_ids=input_ids, labels=input_ids, return_dict=False)
    torch.testing.assert_close((loss, logits, state), (as_dict.loss, as_dict.logits, as_dict.state))
    torch.testing.assert_close(cache.state(), as_dict.cache.state())
    (classifier_logits,) = random_classifier(input_ids=input_ids, return_dict=False)
    torch.testing.assert_close(classifier_logits, random_classifier(input_ids=input_ids).logits)
    expected = random_lm.get_log_prob_sequence("the cat", " a ")
    random_lm.config.return_dict = False  # the config's default counts too; the exercise's methods still work
    try:
        assert isinstance(random_lm(input_ids=input_ids), tuple)
        assert random_lm.get_log_prob_sequence("the cat", " a ") == pytest.approx(expected)
    finally:
        random_lm.config.return_dict = True


def test_use_cache_returns_a_transformers_cache_holding_the_state_and_continuing_from_it_is_reading_on(random_lm):
    """The state travels as a transformers Cache (a recurrent layer a GRU layer), as Mamba's does."""
    from transformers.cache_utils import Cache

    text, more = torch.tensor([[19, 7, 4, 26, 2]]), torch.tensor([[0, 19, 26]])
    with torch.no_grad():
        first = random_lm(input_ids=text, use_cache=True)
        assert isinstance(first.cache, Cache) and len(first.cache.layers) == random_lm.config.num_hidden_layers
        torch.testing.assert_close(first.cache.state(), first.state)
        assert first.cache.layers[0].recurrent_states[0].shape == (1, random_lm.config.hidden_size)
        whole = random_lm(input_ids=torch.cat([text, more], dim=1), use_cache=True)
        continued = random_lm(input_ids=more, cache=first.cache, use_cache=True)  # the cache is updated in place
        torch.testing.assert_close(continued.logits, whole.logits[:, text.shape[1] :], atol=1e-5, rtol=0)
        assert continued.cache is first.cache
        torch.testing.assert_close(first.cache.state(), whole.state, atol=1e-5, rtol=0)
        from_tensor = random_lm(input_ids=more, state=random_lm(input_ids=text).state)  # the tensor name still works
        torch.testing.assert_close(from_tensor.logits, continued.logits)
        assert random_lm(input_ids=text, use_cache=False).cache is None
