"""The command line of ``python pipelines/streak_privacy.py`` (docs/privacy.md, "Forget a person").

``forget --email ADDRESS`` / ``forget --contact KEY`` erases that person from everything the job
keeps, each place in one transaction, and prints what it erased per table:

1. the destination the job loads (the same configuration: a DuckDB file or a Postgres schema), under
   the job's own run lock, so it never runs while a load does: ``streak_warehouse/forget.py``;
2. the events spool (``[events] spool_path``): ``streak_eventlog/spool_rewrite.py``;
3. dlt's working dir of the job: every load package in it (dlt keeps the files of each completed
   load there; nothing reads them again, and the next run drops unfinished ones anyway) is deleted,
   under the working dir's lock;
4. then asks Streak (one or two calls) whether the contact still exists there: if so, the next run
   brings them back.

Exit statuses (``pipelines/failures.py``): 0 done (also when nothing of the person was found); 1 the
destination, the spool or the disk failed (nothing of that place changed); 2 bad arguments;
3 configuration (``[privacy]``, the destination kind); 75 a load holds the lock.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from pipelines.failures import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK, one_line

SPOOL_NOT_NULL: Final = frozenset({"event_key", "event_name", "source", "properties"})
"""The spool's columns that take no NULL (``streak_eventlog/spool.py``: ``SCHEMA``; the key too)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="streak_privacy.py", description="Personal data in the copy: erase one person everywhere.",
        epilog="exit statuses: 0 done, 1 failed (that place unchanged), 2 bad arguments, 3 configuration error, "
               "75 a load is running on the destination. Guide: docs/privacy.md")
    commands = parser.add_subparsers(dest="command", required=True)
    forget = commands.add_parser(
        "forget", help="erase one person from the copy, its history, events, refresh basis, rejected records, "
                       "the events spool and dlt's working dir")
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", metavar="ADDRESS", help="the person's e-mail address (their contact, every "
                     "mention of the address, clear or hashed)")
    who.add_argument("--contact", metavar="KEY", help="the Streak contact key of the person")
    args = parser.parse_args(argv)
    value = args.email if args.email is not None else args.contact
    if not value.strip():
        parser.error("the address or key is empty")
    if args.email is not None and "@" not in args.email:
        parser.error(f"--email {args.email!r} is not an e-mail address")
    return args


def _refused(line: str, status: int) -> int:
    print(f"error: {line}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    from dlt.common.configuration.exceptions import ConfigurationException

    from streak_source.privacy import PrivacyConfigError, configured_policy
    from streak_warehouse.destination import WarehouseConfigError, use_project_settings
    from streak_warehouse.locks import LoadAlreadyRunning

    args = parse_args(argv)
    use_project_settings()
    addresses = [args.email.strip()] if args.email is not None else []
    keys = [args.contact.strip()] if args.contact is not None else []
    try:
        policy = configured_policy()
        keys_found = forget(addresses, keys, policy.hash if policy.settings.salt else None, print)
    except LoadAlreadyRunning as exc:
        return _refused(str(exc), EXIT_LOCKED)
    except (PrivacyConfigError, WarehouseConfigError) as exc:
        return _refused(one_line(str(exc)), EXIT_CONFIG)
    except ConfigurationException as exc:
        return _refused(one_line(f"configuration: {exc}"), EXIT_CONFIG)
    except Exception as exc:  # noqa: BLE001 - one line, whatever failed
        return _refused(one_line(f"forget failed ({type(exc).__name__}: {exc}); the places listed above are done, "
                                 "the others unchanged: run it again"), EXIT_FAILED)
    if not policy.settings.salt:
        print("note: no [privacy] salt is configured, so values the copy holds hashed (written under a preset "
              "that hashes) could be found only where the contact's own rows hold them")
    print(streak_still_has(addresses, sorted(keys_found)))
    return EXIT_OK


def forget(addresses: Sequence[str], keys: Sequence[str], hash_: Callable[..., Any] | None,
           say: Callable[[str], None]) -> set[str]:
    """Erase the person from the destination, the spool and dlt's working dir (module doc), saying
    what each place erased as soon as it is done; the person's contact keys."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    from pipelines.job import working_dir_lock
    from pipelines.privacy_step import drop_load_packages
    from streak_warehouse.destination import PIPELINE_NAME
    from streak_warehouse.forget_values import person_from
    from streak_warehouse.locks import RunOwner

    owner = RunOwner.this_process()
    pipelines_dir = Path(get_dlt_pipelines_dir())
    with working_dir_lock(pipelines_dir, owner):
        person = _forget_in_destination(addresses, keys, hash_, owner, say)
        if person is None:  # the destination holds no copy: the spool still may
            person = person_from(addresses, [], hash_, keys)
        say(_forget_in_spool(person))
        say(f"dlt working dir {pipelines_dir / PIPELINE_NAME}: {drop_load_packages(pipelines_dir):,} load package(s) "
            "deleted")
    return set(person.contact_keys) | set(keys)


def _forget_in_destination(addresses: Sequence[str], keys: Sequence[str], hash_: Callable[..., Any] | None,
                           owner: Any, say: Callable[[str], None]) -> Any:
    """The destination's part; the person found there (None: no copy yet)."""
    from streak_warehouse.destination import DATASET_NAME, WarehouseConfigError
    from streak_warehouse.forget import erase_person, find_person, forget_in_duckdb_file
    from streak_warehouse.locks import FileRunLock
    from streak_warehouse.sql import columns_of
    from streak_warehouse.targets.configured import configured_target
    from streak_warehouse.targets.duckdb_file import DuckDBFile, discard_leftovers, lock_path
    from streak_warehouse.targets.schema_swap import SchemaSwap
    from streak_warehouse.targets.schema_swap import discard_leftovers as discard_leftover_schemas

    target = configured_target()
    if isinstance(target, DuckDBFile):
        with FileRunLock(lock_path(target.path), str(target.path), owner):
            discard_leftovers(target.path)
            if not target.path.is_file():
                say(f"{target.path}: no copy yet, nothing to erase there")
                return None
            done = forget_in_duckdb_file(target.path, DATASET_NAME, addresses, keys, hash_)
            _say_erased(say, str(target.path), done.person, done.erased.lines(DATASET_NAME))
            return done.person
    if not isinstance(target, SchemaSwap):
        raise WarehouseConfigError(
            f"forget works on a DuckDB file or a Postgres schema; the {target.destination_type} destination is "
            "loaded in place and not supported (docs/privacy.md)")
    live = target.live_copy()
    with live.locked(owner) as session:
        discard_leftover_schemas(live.pipeline, DATASET_NAME)
        with session.transaction() as execute:
            if not columns_of(execute, DATASET_NAME, "load_history"):
                say(f"{live.location}: no copy yet, nothing to erase there")
                return None
            person = find_person(execute, DATASET_NAME, addresses, keys, hash_)
            erased = erase_person(execute, DATASET_NAME, person, "psycopg2")
    _say_erased(say, live.location, person, erased.lines(DATASET_NAME))
    return person


def _say_erased(say: Callable[[str], None], location: str, person: Any, erased: list[str]) -> None:
    keys = sorted(person.contact_keys)
    found = (f"{len(keys)} contact key(s): {', '.join(keys)}" if keys else "no contact row")
    say(f"{location}: {found}; " + (f"{len(erased)} table(s) changed, one transaction" if erased
                                    else "nothing of that person in the copy"))
    for line in erased:
        say(f"  {line}")


def _forget_in_spool(person: Any) -> str:
    from pipelines.events_load import configured_spool
    from streak_eventlog.spool_rewrite import TEXT_COLUMNS, rewrite_spool
    from streak_warehouse.forget_values import redacted_cells

    path = configured_spool()
    if path is None:
        return "events spool: none configured or none yet"
    nullable = {name: name not in SPOOL_NOT_NULL for name in TEXT_COLUMNS}
    done = rewrite_spool(path, lambda cells: redacted_cells(cells, person, nullable, {"properties": True}))
    line = f"events spool {path}: {done.rows:,} event(s) redacted"
    if not done.log_emptied:
        line += " (its write-ahead log is in use: stop the receiver and run forget again to empty it)"
    return line


def streak_still_has(addresses: Sequence[str], keys: Sequence[str]) -> str:
    """One line: whether Streak still holds the contact (then the next run brings it back)."""
    from dlt.common.configuration.exceptions import ConfigurationException

    from streak_eventlog.streak_api import client_from_config
    from streak_source.client import StreakAPIError, StreakNotFound

    try:
        client = client_from_config()
    except ConfigurationException:
        return ("Streak: not asked (no [sources.streak] api_key): if the contact still exists there, the next run "
                "brings them back; delete them in Streak first")
    try:
        held = [key for key in keys[:1] if _contact_exists(client, key, StreakNotFound)]
        for address in addresses[:1]:
            held += _contacts_with(client, address)
    except StreakAPIError as exc:
        return (f"Streak: could not ask whether the contact still exists ({one_line(str(exc), 200)}); if it does, "
                "the next run brings them back: delete them in Streak first")
    if held:
        return (f"Streak still holds contact {', '.join(sorted(set(held)))}: the next run brings them back. Delete "
                "them in Streak first, then run forget again")
    return ("Streak holds no contact with that " + ("address" if addresses else "key") + ": the next run will not "
            "bring the contact back (e-mail threads Streak keeps that name the address come back with them)")


def _contact_exists(client: Any, key: str, not_found: type[Exception]) -> bool:
    try:
        client.get_json("v2/contacts/{contact_key}", contact_key=key)
    except not_found:
        return False
    return True


def _contacts_with(client: Any, address: str) -> list[str]:
    """Keys of the contacts Streak's search finds holding ``address`` (one call: the first page)."""
    from streak_source.privacy import normalized

    body = client.get_json("v1/search", {"query": address})
    results = body.get("results") if isinstance(body, dict) else None
    contacts = results.get("contacts") if isinstance(results, dict) else None
    wanted = normalized("email", address)
    return [str(hit.get("key")) for hit in contacts or [] if isinstance(hit, dict) and any(
        isinstance(e, str) and normalized("email", e) == wanted for e in hit.get("emailAddresses") or [])]
