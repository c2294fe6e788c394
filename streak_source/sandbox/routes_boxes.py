"""Handlers for pipelines, stages, fields, boxes and everything under a box (paths and shapes:
``endpoints.py``)."""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from . import render, render_boxes
from .keys import datastore_key
from .model import NEWSFEED_CAP, Box, NewsfeedEntry, Pipeline
from .paging import DEFAULT_LIMIT, page_window
from .responses import (
    NOT_FOUND,
    ApiError,
    RouteBase,
    json_array,
    json_response,
    page_body,
    to_json_bytes,
)

BOX_SORTS: Final = {"creationTimestamp": "creation_ms", "lastUpdatedTimestamp": "last_updated_ms"}
DETAIL_LEVELS: Final = ("ALL", "CONDENSED")
TIMELINE_FILTERS: Final = (
    "CALL_LOGS",
    "COMMENTS",
    "FILES",
    "EMAILS",
    "HANGOUTS_CHAT",
    "MEETING_NOTES",
    "NEWSFEED_BOX_CREATION_MOVE",
    "NEWSFEED_BOX_EDIT",
)
AGENDA_DIRECTIONS: Final = ("desc", "past", "asc", "future")
DAY_MS: Final = 86_400_000


def _detail_level(request: Request) -> None:
    detail = request.query_params.get("detailLevel", "ALL")
    if detail not in DETAIL_LEVELS:
        raise ApiError(400, f"invalid detailLevel {detail!r}: use ALL or CONDENSED")


class BoxRoutes(RouteBase):
    """Pipelines and boxes."""

    # ------------------------------------------------------------------ pipelines

    def _pipeline_bytes(self, pipeline: Pipeline) -> bytes:
        return self._entity(
            "pipeline", pipeline.key, lambda: render.render_pipeline(pipeline, self.account)
        )

    def _sorted_pipelines(self, request: Request) -> list[Pipeline]:
        sort_by = request.query_params.get("sortBy")
        pipelines = list(self.account.pipelines)
        if sort_by == "lastUpdatedTimestamp":
            pipelines.sort(key=lambda p: (p.last_updated_ms, p.key), reverse=True)
        elif sort_by not in (None, "", "creationTimestamp"):
            raise ApiError(400, f"invalid sortBy: {sort_by!r}")
        return pipelines

    def pipelines(self, request: Request) -> Response:
        pipelines = self._sorted_pipelines(request)
        return json_response(json_array([self._pipeline_bytes(p) for p in pipelines]))

    def pipelines_v2(self, request: Request) -> Response:
        pipelines = self._sorted_pipelines(request)
        return self._v2_page(request, [self._pipeline_bytes(p) for p in pipelines])

    def pipeline(self, request: Request) -> Response:
        return json_response(self._pipeline_bytes(self._pipeline(request)))

    def stages(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        return json_response(
            self._entity("stages", pipeline.key, lambda: render.render_stages(pipeline))
        )

    def stage(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        stage_key = self._path_key(request, "stage_key")
        stage = next((s for s in pipeline.stages if s.key == stage_key), None)
        if stage is None:
            raise ApiError(404, NOT_FOUND)
        count = Counter(b.stage_key for b in pipeline.boxes)[stage.key]
        return json_response(to_json_bytes(render.render_stage(stage, count)))

    def fields(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        items = self._items(
            "fields", pipeline.key, lambda: [render.render_field(f) for f in pipeline.fields]
        )
        return json_response(json_array(items))

    def field(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        field_key = self._path_key(request, "field_key")
        found = next((f for f in pipeline.fields if f.key == field_key), None)
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return json_response(to_json_bytes(render.render_field(found)))

    def _newsfeed(self, request: Request, kind: str, key: str, entries: list[NewsfeedEntry]) -> Response:
        _detail_level(request)
        items = self._items(
            kind, key, lambda: [render.render_newsfeed_entry(e) for e in entries]
        )
        return json_response(json_array(items))

    def pipeline_newsfeed(self, request: Request) -> Response:
        """``detailLevel=CONDENSED`` serves the same entries as ``ALL``."""
        pipeline = self._pipeline(request)
        return self._newsfeed(request, "newsfeed", pipeline.key, pipeline.newsfeed)

    def box_newsfeed(self, request: Request) -> Response:
        box = self._box(request)
        entries = self.lookups.box_events.get(box.key, [])[: NEWSFEED_CAP]
        return self._newsfeed(request, "box_newsfeed", box.key, entries)

    def user_newsfeed(self, request: Request) -> Response:
        return self._newsfeed(
            request, "user_newsfeed", "", self.lookups.all_events[: NEWSFEED_CAP]
        )

    # ------------------------------------------------------------------ box lists

    def _box_bytes(self, box: Box) -> bytes:
        return self._entity("box", box.key, lambda: render_boxes.render_box(box, self.account))

    def _ordered_boxes(self, request: Request, pipeline: Pipeline) -> list[Box]:
        params = request.query_params
        sort_by = params.get("sortBy") or "creationTimestamp"
        if sort_by not in BOX_SORTS:
            raise ApiError(400, f"invalid sortBy: {sort_by!r}")
        ordered = self._caches.sorted_boxes.get((pipeline.key, sort_by))
        if ordered is None:
            attribute = BOX_SORTS[sort_by]
            ordered = sorted(
                pipeline.boxes, key=lambda b: (getattr(b, attribute), b.key), reverse=True
            )
            self._caches.sorted_boxes[(pipeline.key, sort_by)] = ordered
        stage_key = params.get("stageKey")
        if stage_key:
            ordered = [b for b in ordered if b.stage_key == stage_key]
        return ordered

    def _box_page(self, request: Request, ordered: list[Box], as_array: bool) -> Response:
        page = self._int_param(request, "page", 0, 0) or 0
        limit = self._limit(request) or DEFAULT_LIMIT
        window = page_window(len(ordered), page, limit)
        chosen = [self._box_bytes(b) for b in ordered[window.start : window.end]]
        if as_array:
            return json_response(json_array(chosen))
        return json_response(page_body(chosen, window.has_next))

    def boxes(self, request: Request) -> Response:
        """A plain array without ``page``/``limit``; with them ``{results, hasNextPage}`` (or a
        plain array when the sandbox runs with ``boxes_paged_as_array``)."""
        ordered = self._ordered_boxes(request, self._pipeline(request))
        params = request.query_params
        if "page" not in params and "limit" not in params:
            return json_response(json_array([self._box_bytes(b) for b in ordered]))
        return self._box_page(request, ordered, self.boxes_paged_as_array)

    boxes_paged_as_array: bool = False

    def boxes_v2(self, request: Request) -> Response:
        ordered = self._ordered_boxes(request, self._pipeline(request))
        return self._box_page(request, ordered, False)

    def all_boxes(self, request: Request) -> Response:
        return json_response(json_array([self._box_bytes(b) for b in self.account.all_boxes()]))

    def invented_boxes(self, request: Request) -> Response:
        """The ``invent-boxes`` fault: every page full of boxes never seen before, more to come."""
        pipeline = self._pipeline(request)
        page = self._int_param(request, "page", 0, 0) or 0
        limit = self._limit(request) or DEFAULT_LIMIT
        stage = pipeline.stage_order[0] if pipeline.stage_order else None
        boxes: list[bytes] = []
        for index in range(page * limit, (page + 1) * limit):
            moment = self.account.anchor_ms - 1000 * (index + 1)
            invented = Box(
                key=datastore_key(("Organization", "invented.example"), ("Case", 10**15 + index)),
                pipeline_key=pipeline.key,
                name=f"Invented box {index}",
                notes="",
                stage_key=stage,
                fields={},
                creator_key=self.account.me.key,
                assignee_keys=[],
                follower_keys=[],
                contact_links=[],
                organization_links=[],
                linked_box_keys=[],
                email_addresses=[],
                creation_ms=moment,
                last_updated_ms=moment,
                stage_change_ms=moment,
            )
            boxes.append(to_json_bytes(render_boxes.render_box(invented, self.account)))
        return json_response(page_body(boxes, True))

    # ------------------------------------------------------------------ one box

    def box(self, request: Request) -> Response:
        return json_response(self._box_bytes(self._box(request)))

    def box_markdown(self, request: Request) -> Response:
        box = self._box(request)
        text = render_boxes.render_box_markdown(box, self.account)
        return Response(text.encode(), media_type="text/markdown")

    def box_fields(self, request: Request) -> Response:
        box = self._box(request)
        values = render_boxes.render_box_field_values(box, self.account)
        return json_response(to_json_bytes(values))

    def box_field(self, request: Request) -> Response:
        box = self._box(request)
        field_key = self._path_key(request, "field_key")
        pipeline = self.account.pipelines_by_key[box.pipeline_key]
        if field_key not in box.fields and all(f.key != field_key for f in pipeline.fields):
            raise ApiError(404, NOT_FOUND)
        return json_response(to_json_bytes({"key": field_key, "value": box.fields.get(field_key)}))

    def _children(self, box: Box, kind: str, build: Callable[[], list[Any]]) -> list[bytes]:
        """A box's child list as served; the hostile account may end one with a ``null`` item."""
        items = self._items(kind, box.key, build)
        return [*items, b"null"] if kind in box.null_items else items

    def box_tasks(self, request: Request) -> Response:
        box = self._box(request)
        items = self._children(
            box, "tasks", lambda: [render_boxes.render_task(t, box, self.account) for t in box.tasks]
        )
        return self._v2_page(request, items)

    def box_threads(self, request: Request) -> Response:
        box = self._box(request)
        items = self._children(
            box, "threads", lambda: [render_boxes.render_thread(t, box) for t in box.threads]
        )
        return json_response(json_array(items))

    def _comment_items(self, box: Box) -> list[bytes]:
        return self._children(
            box,
            "comments",
            lambda: [render_boxes.render_comment(c, box, self.account) for c in box.comments],
        )

    def box_comments(self, request: Request) -> Response:
        box = self._box(request)
        return self._v2_page(request, self._comment_items(box), all_without_params=True)

    def box_comments_v1(self, request: Request) -> Response:
        return json_response(json_array(self._comment_items(self._box(request))))

    def box_meetings(self, request: Request) -> Response:
        box = self._box(request)
        items = self._children(
            box, "meetings", lambda: [render_boxes.render_meeting(m, box) for m in box.meetings]
        )
        return self._v2_page(request, items)

    def box_files(self, request: Request) -> Response:
        box = self._box(request)
        items = self._children(
            box, "files", lambda: [render_boxes.render_file(f, box) for f in box.files]
        )
        return json_response(json_array(items))

    def box_reminders(self, request: Request) -> Response:
        self._box(request)
        return json_response(b"[]")

    def timeline(self, request: Request) -> Response:
        """Token paging: the first call may send ``filters`` (repeated or ``[A,B]``),
        ``direction``, ``startTimestamp``, ``limit``; later calls send only the token, as
        ``nextPage`` or ``nextPageToken`` (the reference is unsure of the name)."""
        box = self._box(request)
        params = request.query_params
        token = params.get("nextPage") or params.get("nextPageToken")
        if token:
            if len(params) > 1:
                raise ApiError(400, "a page token must be sent alone")
            state = _decode_token(token)
        else:
            raw = [f for v in params.getlist("filters") for f in v.strip("[]").split(",") if f]
            unknown = [f for f in raw if f not in TIMELINE_FILTERS]
            if unknown:
                raise ApiError(400, f"invalid filters: {unknown}")
            direction = params.get("direction", "Descending")
            if direction not in ("Ascending", "Descending"):
                raise ApiError(400, f"invalid direction {direction!r}")
            state = {
                "filters": raw,
                "direction": direction,
                "start": self._int_param(request, "startTimestamp", None, 0),
                "limit": self._limit(request) or DEFAULT_LIMIT,
                "offset": 0,
            }
        items = render_boxes.timeline_items(box, self.account)
        if state["filters"]:
            items = [i for i in items if i[1] in state["filters"]]
        if state["direction"] == "Ascending":
            items.reverse()
            if state["start"] is not None:
                items = [i for i in items if i[0] > state["start"]]
        elif state["start"] is not None:
            items = [i for i in items if i[0] < state["start"]]
        offset, limit = int(state["offset"]), int(state["limit"])
        chosen = [entry for _, _, entry in items[offset : offset + limit]]
        more = offset + limit < len(items)
        next_token = _encode_token({**state, "offset": offset + limit}) if more else None
        return json_response(to_json_bytes({"entries": chosen, "nextPage": next_token}))

    # ------------------------------------------------------------------ single children

    def task(self, request: Request) -> Response:
        task, box = self._found(self.lookups.tasks, request, "task_key")
        return json_response(to_json_bytes(render_boxes.render_task(task, box, self.account)))

    def thread(self, request: Request) -> Response:
        thread, box = self._found(self.lookups.threads, request, "thread_key")
        return json_response(to_json_bytes(render_boxes.render_thread(thread, box)))

    def comment(self, request: Request) -> Response:
        comment, box = self._found(self.lookups.comments, request, "comment_key")
        return json_response(
            to_json_bytes(render_boxes.render_comment(comment, box, self.account))
        )

    def meeting(self, request: Request) -> Response:
        meeting, box = self._found(self.lookups.meetings, request, "meeting_key")
        return json_response(to_json_bytes(render_boxes.render_meeting(meeting, box)))

    def file(self, request: Request) -> Response:
        file, box = self._found(self.lookups.files, request, "file_key")
        return json_response(to_json_bytes(render_boxes.render_file(file, box)))

    def file_contents(self, request: Request) -> Response:
        """Placeholder bytes of the file's size (the account holds no real contents)."""
        file, _ = self._found(self.lookups.files, request, "file_key")
        if file.file_type != "GMAIL_API":
            raise ApiError(400, "only GMAIL_API files have retrievable contents")
        pattern = f"{file.file_name} (streak sandbox placeholder)\n".encode()
        body = (pattern * (file.size // len(pattern) + 1))[: file.size]
        return Response(body, media_type=file.mime_type)

    def file_link(self, request: Request) -> Response:
        file, _ = self._found(self.lookups.files, request, "file_key")
        url = f"{request.base_url}api/v1/files/{file.key}/contents"
        return json_response(to_json_bytes({"fileKey": file.key, "url": url}))

    def agenda(self, request: Request) -> Response:
        """``GET /v2/tasks``: tasks assigned to ``userKeys`` (default: me), incomplete unless
        ``includeCompleted=true``; ``desc``/``past``: due before tomorrow, latest first;
        ``asc``/``future``: due from tomorrow, soonest first; at most ``limit`` (default 50)
        per assignee; ``pipelineKey`` filters."""
        params = request.query_params
        direction = params.get("direction", "desc")
        if direction not in AGENDA_DIRECTIONS:
            raise ApiError(400, f"invalid direction {direction!r}")
        users = params.getlist("userKeys") or [self.account.me.key]
        completed = params.get("includeCompleted", "false").lower() == "true"
        pipeline_key = params.get("pipelineKey")
        limit = self._limit(request, 50) or 50
        tomorrow = (self.account.anchor_ms // DAY_MS + 1) * DAY_MS
        chosen: dict[str, Any] = {}
        for user in users:
            found = [
                (task, box)
                for task, box in self.lookups.tasks.values()
                if user in task.assignee_keys
                and (completed or not task.done)
                and task.due_ms is not None
                and (pipeline_key is None or box.pipeline_key == pipeline_key)
                and ((task.due_ms < tomorrow) == (direction in ("desc", "past")))
            ]
            found.sort(key=lambda pair: (pair[0].due_ms, pair[0].key))
            if direction in ("desc", "past"):
                found.reverse()
            for task, box in found[:limit]:
                chosen[task.key] = render_boxes.render_task(task, box, self.account)
        body = page_body([to_json_bytes(t) for t in chosen.values()], False)
        return json_response(body)


def _encode_token(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid page token") from None
    if not isinstance(state, dict) or not {"filters", "direction", "start", "limit", "offset"} <= set(state):
        raise ApiError(400, "invalid page token")
    return state
