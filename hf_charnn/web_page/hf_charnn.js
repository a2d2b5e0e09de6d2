// hf_charnn in the browser: a character-level GRU exported by `hf-charnn export MODEL --web DIR`, run client-side on
// onnxruntime-web. The page (index.html) uses it; any other page can import it too:
//
//     import { load } from "./hf_charnn.js";
//     const model = await load();                      // reads model.json, model.onnx and onnxruntime-web beside it
//     await model.generate("the ", 200);               // an LM: greedy; {temperature, topK, seed} samples
//     await model.score("some text");                  // an LM: bits per character (per byte for a bytes model)
//     await model.classify("some text");               // a classifier: {label: probability}
//     await model.tag("some text");                    // a tagger: [{text, tag, probability}], one a character
//
// Every method returns a Promise. Text is read in the model's own vocabulary (text8, chars or bytes) with the same
// rules as hf_charnn's tokenizer in Python: a symbol outside it raises UnknownSymbolError with Python's message.

const DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
const SCORE_CHUNK = 512; // symbols a call when scoring: the state carries over, so the sum is exact

export class UnknownSymbolError extends Error {
  constructor(message, position, character) {
    super(message);
    this.name = "UnknownSymbolError";
    this.position = position;
    this.character = character;
  }
}

// Python's repr() of one character, so that messages read as hf_charnn's own.
function pythonRepr(character) {
  const escapes = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };
  if (character in escapes) return `'${escapes[character]}'`;
  if (character === "'") return `"'"`;
  const code = character.codePointAt(0);
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, "0")}'`;
  return `'${character}'`;
}

// Any text in text8 form, as hf_charnn.normalize_text makes it: accents stripped, lowercase, digits spelled out,
// every other run of non-letters one space.
export function normalizeText(raw) {
  return raw
    .normalize("NFKD")
    .replace(/[^\x00-\x7f]/g, "")
    .toLowerCase()
    .replace(/[0-9]/g, (digit) => ` ${DIGIT_NAMES[Number(digit)]} `)
    .replace(/[^a-z]+/g, " ");
}

// The symbols a model reads and predicts (hf_charnn's Vocabulary): text8, chars (optionally with <unk>) or bytes.
export class Vocabulary {
  constructor({ kind, symbols, unk_id: unkId, start_id: startId }) {
    this.kind = kind;
    this.symbols = symbols;
    this.size = symbols.length;
    this.unkId = unkId ?? null;
    this.startId = startId;
    this.toId = new Map(symbols.map((symbol, index) => [symbol, index]));
  }

  get unit() {
    return this.kind === "bytes" ? "byte" : "character";
  }

  // Ids of `text`; positions count characters (code points), as Python's do.
  encode(text) {
    if (this.kind === "bytes") return Array.from(new TextEncoder().encode(text));
    const ids = [];
    let position = 0;
    for (const character of text) {
      let id = this.toId.get(character);
      if (id === undefined) {
        if (this.unkId === null) throw this.unknown(character, position);
        id = this.unkId;
      }
      ids.push(id);
      position += 1;
    }
    return ids;
  }

  unknown(character, position) {
    const what = this.kind === "text8" ? "the 27 text8 symbols (a-z and space)" : `this model's ${this.size} characters`;
    const fix =
      this.kind === "text8"
        ? "normalize the text first (hf_charnn.normalize_text)"
        : "remove it, or train with --unk (or --vocab bytes) to accept any character";
    return new UnknownSymbolError(
      `character ${pythonRepr(character)} at position ${position} is not one of ${what}; ${fix}`,
      position,
      character,
    );
  }

  decode(ids) {
    const kept = ids.filter((id) => id >= 0 && id < this.size);
    if (this.kind === "bytes") return new TextDecoder("utf-8", { fatal: false }).decode(Uint8Array.from(kept));
    return kept.map((id) => this.symbols[id]).join("");
  }

  // Each character of `text` with the index of its first symbol (a bytes model reads a character as 1-4 symbols).
  units(text) {
    const units = [];
    let index = 0;
    for (const character of text) {
      units.push({ text: character, first: index });
      index += this.kind === "bytes" ? new TextEncoder().encode(character).length : 1;
    }
    return units;
  }
}

// A seeded generator of floats in [0, 1) (mulberry32): the same seed gives the same sample in every browser.
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function logSoftmax(row) {
  let max = -Infinity;
  for (const value of row) max = Math.max(max, value);
  let total = 0;
  for (const value of row) total += Math.exp(value - max);
  const log = Math.log(total) + max;
  return Array.from(row, (value) => value - log);
}

function argmax(row) {
  let best = 0; // the first of equal maxima, as torch.argmax
  for (let index = 1; index < row.length; index += 1) if (row[index] > row[best]) best = index;
  return best;
}

function pick(row, temperature, topK, random) {
  if (!temperature || temperature <= 0) return argmax(row);
  const scores = Array.from(row, (value) => value / temperature);
  if (topK && topK > 0 && topK < scores.length) {
    const cutoff = [...scores].sort((a, b) => b - a)[topK - 1];
    for (let index = 0; index < scores.length; index += 1) if (scores[index] < cutoff) scores[index] = -Infinity;
  }
  const probabilities = logSoftmax(scores).map(Math.exp);
  let threshold = random();
  for (let index = 0; index < probabilities.length; index += 1) {
    threshold -= probabilities[index];
    if (threshold < 0) return index;
  }
  return argmax(scores); // rounding left a sliver: the likeliest
}

export class CharModel {
  constructor(site, ort, session) {
    this.site = site;
    this.kind = site.kind;
    this.labels = site.labels || [];
    this.vocabulary = new Vocabulary(site.vocabulary);
    this.ort = ort;
    this.session = session;
  }

  require(kind, method) {
    if (this.kind !== kind) throw new Error(`${method}() needs a ${kind === "lm" ? "language model" : kind}; this model is a ${this.kind}`);
  }

  // An LM's step graph on `ids` from `state` (null: the zero state): {logits: rows of the vocabulary, state}.
  async step(ids, state) {
    const { ort, site } = this;
    const input = new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const start = state ?? new ort.Tensor("float32", new Float32Array(site.layers * site.hidden), [site.layers, 1, site.hidden]);
    const outputs = await this.session.run({ input_ids: input, state: start });
    const size = outputs.logits.dims[2];
    const rows = [];
    for (let index = 0; index < ids.length; index += 1) rows.push(outputs.logits.data.subarray(index * size, (index + 1) * size));
    return { logits: rows, state: outputs.state_out };
  }

  // `maxNewChars` new symbols after `prompt`, one GRU step each (the state carried): greedy unless a temperature is
  // given; `onText(textSoFar)` is called after each. An empty prompt starts from the start symbol (a space).
  async generate(prompt, maxNewChars = 200, { temperature = 0, topK = 0, seed = 0, onText = null } = {}) {
    this.require("lm", "generate");
    let ids = this.vocabulary.encode(prompt);
    if (ids.length === 0) ids = [this.vocabulary.startId];
    const random = seededRandom(seed);
    let { logits, state } = await this.step(ids, null);
    const generated = [];
    for (let count = 0; count < maxNewChars; count += 1) {
      const next = pick(logits[logits.length - 1], temperature, topK, random);
      generated.push(next);
      if (onText) onText(this.vocabulary.decode(generated));
      if (count + 1 < maxNewChars) ({ logits, state } = await this.step([next], state));
    }
    return this.vocabulary.decode(generated);
  }

  // Each symbol's surprisal (bits) after the start symbol, as hf-charnn evaluate-lm scores a text:
  // {bits: [...], alternatives: each position's 5 likeliest symbols, bitsPerSymbol, unit, units: each character with
  // its first symbol's index}.
  async surprisal(text) {
    this.require("lm", "score");
    const targets = this.vocabulary.encode(text);
    if (targets.length === 0) return { bits: [], alternatives: [], bitsPerSymbol: NaN, unit: this.vocabulary.unit, units: [] };
    const inputs = [this.vocabulary.startId, ...targets.slice(0, -1)];
    const bits = [];
    const alternatives = [];
    let state = null;
    for (let start = 0; start < inputs.length; start += SCORE_CHUNK) {
      const chunk = inputs.slice(start, start + SCORE_CHUNK);
      const result = await this.step(chunk, state);
      state = result.state;
      result.logits.forEach((row, offset) => {
        const logProbabilities = logSoftmax(row);
        bits.push(-logProbabilities[targets[start + offset]] / Math.LN2);
        alternatives.push(this.likeliest(logProbabilities, 5));
      });
    }
    const bitsPerSymbol = bits.length ? bits.reduce((a, b) => a + b, 0) / bits.length : NaN;
    return { bits, alternatives, bitsPerSymbol, unit: this.vocabulary.unit, units: this.vocabulary.units(text) };
  }

  // The `count` likeliest symbols of a row of log-probabilities: [{symbol, probability}], likeliest first.
  likeliest(logProbabilities, count) {
    return Array.from(logProbabilities.keys())
      .sort((a, b) => logProbabilities[b] - logProbabilities[a])
      .slice(0, count)
      .map((id) => ({ symbol: this.vocabulary.symbols[id], probability: Math.exp(logProbabilities[id]) }));
  }

  // Bits per character of `text` (per byte for a bytes model), as hf-charnn evaluate-lm gives it.
  async score(text) {
    return (await this.surprisal(text)).bitsPerSymbol;
  }

  // A classifier's or a tagger's logits for one text; a classifier trained on texts cut to `max_length` symbols reads
  // the same first symbols (as its evaluation did, and pipeline(..., truncation=True)).
  async padded(text) {
    const { ort } = this;
    const ids = this.vocabulary.encode(text).slice(0, this.site.max_length ?? undefined);
    if (ids.length === 0) throw new Error("nothing to read: the text is empty");
    const shape = [1, ids.length];
    const outputs = await this.session.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), shape),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(ids.length).fill(1n), shape),
    });
    return { ids, logits: outputs.logits };
  }

  // Every label's probability: a softmax over the labels, or (multi-label) each label's sigmoid.
  async classify(text) {
    this.require("classifier", "classify");
    const logits = Array.from((await this.padded(text)).logits.data);
    const probabilities = this.site.multi_label
      ? logits.map((value) => 1 / (1 + Math.exp(-value)))
      : logSoftmax(logits).map(Math.exp);
    return Object.fromEntries(this.labels.map((label, index) => [label, probabilities[index]]));
  }

  // The labels a classifier predicts: the likeliest, or (multi-label) each over its threshold.
  predicted(probabilities) {
    const values = this.labels.map((label) => probabilities[label]);
    if (!this.site.multi_label) return [this.labels[argmax(values)]];
    const thresholds = this.site.thresholds || this.labels.map(() => 0.5);
    return this.labels.filter((label, index) => values[index] >= thresholds[index]);
  }

  // A tagger's tag of each character (a bytes model: its first byte's), with the tag's probability.
  async tag(text) {
    this.require("tagger", "tag");
    const { logits } = await this.padded(text);
    const size = logits.dims[2];
    return this.vocabulary.units(text).map(({ text: character, first }) => {
      const probabilities = logSoftmax(logits.data.subarray(first * size, (first + 1) * size)).map(Math.exp);
      const best = argmax(probabilities);
      return { text: character, tag: this.labels[best], probability: probabilities[best] };
    });
  }
}

// The exported model in the folder `base` (default: this module's): model.json, the ONNX graph, onnxruntime-web.
export async function load(base = new URL("./", import.meta.url)) {
  const response = await fetch(new URL("model.json", base));
  if (!response.ok) throw new Error(`cannot read model.json at ${new URL("model.json", base)} (${response.status})`);
  const site = await response.json();
  const ort = await import(new URL(site.onnxruntime.module, base).href);
  // The bundle holds onnxruntime's JS glue; only its binary is fetched, from where model.json says.
  ort.env.wasm.wasmPaths = { wasm: new URL(site.onnxruntime.wasm, base).href };
  ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no wasm threads
  const session = await ort.InferenceSession.create(new URL(site.model, base).href, { executionProviders: ["wasm"] });
  return new CharModel(site, ort, session);
}
