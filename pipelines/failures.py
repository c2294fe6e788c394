"""One line that names the real cause of a failure, and the exit status that goes with it.

dlt wraps every step's failure (``PipelineStepFailed``), process pools add ``_RemoteTraceback``
text, and the last exception of a chain is often incidental (a ``StopIteration`` inside a parser, an
``AttributeError`` on a ``None`` body). So the chain is searched for the most telling cause, in
this order: our own errors (lock held, Streak API, configuration), a full disk, other operating
system errors, value errors; only then the innermost exception, named by its type. Tracebacks go to
the log file (see ``cli.py``), never to stderr.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONFIG: Final = 3
EXIT_LOCKED: Final = 75
EXIT_INTERRUPTED: Final = 130

EXIT_STATUSES: Final[dict[int, str]] = {
    EXIT_OK: "the load finished and replaced the previous copy",
    EXIT_FAILED: "the run failed (Streak API, network, destination, disk); the previous copy is kept",
    EXIT_USAGE: "bad command-line arguments",
    EXIT_CONFIG: "configuration error: no API key, a bad setting, bad destination configuration",
    EXIT_LOCKED: "another run is loading the same destination (or uses the same dlt working dir); "
                 "the line names it (pid, host, start time)",
    EXIT_INTERRUPTED: "interrupted by SIGINT or SIGTERM; the previous copy is kept",
}
"""Documented in ``--help`` and docs/failure-behaviour.md."""

RUN_STATUSES: Final[dict[int, str]] = {
    EXIT_OK: "ok",
    EXIT_FAILED: "failed",
    EXIT_CONFIG: "config_error",
    EXIT_LOCKED: "locked",
    EXIT_INTERRUPTED: "interrupted",
}
"""The ``status`` word of each exit status a run can end with (``--summary-json``; a usage error
ends before any run)."""

INTERRUPTED_MESSAGE: Final = "error: interrupted; the destination keeps its previous complete load"
_NOT_LOADED: Final = "nothing was loaded, the destination keeps its previous load"


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes/contexts, outermost first (cycles cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def was_interrupted(exc: BaseException) -> bool:
    """True when Ctrl-C / SIGINT / SIGTERM (or dlt's SignalReceivedException) is in the chain."""
    from dlt.common.exceptions import SignalReceivedException

    return any(isinstance(e, (KeyboardInterrupt, SignalReceivedException)) for e in exception_chain(exc))


def config_error_line(exc: BaseException) -> str | None:
    """The one-line explanation of a configuration error anywhere in the chain, else None.

    The loader's ``streak_source.config.explain_config_error`` words its settings (name, env var,
    value, what is allowed); the destination's own :class:`WarehouseConfigError` says how to fix it.
    """
    from streak_warehouse.destination import WarehouseConfigError

    explain = _loader_explainer()
    for candidate in exception_chain(exc):
        if isinstance(candidate, WarehouseConfigError):
            return one_line(str(candidate))
        if explain is not None:
            try:
                line = explain(candidate)
            except Exception:  # the explainer must never hide the real error
                line = None
            if line:
                return one_line(line)
    return None


def _loader_explainer() -> Callable[[BaseException], str | None] | None:
    try:
        from streak_source.config import explain_config_error
    except ImportError:  # older loader: dlt's own messages stand
        return None
    return explain_config_error


def describe_failure(exc: BaseException) -> str:
    """The most telling one-line cause inside dlt's wrapped exceptions, without secrets."""
    from streak_source.client import StreakAPIError
    from streak_warehouse.locks import LoadAlreadyRunning
    from streak_warehouse.persistent import CarryOverError

    chain = [e for e in exception_chain(exc) if not _is_wrapper(e)] or exception_chain(exc)
    for candidate in chain:
        if isinstance(candidate, (LoadAlreadyRunning, CarryOverError)):
            return one_line(str(candidate))
    for candidate in chain:
        if isinstance(candidate, StreakAPIError):
            return f"{one_line(str(candidate))}; {_NOT_LOADED}"
    for candidate in chain:
        if _is_disk_full(candidate):
            where = getattr(candidate, "filename", None)
            return f"No space left on device{f' ({where})' if where else ''}; the destination keeps its previous load"
    for candidate in chain:
        if isinstance(candidate, OSError) and candidate.errno is not None:  # a real OS error, not requests'
            return one_line(f"{type(candidate).__name__}: {candidate}")
    for candidate in chain:
        if isinstance(candidate, RecursionError):
            return f"the data is nested too deeply to read ({type(candidate).__name__}: {one_line(str(candidate))})"
    for candidate in chain:
        if isinstance(candidate, ValueError) and str(candidate).strip():
            return one_line(str(candidate))
    # the innermost exception that says something: a bare StopIteration is how a generator ended,
    # not why the run failed
    telling = [e for e in chain if str(e).strip() and not isinstance(e, (StopIteration, StopAsyncIteration, GeneratorExit))]
    root = (telling or chain)[-1]
    text = str(root).strip()
    return one_line(f"{type(root).__name__}: {text}" if text else f"{type(root).__name__} (no message)")


def well_understood(exc: BaseException) -> bool:
    """True when the one line is the whole story (Streak said no, a lock, a full disk): no
    traceback pointer then."""
    from streak_source.client import StreakAPIError
    from streak_warehouse.locks import LoadAlreadyRunning
    from streak_warehouse.persistent import CarryOverError

    known = (StreakAPIError, LoadAlreadyRunning, CarryOverError)
    return any(isinstance(e, known) or _is_disk_full(e) for e in exception_chain(exc))


def _is_wrapper(exc: BaseException) -> bool:
    """dlt's step wrappers and process-pool traceback text: they repeat a cause, never are one."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    return isinstance(exc, PipelineStepFailed) or type(exc).__name__ in {"_RemoteTraceback", "RemoteTraceback"}


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "No space left on device" in text or "ENOSPC" in text


def one_line(text: str, limit: int = 500) -> str:
    """Whitespace folded to single spaces, cut at ``limit`` characters."""
    return " ".join(text.split())[:limit]
