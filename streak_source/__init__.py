"""dlt source for Streak CRM: the whole account, decoded, with ``replace`` write disposition.

``streak_source()`` is the public API. It assembles one dlt resource per table (see docs/tables.md)
from the table of Streak objects (streak_source/objects.py; built into resources by
streak_source/resources.py); per-box children (tasks, threads, comments, meetings, files, field
values) are transformers on ``boxes``. Child calls are deferred into dlt's extract thread pool and
all pass one client-side rate limiter; a box whose own counters say it has no tasks gets no tasks
call. The per-box newsfeed (``box_newsfeed``, the evidence for stage history) is read only for the
boxes that are new or moved since the previous run (streak_source/history_calls.py). With a ``changed`` refresh plan, a box's
children are re-read only where its fingerprint moved; the others' come from the previous load's
raw responses, through the same transform (streak_source/refresh.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import dlt
from dlt.sources import DltResource

from streak_source import settings
from streak_source.client import RunReport, StreakClient
from streak_source.config import (
    StreakSourceConfiguration,
    explain_config_error,
    page_sizes_from,
    without_userinfo,
)
from streak_source.history_calls import HistoryPlan
from streak_source.privacy import PrivacyPolicy, configured_policy
from streak_source.reader import StreakReader
from streak_source.refresh import RefreshPlan
from streak_source.resources import Run, all_resources
from streak_source.settings import PageSizes

__all__ = ["streak_source", "RunReport", "PageSizes", "explain_config_error", "HistoryPlan", "RefreshPlan",
           "PrivacyPolicy"]


@dlt.source(name="streak", max_table_nesting=0, spec=StreakSourceConfiguration)
def streak_source(
    api_key: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    max_requests_per_second: float = settings.DEFAULT_MAX_REQUESTS_PER_SECOND,
    skip_empty_children: bool = True,
    page_sizes: dict[str, int] | None = None,
    report: RunReport | None = None,
    previous_stage_changes: Mapping[str, int | datetime | None] | None = None,
    backfill_history: bool = False,
    refresh_plan: RefreshPlan | None = None,
    origin: str | None = None,
    privacy: PrivacyPolicy | None = None,
) -> list[DltResource]:
    """Every readable object of a Streak account, one table each (dataset layout: docs/tables.md).

    Args:
        api_key: Streak API key (``[sources.streak] api_key`` in secrets.toml or
            ``SOURCES__STREAK__API_KEY``).
        base_url: API root; Streak's by default, the sandbox's in demo and tests.
        max_requests_per_second: client-side limit shared by every request of the run (Streak asks
            for at most 10/s); 429 + Retry-After is still honoured on top.
        skip_empty_children: skip a box's child endpoint when the box's own counters say it is
            empty (and skip listing an empty pipeline). Turn off to call everything.
        page_sizes: ``limit`` per paged endpoint, default the largest Streak allows.
        report: collects what the run did (calls, skipped boxes, undecoded values, history calls) for a
            summary.
        previous_stage_changes: box key -> ``lastStageChangeTimestamp`` (epoch ms or datetime, None
            if unknown) as of the previous complete run, i.e. ``box_key, last_stage_change_timestamp``
            of the destination's ``crm.boxes``; None when there was no previous run. Decides which
            boxes get a per-box newsfeed call (``box_newsfeed``): see streak_source/history_calls.py.
        backfill_history: read every box's newsfeed (the one-off ``--backfill-history``).
        refresh_plan: this run's refresh mode and the previous load's basis (streak_source/refresh.py;
            the main job builds it from ``[sources.streak] refresh`` and the live copy). None: a full
            load. With ``changed`` asked for, the run writes its own basis (``refresh_basis``,
            ``refresh_basis_children``), whatever mode it ran in.
        origin: where the data comes from, as the refresh basis records it and a later ``changed``
            refresh compares it; None: ``base_url`` (without user info). ``--demo`` gives the name of
            its sandbox account, whose base URL gets a new port every run.
        privacy: what to hash or drop in every object as it is read (streak_source/privacy/,
            docs/privacy.md); None: ``[privacy]`` from the configuration (preset ``none`` unless set).

    ``report`` and the arguments after it are per-run inputs, not settings: they are not in the
    ``[sources.streak]`` spec, so dlt neither looks them up in config nor records them in its trace or
    state (a 20,000-box map stays in memory only), and a backfill left in a config file cannot turn
    every run into one.
    """
    sizes = page_sizes_from(page_sizes)
    client = StreakClient(api_key, base_url, max_requests_per_second, report=report)
    policy = privacy if privacy is not None else configured_policy()
    reader = StreakReader(client, sizes, skip_empty_children=skip_empty_children, privacy=policy)
    plan = refresh_plan if refresh_plan is not None else RefreshPlan()
    plan.privacy = policy.fingerprint  # a basis kept under other [privacy] settings is not reused
    shown_url = origin or without_userinfo(base_url)  # what the basis stamp records and is compared with
    plan.bind(shown_url)
    return list(all_resources(Run(reader, HistoryPlan.of(previous_stage_changes, backfill_history), plan, shown_url)))

