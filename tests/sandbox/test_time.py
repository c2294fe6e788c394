"""Sandbox time: ``Sandbox(day=N)``, ``advance``, ``__sandbox__/history`` and ``/changes``.

The month-long account (2,000 boxes, 30 days) is served once for the module; the day-over-day
diff test moves a smaller, busier account on in process, one day at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox, generate_account
from streak_source.sandbox.generator import DAY_MS
from streak_source.sandbox.ground_truth import is_field_value
from streak_source.sandbox.model import NEWSFEED_CAP, Account
from streak_source.sandbox.timeline import Timeline

pytestmark = pytest.mark.timeout(240)

ANCHOR = "2025-03-14"
MONTH_BOXES = 2000
MONTH_DAYS = 30
BUSY = {"changed": 0.1, "created": 0.02, "deleted": 0.01, "stage_added": 0.4, "field_added": 0.4}
"""Rates high enough that a few days hold every kind of change."""


class Month:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.auth = (sandbox.api_key, "")
        self.history = sandbox.history()
        self.changes = sandbox.changes()

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.sandbox.url(path), params=params or None, timeout=30)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        return response.json()

    def boxes_with(self, *types: str) -> list[str]:
        """Live boxes with a change of these types, in first-change order."""
        live = self.sandbox.account.boxes_by_key
        keys = dict.fromkeys(c["box_key"] for c in self.changes if c["type"] in types)
        return [k for k in keys if k in live]


@pytest.fixture(scope="module")
def month() -> Iterator[Month]:
    sandbox = Sandbox(boxes=MONTH_BOXES, anchor_date=ANCHOR, day=MONTH_DAYS)
    with sandbox:
        found = Month(sandbox)
        yield found
        found.session.close()


def test_a_month_of_2000_boxes_makes_every_kind_of_change(month: Month) -> None:
    """How long a month takes to simulate is benchmarks/sandbox_scale.py's to measure."""
    assert month.sandbox.day == MONTH_DAYS
    kinds = Counter(c["type"] for c in month.changes)
    for kind in (
        "BOX_CREATE",
        "BOX_DELETE",
        "BOX_CHANGE_STAGE",
        "BOX_EDIT",
        "TASK_CREATE",
        "TASK_COMPLETE",
        "COMMENT_CREATE",
        "THREAD_CREATE",
        "MEETING_CREATE",
        "FILE_CREATE",
    ):
        assert kinds[kind] > 0, kind
    # ~1 % of the boxes a day get something done to them (the default rate; moves are the sales
    # process's, tests/sandbox/test_sales_process.py)
    touched = {
        (c["day"], c["box_key"])
        for c in month.changes
        if c["type"] not in ("TASK_DUE", "BOX_CREATE", "BOX_DELETE", "BOX_CHANGE_STAGE")
        and c["box_key"] is not None
    }
    per_day = len(touched) / MONTH_DAYS
    assert 0.7 * MONTH_BOXES / 100 <= per_day <= 1.3 * MONTH_BOXES / 100


def test_every_change_happens_within_its_day_after_day_0(month: Month) -> None:
    start = month.sandbox.timeline.start_ms
    assert month.changes == sorted(month.changes, key=lambda c: (c["day"], c["at"]))
    for change in month.changes:
        day = change["day"]
        assert start + (day - 1) * DAY_MS <= change["at"] < start + day * DAY_MS, change
    assert month.sandbox.account.anchor_ms == start + MONTH_DAYS * DAY_MS


def test_counters_equal_the_children_served(month: Month) -> None:
    boxes = month.boxes_with(
        "TASK_CREATE",
        "TASK_COMPLETE",
        "COMMENT_CREATE",
        "THREAD_CREATE",
        "MEETING_CREATE",
        "FILE_CREATE",
        "BOX_CREATE",
    )[:80]
    assert len(boxes) >= 40
    now = month.sandbox.account.anchor_ms
    for key in boxes:
        box = month.ok(f"v1/boxes/{key}")
        tasks = month.ok(f"v2/boxes/{key}/tasks", limit=1000)["results"]
        threads = month.ok(f"v1/boxes/{key}/threads")
        comments = month.ok(f"v2/boxes/{key}/comments")["results"]
        meetings = month.ok(f"v2/boxes/{key}/meetings", limit=1000)["results"]
        files = month.ok(f"v1/boxes/{key}/files")
        done = [t for t in tasks if t["status"] == "DONE"]
        overdue = [
            t for t in tasks if t["status"] != "DONE" and t["dueDate"] and t["dueDate"] < now
        ]
        upcoming = [
            t["dueDate"]
            for t in tasks
            if t["status"] != "DONE" and t["dueDate"] and t["dueDate"] >= now
        ]
        calls = [m for m in meetings if m["meetingType"] == "CALL_LOG"]
        notes = [m for m in meetings if m["meetingType"] == "MEETING_NOTES"]
        assert box["taskTotal"] == len(tasks)
        assert box["taskCompleteCount"] == len(done)
        assert box["taskOverdueCount"] == len(overdue)
        assert box.get("soonestTaskDueDate") == (min(upcoming) if upcoming else None)
        assert box["gmailThreadCount"] == len(threads)
        assert box["commentCount"] == len(comments)
        assert box.get("lastCommentTimestamp") == max(
            (c["timestamp"] for c in comments), default=None
        )
        assert box["callLogCount"] == len(calls) and box["meetingNotesCount"] == len(notes)
        assert box.get("mostRecentCallLogTimestamp") == max(
            (m["startTimestamp"] for m in calls), default=None
        )
        assert box.get("mostRecentMeetingNotesTimestamp") == max(
            (m["startTimestamp"] for m in notes), default=None
        )
        assert box["fileCount"] == len(files)
        last_email = max((t["lastEmailTimestamp"] for t in threads), default=None)
        assert box.get("lastEmailUpdatedTimestamp") == last_email
        mine = [c for c in month.changes if c["box_key"] == key and c["type"] != "TASK_DUE"]
        assert box["lastUpdatedTimestamp"] >= max(c["at"] for c in mine)
        assert box["lastUpdatedTimestamp"] >= max(
            [box["creationTimestamp"], *(c["timestamp"] for c in comments)]
        )
        assert box["lastUpdatedTimestamp"] < now


def test_last_stage_change_is_the_last_entry_of_the_true_path(month: Month) -> None:
    account = month.sandbox.account
    moved = set(month.boxes_with("BOX_CHANGE_STAGE", "BOX_CREATE"))
    assert len(moved) > 100
    for pipeline in account.pipelines:
        for box in pipeline.boxes:  # day-0 boxes included: every timestamp has a move behind it
            path = month.history[box.key]
            assert path[-1]["stage_key"] == box.stage_key
            assert [e["entered_at"] for e in path] == sorted({e["entered_at"] for e in path})
            assert box.stage_change_ms == path[-1]["entered_at"], box.key


def test_box_newsfeed_tells_the_tail_of_the_true_path(month: Month) -> None:
    boxes = month.boxes_with("BOX_CHANGE_STAGE")[:60]
    twice = [k for k in month.boxes_with("BOX_CHANGE_STAGE") if len(month.history[k]) >= 4]
    assert twice, "some boxes move more than once"
    for key in boxes + twice[:20]:
        feed = month.ok(f"v1/boxes/{key}/newsfeed")
        assert len(feed) <= NEWSFEED_CAP
        assert [e["timestamp"] for e in feed] == sorted(
            (e["timestamp"] for e in feed), reverse=True
        )
        moves = [
            {"stage_key": e["specificVariables"]["STAGE_KEY"], "entered_at": e["timestamp"]}
            for e in reversed(feed)
            if e["newsfeedEntrySpecific"] in ("NEW_BOX", "EDIT_STAGE")
        ]
        path = month.history[key]
        assert moves == path[len(path) - len(moves) :], key
        if len(feed) < NEWSFEED_CAP:  # the whole life fits the window: it starts with NEW_BOX
            assert feed[-1]["newsfeedEntrySpecific"] == "NEW_BOX" and moves == path
        box = month.ok(f"v1/boxes/{key}")
        assert feed[0]["timestamp"] <= box["lastUpdatedTimestamp"]


def test_pipeline_newsfeed_holds_the_50_newest_events_consistent_with_history(month: Month) -> None:
    for pipeline in month.sandbox.account.pipelines:
        if not pipeline.boxes:
            continue
        feed = month.ok(f"v1/pipelines/{pipeline.key}/newsfeed")
        assert len(feed) == NEWSFEED_CAP
        stamps = [e["timestamp"] for e in feed]
        assert stamps == sorted(stamps, reverse=True)
        assert stamps[0] >= month.sandbox.timeline.start_ms, "today's events are the newest"
        for entry in feed:
            assert entry["boxKey"] in month.sandbox.account.boxes_by_key, "no deleted box's entry"
            if entry["newsfeedEntrySpecific"] in ("NEW_BOX", "EDIT_STAGE"):
                stay = {
                    "stage_key": entry["specificVariables"]["STAGE_KEY"],
                    "entered_at": entry["timestamp"],
                }
                assert stay in month.history[entry["boxKey"]]


def test_deleted_boxes_answer_404_but_stay_in_history(month: Month) -> None:
    deleted = [c for c in month.changes if c["type"] == "BOX_DELETE"]
    assert deleted
    for change in deleted[:10]:
        key = change["box_key"]
        for path in (
            f"v1/boxes/{key}",
            f"v2/boxes/{key}/tasks",
            f"v1/boxes/{key}/newsfeed",
            f"v1/boxes/{key}/threads",
        ):
            assert month.get(path).status_code == 404, path
        assert month.history[key][-1]["stage_key"] == change["stage_key"]
        assert all(
            e["boxKey"] != key
            for p in month.sandbox.account.pipelines
            for e in month.ok(f"v1/pipelines/{p.key}/newsfeed")
        )
    counts = month.ok("__sandbox__/account")
    assert counts["boxes"] == len(month.sandbox.account.all_boxes())
    assert counts["boxes"] == MONTH_BOXES + sum(
        1 if c["type"] == "BOX_CREATE" else -1
        for c in month.changes
        if c["type"] in ("BOX_CREATE", "BOX_DELETE")
    )


def test_time_routes_over_http_match_the_python_api(month: Month) -> None:
    assert month.ok("__sandbox__/history") == month.history
    over_http = month.ok("__sandbox__/changes", since_day=MONTH_DAYS - 3)
    assert over_http["day"] == MONTH_DAYS and over_http["since_day"] == MONTH_DAYS - 3
    assert over_http["changes"] == [c for c in month.changes if c["day"] > MONTH_DAYS - 3]
    assert month.ok("__sandbox__/changes")["changes"] == month.changes
    assert month.ok("__sandbox__/changes", since_day=MONTH_DAYS)["changes"] == []
    for bad in ("-1", str(MONTH_DAYS + 1), "x"):
        assert month.get("__sandbox__/changes", since_day=bad).status_code == 400
    stats = month.ok("__sandbox__/stats")
    assert stats["day"] == MONTH_DAYS
    assert stats["needed_history_calls"] == month.sandbox.needed_history_calls > 0
    assert stats["needed_backfill_calls"] == len(month.sandbox.account.all_boxes())


# ---------------------------------------------------------------------------- day over day


def snapshot(account: Account) -> dict[str, Any]:
    """What each day's diff is checked on, copied out of the (mutated in place) account."""
    boxes = {}
    for box in account.all_boxes():
        boxes[box.key] = {
            "stage": box.stage_key,
            "stage_change": box.stage_change_ms,
            "tasks": len(box.tasks),
            "done": sum(t.done for t in box.tasks),
            "comments": len(box.comments),
            "threads": len(box.threads),
            "meetings": len(box.meetings),
            "files": len(box.files),
            "fields": {k: v for k, v in box.fields.items() if is_field_value(v)},
            "notes": box.notes,
            "updated": box.last_updated_ms,
        }
    return {
        "boxes": boxes,
        "stages": {p.key: [s.key for s in p.stages] for p in account.pipelines},
        "fields": {p.key: [f.key for f in p.fields] for p in account.pipelines},
    }


def test_changes_match_the_day_over_day_differences() -> None:
    account = generate_account(boxes=300, anchor_date=ANCHOR)
    timeline = Timeline(account, BUSY)
    before = snapshot(account)
    seen: Counter[str] = Counter()
    for day in range(1, 11):
        timeline.advance(1)
        after = snapshot(account)
        today = timeline.changes(since_day=day - 1)
        assert today == [c for c in timeline.changes() if c["day"] == day]
        by_type: dict[str, list[dict[str, Any]]] = {}
        for change in today:
            by_type.setdefault(change["type"], []).append(change)
            seen[change["type"]] += 1
        old, new = before["boxes"], after["boxes"]

        def per_box(kind: str, found: dict[str, list[dict[str, Any]]] = by_type) -> Counter[str]:
            return Counter(c["box_key"] for c in found.get(kind, []))

        assert set(new) - set(old) == {c["box_key"] for c in by_type.get("BOX_CREATE", [])}
        assert set(old) - set(new) == {c["box_key"] for c in by_type.get("BOX_DELETE", [])}
        for kind, attribute in (
            ("TASK_CREATE", "tasks"),
            ("TASK_COMPLETE", "done"),
            ("COMMENT_CREATE", "comments"),
            ("THREAD_CREATE", "threads"),
            ("MEETING_CREATE", "meetings"),
            ("FILE_CREATE", "files"),
        ):
            grew = Counter(
                {
                    k: new[k][attribute] - old.get(k, {}).get(attribute, 0)
                    for k in new
                    if new[k][attribute] != old.get(k, {}).get(attribute, 0)
                }
            )
            assert grew == per_box(kind), (day, kind)
        moves = per_box("BOX_CHANGE_STAGE")
        for key in set(old) & set(new):
            if (
                old[key]["stage"] != new[key]["stage"]
                or old[key]["stage_change"] != new[key]["stage_change"]
            ):
                assert moves[key] >= 1, (day, key)
            elif moves[key]:
                assert moves[key] >= 2, "a box that moved and is back where it was moved twice"
            edited = {
                k
                for k in set(old[key]["fields"]) | set(new[key]["fields"])
                if old[key]["fields"].get(k) != new[key]["fields"].get(k)
            }
            said = {c.get("field_key") for c in by_type.get("BOX_EDIT", []) if c["box_key"] == key}
            assert edited <= said, (day, key)
            if old[key]["notes"] != new[key]["notes"]:
                assert "notes" in {
                    c.get("property") for c in by_type.get("BOX_EDIT", []) if c["box_key"] == key
                }
            touched = [c for c in today if c["box_key"] == key and c["type"] != "TASK_DUE"]
            assert (new[key]["updated"] != old[key]["updated"]) == bool(touched), (day, key)
        for scope, kind in (("stages", "STAGE_CREATE"), ("fields", "FIELD_CREATE")):
            added = {
                (p, k)
                for p, keys in after[scope].items()
                for k in keys
                if k not in before[scope][p]
            }
            assert added == {(c["pipeline_key"], c["key"]) for c in by_type.get(kind, [])}
        # the per-box newsfeed calls a daily run needs: boxes new or moved since yesterday
        moved_or_new = {
            k for k in new if k not in old or new[k]["stage_change"] != old[k]["stage_change"]
        }
        assert timeline.history_calls() == len(moved_or_new)
        before = after
    for kind in (
        "BOX_CREATE",
        "BOX_DELETE",
        "BOX_CHANGE_STAGE",
        "BOX_EDIT",
        "STAGE_CREATE",
        "FIELD_CREATE",
        "TASK_CREATE",
        "TASK_COMPLETE",
        "TASK_DUE",
        "COMMENT_CREATE",
        "THREAD_CREATE",
        "MEETING_CREATE",
        "FILE_CREATE",
        "BOX_NEW_EMAIL_ADDRESS",
    ):
        assert seen[kind] > 0, kind


def test_an_added_stage_and_field_are_served(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=60, day=6, rates=BUSY)
    created = [c for c in sandbox.changes() if c["type"] in ("STAGE_CREATE", "FIELD_CREATE")]
    assert {c["type"] for c in created} == {"STAGE_CREATE", "FIELD_CREATE"}
    with requests.Session() as session:
        session.auth = (sandbox.api_key, "")
        for change in created:
            pipeline = session.get(
                sandbox.url(f"v1/pipelines/{change['pipeline_key']}"), timeout=10
            ).json()
            if change["type"] == "STAGE_CREATE":
                assert (
                    change["key"] in pipeline["stages"] and change["key"] in pipeline["stageOrder"]
                )
            else:
                assert change["key"] in [f["key"] for f in pipeline["fields"]]
            assert pipeline["lastUpdatedTimestamp"] >= change["at"]


def test_rates_set_how_much_happens(make_sandbox: Callable[..., Sandbox]) -> None:
    quiet = make_sandbox(
        boxes=200,
        day=3,
        rates={"changed": 0, "created": 0, "deleted": 0, "stage_added": 0, "field_added": 0},
    )
    # boxes still move by their sales process (its pace is its own rate): nothing else happens
    assert {c["type"] for c in quiet.changes()} <= {"TASK_DUE", "BOX_CHANGE_STAGE"}
    with pytest.raises(ValueError, match="unknown day rate"):
        Sandbox(boxes=10, rates={"moved": 0.5})
    with pytest.raises(ValueError, match="between 0 and 1"):
        Sandbox(boxes=10, rates={"changed": 2})
    with pytest.raises(ValueError, match="pace=0.0 is not above 0"):
        Sandbox(boxes=10, rates={"pace": 0})
