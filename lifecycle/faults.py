"""Named points where the crash and race tests stop a process, by environment variable.

Destructive work must survive kill -9 at any step, and scans and requests must never miss
each other: the tests prove both by killing a child process at a named point
(``LIFECYCLE_CRASH_AT``) or holding it there until a file is removed (``LIFECYCLE_PAUSE_AT``
with ``LIFECYCLE_PAUSE_FILE``). Unset, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

CRASH_ENV = "LIFECYCLE_CRASH_AT"
PAUSE_ENV = "LIFECYCLE_PAUSE_AT"
PAUSE_FILE_ENV = "LIFECYCLE_PAUSE_FILE"
PAUSE_LIMIT_SECONDS = 300.0


def crashpoint(name: str) -> None:
    """Die here, as kill -9 would, when LIFECYCLE_CRASH_AT names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pausepoint(name: str) -> None:
    """When LIFECYCLE_PAUSE_AT names this point: write '<pause file>.reached' and wait while the
    pause file exists (at most PAUSE_LIMIT_SECONDS)."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    hold = Path(os.environ[PAUSE_FILE_ENV])
    Path(f"{hold}.reached").write_text(name)
    deadline = time.monotonic() + PAUSE_LIMIT_SECONDS
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
