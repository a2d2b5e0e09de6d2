"""
A real headless Chromium (Debian's chromium + chromedriver, driven by selenium) and a loopback file server: the
browser tests (tests/browser.py) and the benchmark's page timing (benchmark.py) use these.
"""

import contextlib
import functools
import http.server
import shutil
import threading
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)


def find_browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return chromium, driver


def browser_missing() -> str | None:
    """Why no headless Chromium can run here (None: it can)."""
    chromium, driver = find_browser()
    if not (chromium and driver):
        return "no chromium + chromedriver on this machine (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


def headless_chromium(profile: Path):
    """
    A headless Chromium with a fresh profile in `profile` (a first load is cold) and its console log kept
    (`browser.get_log("browser")`); `browser_missing()` says first whether one can run.
    """
    from selenium import webdriver

    chromium, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the output clean
        pass


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve `folder` on 127.0.0.1 as any static host would (.mjs as JavaScript, .wasm as application/wasm)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
