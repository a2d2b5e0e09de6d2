#!/usr/bin/env python
"""
Build the labeled benchmark suite: ten classification sets from sources reachable on a Debian machine with PyPI, each
split by a fixed seed, in two halves fixed before any recipe rule was chosen.

    apt-get install -y fortunes fortunes-min wamerican wngerman wfrench witalian wspanish wdutch wportuguese wswedish
    pip install wordfreq
    python scripts/make_labeled_suite.py OUT_DIR [--sets NAME ...]
        # OUT_DIR/NAME/NAME-{train,validation,test}.csv (columns text, label) and OUT_DIR/NAME/README.md

The **tuning half** chooses the recipe's rules (architecture, n-gram features, sizes, class weighting, the metric
that picks the best step, time); the **confirming half** is only reported. `HALVES` below is the split, written
down before the first measurement (docs/training.md records every rule's measurements on the tuning half).

| set | source | shape |
|---|---|---|
| words | Debian word lists (`make_words_dataset.py`) | 8 Latin-script languages, single words, 8:1 |
| cyrillic-words | wordfreq's word lists | bg / mk / ru / uk words: a Cyrillic script, 4 labels |
| package-descriptions | Debian's package index (apt-cache dumpavail) | description -> section, 50 labels |
| brackets | generator | is a string of ()[]{} balanced? the order of characters matters |
| code-languages | ../shared/corpora (copied) | code snippet -> language, 5 labels |
| fortunes | Debian's fortunes | a fortune -> its file: prose up to 1,000+ characters, ~35 labels |
| package-names | Debian's package index | package name -> section: short, ~50 labels, 100:1+ |
| unicode-names | Python's unicodedata | a character's name -> general category: 100:1+ |
| first-equals-last | generator | does a string end with its first letter? order matters; 2k rows |
| arabic-script-words | wordfreq's word lists | ar / fa / ur words: an Arabic script, 3 labels |
| package-tags | Debian's package index (debtags) | short description -> its tags: **multi-label**, ~30 labels |

`package-tags` is multi-label (a text's labels joined by `|` in its label cell; `--label-separator "|"`): it plays no
part in choosing the single-label recipe, and its own rule (each label's threshold tuned on validation) was fixed
before it was first run; `scripts/multilabel_benchmark.py` scores it. Rows whose text is empty or appears under two
labels are dropped; sets from the package index are split by source
package (so `libfoo1` and `libfoo-dev` never sit on both sides). Nothing here is committed: the files are rebuilt.
"""

import argparse
import csv
import hashlib
import random
import re
import shutil
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_words_dataset import package_version  # noqa: E402

SEED = 1234
HALVES = {
    "tuning": ["words", "cyrillic-words", "package-descriptions", "brackets", "code-languages"],
    "confirming": ["fortunes", "package-names", "unicode-names", "first-equals-last", "arabic-script-words"],
}
MULTI_LABEL_SETS = ["package-tags"]  # (label cells joined by LABEL_SEPARATOR; in no half: no single-label rule)
LABEL_SEPARATOR = "|"
FORTUNE_DIR = Path("/usr/share/games/fortunes")
SHARED_CODE = Path(__file__).resolve().parents[2] / "shared" / "corpora"


# -- splitting and writing -------------------------------------------------------------------------------------------
def clean(rows):
    """Rows with a non-empty text under one label only (a text under two labels is ambiguous: dropped)."""
    labels = defaultdict(set)
    for text, label in rows:
        if text.strip():
            labels[text].add(label)
    seen, kept = set(), []
    for text, label in rows:
        if text.strip() and len(labels[text]) == 1 and text not in seen:
            seen.add(text)
            kept.append((text, label))
    return kept


def split_rows(rows, groups=None, shares=(0.8, 0.1), seed=SEED):
    """Train / validation / test by a seeded shuffle of rows (or of `groups`, one per row, kept whole)."""
    rng = random.Random(seed)
    keys = sorted(set(groups)) if groups is not None else list(range(len(rows)))
    rng.shuffle(keys)
    cut_train, cut_validation = int(shares[0] * len(keys)), int((shares[0] + shares[1]) * len(keys))
    where = {
        key: "train" if i < cut_train else "validation" if i < cut_validation else "test" for i, key in enumerate(keys)
    }
    splits = {"train": [], "validation": [], "test": []}
    for index, row in enumerate(rows):
        splits[where[groups[index] if groups is not None else index]].append(row)
    for split in splits.values():
        rng.shuffle(split)
    return splits


def data_digest(files: dict) -> str:
    """
    The first 12 hex digits of the SHA-256 of a set's train, validation and test files (`{split: path}`), read in that
    order: which data a figure was measured on (`labels_benchmark.py` prints it in each row).
    """
    digest = hashlib.sha256()
    for split in ("train", "validation", "test"):
        digest.update(Path(files[split]).read_bytes())
    return digest.hexdigest()[:12]


def apt_snapshot() -> str:
    """The apt lists `apt-cache dumpavail` reads, each with its Release file's date: the index changes with them."""
    dated = []
    for release in sorted(Path("/var/lib/apt/lists").glob("*InRelease")):
        lines = release.read_text(errors="replace").splitlines()
        date = next((line[5:].strip() for line in lines if line.startswith("Date:")), "?")
        dated.append(f"{release.name.split('_dists_')[-1].removesuffix('_InRelease')} ({date})")
    return "The apt lists read: " + (", ".join(dated) or "none found") + "."


def write_set(out: Path, name: str, splits: dict, about: str):
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        with open(folder / f"{name}-{split}.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    train = splits["train"]
    counts = Counter(part for _, label in train for part in label.split(LABEL_SEPARATOR))
    lengths = sorted(len(text) for text, _ in train)
    half = next((f"{half} half" for half, names in HALVES.items() if name in names), "multi-label, in no half")
    digest = data_digest({split: folder / f"{name}-{split}.csv" for split in splits})
    summary = (
        f"{len(train):,} / {len(splits['validation']):,} / {len(splits['test']):,} rows, {len(counts)} labels "
        f"(largest / smallest {max(counts.values()) / min(counts.values()):.0f}), median length "
        f"{lengths[len(lengths) // 2]}, longest {lengths[-1]}; {half}; data {digest}"
    )
    (folder / "README.md").write_text(f"# {name} (scripts/make_labeled_suite.py)\n\n{about}\n\n{summary}\n")
    print(f"{name}: {summary}")


# -- the sets ----------------------------------------------------------------------------------------------------------
def words(out: Path):
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("make_words_dataset.py")), str(out / "words")], check=True
    )


def _wordfreq_set(out: Path, name: str, languages: list, per_language: int):
    from importlib.metadata import version

    import wordfreq

    lists = {language: wordfreq.top_n_list(language, 3 * per_language) for language in languages}
    seen = Counter(word for words in lists.values() for word in set(words))
    rows = []
    for language in languages:
        kept = [w for w in lists[language] if seen[w] == 1 and len(w) >= 3 and not any(c.isdigit() for c in w)]
        rows += [(word, language) for word in kept[:per_language]]
    about = (
        f"The {per_language:,} most frequent words of {', '.join(languages)} from wordfreq {version('wordfreq')} "
        "(3+ letters, no digits, words found in two lists dropped), split 80 / 10 / 10."
    )
    write_set(out, name, split_rows(clean(rows)), about)


def cyrillic_words(out: Path):
    _wordfreq_set(out, "cyrillic-words", ["bg", "mk", "ru", "uk"], 4000)


def arabic_script_words(out: Path):
    _wordfreq_set(out, "arabic-script-words", ["ar", "fa", "ur"], 5000)


def _package_index():
    """(package, source, section, description) of every package in the machine's apt lists."""
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    for stanza in text.split("\n\n"):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields and "Section" in fields:
            source = fields.get("Source", fields["Package"]).split()[0]
            section = fields["Section"].split("/")[-1]
            description = fields.get("Description", "")
            yield fields["Package"], source, section, description, fields.get("Tag", "")


def _description_text(description: str) -> str:
    first, *rest = description.split("\n")
    lines = [first] + [" " if line.strip() == "." else line.strip() for line in rest]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def _index_set(out: Path, name: str, text_of, min_rows: int, about: str, keep_share: float = 1.0):
    entries = list(_package_index())
    if keep_share < 1.0:  # a seeded share of the source packages, whole
        sources = sorted({source for _, source, _, _, _ in entries})
        kept_sources = set(random.Random(SEED).sample(sources, int(keep_share * len(sources))))
        entries = [entry for entry in entries if entry[1] in kept_sources]
    counts = Counter(section for _, _, section, _, _ in entries)
    rows, groups = [], []
    for package, source, section, description, _ in entries:
        if counts[section] >= min_rows:
            rows.append((text_of(package, description), section))
            groups.append(source)
    kept = set(clean(rows))
    pairs = [(row, group) for row, group in zip(rows, groups) if row in kept]
    kept_once, unique = set(), []
    for row, group in pairs:
        if row not in kept_once:
            kept_once.add(row)
            unique.append((row, group))
    splits = split_rows([row for row, _ in unique], [group for _, group in unique])
    write_set(out, name, splits, about)


def package_descriptions(out: Path):
    _index_set(
        out,
        "package-descriptions",
        lambda package, description: _description_text(description),
        30,
        "Debian bookworm's package index (`apt-cache dumpavail`): a package's description (short and long, joined) -> "
        "its section, sections with 30+ packages, the packages of a seeded 40 % of the source packages; split by "
        "source package. " + apt_snapshot(),
        keep_share=0.4,
    )


def package_names(out: Path):
    _index_set(
        out,
        "package-names",
        lambda package, description: package,
        30,
        "Debian bookworm's package index (`apt-cache dumpavail`): a package's name -> its section, sections with 30+ "
        "packages; split by source package. " + apt_snapshot(),
    )


def package_tags(out: Path, min_packages: int = 400):
    """
    A package's short description -> its debtags (multi-label): the tags of 400+ packages, less the `TODO` ones and
    the `role::program` most packages carry; packages with none of them are left out (a text needs a label).
    """
    entries = [entry for entry in _package_index() if entry[4]]
    tags_of = [
        sorted({tag.strip() for tag in tags.replace("\n", " ").split(",") if tag.strip()}) for *_, tags in entries
    ]
    counts = Counter(tag for tags in tags_of for tag in tags)
    kept = {
        tag
        for tag, count in counts.items()
        if count >= min_packages and not tag.endswith("::TODO") and tag != "role::program"
    }
    seen, rows, groups = set(), [], []
    for (_, source, _, description, _), tags in zip(entries, tags_of):
        text = description.split("\n")[0].strip()
        labels = [tag for tag in tags if tag in kept]
        if text and labels and text not in seen:  # (a short description shared by two packages: the first kept)
            seen.add(text)
            rows.append((text, LABEL_SEPARATOR.join(labels)))
            groups.append(source)
    write_set(
        out,
        "package-tags",
        split_rows(rows, groups),
        f"Debian bookworm's package index (`apt-cache dumpavail`): a package's short description -> its debtags "
        f"(multi-label, joined by {LABEL_SEPARATOR!r}), the tags of {min_packages}+ packages less `*::TODO` and "
        "`role::program`; split by source package. " + apt_snapshot(),
    )


def fortunes(out: Path):
    rows = []
    for path in sorted(FORTUNE_DIR.glob("*.u8")):
        entries = [e.strip() for e in path.read_text(encoding="utf-8", errors="replace").split("\n%\n")]
        entries = [re.sub(r"[ \t]+", " ", e) for e in entries if e and e != "%"]
        if len(entries) >= 50:
            rows += [(entry, path.stem) for entry in entries]
    about = (
        f"Debian's fortunes {package_version('fortunes')} and fortunes-min: a fortune (newlines kept) -> the file it "
        "comes from, files with 50+ fortunes, split 80 / 10 / 10."
    )
    write_set(out, "fortunes", split_rows(clean(rows)), about)


def unicode_names(out: Path):
    rows = []
    for code in range(0x110000):
        name = unicodedata.name(chr(code), "")
        # Names made from the code point itself (ideographs, Hangul syllables, ...) say nothing but their prefix.
        if not name or re.search(r"-[0-9A-F]{4,6}$", name) or name.startswith("HANGUL SYLLABLE"):
            continue
        rows.append((name.lower(), unicodedata.category(chr(code))))
    counts = Counter(label for _, label in rows)
    rows = [row for row in rows if counts[row[1]] >= 30]
    about = (
        f"Python {sys.version.split()[0]}'s unicodedata (Unicode {unicodedata.unidata_version}): a character's name, "
        "lowercased -> its general category (Lu, Ll, So, Mn, ...), categories with 30+ names; names that end in "
        "their code point left out."
    )
    write_set(out, "unicode-names", split_rows(clean(rows)), about)


def brackets(out: Path):
    rng = random.Random(SEED)
    pairs = ["()", "[]", "{}"]

    def balanced(length):
        stack, text = [], []
        while len(text) + len(stack) < length:
            if stack and (rng.random() < 0.45 or len(text) + len(stack) + 2 > length):
                text.append(stack.pop())
            else:
                opening, closing = rng.choice(pairs)
                text.append(opening)
                stack.append(closing)
        return "".join(text + stack[::-1])

    rows = []
    while len(rows) < 12000:
        text = balanced(2 * rng.randint(3, 30))
        if len(rows) % 2:  # unbalanced: two characters swapped, or one closing bracket replaced: same n-grams, mostly
            chars = list(text)
            if rng.random() < 0.5:
                i, j = sorted(rng.sample(range(len(chars)), 2))
                chars[i], chars[j] = chars[j], chars[i]
            else:
                i = rng.randrange(len(chars))
                chars[i] = rng.choice([c for c in "()[]{}" if c != chars[i]])
            text = "".join(chars)
        rows.append((text, "balanced" if is_balanced(text) else "unbalanced"))
    write_set(
        out,
        "brackets",
        split_rows(clean(rows)),
        f"Generated (seed {SEED}): strings of ()[]{{}} of 6-60 characters, half balanced, half one swap or one "
        "replaced bracket away from balanced (labelled by a checker).",
    )


def is_balanced(text: str) -> bool:
    stack = []
    for char in text:
        if char in "([{":
            stack.append(")]}"["([{".index(char)])
        elif not stack or stack.pop() != char:
            return False
    return not stack


def first_equals_last(out: Path):
    rng = random.Random(SEED)
    rows = []
    while len(rows) < 2500:
        length = rng.randint(5, 40)
        text = [rng.choice("abcde") for _ in range(length)]
        if len(rows) % 2:
            text[-1] = text[0]
        rows.append(("".join(text), "same" if text[0] == text[-1] else "different"))
    write_set(
        out,
        "first-equals-last",
        split_rows(clean(rows)),
        f"Generated (seed {SEED}): strings of a-e of 5-40 characters -> whether the last equals the first.",
    )


def code_languages(out: Path):
    folder = out / "code-languages"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        source = SHARED_CODE / f"code-languages-{split}.csv"
        if not source.is_file():
            print(f"code-languages: {source} missing (it sits in ../shared/corpora): skipped")
            return
        shutil.copyfile(source, folder / f"code-languages-{split}.csv")
    print("code-languages: copied from ../shared/corpora; tuning half")


SETS = {
    "words": words,
    "cyrillic-words": cyrillic_words,
    "package-descriptions": package_descriptions,
    "brackets": brackets,
    "code-languages": code_languages,
    "fortunes": fortunes,
    "package-names": package_names,
    "unicode-names": unicode_names,
    "first-equals-last": first_equals_last,
    "arabic-script-words": arabic_script_words,
    "package-tags": package_tags,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    args = parser.parse_args()
    out = Path(args.out_dir)
    for name in args.sets:
        SETS[name](out)


if __name__ == "__main__":
    main()
