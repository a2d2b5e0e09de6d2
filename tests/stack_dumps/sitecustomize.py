"""
Imported at start-up by every Python process a test launches with `conftest.launch_env()` (this folder is on their
PYTHONPATH): a process still running after $HF_CHARNN_TEST_STACKS_AFTER seconds prints every thread's Python stack to
stderr and exits, so a hung multi-process run fails its test with the line it hung on instead of a bare timeout.
"""

import faulthandler
import os

_after = os.environ.get("HF_CHARNN_TEST_STACKS_AFTER")
if _after:
    faulthandler.dump_traceback_later(float(_after), exit=True)
