"""The start of a run reads the account's lists together (``account_reads``, issue 26 item 2):
the reads it names are every list the account-level tables read, and a read that fails is asked
of Streak once, whoever asks for it."""

from __future__ import annotations

from typing import Any

import pytest

from streak_source import objects, settings
from streak_source.client import RunReport, StreakClient
from streak_source.history_calls import HistoryPlan
from streak_source.reader import StreakReader
from streak_source.refresh import RefreshPlan
from streak_source.resources import Run, account_reads, account_resource
from streak_source.sandbox import Sandbox
from tests.test_loader_support import BASE_URL, FakeStreak

pytestmark = pytest.mark.timeout(120)


def in_place(reader: StreakReader) -> StreakReader:
    reader.run_in_background = lambda read: read()  # no threads: what was read is known at once
    return reader


def test_the_prefetched_reads_are_every_list_the_account_tables_read() -> None:
    with Sandbox(boxes=12, seed=3) as sb:
        report = RunReport()
        reader = in_place(StreakReader(StreakClient(sb.api_key, sb.base_url, 1000, report=report), settings.PageSizes()))
        reader.prefetch(account_reads(reader))
        prefetched = report.requests_sent
        teams, pipelines = len(reader.team_keys()), len(reader.keyed_pipelines())
        run = Run(reader, HistoryPlan.of(None, False), RefreshPlan(), sb.base_url)
        tables = {obj.table: list(account_resource(obj, run)) for obj in objects.ACCOUNT_OBJECTS if obj.table != "boxes"}
    # you, the teams, pipelines and snippets; each team's users, contacts, organizations; each pipeline's newsfeed
    assert (teams, pipelines) != (0, 0)
    assert prefetched == 4 + 3 * teams + pipelines
    assert report.requests_sent == prefetched  # the tables then read nothing more
    assert all(tables[name] for name in ("users", "teams", "pipelines", "contacts"))


def test_a_read_that_failed_is_asked_once_and_fails_every_asker(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeStreak({}).install(monkeypatch)  # every path: 404
    reader = in_place(StreakReader(StreakClient("test-key", BASE_URL, max_requests_per_second=1000),
                                   settings.PageSizes()))
    reader.prefetch([reader.pipelines])  # fails, quietly: the asker is told
    errors: list[Any] = []
    for _ in range(2):
        with pytest.raises(Exception) as caught:
            reader.pipelines()
        errors.append(caught.value)
    assert errors[0] is errors[1]
    assert fake.paths() == ["v1/pipelines"]


def test_prefetch_once_starts_the_reads_the_first_time_only() -> None:
    reader = in_place(StreakReader(StreakClient("test-key", BASE_URL, max_requests_per_second=1000),
                                   settings.PageSizes()))
    started: list[int] = []
    for n in range(3):
        reader.prefetch_once(lambda n=n: [lambda: started.append(n)])
    assert started == [0]
