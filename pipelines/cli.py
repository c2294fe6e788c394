"""The command line of the main job: arguments, credentials, one-line errors, exit statuses, log file.

Exit statuses (also in ``--help`` and docs/failure-behaviour.md): see
:data:`pipelines.failures.EXIT_STATUSES`. Errors are one line on stderr; the full traceback of a
failure goes to a log file whose path the line names (``--verbose`` prints it on stderr too).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import streak_clock
from pipelines import stopping
from pipelines.failures import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_STATUSES,
    INTERRUPTED_MESSAGE,
    config_error_line,
    describe_failure,
    exception_chain,
    was_interrupted,
    well_understood,
)
from pipelines.progress import (
    LoadSummary,
    outcome_document,
    print_summary,
    quiet_line,
    success_reason,
    write_json_atomically,
)
from streak_warehouse.destination import use_project_settings
from streak_warehouse.locks import LoadAlreadyRunning

DEMO_REQUESTS_PER_SECOND = 50.0
"""The demo's rate when ``sources.streak.max_requests_per_second`` is not set: its sandbox runs on this
machine, so the demo need not wait on Streak's 10/s; a limit still applies, so the demo shows the same
paced extraction a real account gets. A configured rate wins, checked as for a real account."""

TRACEBACK_LOGGER: Final = "streak_full.traceback"
"""Writes to the log file only (not propagated to stderr)."""
NO_KEY_MESSAGE: Final = (
    "error: no Streak API key. Give one in .dlt/secrets.toml ([sources.streak] api_key = \"...\"; "
    "see .dlt/example.secrets.toml), or in the SOURCES__STREAK__API_KEY environment variable, "
    "or run the demo account with --demo."
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    statuses = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_STATUSES.items())
    parser = argparse.ArgumentParser(
        prog="streak_full.py",
        description="Copy a whole Streak CRM account into DuckDB (default) or the warehouse configured\n"
        "under [destination.warehouse], replacing the previous copy.",
        epilog=f"exit statuses:\n{statuses}\n\nDetails: docs/failure-behaviour.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--demo", action="store_true",
                        help="load the built-in sandbox's demo account (no API key needed); the first demo load "
                             "into a destination also reads its past (as --backfill-history: one local call per box, "
                             "a few seconds), so the outcome views have stage probabilities and times to close at once")
    parser.add_argument("--demo-boxes", type=int, default=None, metavar="N",
                        help="with --demo: size of the generated account in boxes (default: the sandbox's)")
    parser.add_argument("--demo-date", type=_iso_date, default=None, metavar="YYYY-MM-DD",
                        help="with --demo: the demo account's day 0, the day its story ends (default: today, UTC); "
                             "two demo loads with the same date hold the same account")
    parser.add_argument("--backfill-history", action="store_true",
                        help="also read every box's own newsfeed (its 50 newest events) to reach back before the "
                             "first load's stage history: one extra API call per box (the run prints an estimate "
                             "of the calls and time at the configured rate first). Normally only boxes new or "
                             "moved since the previous load are read. See docs/history.md")
    parser.add_argument("--refresh", choices=("full", "changed"), default=None,
                        help="full: read every box's children (the default, [sources.streak] refresh); changed: "
                             "re-read only the children of boxes whose own fingerprint moved since the previous "
                             "complete load and take the others from it, with a full load at least every "
                             "full_refresh_every_days (7); falls back to full, and says why, when it cannot. "
                             "See docs/refresh.md")
    parser.add_argument("--summary-json", type=Path, default=None, metavar="PATH",
                        help="also write the run's outcome as JSON to PATH, whatever the outcome (ok, failed, "
                             "config_error, locked, interrupted); replaced atomically. Fields: "
                             "docs/summary.schema.json")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines and no table: only one final line on success; warnings and "
                             "errors still go to stderr")
    parser.add_argument("--verbose", action="store_true",
                        help="on failure, print the full traceback on stderr as well as in the log file")
    args = parser.parse_args(argv)
    if args.demo_boxes is not None and not args.demo:
        parser.error("--demo-boxes needs --demo")
    if args.demo_date is not None and not args.demo:
        parser.error("--demo-date needs --demo")
    if args.demo_boxes is not None and args.demo_boxes < 0:
        parser.error("--demo-boxes must be >= 0")
    if args.summary_json is not None and not args.summary_json.expanduser().parent.is_dir():
        parser.error(f"--summary-json: no such directory: {args.summary_json.expanduser().parent}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns the exit status (never raises, never prints a traceback unless asked)."""
    from pipelines.job import FAILED_RUN_REPORT, run_full_load

    args = parse_args(argv)
    started = streak_clock.now()
    stopping.install()
    use_project_settings()
    outcome = _Outcome(args.summary_json, started, _requested_mode(args.refresh))
    log_file = _log_to_file()
    # a second signal (or a hung worker) ends the process in stopping.hard_stop: the document too
    with stopping.on_hard_stop(lambda: outcome.write(EXIT_INTERRUPTED, _INTERRUPTED_REASON)):
        try:
            with _demo_sandbox(args) as demo:
                source_args: dict[str, Any] = {}
                if demo is not None:
                    source_args = demo_source_args(demo, args.demo_boxes)
                elif not _api_key_configured():
                    print(NO_KEY_MESSAGE, file=sys.stderr)
                    outcome.write(EXIT_CONFIG, NO_KEY_MESSAGE.removeprefix("error: "))
                    return EXIT_CONFIG
                summary = run_full_load(source_args, progress=None if args.quiet else sys.stdout,
                                        backfill_history=args.backfill_history, refresh=args.refresh,
                                        account_defaults=_demo_settings(demo), backfill_first_load=demo is not None)
        except BaseException as exc:  # one line, the real cause; the traceback goes to the log file
            status, reason = _failed(exc, log_file, verbose=args.verbose)
            locked = next((e for e in exception_chain(exc) if isinstance(e, LoadAlreadyRunning)), None)
            outcome.write(status, reason, locked_by=locked.owner if locked is not None else None,
                          report=getattr(exc, FAILED_RUN_REPORT, None))
            return status
        if args.quiet:
            print(quiet_line(summary), file=sys.stdout)
        else:
            print_summary(summary, sys.stdout)
        outcome.write(EXIT_OK, success_reason(), summary)
    return EXIT_OK


_INTERRUPTED_REASON: Final = INTERRUPTED_MESSAGE.removeprefix("error: ")


@dataclass
class _Outcome:
    """The ``--summary-json`` document of this run, written once whichever way the run ends."""

    path: Path | None
    started_at: datetime
    requested_mode: str
    written: bool = False

    def write(self, status: int, reason: str, summary: LoadSummary | None = None, locked_by: Any = None,
              report: Any = None) -> None:
        if self.path is None or self.written:
            return
        self.written = True
        document = outcome_document(summary, exit_code=status, reason=reason, started_at=self.started_at,
                                    finished_at=streak_clock.now(), requested_mode=self.requested_mode,
                                    locked_by=locked_by, failed_report=report)
        try:
            write_json_atomically(self.path, document)
        except OSError as exc:  # the run's own status stands; the monitor sees a stale document
            print(f"error: cannot write --summary-json {self.path}: {exc.strerror or type(exc).__name__}",
                  file=sys.stderr)


def _requested_mode(flag: str | None) -> str:
    """``--refresh``, else ``[sources.streak] refresh``: what a run that ends early says it was asked
    to do (a finished run reports the mode it used). A bad setting is the run's own error to report."""
    if flag:
        return flag
    import dlt

    from streak_source.config import refresh_mode_from

    try:
        return str(refresh_mode_from(dlt.config.get("sources.streak.refresh")))
    except Exception:  # noqa: BLE001 - the run itself stops on it with exit 3
        return "full"


def _failed(exc: BaseException, log_file: Path | None, verbose: bool) -> tuple[int, str]:
    """Print the one error line; return the exit status and that line (without ``error: ``)."""
    if isinstance(exc, SystemExit):
        raise exc
    if was_interrupted(exc):
        stopping.tell_interrupted()
        return EXIT_INTERRUPTED, _INTERRUPTED_REASON
    locked = next((e for e in exception_chain(exc) if isinstance(e, LoadAlreadyRunning)), None)
    if locked is not None:
        print(f"error: {locked}", file=sys.stderr)
        return EXIT_LOCKED, str(locked)
    logging.getLogger(TRACEBACK_LOGGER).error("run failed", exc_info=exc)
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    config_line = config_error_line(exc)
    if config_line is not None:  # the line says all there is to fix; no traceback pointer
        print(f"error: {config_line}", file=sys.stderr)
        return EXIT_CONFIG, config_line
    # the traceback pointer only where the line may not be the whole story
    where = f" (traceback: {log_file})" if log_file is not None and not well_understood(exc) else ""
    line = f"{describe_failure(exc)}{where}"
    print(f"error: {line}", file=sys.stderr)
    return EXIT_FAILED, line


class _OneLine(logging.Formatter):
    """Log records on stderr as one line each: the message's first line, never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().strip().splitlines()
        return f"{record.levelname} {record.name}: {message[0] if message else ''}"


def _log_to_file() -> Path | None:
    """Warnings on stderr (one line each); everything with tracebacks into a log file under dlt's
    data dir. None (stderr only) when the file cannot be opened, e.g. on a full disk."""
    import dlt

    logging.raiseExceptions = False  # a log file on a full disk must not print its own tracebacks
    root = logging.getLogger()
    if not root.handlers:  # like logging.basicConfig: a caller's own logging setup wins
        root.setLevel(logging.INFO)
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(_OneLine())
        root.addHandler(console)
    stamp = streak_clock.now().strftime("%Y%m%dT%H%M%SZ")
    path = Path(dlt.current.run_context().data_dir) / "streak_runs" / "logs" / f"streak_full-{stamp}.log"
    # dlt's own logger ("dlt", not propagated) takes the first handler it finds and would otherwise
    # write its job tracebacks to stderr (hundreds of lines on a full disk): give it the log file.
    dlt_logger = logging.getLogger("dlt")
    for stream_handler in [h for h in dlt_logger.handlers if type(h) is logging.StreamHandler]:
        dlt_logger.removeHandler(stream_handler)  # already set up by dlt: stderr
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, delay=True, encoding="utf-8")
        dlt_logger.addHandler(logging.FileHandler(path, delay=True, encoding="utf-8"))
    except OSError:
        dlt_logger.addHandler(logging.NullHandler())
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    tracebacks = logging.getLogger(TRACEBACK_LOGGER)
    tracebacks.propagate = False
    tracebacks.addHandler(handler)
    return path


def _api_key_configured() -> bool:
    import dlt

    try:
        value: Any = dlt.secrets.get("sources.streak.api_key")
    except Exception:
        return False
    return bool(value and str(value).strip())


def demo_source_args(demo: Any, boxes: int | None) -> dict[str, Any]:
    """The source arguments of ``--demo``: the sandbox's own key and base URL, and the stable name of
    its account as the load's ``origin`` (the port changes every run; the account does not, so a
    ``changed`` refresh can follow a demo load). Every other setting comes from configuration and is
    resolved and checked by the source exactly as for a real account, the rate included; only when
    no rate is configured does the demo take its own, :data:`DEMO_REQUESTS_PER_SECOND`."""
    from streak_source.sandbox import DEFAULT_BOX_COUNT, DEFAULT_SEED

    size = DEFAULT_BOX_COUNT if boxes is None else boxes
    source_args: dict[str, Any] = {"api_key": demo.api_key, "base_url": demo.base_url,
                                   "origin": f"demo sandbox (seed {DEFAULT_SEED}, {size} boxes)"}
    if not _configured("sources.streak.max_requests_per_second"):
        source_args["max_requests_per_second"] = DEMO_REQUESTS_PER_SECOND
    return source_args


def _configured(key: str) -> bool:
    """Whether ``key`` is set anywhere dlt looks (config files, secrets, env), whatever its value."""
    import dlt

    try:
        return dlt.config.get(key) is not None
    except Exception:  # noqa: BLE001 - an unreadable value is still a value: the source reports it
        return True


def _demo_settings(demo: Any) -> Mapping[str, Any] | None:
    """What the demo account comes with (its closed stages), kept in its copy; a real account: nothing."""
    if demo is None:
        return None
    from streak_source.sandbox import DEMO_SETTINGS

    return DEMO_SETTINGS


def _iso_date(text: str) -> date:
    """A ``YYYY-MM-DD`` argument, or argparse's one-line error naming it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


@contextlib.contextmanager
def _demo_sandbox(args: argparse.Namespace) -> Iterator[Any]:
    """The sandbox in-process for ``--demo``; nothing otherwise."""
    if not args.demo:
        yield None
        return
    from streak_source.sandbox import Sandbox

    kwargs: dict[str, Any] = {} if args.demo_boxes is None else {"boxes": args.demo_boxes}
    if args.demo_date is not None:
        kwargs["anchor_date"] = args.demo_date
    with Sandbox(**kwargs) as sandbox:
        yield sandbox
