"""
A Gradio demo of a character LM and/or a classifier: Write, Score, Next symbol (groups of next symbols, e.g. vowel or
consonant), Classify.

    hf-charnn demo runs/lm [--classifier runs/classifier] [--port 7860]

This file imports nothing from hf_charnn: it works through the models' stated interface (`model.vocabulary` to read
and normalise text, `generate`-style forward calls with `state`, `symbol_group_classifier`, `predict_proba`). So the
same file serves as a Hub Space's `app.py`, where the model is loaded by repo id with `trust_remote_code=True` and
hf_charnn is not installed (`hf-charnn push --space`).
"""

import html
import math

import torch

MAX_GENERATE_CHARS = 2000  # longer requests are capped, with a note
MAX_SCORE_CHARS = 20_000  # Score reads at most this much of a pasted text (one batched pass), with a note
MAX_GROUP_CHARS = 5_000
MAX_CLASSIFY_CHARS = 5_000  # Classify reads at most this much of a text (the GRU reads it character by character)
MAX_PROMPT_CHARS = 2_000  # Write keeps the prompt's last this-many characters (a GRU reads them one by one)
DEFAULT_CONTEXT_CHARS = 20  # the Next-symbol tab's contexts: the characters before each position
STREAM_EVERY = 8  # characters generated between two updates of the page


def normalized_note(vocabulary, raw: str) -> tuple[str, str]:
    """(the text as the vocabulary reads real text, a note saying what normalising changed, or "")."""
    text = vocabulary.normalize(raw or "")
    if text == (raw or ""):
        return text, ""
    mapped = sum(char not in vocabulary.to_id for char in raw)
    return text, (
        f"Normalized into text8 form (a-z and space): {mapped} of {len(raw)} characters were not text8 symbols "
        f"(capitals, digits, punctuation, accents); the text is now {len(text)} characters."
    )


def to_model_text(model, raw: str) -> tuple[str, str]:
    """
    (the text as the model can read it, a note saying what changed or ""): text8 models get it normalised; a
    `chars` model without `<unk>` gets the characters it has never seen left out; `bytes` reads anything.
    """
    vocabulary = model.vocabulary
    if vocabulary.kind == "text8":
        return normalized_note(vocabulary, raw)
    if vocabulary.kind == "bytes" or vocabulary.unk:
        return raw or "", ""
    kept = "".join(char for char in raw or "" if char in vocabulary.to_id)
    if kept == (raw or ""):
        return kept, ""
    return kept, f"Left out {len(raw) - len(kept)} of {len(raw)} characters this model has never seen."


def _capped_text(model, raw: str, limit: int, keep_end: bool = False) -> tuple[str, list[str]]:
    """
    (the text as the model reads it, at most `limit` characters; the notes saying what capping and normalising
    did). The input is cut before any work is done on it (normalising spells digits out, so it is cut again after).
    """
    raw = raw or ""
    notes = []
    if len(raw) > limit:
        notes.append(f"Read the {'last' if keep_end else 'first'} {limit:,} of {len(raw):,} characters.")
        raw = raw[-limit:] if keep_end else raw[:limit]
    text, note = to_model_text(model, raw)
    notes += [note] if note else []
    if len(text) > limit:
        text = text[-limit:] if keep_end else text[:limit]
    return text, notes


@torch.no_grad()
def generate_stream(model, prompt: str, temperature: float = 0.8, top_k: int = 5, length: int = 200, seed: int = 0):
    """Yields (text so far, note) while sampling `length` characters after `prompt`, one GRU step a character."""
    vocabulary = model.vocabulary
    text, notes = _capped_text(model, prompt, MAX_PROMPT_CHARS, keep_end=True)
    if not text:
        text = vocabulary.symbols[vocabulary.start_id]
        notes.append(f"The prompt was empty: starting from {'a space' if text == ' ' else repr(text)}.")
    length = int(length)
    if length > MAX_GENERATE_CHARS:
        notes.append(f"Length capped at {MAX_GENERATE_CHARS} characters (asked for {length}).")
        length = MAX_GENERATE_CHARS
    note = " ".join(notes)
    generator = torch.Generator().manual_seed(int(seed) % 2**63)  # any integer the page sends
    ids = torch.from_numpy(vocabulary.encode(text))[None].to(model.device)
    outputs = model(input_ids=ids, use_cache=True)
    generated = []
    for step in range(max(0, length)):
        logits = outputs.logits[0, -1].float().cpu()
        if temperature <= 0:
            next_id = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k and 0 < int(top_k) < logits.numel():
                cutoff = torch.topk(logits, int(top_k)).values[-1]
                logits = logits.masked_fill(logits < cutoff, float("-inf"))
            next_id = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator))
        generated.append(next_id)
        if (step + 1) % STREAM_EVERY == 0 or step + 1 == length:
            yield text + vocabulary.decode(generated), note  # (bytes: a character cut so far shows as U+FFFD)
        outputs = model(input_ids=torch.tensor([[next_id]], device=model.device), state=outputs.state, use_cache=True)
    if length <= 0:
        yield text, note


@torch.no_grad()
def score(model, raw: str, top: int = 5) -> dict:
    """
    Per-symbol surprisal (bits) of a text after the context " ", with each position's `top` likeliest symbols:
    {"text", "units" (what each scored symbol shows), "bits", "alternatives", "bpc", "perplexity", "unit", "note"}.
    A `bytes` model scores bytes: a character of several bytes shows at its first, "·" at the others.
    """
    vocabulary = model.vocabulary
    text, notes = _capped_text(model, raw, MAX_SCORE_CHARS)
    if not text:
        return {
            "text": "",
            "units": [],
            "bits": [],
            "alternatives": [],
            "bpc": float("nan"),
            "perplexity": float("nan"),
            "unit": vocabulary.unit,
            "note": " ".join(notes + ["Nothing to score: type some text."]),
        }
    targets = torch.from_numpy(vocabulary.encode(text))
    ids = torch.cat([torch.tensor([vocabulary.start_id]), targets[:-1]])[None].to(model.device)
    log_probs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1).cpu()
    bits = (-log_probs.gather(1, targets[:, None])[:, 0] / math.log(2)).tolist()
    best = torch.topk(log_probs.exp(), min(top, vocabulary.size), dim=-1)
    alternatives = [
        [(_shown(vocabulary, int(index)), float(prob)) for prob, index in zip(probs, indices)]
        for probs, indices in zip(best.values, best.indices)
    ]
    bpc = sum(bits) / len(bits)
    return {
        "text": text,
        "units": _units(vocabulary, text, targets.tolist()),
        "bits": bits,
        "alternatives": alternatives,
        "bpc": bpc,
        "perplexity": 2**bpc,
        "unit": vocabulary.unit,
        "note": " ".join(notes),
    }


def _shown(vocabulary, index: int) -> str:
    symbol = vocabulary.symbols[index]
    if vocabulary.kind == "bytes" and index >= 0x80:
        return f"\\x{index:02x}"
    return symbol


def _units(vocabulary, text: str, ids: list[int]) -> list[str]:
    """What each scored symbol (`ids`, the ids of `text`) shows: its character (bytes: at its first byte, "·" after)."""
    if vocabulary.kind != "bytes":
        return [vocabulary.symbols[index] for index in ids]
    return [unit for char in text for unit in [char] + ["·"] * (len(char.encode("utf-8")) - 1)]


@torch.no_grad()
def group_predictions(
    model, raw: str, symbol_groups: dict[str, str], classifier=None, context_chars: int = DEFAULT_CONTEXT_CHARS
) -> dict:
    """
    At every position whose symbol is in one of the two `symbol_groups` (e.g. consonant / vowel), P(the second group)
    from the `context_chars` characters before it: from the classifier when there is one, else from the LM's
    probability mass on each group (zero-shot). {"text", "positions", "p_second", "in_second", "accuracy", "source",
    "note"}.
    """
    first, second = list(symbol_groups)
    text, notes = _capped_text(model, raw, MAX_GROUP_CHARS)
    source = "classifier" if classifier is not None else f"LM {first}/{second} mass (zero-shot)"
    if classifier is None:
        classifier = model.symbol_group_classifier(symbol_groups)
    grouped = set("".join(symbol_groups.values()))
    positions = [index for index in range(1, len(text)) if text[index] in grouped]
    if not positions:
        return {
            "text": text,
            "positions": [],
            "p_second": [],
            "in_second": [],
            "accuracy": float("nan"),
            "source": source,
            "note": " ".join(notes + [f"No {first} or {second} follows any context: type some words."]),
        }
    contexts = [text[max(0, index - context_chars) : index] for index in positions]
    label = classifier.config.label2id.get(second, 1)
    p_second = classifier.predict_proba(contexts)[:, label].tolist()
    in_second = [text[index] in symbol_groups[second] for index in positions]
    correct = sum((p >= 0.5) == member for p, member in zip(p_second, in_second))
    return {
        "text": text,
        "positions": positions,
        "p_second": p_second,
        "in_second": in_second,
        "accuracy": 100.0 * correct / len(positions),
        "source": source,
        "note": " ".join(notes),
    }


def serves_groups(classifier, symbol_groups: dict[str, str]) -> bool:
    """Whether a classifier predicts exactly these groups (so the Next-symbol tab can use it instead of the LM)."""
    labels = {str(label) for label in classifier.config.id2label.values()}
    return labels == set(symbol_groups)


@torch.no_grad()
def classify(classifier, raw: str) -> dict:
    """Every label's probability for a text: {"text", "labels": [(name, probability)] most likely first, "note"}."""
    text, notes = _capped_text(classifier, raw, MAX_CLASSIFY_CHARS)
    if not text:
        return {"text": "", "labels": [], "note": " ".join(notes + ["Type a text to classify."])}
    probabilities = classifier.predict_proba([text])[0].tolist()  # (a multi-label model's: a sigmoid a label)
    names = [str(classifier.config.id2label[index]) for index in range(len(probabilities))]
    ranked = sorted(zip(names, probabilities), key=lambda pair: -pair[1])
    return {"text": text, "labels": ranked, "note": " ".join(notes)}


# -- HTML --------------------------------------------------------------------------------------------------------------
def _cell(char: str, colour: str, title: str, css_class: str) -> str:
    shown = "␣" if char == " " else html.escape(char)
    return f'<span class="{css_class}" style="background:{colour}" title="{html.escape(title)}">{shown}</span>'


def heat_map_html(scored: dict) -> str:
    """One cell per character, coloured by surprisal (white 0 bits -> red 8+ bits); hover: its top-5 alternatives."""
    cells = []
    for char, bits, alternatives in zip(scored.get("units") or scored["text"], scored["bits"], scored["alternatives"]):
        level = min(bits / 8.0, 1.0)
        colour = f"rgb(255,{int(255 * (1 - level))},{int(255 * (1 - level))})"
        listing = ", ".join(f"{'␣' if alt == ' ' else alt} {prob:.0%}" for alt, prob in alternatives)
        cells.append(_cell(char, colour, f"{bits:.2f} bits; top 5: {listing}", "hf-charnn-cell"))
    return f'<div class="hf-charnn-heatmap" style="font-family:monospace;font-size:18px;line-height:1.9;word-break:break-all">{"".join(cells)}</div>'  # noqa: E501


def groups_html(result: dict, symbol_groups: dict[str, str]) -> str:
    """
    Each grouped symbol coloured by P(second group) predicted before it (blue: second, orange: first); wrong ones
    underlined.
    """
    first, second = list(symbol_groups)
    by_position = {
        index: (p, member) for index, p, member in zip(result["positions"], result["p_second"], result["in_second"])
    }
    cells = []
    for index, char in enumerate(result["text"]):
        if index not in by_position:
            cells.append(_cell(char, "transparent", "", "hf-charnn-plain"))
            continue
        p, member = by_position[index]
        colour = f"rgba(40,110,255,{p:.2f})" if p >= 0.5 else f"rgba(255,150,30,{1 - p:.2f})"
        wrong = (p >= 0.5) != member
        title = f"P({second}) = {p:.0%}; actually {second if member else first}{' (wrong)' if wrong else ''}"
        cells.append(_cell(char, colour, title, "hf-charnn-group" + (" hf-charnn-wrong" if wrong else "")))
    style = "<style>.hf-charnn-wrong{text-decoration:underline wavy red}</style>"
    return f'{style}<div style="font-family:monospace;font-size:18px;line-height:1.9;word-break:break-all">{"".join(cells)}</div>'  # noqa: E501


def labels_html(result: dict) -> str:
    """One bar per label, as long as its probability, most likely first."""
    rows = []
    for name, probability in result["labels"]:
        rows.append(
            '<div class="hf-charnn-label" style="margin:4px 0"><span '
            f'style="display:inline-block;width:12em">{html.escape(name)}</span>'
            f'<span style="display:inline-block;width:{probability * 300:.0f}px;height:1em;background:rgb(40,110,255)"></span> '  # noqa: E501
            f"{probability:.1%}</div>"
        )
    return f'<div style="font-family:monospace;font-size:16px">{"".join(rows)}</div>'


# -- the app -----------------------------------------------------------------------------------------------------------
def build_demo(
    model,
    classifier=None,
    title: str = "Character-level GRU LM",
    symbol_groups: dict[str, str] | None = None,
    context_chars: int = DEFAULT_CONTEXT_CHARS,
):
    """
    The Gradio Blocks app around a loaded LM and/or classifier: Write and Score (an LM), Next symbol (an LM given two
    `symbol_groups` of next symbols, e.g. consonant / vowel: from a classifier of those labels when given, else
    zero-shot from the LM), Classify (any classifier: every label's probability for a typed text).
    """
    import gradio as gr

    if model is None and classifier is None:
        raise ValueError("the demo needs an LM, a classifier, or both")
    for loaded in (model, classifier):
        if loaded is not None:
            loaded.eval()
    if symbol_groups is not None and len(symbol_groups) != 2:
        raise ValueError(f"the Next-symbol tab compares two groups of symbols, not {len(symbol_groups)}")
    groups_usable = (
        model is not None
        and symbol_groups is not None
        and set("".join(symbol_groups.values())) <= set(model.vocabulary.to_id)
    )
    group_classifier = (
        classifier if groups_usable and classifier is not None and serves_groups(classifier, symbol_groups) else None
    )

    def write(prompt, temperature, top_k, length, seed):
        yield from generate_stream(model, prompt, float(temperature), int(top_k), int(length), int(seed))

    def score_tab(text):
        scored = score(model, text)
        if not scored["text"]:
            return scored["note"], ""
        summary = (
            f"**{scored['bpc']:.3f} bits per {scored['unit']}**, perplexity {scored['perplexity']:.2f}, "
            f"{len(scored['bits']):,} {scored['unit']}s. {scored['note']}"
        )
        return summary, heat_map_html(scored)

    def groups_tab(text):
        result = group_predictions(model, text, symbol_groups, group_classifier, context_chars)
        if not result["positions"]:
            return result["note"], ""
        summary = (
            f"**{result['accuracy']:.1f} %** of {len(result['positions'])} symbols predicted right "
            f"(from the {result['source']}). {result['note']}"
        )
        return summary, groups_html(result, symbol_groups)

    def classify_tab(text):
        result = classify(classifier, text)
        if not result["labels"]:
            return result["note"], ""
        name, probability = result["labels"][0]
        return f"**{html.escape(name)}** ({probability:.1%}). {result['note']}", labels_html(result)

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"# {title}\n{_about((model or classifier).vocabulary)}")
        if model is not None:
            _write_tab(gr, model, write)
        # Score, Vowel or consonant, Classify: a text in, a summary and a rendering of it out.
        tabs = []
        if model is not None:
            tabs.append(("Score", "Text to score", "Score", score_tab, "score", "heat-map"))
        if groups_usable:
            tabs.append((" or ".join(symbol_groups).capitalize(), "Text", "Predict", groups_tab, "groups", "group-map"))
        if classifier is not None:
            tabs.append(("Classify", "Text to classify", "Classify", classify_tab, "classify", "label-bars"))
        for tab, label, button, function, name, output_id in tabs:
            with gr.Tab(tab):
                text = gr.Textbox(
                    label=label, lines=4, value="the quick brown fox jumps over the lazy dog", elem_id=f"{name}-input"
                )
                run = gr.Button(button, variant="primary", elem_id=name)
                summary = gr.Markdown(elem_id=f"{name}-summary")
                rendering = gr.HTML(elem_id=output_id)
                run.click(function, [text], [summary, rendering], api_name=name)
    return demo


def _write_tab(gr, model, write):
    """The Write tab: a prompt, sampling settings, and the text streamed in as it is generated."""
    with gr.Tab("Write"):
        prompt = gr.Textbox(label="Prompt", value="the united states ", elem_id="prompt", max_length=MAX_PROMPT_CHARS)
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature (0 = greedy)")
            top_k = gr.Slider(0, model.vocabulary.size, value=5, step=1, label="Top-k (0 = all)")
            length = gr.Number(value=200, precision=0, label=f"Length (at most {MAX_GENERATE_CHARS})")
            seed = gr.Number(value=0, precision=0, label="Seed")
        generate_button = gr.Button("Generate", variant="primary", elem_id="generate")
        generated = gr.Textbox(label="Text", lines=6, elem_id="generated")
        write_note = gr.Markdown(elem_id="write-note")
        generate_button.click(
            write, [prompt, temperature, top_k, length, seed], [generated, write_note], api_name="generate"
        )


def _about(vocabulary) -> str:
    if vocabulary.kind == "text8":
        return "A character-level GRU over the 27 symbols of text8 (a-z and space). Real text is normalized into that form first."  # noqa: E501
    if vocabulary.kind == "bytes":
        return "A byte-level GRU: it reads any text as UTF-8 bytes (figures are per byte)."
    return f"A character-level GRU over the {vocabulary.size} characters of its training text."


def load_models(
    model_id: str | None,
    classifier_id: str | None = None,
    trust_remote_code: bool = True,
    revision: str | None = None,
    classifier_revision: str | None = None,
):
    """
    An LM and/or a classifier (each at its revision: a commit pins weights and code), from folders or Hub repo ids.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    model = classifier = None
    if model_id:
        model = AutoModelForCausalLM.from_pretrained(model_id, trust_remote_code=trust_remote_code, revision=revision)
    if classifier_id:
        classifier = AutoModelForSequenceClassification.from_pretrained(
            classifier_id, trust_remote_code=trust_remote_code, revision=classifier_revision
        )
    return model, classifier
