"""The browser tests' Chromium and file server (scripts/headless_browser.py), skipped where none can run."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import headless_browser  # noqa: E402
from headless_browser import serve_folder  # noqa: E402, F401


def headless_chromium(profile: Path):
    """A headless Chromium (its console log kept); skips where there is none."""
    why = headless_browser.browser_missing()
    if why:
        pytest.skip(why)
    return headless_browser.headless_chromium(profile)
