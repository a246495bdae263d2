"""The login server's worker module: the guard that waits at exit for a save of credentials in flight."""

from __future__ import annotations

import os
import subprocess
import sys

#: Imports only the worker module, recording what registers with atexit and in what order.
ATEXIT_ORDER = """
import atexit
registered = []
real_register = atexit.register

def register(func, *args, **kwargs):
    registered.append(func)
    return real_register(func, *args, **kwargs)

atexit.register = register
from codex_login._worker import SAVES_IN_FLIGHT
import logging  # after the worker module: whatever imported logging first did so on its own
print(registered.index(logging.shutdown) < registered.index(SAVES_IN_FLIGHT.wait))
"""


def test_a_save_in_flight_is_waited_for_before_logging_shuts_down() -> None:
    """atexit runs its functions last registered first: the wait for a save interrupted by Ctrl-C must be
    registered after logging's shutdown, or the save would finish with the log's handlers already closed. The
    worker module alone (nothing else of the package importing logging first) keeps that order."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-c", ATEXIT_ORDER], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "True"
