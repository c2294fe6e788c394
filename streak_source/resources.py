"""The one place that turns the table of Streak objects (streak_source/objects.py) into dlt resources.

Each builder below makes one resource (or transformer) from one table row and the run's
:class:`Run`, so a resource can be built and tested on its own; :func:`all_resources` assembles the
source's list. Account-level objects become resources; per-box children become transformers on
``boxes``, their calls deferred into dlt's extract thread pool; derived tables (``box_field_values``,
``box_task_assignees``) and the run's own tables (``rejected_records``, ``refresh_basis*``) are
declared here too. Every table's columns come from streak_source/columns.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, cast

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from streak_source import objects, settings
from streak_source.clashes import resolve_clashes
from streak_source.client import RunReport
from streak_source.columns import TABLE_COLUMNS, ready_to_load
from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    box_field_value_rows,
    index_fields,
    summarize_decode_statuses,
)
from streak_source.history_calls import HistoryPlan
from streak_source.keys import as_key, entity_key
from streak_source.objects import AccountObject, BoxChild, Parent, RowBuilder
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
from streak_source.refresh import BASIS_CHILDREN_TABLE, BASIS_TABLE, RefreshPlan, box_fingerprint, children_json

__all__ = ["Run", "all_resources", "account_resource", "child_transformer"]

Rows = list[dict[str, Any]]

REPLACE: Final = "replace"


@dataclass(frozen=True)
class Run:
    """What every resource of one run shares: the reader (one client, one rate limiter, one report),
    which boxes get a newsfeed call, the refresh plan, and the origin the basis stamp records."""

    reader: StreakReader
    history: HistoryPlan
    refresh: RefreshPlan
    origin: str

    @property
    def report(self) -> RunReport:
        return self.reader.client.report


def all_resources(run: Run) -> Iterator[DltResource]:
    """Every resource of the source, in extraction order: the account-level tables, the run's own
    tables, then ``boxes`` and the per-box tables hanging off it."""
    by_table = {obj.table: account_resource(obj, run) for obj in objects.ACCOUNT_OBJECTS}
    boxes = by_table.pop("boxes")
    yield from by_table.values()
    yield from (rejected_records(), refresh_basis(run), refresh_basis_children())
    yield boxes
    yield boxes | box_field_values(run)
    yield boxes | box_newsfeed(objects.BOX_NEWSFEED, run)
    for child in objects.BOX_CHILDREN:
        transformer = boxes | child_transformer(child, run)
        yield transformer
        if child.table == "box_tasks":
            yield transformer | box_task_assignees()


def emitted(report: RunReport, table: str, rows: Rows, rejected: Sequence[dict[str, Any]] = ()) -> Iterator[Any]:
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


# -- account-level objects ---------------------------------------------------------------------


def account_resource(obj: AccountObject, run: Run) -> DltResource:
    """The resource of one account-level object: its items read per parent (the account, each keyed
    team or pipeline), built into rows, and those without a primary key sent to ``rejected_records``."""

    def batches(parent: Parent) -> Iterator[Any]:
        if obj.build_rows is not None:
            rows = obj.build_rows(parent.obj or {})
            yield from emitted(run.report, obj.table, *split_keyed(obj.table, rows, obj.primary_key))
            return
        build = cast(RowBuilder, obj.build_row)  # __post_init__: one of the two is given
        for items in obj.read(run.reader, obj, parent):
            rows, rejected = split_rows(obj.table, items, lambda item: build(item, parent), obj.primary_key,
                                        parent.key)
            if obj.listed is not None:
                obj.listed(run.report, len(rows))
            yield from emitted(run.report, obj.table, rows, rejected)

    @dlt.defer
    def deferred(parent: Parent) -> Iterator[Any]:
        return iter(list(batches(parent)))

    def extract() -> Iterator[Any]:
        run.reader.prefetch_once(lambda: account_reads(run.reader))  # the first account table starts them all
        for parent in parents(obj, run.reader):
            if obj.deferred:
                yield deferred(parent)
            else:
                yield from batches(parent)

    resource = dlt.resource(extract, name=obj.table, primary_key=obj.primary_key, write_disposition=REPLACE)
    return _declared(resource)


def account_reads(reader: StreakReader) -> list[Callable[[], object]]:
    """The lists the account-level tables read (objects.ACCOUNT_OBJECTS: those read by
    ``read_endpoint``, plus you and each team's users for ``users``), as memoized reads to start
    together: the account's lists at once, each team's and each pipeline's as soon as the teams and
    pipelines are in. Read one table at a time instead, they made the first ~12 calls of a run wait on
    each other (1.2 s at 100 ms latency, in which 40 req/s would have made 48 calls)."""
    called = [obj for obj in objects.ACCOUNT_OBJECTS if obj.read is objects.read_endpoint and obj.build_row]
    per_team = [settings.TEAM_USERS, *(obj.endpoint for obj in called if obj.per == "team")]
    per_pipeline = [obj.endpoint for obj in called if obj.per == "pipeline"]

    def each_team() -> None:
        reader.prefetch([partial(reader.read, endpoint, team_key=key)
                         for key in reader.team_keys() for endpoint in per_team])

    def each_pipeline() -> None:
        keys = [entity_key(pipeline, "pipelineKey") for pipeline in reader.keyed_pipelines()]
        reader.prefetch([partial(reader.read, endpoint, pipeline_key=key)
                         for key in keys if key is not None for endpoint in per_pipeline])

    return [reader.me, each_team, each_pipeline,
            *(partial(reader.read, obj.endpoint) for obj in called if obj.per == "account")]


def parents(obj: AccountObject, reader: StreakReader) -> Iterator[Parent]:
    """What ``obj`` is read under: the account once, or each keyed team / pipeline in listing order."""
    if obj.per == "account":
        yield Parent(None, None, reader.me_key)
        return
    listed = reader.keyed_teams() if obj.per == "team" else reader.keyed_pipelines()
    alias = "teamKey" if obj.per == "team" else "pipelineKey"
    for item in listed:
        yield Parent(item, entity_key(item, alias), reader.me_key)


# -- per-box objects ---------------------------------------------------------------------------


def child_transformer(child: BoxChild, run: Run) -> DltResource:
    """The transformer of one per-box table: called for each box unless the box's counters say it is
    empty, or its items kept from the refresh basis when the box did not change."""
    reader, report, refresh = run.reader, run.report, run.refresh

    def transform(box: dict[str, Any], items: list[Any], items_json: str | None,
                  rows: Rows, rejected: Rows, basis: Rows) -> None:
        """The ONE transform of a box's raw child items (read now or kept in the basis) into
        ``rows``/``rejected``, and the basis row that keeps them (``items_json``, taken before
        the transform; None when the run keeps no basis) for the next refresh."""
        built, refused = split_rows(child.table, items, lambda item: child.build_row(item, box),
                                    [child.primary_key], box["box_key"])
        rows.extend(built)
        rejected.extend(refused)
        if items_json is not None:
            basis.append({"box_key": box["box_key"], "child_table": child.table,
                          "pipeline_key": box.get("pipelineKey"), "fingerprint": box_fingerprint(box),
                          "items_json": items_json})

    def out(rows: Rows, rejected: Rows, basis: Rows) -> list[Any]:
        items = list(emitted(report, child.table, rows, rejected))
        if basis:  # to the basis table (a variant declared on the resource: no per-item hints)
            items.append(dlt.mark.with_table_name(basis, BASIS_CHILDREN_TABLE))
        return items

    @dlt.defer
    def one_box(box: dict[str, Any]) -> Iterator[Any]:
        # An iterator, not a list: dlt reads it as a source of several items (rows, then the
        # marked rejected records and basis row), where a returned list would be one item for one table.
        items = reader.box_children(box, child.endpoint, child.counters, child.table)
        if items is None:  # gone: no rows, and no basis (the next refresh reads it again)
            return iter(())
        rows: Rows = []
        rejected: Rows = []
        basis: Rows = []
        transform(box, items, children_json(items) if refresh.keeps_basis else None, rows, rejected, basis)
        return iter(out(rows, rejected, basis))

    def fetch(page: Rows) -> Iterator[Any]:
        kept_rows: Rows = []  # the kept boxes of a page go out together: one item, not one per box
        kept_rejected: Rows = []
        kept_basis: Rows = []
        for box in _keyed_boxes(page):
            if not reader.needs_call(box, child.counters):
                report.call_skipped(child.table)
                continue
            kept = refresh.kept_children(box, child.table, reader.me_key)
            if kept is None:
                yield one_box(box)
            else:
                transform(box, json.loads(kept), kept, kept_rows, kept_rejected, kept_basis)
        yield from out(kept_rows, kept_rejected, kept_basis)

    resource = dlt.transformer(fetch, name=child.table, primary_key=child.primary_key, write_disposition=REPLACE)
    # The basis table as a variant of this resource, declared once (before the child table's own
    # columns, which it would otherwise inherit): its rows then go out marked with a table name
    # only. Hints on every item would make dlt recompute the table schema per item (the
    # 20,000-box refresh spent minutes there).
    resource.apply_hints(table_name=BASIS_CHILDREN_TABLE, columns=dict(TABLE_COLUMNS[BASIS_CHILDREN_TABLE]),
                         primary_key=["box_key", "child_table"], create_table_variant=True)
    return _declared(resource)


def box_newsfeed(child: BoxChild, run: Run) -> DltResource:
    """Per-box newsfeed, only for the boxes ``run.history`` picks (new or moved since the previous run).

    The table is created even when no box is picked (the first run), so readers can rely on it.
    """
    reader, report = run.reader, run.report

    @dlt.defer
    def one_box(box: dict[str, Any]) -> Iterator[Any]:
        items = reader.box_children(box, child.endpoint, child.counters, child.table)
        report.history_call(fetched=items is not None)  # a vanished box counts as a call, with no rows
        return iter(list(emitted(report, child.table, *split_rows(
            child.table, items or [], lambda e: child.build_row(e, box), [child.primary_key], box["box_key"]))))

    def fetch(page: Rows) -> Iterator[Any]:
        yield dlt.mark.materialize_table_schema()
        for box in _keyed_boxes(page):
            if run.history.needs(box):
                yield one_box(box)
            else:
                report.history_skipped()

    return _declared(dlt.transformer(fetch, name=child.table, primary_key=child.primary_key,
                                     write_disposition=REPLACE))


def box_field_values(run: Run) -> DltResource:
    """One row per custom-field value of each box, decoded by its pipeline's field types
    (streak_source/field_values.py); no call of its own."""
    reader = run.reader

    def decode(page: Rows) -> Iterator[Rows]:
        fields_by_pipeline = {
            entity_key(p, "pipelineKey"): index_fields(p.get("fields")) for p in reader.keyed_pipelines()
        }
        lookups = reader.name_lookups()
        rows = []
        for box in _keyed_boxes(page):
            rows.extend(box_field_value_rows(
                {**box, "boxKey": box["box_key"]}, fields_by_pipeline.get(as_key(box.get("pipelineKey")), {}), lookups
            ))
        run.report.decoded(summarize_decode_statuses(rows))
        if rows:
            yield rows

    resource = dlt.transformer(decode, name="box_field_values", primary_key=("box_key", "field_key"),
                               write_disposition=REPLACE)
    return _declared(resource, cast(dict[str, TColumnSchema], BOX_FIELD_VALUES_COLUMNS))


def box_task_assignees() -> DltResource:
    """One row per (task, assignee): see :func:`streak_source.people.task_assignee_rows`."""

    def split(tasks: Rows) -> Iterator[Rows]:
        rows = [row for task in tasks if task.get("task_key") is not None for row in task_assignee_rows(task)]
        if rows:  # a page of rejected tasks (marked for rejected_records) must give no rows
            yield rows

    return _declared(dlt.transformer(split, name="box_task_assignees", primary_key=("task_key", "assignee_id"),
                                     write_disposition=REPLACE))


# -- the run's own tables ----------------------------------------------------------------------


def rejected_records() -> DltResource:
    """Declares the table (so it is replaced, emptied, every run); rows come from the other resources."""

    def nothing() -> Iterator[Rows]:
        yield from ()

    return dlt.resource(nothing, name=REJECTED_TABLE, write_disposition=REPLACE, columns=REJECTED_COLUMNS)


def refresh_basis(run: Run) -> DltResource:
    """This run's stamp: the account, origin, layout and mode a later ``changed`` refresh checks
    (none when the run keeps no basis: the table is emptied, so no stale stamp outlives its basis)."""

    def stamp() -> Iterator[Rows]:
        if run.refresh.keeps_basis:
            yield [run.refresh.stamp_row(run.reader.me_key, run.origin)]

    return dlt.resource(stamp, name=BASIS_TABLE, primary_key="loaded_at", write_disposition=REPLACE,
                        columns=TABLE_COLUMNS[BASIS_TABLE])


def refresh_basis_children() -> DltResource:
    """Declares the table (replaced every run); rows come from the child tables' transformers.

    Its schema is materialized even though it yields no rows, so the table carries this resource's
    hints, among them the loader file format the run sets on every resource (parquet on DuckDB).
    The transformers' variants of the table were declared before that format was set, and without
    it the ~140 MB of raw JSON went to DuckDB as INSERT statements: parsing those doubled the
    load's peak memory (docs/refresh.md, "Memory, measured")."""

    def nothing() -> Iterator[Any]:
        yield dlt.mark.materialize_table_schema()

    return dlt.resource(nothing, name=BASIS_CHILDREN_TABLE, primary_key=("box_key", "child_table"),
                        write_disposition=REPLACE, columns=TABLE_COLUMNS[BASIS_CHILDREN_TABLE])


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
