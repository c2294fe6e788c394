"""Stop within seconds of SIGTERM or SIGINT, whatever the extract workers are doing.

A signal becomes ``KeyboardInterrupt`` in the main thread, so the job unwinds normally (fresh file
discarded, locks released). But dlt's extract threads finish their HTTP request and its retries
first, and the thread pool waits for them: up to minutes. So the first signal also starts a timer:
after :data:`GRACE_S` seconds (or at a second signal) the process runs the registered cleanups
(discard this run's fresh copy, leave the "interrupted" side record), stops its worker processes and
exits with 130. The destination is never touched by a stop: the live copy changes only by the final
atomic rename, and the locks die with the process (``fcntl.lockf``, Postgres sessions).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from pipelines.failures import EXIT_INTERRUPTED, INTERRUPTED_MESSAGE

GRACE_S: Final = 3.0
_cleanups: list[Callable[[], None]] = []
_stopping = threading.Event()
_told = threading.Event()


def install(grace_s: float = GRACE_S) -> None:
    """SIGTERM and SIGINT: unwind now, exit 130 after ``grace_s`` at the latest (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        if _stopping.is_set():  # second signal: no more waiting
            hard_stop()
        _stopping.set()
        timer = threading.Timer(grace_s, hard_stop)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def on_hard_stop(cleanup: Callable[[], None]) -> Iterator[None]:
    """Run ``cleanup`` if the process is stopped before the block ends (it must be idempotent)."""
    _cleanups.append(cleanup)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _cleanups.remove(cleanup)


def stopping() -> bool:
    """True once a stop signal arrived."""
    return _stopping.is_set()


def hard_stop() -> None:
    """Cleanups, worker processes stopped, one line, exit 130: never returns."""
    for cleanup in reversed(list(_cleanups)):
        with contextlib.suppress(BaseException):
            cleanup()
    for child in multiprocessing.active_children():  # dlt's normalize pool
        with contextlib.suppress(Exception):
            child.kill()
    tell_interrupted()
    os._exit(EXIT_INTERRUPTED)


def tell_interrupted() -> None:
    """The one "interrupted" line on stderr, once per process."""
    if not _told.is_set():
        _told.set()
        with contextlib.suppress(Exception):
            sys.stderr.write(INTERRUPTED_MESSAGE + "\n")
            sys.stderr.flush()


def exit_process(status: int) -> None:
    """Exit with ``status``; after a stop signal, without waiting for extract threads still
    finishing a request (the interpreter would join them at exit)."""
    if _stopping.is_set():
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
