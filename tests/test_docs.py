"""
Docs that cannot drift: every ```bash and ```python block of README.md and docs/*.md runs here, in order, in one
folder per page (tiny data: $HF_CHARNN_DATA points at a slice of the exercise files), or is marked just above it with
`<!-- not run: the reason -->`.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?P<mark><!-- not run: (?P<reason>[^>]*?) -->\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S)
SHAKESPEARE = "ROMEO:\nBut soft, what light through yonder window breaks?\nJULIET:\nAy me! O Romeo, Romeo!\n\n" * 40
LABELS = [
    ("Who sits there?", "question"),
    ("A CAT SAT ON THE MAT!", "shout"),
    ("the cat sat on the mat.", "plain"),
    ("Why is it so?", "question"),
    ("STOP THAT AT ONCE!", "shout"),
    ("it rains today.", "plain"),
]


def blocks(page: Path) -> list[dict]:
    return [match.groupdict() for match in BLOCK.finditer(page.read_text())]


def test_every_block_is_run_or_says_why_not():
    for page in PAGES:
        for block in blocks(page):
            if block["mark"]:
                assert len(block["reason"].strip()) > 10, f"{page.name}: a not-run mark needs its reason"


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if any(not b["mark"] for b in blocks(p))], ids=lambda p: p.name)
def test_the_blocks_of_a_page_run(page, tmp_path, tiny_data_dir):
    (tmp_path / "my.txt").write_text(SHAKESPEARE)
    for name, repeats in (("train.csv", 8), ("val.csv", 2)):
        rows = "".join(f'"{text}",{label}\n' for text, label in LABELS * repeats)
        (tmp_path / name).write_text("sentence,kind\n" + rows)
    env = {**os.environ, "HF_CHARNN_DATA": str(tiny_data_dir), "HF_HOME": str(tmp_path / "hf"), "PYTHONUNBUFFERED": "1"}
    for block in blocks(page):
        if block["mark"]:
            continue
        runner = ["bash", "-euo", "pipefail", "-c"] if block["lang"] == "bash" else [sys.executable, "-c"]
        result = subprocess.run(
            [*runner, block["code"]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        output = f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        assert result.returncode == 0, f"{page.name} block:\n{block['code']}\n{output}"


def test_the_architecture_page_names_every_module_and_only_those():
    tree = (ROOT / "docs" / "architecture.md").read_text().split("```")[1]
    package = ROOT / "hf_charnn"
    modules = sorted(package.rglob("*.py"))
    named = set(re.findall(r"[\w]+\.py", tree))
    for path in modules:
        assert path.name in named, f"docs/architecture.md does not name {path.relative_to(ROOT)}"
        for folder in path.relative_to(package).parts[:-1]:
            assert f"{folder}/" in tree, f"docs/architecture.md does not show the folder {folder}/"
    assert named <= {path.name for path in modules}, named - {path.name for path in modules}
