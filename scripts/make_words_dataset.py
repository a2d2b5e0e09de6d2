"""
Build the words-to-language benchmark: single words labeled by language, from Debian's word lists.

    apt-get install -y wamerican wngerman wfrench witalian wspanish wdutch wportuguese wswedish
    python scripts/make_words_dataset.py OUT_DIR          # OUT_DIR/words-{train,validation,test}.csv

A short-text classification task of unequal label sizes (as users' own labels often are): each language keeps a
different number of words (`WORDS_PER_LANGUAGE`), drawn with a fixed seed from its list after dropping possessives,
words shorter than 3 letters and every word found in more than one list (its language is ambiguous). Each language's
words are split 80 / 10 / 10 into train / validation / test by the same seed. The result depends only on the lists'
contents (their Debian package versions are recorded in OUT_DIR/words-README.md).
"""

import argparse
import csv
import random
import subprocess
import unicodedata
from collections import Counter
from pathlib import Path

DICT_DIR = Path("/usr/share/dict")
# language: (word list, Debian package, words kept). Unequal sizes on purpose: largest / smallest = 8.
WORDS_PER_LANGUAGE = {
    "english": ("american-english", "wamerican", 8000),
    "german": ("ngerman", "wngerman", 8000),
    "french": ("french", "wfrench", 6000),
    "spanish": ("spanish", "wspanish", 4000),
    "italian": ("italian", "witalian", 3000),
    "dutch": ("dutch", "wdutch", 2000),
    "portuguese": ("portuguese", "wportuguese", 1500),
    "swedish": ("swedish", "wswedish", 1000),
}
SEED = 1234


def read_words(path: Path) -> set[str]:
    words = set()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # some Debian lists are Latin-1
        text = raw.decode("latin-1")
    for line in text.splitlines():
        word = unicodedata.normalize("NFC", line.strip())
        if len(word) >= 3 and "'" not in word and " " not in word:
            words.add(word)
    return words


def package_version(package: str) -> str:
    try:
        return subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    args = parser.parse_args()
    lists = {}
    for language, (file_name, package, _) in WORDS_PER_LANGUAGE.items():
        path = DICT_DIR / file_name
        if not path.is_file():
            raise SystemExit(f"{path}: missing; install it with `apt-get install -y {package}`")
        lists[language] = read_words(path)
    seen = Counter(word for words in lists.values() for word in words)
    rng = random.Random(SEED)
    splits = {"train": [], "validation": [], "test": []}
    for language, (_, _, kept) in WORDS_PER_LANGUAGE.items():
        words = sorted(word for word in lists[language] if seen[word] == 1)
        rng.shuffle(words)
        words = words[:kept]
        cut_train, cut_validation = int(0.8 * len(words)), int(0.9 * len(words))
        splits["train"] += [(word, language) for word in words[:cut_train]]
        splits["validation"] += [(word, language) for word in words[cut_train:cut_validation]]
        splits["test"] += [(word, language) for word in words[cut_validation:]]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        rng.shuffle(rows)
        with open(out / f"words-{split}.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(f"{out / f'words-{split}.csv'}: {len(rows):,} words")
    versions = "\n".join(
        f"- {language}: {file_name} from {package} {package_version(package)}, {kept:,} words"
        for language, (file_name, package, kept) in WORDS_PER_LANGUAGE.items()
    )
    (out / "words-README.md").write_text(
        "# words-to-language (made by hf_charnn's scripts/make_words_dataset.py)\n\n" + versions + "\n"
    )


if __name__ == "__main__":
    main()
