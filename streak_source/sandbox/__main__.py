"""``python -m streak_source.sandbox serve ...``: run the sandbox until SIGTERM/SIGINT.

The first stdout line is the base URL (``http://127.0.0.1:43127/api/``), flushed at once so a parent
process can read it; everything else goes to stderr. ``account`` prints the ground truth instead.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date
from types import FrameType

from .account import ACCOUNT_KINDS, DEFAULT_BOX_COUNT, DEFAULT_SEED, generate_account
from .faults import FAULT_SYNTAX, FaultSpec, FaultSpecError, parse_fault
from .ground_truth import needed_calls, rejected_counts, table_counts
from .paging import coerce_page_sizes
from .runner import Sandbox, SandboxError
from .timeline import MAX_DAYS, Timeline, coerce_rates


def _fault(text: str) -> FaultSpec:
    try:
        return parse_fault(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _page_size(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=N, e.g. tasks=5") from None
    return name.strip(), size


def _day(text: str) -> int:
    try:
        day = int(text)
    except ValueError:
        day = -1
    if not 0 <= day <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of days, 0-{MAX_DAYS}")
    return day


def _day_rate(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=F, e.g. changed=0.05") from None
    return name.strip(), rate


def _anchor(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected YYYY-MM-DD") from None


def _add_account_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--boxes", type=int, default=DEFAULT_BOX_COUNT, help="number of boxes (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="account seed (default %(default)s)"
    )
    parser.add_argument(
        "--anchor-date",
        type=_anchor,
        default=None,
        help="the account's 'today' (YYYY-MM-DD; default: today, UTC). Same seed, boxes and "
        "anchor:"
        " byte-identical responses",
    )
    parser.add_argument(
        "--account",
        choices=ACCOUNT_KINDS,
        default="default",
        help="which account: default, or hostile (markup names, keyless records, null items, "
        "colliding keys; see docs/sandbox.md)",
    )
    parser.add_argument(
        "--day",
        type=_day,
        default=0,
        help="serve the account after this many simulated days (default 0: as generated; "
        "default account only). Same seed, boxes, anchor, rates and day: byte-identical",
    )
    parser.add_argument(
        "--day-rate",
        type=_day_rate,
        action="append",
        default=[],
        metavar="NAME=F",
        help="how much happens per simulated day (defaults: changed=0.01 of the boxes, "
        "created=0.0025, deleted=0.001; stage_added=0.03 and field_added=0.03 chances a day; "
        "pace=1, how fast the sales process moves boxes)",
    )
    parser.add_argument(
        "--page-size",
        type=_page_size,
        action="append",
        default=[],
        metavar="NAME=N",
        help="page size the client will use, for needed_calls (default 1000, Streak's maximum; "
        "names: boxes, tasks, comments, meetings, teams, team_users, contacts, organizations)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streak_source.sandbox",
        description="A local, faithful stand-in for Streak's API serving a generated account.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the API until SIGTERM/SIGINT; prints the base URL first",
        description="Serve /api/v1 and /api/v2 until SIGTERM/SIGINT. The first stdout line is the "
        "base URL. Auth: Basic key: / key:key / key (no colon), or Bearer key. Stats: GET "
        "<base>/__sandbox__/stats; ground truth: GET <base>/__sandbox__/account (and "
        "__sandbox__/rejected for the hostile account).",
        epilog=FAULT_SYNTAX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port; 0 = a free one (default)")
    _add_account_options(serve)
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    serve.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="requests/second before 429 + Retry-After",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accepted API key, repeatable (default: demo)",
    )
    serve.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault (see below)",
    )
    serve.add_argument(
        "--canary",
        metavar="TOKEN",
        default=None,
        help="plant TOKEN, made unique per person and text (TOKEN-c000007), in every field that "
        "holds personal data: lower-case letters and digits (docs/sandbox.md, 'Canary')",
    )
    serve.add_argument(
        "--boxes-array",
        action="store_true",
        help="serve the paged box list (page/limit given) as a plain array, not "
        "{results, hasNextPage}",
    )
    account = commands.add_parser(
        "account", help="print the ground-truth row counts and needed_calls as JSON"
    )
    _add_account_options(account)
    return parser


def _serve(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sandbox = Sandbox(
            boxes=args.boxes,
            seed=args.seed,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            faults=args.fault,
            api_keys=args.api_key or ["demo"],
            page_sizes=dict(args.page_size),
            anchor_date=args.anchor_date,
            boxes_paged_as_array=args.boxes_array,
            account=args.account,
            host=args.host,
            port=args.port,
            day=args.day,
            rates=dict(args.day_rate),
            canary=args.canary,
        ).start()
    except (SandboxError, FaultSpecError, ValueError) as exc:
        print(f"streak sandbox: {exc}", file=sys.stderr)
        return 2
    print(sandbox.base_url, flush=True)
    print(
        f"streak sandbox: {args.account} account, {args.boxes} boxes, seed {args.seed}, "
        f"day {args.day}, "
        f"{len(args.api_key) or 1} API key(s), "
        f"needed_calls {sandbox.needed_calls}; stop with SIGTERM or Ctrl-C",
        file=sys.stderr,
        flush=True,
    )
    while not stop.wait(0.2):
        if not sandbox.running:
            print("streak sandbox: server thread stopped unexpectedly", file=sys.stderr)
            return 1
    sandbox.stop()
    return 0


def _account(args: argparse.Namespace) -> int:
    account = generate_account(
        seed=args.seed, boxes=args.boxes, anchor_date=args.anchor_date, account=args.account
    )
    timeline = Timeline(account, coerce_rates(dict(args.day_rate)))
    timeline.advance(args.day)
    page_sizes = coerce_page_sizes(dict(args.page_size))
    report = {
        "day": timeline.day,
        "tables": table_counts(account),
        "rejected": rejected_counts(account),
        "needed_calls": needed_calls(account, page_sizes),
        "needed_history_calls": timeline.history_calls(),
    }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        return _account(args)
    except ValueError as exc:
        print(f"streak sandbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
