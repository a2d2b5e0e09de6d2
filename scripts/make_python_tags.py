#!/usr/bin/env python
"""
A character tagging set with labels from a real parser: Python source, each character tagged by the token it belongs
to (Python's own `tokenize`), written as the JSON lines with spans that `hf-charnn train-tagger` reads.

    python scripts/make_python_tags.py OUT_DIR [--source DIR] [--characters 300000]
        # OUT_DIR/python-tags-{train,validation,test}.jsonl: {"text": ..., "spans": [[start, end, label], ...]}

A row is a run of whole lines of one file (up to ROW_CHARACTERS characters, newlines kept); its spans are the tokens
of the kinds below that lie in it (a string or comment split across rows is cut at the row's edges). The labels are
`KEYWORD`, `NAME` (any other identifier), `STRING`, `NUMBER` and `COMMENT`; operators, indentation and the rest are
`O`. Files, not rows, are split 80 / 10 / 10 by a fixed seed, so no file has rows on two sides; the default source
is the standard library of the Python running the script.
"""

import argparse
import io
import json
import keyword
import random
import sysconfig
import token
import tokenize
from pathlib import Path

SEED = 1234
ROW_CHARACTERS = 256
KINDS = {token.STRING: "STRING", token.NUMBER: "NUMBER", tokenize.COMMENT: "COMMENT"}


def token_spans(source: str) -> list[tuple[int, int, str]]:
    """(start, end, label) offsets into `source` of its tokens of the kinds tagged."""
    starts = [0]  # offset of each line's first character (lines as tokenize reads them: cut at "\n" only)
    for line in io.StringIO(source).readlines():
        starts.append(starts[-1] + len(line))
    spans = []
    for found in tokenize.generate_tokens(io.StringIO(source).readline):
        if found.type == token.NAME:
            label = "KEYWORD" if keyword.iskeyword(found.string) else "NAME"
        else:
            label = KINDS.get(found.type)
        if label is not None:
            (start_row, start_col), (end_row, end_col) = found.start, found.end
            spans.append((starts[start_row - 1] + start_col, starts[end_row - 1] + end_col, label))
    return spans


def file_rows(source: str) -> list[dict]:
    """The file cut into rows of whole lines, each with the spans (cut to it) that lie in it."""
    spans, rows, start = token_spans(source), [], 0
    offset = 0
    for line in io.StringIO(source).readlines():
        if offset + len(line) - start > ROW_CHARACTERS and offset > start:
            rows.append((start, offset))
            start = offset
        offset += len(line)
    rows.append((start, offset))
    out = []
    for first, last in rows:
        text = source[first:last].rstrip("\n")
        if len(text) == 0 or len(text) > ROW_CHARACTERS:  # a single line longer than a row: left out
            continue
        cut = [
            [max(begin, first) - first, min(end, first + len(text)) - first, label]
            for begin, end, label in spans
            if begin < first + len(text) and end > first
        ]
        out.append({"text": text, "spans": cut})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--characters", type=int, default=300_000, help="training characters (about)")
    args = parser.parse_args()
    files = sorted(args.source.glob("*.py"))
    random.Random(SEED).shuffle(files)
    budget = {"train": args.characters, "validation": args.characters // 8, "test": args.characters // 8}
    written = {split: [] for split in budget}
    characters = dict.fromkeys(budget, 0)
    for index, path in enumerate(files):
        split = "validation" if index % 10 == 8 else "test" if index % 10 == 9 else "train"  # 80 / 10 / 10
        if characters[split] >= budget[split]:
            continue
        try:
            rows = file_rows(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, SyntaxError, tokenize.TokenError):
            continue  # not parseable by this Python's tokenizer: skipped
        written[split] += rows
        characters[split] += sum(len(row["text"]) for row in rows)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in written.items():
        with open(args.out_dir / f"python-tags-{split}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows):,} rows, {characters[split]:,} characters")


if __name__ == "__main__":
    main()
