"""The command line of the events wing (``pipelines/streak_events.py`` only calls :func:`main`).

The receiver, the spool and the webhooks are the ``streak_eventlog`` package; loading into the
warehouse is ``pipelines/events_load.py``. Exit statuses (``pipelines/failures.py``, as the main job's): 0 ok; 1 failed (Streak API, network, spool); 2 bad arguments;
3 configuration error (a missing ``[events]`` key or Streak API key, a bad destination); 75 another
receiver holds the spool (``serve``), or the main job or another load holds the destination's run
lock (``load``: the line names the holder). ``serve`` stops cleanly on SIGTERM/SIGINT with 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.failures import EXIT_CONFIG, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="streak_events.py",
        description="Receive events (custom events API, Streak webhooks) into a local spool; load them into "
        "crm.events; manage webhooks.",
        epilog="exit statuses: 0 ok, 1 failed, 2 bad arguments, 3 configuration error, "
        "75 another receiver holds the spool (serve) or another run is loading the destination (load). Guide: docs/events.md",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the receiver (first stdout line: its base URL)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (0 = a free one; default 8765)")
    commands.add_parser("load", help="move spooled events into crm.events of the warehouse (merge on event_key)")
    hooks = commands.add_parser("webhooks", help="register, list or delete Streak webhooks")
    actions = hooks.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="point Streak webhooks at a receiver")
    register.add_argument("--url", required=True, help="the receiver's public base URL (ending in /)")
    register.add_argument("--event", action="append", default=[], help="a Streak event (repeatable; default all)")
    register.add_argument("--pipeline", action="append", default=[], help="pipeline name or key (repeatable; default all)")
    register.add_argument("--team", action="store_true", help="also the team events (CONTACT_*, ORG_*)")
    actions.add_parser("list", help="every webhook the API key sees")
    delete = actions.add_parser("delete", help="delete one webhook, or all pointing at a receiver")
    which = delete.add_mutually_exclusive_group(required=True)
    which.add_argument("key", nargs="?", help="the webhook's key")
    which.add_argument("--all-ours", action="store_true", help="every webhook whose target is a receiver's")
    delete.add_argument("--url", help="with --all-ours: only those pointing at this receiver")
    return parser.parse_args(argv)


def _refused(line: str, status: int) -> int:
    """Say why on stderr (``error: <line>``) and return the exit status that goes with it."""
    print(f"error: {line}", file=sys.stderr)
    return status


def _serve(args: argparse.Namespace) -> int:
    from streak_eventlog.config import EventsConfigError, load_events_config
    from streak_eventlog.serve import serve
    from streak_eventlog.spool import SpoolBusy
    from streak_source.privacy import PrivacyConfigError, configured_policy

    try:
        config = load_events_config()
        privacy = configured_policy()
    except (EventsConfigError, PrivacyConfigError) as exc:
        return _refused(str(exc), EXIT_CONFIG)
    try:
        serve(config, args.host, args.port, privacy=privacy)
    except SpoolBusy as exc:
        return _refused(str(exc), EXIT_LOCKED)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        return _refused(f"cannot serve on {args.host}:{args.port}: {why}", EXIT_FAILED)
    return EXIT_OK


def _webhooks(args: argparse.Namespace) -> int:
    from dlt.common.configuration.exceptions import ConfigurationException

    from streak_eventlog import webhooks
    from streak_eventlog.config import EventsConfigError, load_events_config
    from streak_eventlog.streak_api import client_from_config
    from streak_source.client import StreakAPIError
    from streak_source.config import explain_config_error

    try:
        client = client_from_config()
        token = str(load_events_config().webhook_token) if args.action == "register" else ""
    except EventsConfigError as exc:
        return _refused(str(exc), EXIT_CONFIG)
    except ConfigurationException as exc:
        return _refused(explain_config_error(exc) or "sources.streak: no API key or a bad setting", EXIT_CONFIG)
    try:
        if args.action == "register":
            if not args.url.startswith(("http://", "https://")):
                return _refused("--url must be the receiver's http(s) base URL", EXIT_USAGE)
            for hook in webhooks.register(client, args.url, token, args.event, args.pipeline, args.team):
                print(f"created\t{hook.line()}")
        elif args.action == "list":
            for hook in webhooks.list_hooks(client):
                print(hook.line())
        elif args.all_ours:
            for hook in webhooks.delete_ours(client, args.url):
                print(f"deleted\t{hook.line()}")
        else:
            webhooks.delete(client, args.key)
            print(f"deleted\t{args.key}")
    except (StreakAPIError, ValueError) as exc:
        return _refused(str(exc), EXIT_FAILED)
    return EXIT_OK


def _load() -> int:
    from pipelines.events_load import load_spooled_events, rejected_note
    from pipelines.failures import config_error_line, describe_failure, was_interrupted
    from streak_warehouse.locks import LoadAlreadyRunning

    try:
        result = load_spooled_events()
    except LoadAlreadyRunning as exc:
        return _refused(str(exc), EXIT_LOCKED)
    except BaseException as exc:  # noqa: BLE001 - one line, the status says what kind
        if was_interrupted(exc):
            return _refused("interrupted; events not loaded stay in the spool", EXIT_INTERRUPTED)
        line = config_error_line(exc)
        if line is not None:
            return _refused(line, EXIT_CONFIG)
        return _refused(f"{describe_failure(exc)}; spooled events not loaded stay in the spool", EXIT_FAILED)
    print(f"loaded {result.events} events into crm.events ({result.location}){rejected_note(result.rejected)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    from streak_warehouse.destination import use_project_settings

    args = parse_args(argv)
    use_project_settings()  # .dlt/ of the project, from any cwd
    if args.command == "serve":
        return _serve(args)
    if args.command == "load":
        return _load()
    return _webhooks(args)
