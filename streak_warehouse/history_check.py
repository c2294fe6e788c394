"""Check a ``box_stage_history`` against true stage paths, e.g. the sandbox's ``__sandbox__/history``
(issue 13). Verification code, kept in the package so the suite (tests/test_history_simulation.py,
tests/test_history_survival.py) and the benchmark (benchmarks/history.py) share one definition.

:class:`Coverage` records, after each daily load, which true entries the per-box newsfeeds read by
that load could reach: a box's fetched feed (the load's ``box_newsfeed`` rows) covers every true
entry from its oldest entry on (from creation when ``NEW_BOX`` is in it) up to the load. A true
stay is *covered* when its entry and, for a stay the box has left, its exit (the next entry) lie
in one fetched feed. :func:`check` then asserts, over the final ``box_stage_history``:

* no stay duplicated (``stay_key`` and (box, stage, entered_at) unique);
* none invented: the box really was in that stage at ``entered_at``;
* every ``exact`` stay equals a true stay (entry; exit when closed; open only if it is the box's
  current stage), every covered entry is recorded with its exact time, every covered stay is exact;
* the rest is counted: ``inexact`` stays, and true stays missing (before what any feed reached).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streak_warehouse.stage_history import StageStay, to_ms

FETCHED_NEWSFEED_SQL = ("select box_key, specific, timestamp from crm.box_newsfeed "
                        "where _dlt_load_id = (select max(load_id) from crm._dlt_loads)")
"""The ``box_newsfeed`` rows the latest load fetched (the table keeps every entry ever fetched:
streak_warehouse/history_mode.py), for :meth:`Coverage.add_load`."""

TruePaths = Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass
class Coverage:
    entries: set[tuple[str, str, int]] = field(default_factory=set)
    """(box, stage, entered_at ms) of true entries some fetched newsfeed reached."""
    stays: set[tuple[str, int]] = field(default_factory=set)
    """(box, entered_at ms) of true stays whose entry and exit one fetched feed reached."""
    fetched: int = 0

    def add_load(self, feeds: Mapping[str, Sequence[tuple[str | None, int]]], truth: TruePaths) -> None:
        """``feeds``: box -> [(specific, timestamp ms)] of one load's ``box_newsfeed``; ``truth``: the
        sandbox's history at that load."""
        for box, entries in feeds.items():
            self.fetched += 1
            start = float("-inf") if any(s == "NEW_BOX" for s, _ in entries) else min(t for _, t in entries)
            path = [(p["stage_key"], int(p["entered_at"])) for p in truth.get(box, ())]
            for i, (stage, at) in enumerate(path):
                if at >= start:
                    self.entries.add((box, stage, at))
                    if i + 1 == len(path) or path[i + 1][1] >= start:
                        self.stays.add((box, at))


def feeds_of(rows: Iterable[Sequence[Any]]) -> dict[str, list[tuple[str | None, int]]]:
    """``(box_key, specific, timestamp)`` rows of ``box_newsfeed`` -> box -> [(specific, ms)]."""
    feeds: dict[str, list[tuple[str | None, int]]] = {}
    for box, specific, at in rows:
        ms = to_ms(at)
        if ms is not None:
            feeds.setdefault(str(box), []).append((specific, ms))
    return feeds


@dataclass
class Verdict:
    stays: int = 0
    exact: int = 0
    inexact: int = 0
    true_stays: int = 0
    covered_stays: int = 0
    missing: int = 0
    """True stays not recorded at all (older than anything any source reached)."""
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {"problems": len(self.problems)}

    def line(self) -> str:
        return (f"box_stage_history: {self.stays} stays, {self.exact} exact, {self.inexact} flagged inexact; "
                f"truth: {self.true_stays} stays, {self.covered_stays} covered by a newsfeed read, "
                f"{self.missing} never reached (not recorded); problems: {len(self.problems)}")


def check(rows: Sequence[Mapping[str, Any]], truth: TruePaths, coverage: Coverage) -> Verdict:
    """Compare the final ``box_stage_history`` rows with the sandbox's true paths (see module doc)."""
    verdict = Verdict(stays=len(rows))
    stays = [StageStay.from_row(row) for row in rows]
    problems = verdict.problems
    if len({row["stay_key"] for row in rows}) != len(rows):
        problems.append("duplicated stay_key")
    seen: set[tuple[str, str, int]] = set()
    recorded: dict[tuple[str, str, int], StageStay] = {}
    for stay in stays:
        key = (stay.box_key, stay.stage_key, to_ms(stay.entered_at) or 0)
        if key in seen:
            problems.append(f"duplicated stay {key}")
        seen.add(key)
        recorded[key] = stay
        path = [(p["stage_key"], int(p["entered_at"])) for p in truth.get(stay.box_key, ())]
        if not path:
            problems.append(f"stay of a box the sandbox never had: {key}")
            continue
        times = [at for _, at in path]
        i = bisect.bisect_right(times, key[2]) - 1
        if i < 0 or path[i][0] != stay.stage_key:
            problems.append(f"invented stay {key}: the box was in {path[i][0] if i >= 0 else None} then")
            continue
        if stay.exact:
            verdict.exact += 1
            if times[i] != key[2]:
                problems.append(f"exact stay {key} entered at a time no true entry has ({times[i]})")
            elif stay.left_at is None and i + 1 < len(path) and stay.box_deleted_at is None:
                problems.append(f"exact open stay {key} but the box moved on at {times[i + 1]}")
            elif stay.left_at is not None and (i + 1 >= len(path) or to_ms(stay.left_at) != times[i + 1]):
                problems.append(f"exact stay {key} left at {to_ms(stay.left_at)}, truth "
                                f"{times[i + 1] if i + 1 < len(path) else None}")
        else:
            verdict.inexact += 1
    for box, true_path in truth.items():
        for stage, at in ((str(p["stage_key"]), int(p["entered_at"])) for p in true_path):
            verdict.true_stays += 1
            found = recorded.get((box, stage, at))
            if found is None:
                verdict.missing += 1
            if (box, stage, at) in coverage.entries and (found is None or not found.entered_exact):
                problems.append(f"covered entry {(box, stage, at)} not recorded exactly")
            if (box, at) in coverage.stays:
                verdict.covered_stays += 1
                if found is None or not found.exact:
                    problems.append(f"covered stay {(box, stage, at)} not exact")
    return verdict
