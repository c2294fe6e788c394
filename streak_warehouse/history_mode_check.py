"""What a history-mode simulation checks, as pure functions (tests/test_history_mode.py and
benchmarks/history_mode.py drive the loads; this says what "equal" and "changed" mean).

* A table's rows are compared as a multiset of normalized rows (:func:`normalized`): times in UTC,
  JSON text parsed (DuckDB and Postgres write the same document differently), numbers as floats.
* :class:`Snapshot` keeps, per table, each record's row digest by key: enough to count the records a
  load changed (:func:`changed_records`) and to compare a whole table (:meth:`Snapshot.digest`)
  without holding the rows of every day in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def normalized(value: Any) -> Any:
    """One value as both destinations' copies and the as-of file agree on it."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def row_digest(row: Sequence[Any]) -> str:
    return hashlib.sha256(repr([normalized(v) for v in row]).encode()).hexdigest()[:24]


@dataclass
class TableSnapshot:
    by_key: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def digest(self) -> tuple[int, str]:
        """(row count, digest of the sorted row digests): equal iff the same multiset of rows."""
        digests = sorted(self.by_key.values())
        return len(digests), hashlib.sha256("".join(digests).encode()).hexdigest()


def snapshot(rows: Iterable[Sequence[Any]], key_width: int) -> TableSnapshot:
    """``rows`` whose first ``key_width`` values are the key (0: the whole row is its own key)."""
    table = TableSnapshot()
    for row in rows:
        digest = row_digest(row)
        key = tuple(normalized(v) for v in row[:key_width]) if key_width else (digest,)
        table.by_key[key] = digest
    return table


def multiset_digest(rows: Iterable[Sequence[Any]]) -> tuple[int, str]:
    digests = sorted(row_digest(row) for row in rows)
    return len(digests), hashlib.sha256("".join(digests).encode()).hexdigest()


def changed_records(before: TableSnapshot | None, after: TableSnapshot) -> int:
    """Records of ``after`` that are new or whose row differs from ``before``: the versions a run must add."""
    if before is None:
        return len(after.by_key)
    return sum(1 for key, digest in after.by_key.items() if before.by_key.get(key) != digest)


def gone_records(before: TableSnapshot | None, after: TableSnapshot) -> int:
    if before is None:
        return 0
    return sum(1 for key in before.by_key if key not in after.by_key)


@dataclass
class DayCheck:
    """One simulated day's load: what it added to the history against what changed in its copy."""

    day: int
    run_id: str
    mode: str
    versions_added: Mapping[str, int]
    expected_versions: Mapping[str, int]
    records_deleted: Mapping[str, int]
    expected_deleted: Mapping[str, int]

    def problems(self) -> list[str]:
        found = []
        for table in sorted(set(self.versions_added) | set(self.expected_versions)):
            got, want = self.versions_added.get(table, 0), self.expected_versions.get(table, 0)
            if got != want:
                found.append(f"day {self.day} ({self.mode}): {table}: {got} versions added, {want} records changed")
        for table in sorted(set(self.records_deleted) | set(self.expected_deleted)):
            got, want = self.records_deleted.get(table, 0), self.expected_deleted.get(table, 0)
            if got != want:
                found.append(f"day {self.day} ({self.mode}): {table}: {got} marked deleted, {want} gone")
        return found
