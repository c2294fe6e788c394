"""dlt source for Streak CRM: the whole account, decoded, with ``replace`` write disposition.

``streak_source()`` is the public API. It assembles one dlt resource per table (see docs/tables.md);
per-box children (tasks, threads, comments, meetings, files, field values) are transformers on
``boxes``. Child calls are deferred into dlt's extract thread pool and all pass one client-side
rate limiter; a box whose own counters say it has no tasks gets no tasks call. The per-box newsfeed
(``box_newsfeed``, the evidence for stage history) is read only for the boxes that are new or moved
since the previous run (streak_source/history_calls.py). With a ``changed`` refresh plan, a box's
children are re-read only where its fingerprint moved; the others' come from the previous load's
raw responses, through the same transform (streak_source/refresh.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, cast

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from streak_source import settings
from streak_source.clashes import resolve_clashes
from streak_source.columns import TABLE_COLUMNS, ready_to_load
from streak_source.client import RunReport, StreakClient
from streak_source.config import (
    StreakSourceConfiguration,
    explain_config_error,
    page_sizes_from,
    without_userinfo,
)
from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    box_field_value_rows,
    index_fields,
    summarize_decode_statuses,
)
from streak_source.history_calls import HistoryPlan
from streak_source.keys import entity_key
from streak_source.people import task_assignee_rows
from streak_source.quarantine import (
    REJECTED_COLUMNS,
    REJECTED_TABLE,
    as_rejected,
    declare_rejected_variant,
    split_keyed,
    split_rows,
)
from streak_source.reader import StreakReader
from streak_source.refresh import (
    BASIS_CHILDREN_TABLE,
    BASIS_TABLE,
    RefreshPlan,
    box_fingerprint,
    children_json,
)
from streak_source.settings import (
    BOX_NEWSFEED,
    CHILD_ENDPOINTS,
    ChildEndpoint,
    PageSizes,
)
from streak_source.transform import (
    box_row,
    contact_row,
    newsfeed_row,
    organization_row,
    pipeline_field_rows,
    pipeline_row,
    snippet_row,
    stage_names,
    stage_rows,
    team_member_row,
    team_members,
    team_row,
    user_row,
)

__all__ = ["streak_source", "RunReport", "PageSizes", "explain_config_error", "HistoryPlan", "RefreshPlan"]

Rows = list[dict[str, Any]]

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

    ``report`` and the arguments after it are per-run inputs, not settings: they are not in the
    ``[sources.streak]`` spec, so dlt neither looks them up in config nor records them in its trace or
    state (a 20,000-box map stays in memory only), and a backfill left in a config file cannot turn
    every run into one.
    """
    sizes = page_sizes_from(page_sizes)
    client = StreakClient(api_key, base_url, max_requests_per_second, report=report)
    reader = StreakReader(client, sizes, skip_empty_children=skip_empty_children)
    plan = refresh_plan if refresh_plan is not None else RefreshPlan()
    shown_url = origin or without_userinfo(base_url)  # what the basis stamp records and is compared with
    plan.bind(shown_url)
    return list(_resources(reader, HistoryPlan.of(previous_stage_changes, backfill_history), plan, shown_url))


def _emit(report: RunReport, table: str, rows: Rows, rejected: Sequence[dict[str, Any]] = ()) -> Iterator[Any]:
    """Yield a table's rows (name clashes suffixed and counted, then made :func:`ready_to_load`: every
    column is declared, streak_source/columns.py) and, marked, its rejected records."""
    renamed = sum(resolve_clashes(row) for row in rows)
    for row in rows:
        ready_to_load(row)
    if renamed:
        report.columns_renamed(table, renamed)
    if rows:
        yield rows
    if rejected:
        report.records_rejected(table, len(rejected))
        yield as_rejected(list(rejected))


def _resources(reader: StreakReader, history: HistoryPlan, refresh: RefreshPlan, base_url: str) -> Iterator[DltResource]:
    replace: Final = "replace"
    report = reader.client.report

    @dlt.resource(name="users", primary_key="user_key", write_disposition=replace)
    def users() -> Iterator[Any]:
        me_key = reader.me_key()
        yield from _emit(report, "users", *split_rows(
            "users", reader.users(), lambda u: user_row(u, entity_key(u, "userKey") == me_key), ["user_key"]))

    @dlt.resource(name="teams", primary_key="team_key", write_disposition=replace)
    def teams() -> Iterator[Any]:
        yield from _emit(report, "teams", *split_rows("teams", reader.teams(), team_row, ["team_key"]))

    @dlt.resource(name="team_members", primary_key=("team_key", "user_key"), write_disposition=replace)
    def team_members_() -> Iterator[Any]:
        for team in reader.keyed(reader.teams(), "teamKey"):
            team_key = entity_key(team, "teamKey")
            yield from _emit(report, "team_members", *split_rows(
                "team_members", team_members(team), lambda m: team_member_row(m, team_key), ["user_key"], team_key))

    @dlt.resource(name="pipelines", primary_key="pipeline_key", write_disposition=replace)
    def pipelines() -> Iterator[Any]:
        yield from _emit(report, "pipelines", *split_rows("pipelines", reader.pipelines(), pipeline_row,
                                                            ["pipeline_key"]))

    @dlt.resource(name="stages", primary_key=("pipeline_key", "stage_key"), write_disposition=replace)
    def stages() -> Iterator[Any]:
        yield from _emit(report, "stages", [row for p in reader.keyed_pipelines() for row in stage_rows(p)])

    @dlt.resource(name="pipeline_fields", primary_key=("pipeline_key", "field_key"), write_disposition=replace)
    def pipeline_fields() -> Iterator[Any]:
        rows = [row for p in reader.keyed_pipelines() for row in pipeline_field_rows(p)[0]]
        yield from _emit(report, "pipeline_fields", *split_keyed("pipeline_fields", rows, ["field_key"]))

    @dlt.resource(
        name="pipeline_field_options", primary_key=("pipeline_key", "field_key", "option_key"),
        write_disposition=replace,
    )
    def pipeline_field_options() -> Iterator[Any]:
        rows = [row for p in reader.keyed_pipelines() for row in pipeline_field_rows(p)[1]]
        yield from _emit(report, "pipeline_field_options",
                         *split_keyed("pipeline_field_options", rows, ["field_key", "option_key"]))

    @dlt.resource(name="pipeline_newsfeed", primary_key="newsfeed_key", write_disposition=replace)
    def pipeline_newsfeed() -> Iterator[Any]:
        @dlt.defer
        def one_pipeline(pipeline_key: str) -> Iterator[Any]:
            return iter(list(_emit(report, "pipeline_newsfeed", *split_rows(
                "pipeline_newsfeed", reader.pipeline_newsfeed(pipeline_key),
                lambda e: newsfeed_row(e, pipeline_key), ["newsfeed_key"], pipeline_key))))

        for p in reader.keyed_pipelines():
            yield one_pipeline(str(entity_key(p, "pipelineKey")))

    @dlt.resource(name="snippets", primary_key="snippet_key", write_disposition=replace)
    def snippets() -> Iterator[Any]:
        yield from _emit(report, "snippets", *split_rows("snippets", reader.snippets(), snippet_row, ["snippet_key"]))

    @dlt.resource(name="contacts", primary_key="contact_key", write_disposition=replace)
    def contacts() -> Iterator[Any]:
        for team_key in reader.team_keys():
            yield from _emit(report, "contacts", *split_rows(
                "contacts", reader.contacts(team_key), contact_row, ["contact_key"], team_key))

    @dlt.resource(name="organizations", primary_key="organization_key", write_disposition=replace)
    def organizations() -> Iterator[Any]:
        for team_key in reader.team_keys():
            yield from _emit(report, "organizations", *split_rows(
                "organizations", reader.organizations(team_key), organization_row, ["organization_key"], team_key))

    @dlt.resource(name="boxes", primary_key="box_key", write_disposition=replace)
    def boxes() -> Iterator[Any]:
        for p in reader.keyed_pipelines():
            names = stage_names(p)
            pipeline_key = entity_key(p, "pipelineKey")
            for page in reader.box_pages(p):
                rows, rejected = split_rows("boxes", page, lambda b: box_row(b, names), ["box_key"], pipeline_key)
                report.boxes_listed(len(rows))
                yield from _emit(report, "boxes", rows, rejected)

    @dlt.transformer(name="box_field_values", primary_key=("box_key", "field_key"), write_disposition=replace)
    def box_field_values(page: Rows) -> Iterator[Rows]:
        fields_by_pipeline = {
            str(entity_key(p, "pipelineKey")): index_fields(p.get("fields")) for p in reader.keyed_pipelines()
        }
        lookups = reader.name_lookups()
        rows = []
        for box in _keyed_boxes(page):
            rows.extend(box_field_value_rows(
                {**box, "boxKey": box["box_key"]}, fields_by_pipeline.get(str(box.get("pipelineKey")), {}), lookups
            ))
        report.decoded(summarize_decode_statuses(rows))
        if rows:
            yield rows

    def child_transformer(endpoint: ChildEndpoint) -> DltResource:
        def transform(box: dict[str, Any], items: list[Any], items_json: str | None,
                      rows: Rows, rejected: Rows, basis: Rows) -> None:
            """The ONE transform of a box's raw child items (read now or kept in the basis) into
            ``rows``/``rejected``, and the basis row that keeps them (``items_json``, taken before
            the transform; None when the run keeps no basis) for the next refresh."""
            built, refused = split_rows(endpoint.table, items, lambda item: endpoint.build_row(item, box),
                                        [endpoint.key_column], box["box_key"])
            rows.extend(built)
            rejected.extend(refused)
            if items_json is not None:
                basis.append({"box_key": box["box_key"], "child_table": endpoint.table,
                              "pipeline_key": box.get("pipelineKey"), "fingerprint": box_fingerprint(box),
                              "items_json": items_json})

        def emitted(rows: Rows, rejected: Rows, basis: Rows) -> list[Any]:
            out = list(_emit(report, endpoint.table, rows, rejected))
            if basis:  # to the basis table (a variant declared on the resource: no per-item hints)
                out.append(dlt.mark.with_table_name(basis, BASIS_CHILDREN_TABLE))
            return out

        @dlt.defer
        def one_box(box: dict[str, Any]) -> Iterator[Any]:
            # An iterator, not a list: dlt reads it as a source of several items (rows, then the
            # marked rejected records and basis row), where a returned list would be one item for one table.
            items = reader.box_children(box, endpoint)
            if items is None:  # gone: no rows, and no basis (the next refresh reads it again)
                return iter(())
            rows: Rows = []
            rejected: Rows = []
            basis: Rows = []
            transform(box, items, children_json(items) if refresh.keeps_basis else None, rows, rejected, basis)
            return iter(emitted(rows, rejected, basis))

        def fetch(page: Rows) -> Iterator[Any]:
            kept_rows: Rows = []  # the kept boxes of a page go out together: one item, not one per box
            kept_rejected: Rows = []
            kept_basis: Rows = []
            for box in _keyed_boxes(page):
                if not reader.needs_call(box, endpoint):
                    report.call_skipped(endpoint.table)
                    continue
                kept = refresh.kept_children(box, endpoint.table, reader.me_key)
                if kept is None:
                    yield one_box(box)
                else:
                    transform(box, json.loads(kept), kept, kept_rows, kept_rejected, kept_basis)
            yield from emitted(kept_rows, kept_rejected, kept_basis)

        resource = dlt.transformer(fetch, name=endpoint.table, primary_key=endpoint.key_column,
                                   write_disposition=replace)
        # The basis table as a variant of this resource, declared once (before the child table's own
        # columns, which it would otherwise inherit): its rows then go out marked with a table name
        # only. Hints on every item would make dlt recompute the table schema per item (the
        # 20,000-box refresh spent minutes there).
        resource.apply_hints(table_name=BASIS_CHILDREN_TABLE, columns=dict(TABLE_COLUMNS[BASIS_CHILDREN_TABLE]),
                             primary_key=["box_key", "child_table"], create_table_variant=True)
        return _declared(resource)

    @dlt.transformer(name=BOX_NEWSFEED.table, primary_key=BOX_NEWSFEED.key_column, write_disposition=replace)
    def box_newsfeed(page: Rows) -> Iterator[Any]:
        """Per-box newsfeed, only for the boxes ``history`` picks (new or moved since the previous run).

        The table is created even when no box is picked (the first run), so readers can rely on it.
        """
        yield dlt.mark.materialize_table_schema()

        @dlt.defer
        def one_box(box: dict[str, Any]) -> Iterator[Any]:
            items = reader.box_newsfeed(box)
            return iter(list(_emit(report, BOX_NEWSFEED.table, *split_rows(
                BOX_NEWSFEED.table, items, lambda e: BOX_NEWSFEED.build_row(e, box), [BOX_NEWSFEED.key_column],
                box["box_key"]))))

        for box in _keyed_boxes(page):
            if history.needs(box):
                yield one_box(box)
            else:
                report.history_skipped()

    @dlt.transformer(name="box_task_assignees", primary_key=("task_key", "assignee_id"), write_disposition=replace)
    def box_task_assignees(tasks: Rows) -> Iterator[Rows]:
        """One row per (task, assignee): see :func:`streak_source.people.task_assignee_rows`."""
        rows = [row for task in tasks if task.get("task_key") is not None for row in task_assignee_rows(task)]
        if rows:  # a page of rejected tasks (marked for rejected_records) must give no rows
            yield rows

    @dlt.resource(name=REJECTED_TABLE, write_disposition=replace, columns=REJECTED_COLUMNS)
    def rejected_records() -> Iterator[Rows]:
        """Declares the table (so it is replaced, emptied, every run); rows come from the other resources."""
        yield from ()

    @dlt.resource(name=BASIS_TABLE, primary_key="loaded_at", write_disposition=replace,
                  columns=TABLE_COLUMNS[BASIS_TABLE])
    def refresh_basis() -> Iterator[Rows]:
        """This run's stamp: the account, base URL, layout and mode a later ``changed`` refresh checks
        (none when the run keeps no basis: the table is emptied, so no stale stamp outlives its basis)."""
        if refresh.keeps_basis:
            yield [refresh.stamp_row(reader.me_key, base_url)]

    @dlt.resource(name=BASIS_CHILDREN_TABLE, primary_key=("box_key", "child_table"), write_disposition=replace,
                  columns=TABLE_COLUMNS[BASIS_CHILDREN_TABLE])
    def refresh_basis_children() -> Iterator[Rows]:
        """Declares the table (replaced every run); rows come from the child tables' transformers."""
        yield from ()

    for resource in (users, teams, team_members_, pipelines, stages, pipeline_fields, pipeline_field_options,
                     pipeline_newsfeed, snippets, contacts, organizations, boxes, box_newsfeed, box_task_assignees):
        _declared(resource)
    _declared(box_field_values, cast(dict[str, TColumnSchema], BOX_FIELD_VALUES_COLUMNS))
    yield from (users, teams, team_members_, pipelines, stages, pipeline_fields, pipeline_field_options,
                pipeline_newsfeed, snippets, contacts, organizations, rejected_records, refresh_basis,
                refresh_basis_children)
    yield boxes
    yield boxes | box_field_values
    yield boxes | box_newsfeed
    for endpoint in CHILD_ENDPOINTS:
        child = boxes | child_transformer(endpoint)
        yield child
        if endpoint.table == "box_tasks":
            yield child | box_task_assignees


def _declared(resource: DltResource, columns: Mapping[str, TColumnSchema] | None = None) -> DltResource:
    """``resource`` with every column of its table declared (``columns``, default its table's in
    streak_source/columns.py). The ``rejected_records`` variant is declared first: a variant starts
    as a copy of the resource's hints, and would otherwise carry all these columns into that table."""
    declare_rejected_variant(resource)
    resource.apply_hints(columns=dict(columns if columns is not None else TABLE_COLUMNS[resource.name]))
    return resource


def _keyed_boxes(page: Rows) -> Iterator[dict[str, Any]]:
    """The box rows of a page (rejected records yielded by ``boxes`` reach transformers too)."""
    return (box for box in page if box.get("box_key") is not None)
