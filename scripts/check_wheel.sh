#!/usr/bin/env bash
# The package as a user installs it: build the wheel, install it with torch into a fresh virtual environment, and,
# from a folder outside the repository with no data flag, train a tiny LM, generate from it and check its model card.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip wheel -q --no-deps -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q torch==2.13.0  # first and pinned: a bare torch pulls a CUDA build
"$work/venv/bin/python" -m pip install -q "$work"/dist/hf_charnn-*.whl

cd "$work"
export PATH="$work/venv/bin:$PATH"
unset HF_CHARNN_DATA PYTHONPATH
hf-charnn --version
hf-charnn train-lm --output-dir x --epochs 1 --hidden-size 32 --no-progress-bar > train.json
text=$(hf-charnn generate x --prompt "the " --max-new-chars 40)
echo "generated: $text"
python - <<'PY'
import json, pathlib
import hf_charnn
assert "site-packages" in hf_charnn.__file__, hf_charnn.__file__  # the installed wheel, not the source tree
results = json.loads(pathlib.Path("x/eval_results.json").read_text())["results"]
card = pathlib.Path("x/README.md").read_text()
assert results["sane"] and results["normalizes"], results
assert "model-index:" in card and f"value: {round(results['perplexity'], 4)}" in card, card[:400]
assert (pathlib.Path("x") / "modeling_char_gru.py").is_file()
page = pathlib.Path(hf_charnn.__file__).parent / "web_page"
assert (page / "index.html").is_file() and (page / "hf_charnn.js").is_file(), "the export --web page is not packaged"
print(f"wheel check passed: {hf_charnn.__file__}, dev perplexity {results['perplexity']:.3f}, model card ok")
PY
[ "${#text}" -ge 44 ] || { echo "generate printed too little: $text" >&2; exit 1; }
