"""dlt source for Streak CRM: the whole account, decoded, with ``replace`` write disposition.

``streak_source()`` is the public API. It assembles one dlt resource per table (see the README's "Tables" section);
per-box children (tasks, threads, comments, meetings, files, field values) are transformers on
``boxes``. Child calls are deferred into dlt's extract thread pool and all pass one client-side
rate limiter; a box whose own counters say it has no tasks gets no tasks call.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, cast
from urllib.parse import urlparse

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from streak_source import settings
from streak_source.client import RunReport, StreakClient
from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    box_field_value_rows,
    index_fields,
    summarize_decode_statuses,
)
from streak_source.reader import StreakReader
from streak_source.settings import CHILD_ENDPOINTS, ChildEndpoint, PageSizes
from streak_source.transform import (
    box_row,
    comment_row,
    contact_row,
    file_row,
    meeting_row,
    newsfeed_row,
    organization_row,
    pipeline_field_rows,
    pipeline_row,
    snippet_row,
    stage_names,
    stage_rows,
    task_row,
    team_member_rows,
    team_row,
    thread_row,
    user_row,
)

__all__ = ["streak_source", "RunReport", "PageSizes"]

_CHILD_ROW_BUILDERS = {
    "box_tasks": (task_row, "task_key"),
    "box_threads": (thread_row, "thread_key"),
    "box_comments": (comment_row, "comment_key"),
    "box_meetings": (meeting_row, "meeting_key"),
    "box_files": (file_row, "file_key"),
}

_TZ_TIMESTAMP: TColumnSchema = {"data_type": "timestamp", "timezone": True, "nullable": True}


def _timestamps(*names: str) -> dict[str, TColumnSchema]:
    """Column hints so optional timestamps exist (NULL) even when no row has a value."""
    return {name: TColumnSchema(**_TZ_TIMESTAMP) for name in names}


BOX_TIMESTAMP_COLUMNS = (
    "creation_timestamp", "last_updated_timestamp", "last_saved_timestamp", "last_stage_change_timestamp",
    "first_email_timestamp", "last_email_updated_timestamp", "first_email_received_timestamp",
    "last_email_received_timestamp", "first_email_sent_timestamp", "last_email_sent_timestamp",
    "last_comment_timestamp", "soonest_task_due_date", "earliest_overdue_task_due_date",
    "first_call_log_timestamp", "most_recent_call_log_timestamp", "first_meeting_notes_timestamp",
    "most_recent_meeting_notes_timestamp", "last_touchpoint_timestamp",
)


def validate_settings(base_url: str, max_requests_per_second: float, page_sizes: PageSizes) -> None:
    """Fail before the first call, with a message naming the setting that is wrong."""
    parsed = urlparse(str(base_url))
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"sources.streak.base_url must be an http(s) URL, got {base_url!r}")
    if not isinstance(max_requests_per_second, (int, float)) or max_requests_per_second <= 0:
        raise ValueError(f"sources.streak.max_requests_per_second must be > 0, got {max_requests_per_second!r}")
    for name, value in vars(page_sizes).items():
        if not isinstance(value, int) or not 1 <= value <= settings.MAX_PAGE_SIZE:
            raise ValueError(f"sources.streak.page_sizes.{name} must be 1..{settings.MAX_PAGE_SIZE}, got {value!r}")


def make_page_sizes(overrides: Mapping[str, Any] | None) -> PageSizes:
    """``[sources.streak.page_sizes]`` (e.g. ``boxes = 100``) over the defaults."""
    if not overrides:
        return settings.DEFAULT_PAGE_SIZES
    known = set(vars(settings.DEFAULT_PAGE_SIZES))
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"sources.streak.page_sizes: unknown endpoint(s) {unknown}; known: {sorted(known)}")
    try:
        return PageSizes(**{name: int(value) for name, value in overrides.items()})
    except (TypeError, ValueError):
        raise ValueError(f"sources.streak.page_sizes must map endpoint names to integers, got {dict(overrides)!r}") from None


@dlt.source(name="streak", max_table_nesting=0)
def streak_source(
    api_key: str = dlt.secrets.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    max_requests_per_second: float = settings.DEFAULT_MAX_REQUESTS_PER_SECOND,
    skip_empty_children: bool = True,
    page_sizes: dict[str, int] | None = None,
    report: RunReport | None = None,
) -> list[DltResource]:
    """Every readable object of a Streak account, one table each (dataset layout in the README's "Tables" section).

    Args:
        api_key: Streak API key (``[sources.streak] api_key`` in secrets.toml or
            ``SOURCES__STREAK__API_KEY``).
        base_url: API root; Streak's by default, the sandbox's in demo and tests.
        max_requests_per_second: client-side limit shared by every request of the run (Streak asks
            for at most 10/s); 429 + Retry-After is still honoured on top.
        skip_empty_children: skip a box's child endpoint when the box's own counters say it is
            empty (and skip listing an empty pipeline). Turn off to call everything.
        page_sizes: ``limit`` per paged endpoint, default the largest Streak allows.
        report: collects what the run did (calls, skipped boxes, undecoded values) for a summary.
    """
    sizes = make_page_sizes(page_sizes)
    validate_settings(base_url, max_requests_per_second, sizes)
    client = StreakClient(api_key, base_url, max_requests_per_second, report=report)
    reader = StreakReader(client, sizes, skip_empty_children=skip_empty_children)
    return list(_resources(reader))


def _resources(reader: StreakReader) -> Iterator[DltResource]:
    replace: Final = "replace"

    @dlt.resource(name="users", primary_key="user_key", write_disposition=replace)
    def users() -> Iterator[list[dict[str, Any]]]:
        yield [user_row(user, is_me) for user, is_me in reader.users()]

    @dlt.resource(name="teams", primary_key="team_key", write_disposition=replace)
    def teams() -> Iterator[list[dict[str, Any]]]:
        yield [team_row(team) for team in reader.teams()]

    @dlt.resource(name="team_members", primary_key=("team_key", "user_key"), write_disposition=replace)
    def team_members() -> Iterator[list[dict[str, Any]]]:
        yield [row for team in reader.teams() for row in team_member_rows(team)]

    @dlt.resource(
        name="pipelines", primary_key="pipeline_key", write_disposition=replace,
        columns=_timestamps("creation_timestamp", "last_updated_timestamp", "last_saved_timestamp"),
    )
    def pipelines() -> Iterator[list[dict[str, Any]]]:
        yield [pipeline_row(p) for p in reader.pipelines()]

    @dlt.resource(name="stages", primary_key=("pipeline_key", "stage_key"), write_disposition=replace)
    def stages() -> Iterator[list[dict[str, Any]]]:
        yield [row for p in reader.pipelines() for row in stage_rows(p)]

    @dlt.resource(name="pipeline_fields", primary_key=("pipeline_key", "field_key"), write_disposition=replace)
    def pipeline_fields() -> Iterator[list[dict[str, Any]]]:
        yield [row for p in reader.pipelines() for row in pipeline_field_rows(p)[0]]

    @dlt.resource(
        name="pipeline_field_options", primary_key=("pipeline_key", "field_key", "option_key"),
        write_disposition=replace,
    )
    def pipeline_field_options() -> Iterator[list[dict[str, Any]]]:
        yield [row for p in reader.pipelines() for row in pipeline_field_rows(p)[1]]

    @dlt.resource(name="pipeline_newsfeed", primary_key="newsfeed_key", write_disposition=replace,
                  columns=_timestamps("timestamp"))
    def pipeline_newsfeed() -> Iterator[Any]:
        @dlt.defer
        def one_pipeline(pipeline_key: str) -> list[dict[str, Any]]:
            return [newsfeed_row(e, pipeline_key) for e in reader.pipeline_newsfeed(pipeline_key)]

        for p in reader.pipelines():
            yield one_pipeline(str(p.get("key") or p.get("pipelineKey")))

    @dlt.resource(name="snippets", primary_key="snippet_key", write_disposition=replace)
    def snippets() -> Iterator[list[dict[str, Any]]]:
        yield [snippet_row(s) for s in reader.snippets()]

    @dlt.resource(name="contacts", primary_key="contact_key", write_disposition=replace,
                  columns=_timestamps("creation_date", "last_saved_timestamp", "version_timestamp",
                                      "last_enrichment_timestamp"))
    def contacts() -> Iterator[list[dict[str, Any]]]:
        for team_key in reader.team_keys():
            yield [contact_row(c) for c in reader.contacts(team_key)]

    @dlt.resource(name="organizations", primary_key="organization_key", write_disposition=replace,
                  columns=_timestamps("creation_date", "last_saved_timestamp", "version_timestamp",
                                      "last_enrichment_timestamp"))
    def organizations() -> Iterator[list[dict[str, Any]]]:
        for team_key in reader.team_keys():
            yield [organization_row(o) for o in reader.organizations(team_key)]

    @dlt.resource(name="boxes", primary_key="box_key", write_disposition=replace,
                  columns={**_timestamps(*BOX_TIMESTAMP_COLUMNS), "fields": {"data_type": "json"}})
    def boxes() -> Iterator[list[dict[str, Any]]]:
        for p in reader.pipelines():
            names = stage_names(p)
            for page in reader.box_pages(p):
                reader.client.report.boxes_listed(len(page))
                yield [box_row(box, names) for box in page]

    @dlt.transformer(name="box_field_values", primary_key=("box_key", "field_key"), write_disposition=replace,
                     columns=cast(dict[str, TColumnSchema], BOX_FIELD_VALUES_COLUMNS))
    def box_field_values(page: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        fields_by_pipeline = {
            str(p.get("key") or p.get("pipelineKey")): index_fields(p.get("fields")) for p in reader.pipelines()
        }
        lookups = reader.name_lookups()
        rows = []
        for box in page:
            rows.extend(box_field_value_rows(
                {**box, "boxKey": box["box_key"]}, fields_by_pipeline.get(str(box.get("pipelineKey")), {}), lookups
            ))
        reader.client.report.decoded(summarize_decode_statuses(rows))
        yield rows

    def child_transformer(endpoint: ChildEndpoint) -> DltResource:
        build_row, key_column = _CHILD_ROW_BUILDERS[endpoint.table]

        @dlt.defer
        def one_box(box: dict[str, Any]) -> list[dict[str, Any]]:
            return [build_row(item, box) for item in reader.box_children(box["box_key"], endpoint)]

        def fetch(page: list[dict[str, Any]]) -> Iterator[Any]:
            for box in page:
                if reader.needs_call(box, endpoint):
                    yield one_box(box)
                else:
                    reader.client.report.call_skipped(endpoint.table)

        return dlt.transformer(
            fetch, name=endpoint.table, primary_key=key_column, write_disposition=replace,
            columns=_child_timestamp_hints(endpoint.table),
        )

    yield from (users, teams, team_members, pipelines, stages, pipeline_fields, pipeline_field_options,
                pipeline_newsfeed, snippets, contacts, organizations)
    yield boxes
    yield boxes | box_field_values
    for endpoint in CHILD_ENDPOINTS:
        yield boxes | child_transformer(endpoint)


def _child_timestamp_hints(table: str) -> dict[str, TColumnSchema]:
    names = {
        "box_tasks": ("creation_date", "due_date", "last_status_change_date", "last_saved_timestamp"),
        "box_threads": ("creation_timestamp", "last_updated_timestamp", "last_email_timestamp"),
        "box_comments": ("timestamp", "last_saved_timestamp"),
        "box_meetings": ("creation_date", "start_timestamp", "last_saved_timestamp"),
        "box_files": (),
    }[table]
    return _timestamps(*names)
