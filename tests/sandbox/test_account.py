"""The generated account: deterministic, realistic, and carrying every awkward case on purpose."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import UTC, datetime

import pytest

from streak_source.sandbox import generate_account, table_counts
from streak_source.sandbox.account import NEWSFEED_CAP
from streak_source.sandbox.generate_boxes import CHILD_SHARES
from streak_source.sandbox.ground_truth import is_field_value
from streak_source.sandbox.keys import KEY_PREFIX, is_well_formed_key
from streak_source.sandbox.model import FIELD_TYPES, Account

pytestmark = pytest.mark.timeout(60)

ANCHOR = "2025-03-14"


@pytest.fixture(scope="module")
def account() -> Account:
    return generate_account(seed=7, boxes=300, anchor_date=ANCHOR)


def has_non_ascii_letter(text: str) -> bool:
    return any(ord(ch) > 127 and unicodedata.category(ch).startswith("L") for ch in text)


def has_emoji(text: str) -> bool:
    return any(unicodedata.category(ch) == "So" for ch in text)


def test_same_inputs_same_account_and_other_seeds_differ() -> None:
    first = generate_account(seed=11, boxes=60, anchor_date=ANCHOR)
    again = generate_account(seed=11, boxes=60, anchor_date=ANCHOR)
    other = generate_account(seed=12, boxes=60, anchor_date=ANCHOR)
    assert dataclasses.asdict(first) == dataclasses.asdict(again)
    assert [b.key for b in first.all_boxes()] != [b.key for b in other.all_boxes()]
    assert [b.name for b in first.all_boxes()] != [b.name for b in other.all_boxes()]


def test_box_count_scales_and_default_shape(account: Account) -> None:
    assert len(account.all_boxes()) == 300
    assert len(generate_account(seed=7, boxes=80, anchor_date=ANCHOR).all_boxes()) == 80
    assert [len(p.boxes) > 0 for p in account.pipelines] == [True, True, False]


def test_default_anchor_is_midnight_utc_of_the_projects_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Day 0 follows the one clock (streak_clock), so moving it moves the sandbox with the job."""
    import streak_clock

    monkeypatch.setattr(streak_clock, "now", lambda: datetime(2031, 2, 3, 17, 45, tzinfo=UTC))
    assert generate_account(seed=1, boxes=5).anchor_ms == int(datetime(2031, 2, 3, tzinfo=UTC).timestamp()) * 1000


def test_users_team_contacts_and_organizations(account: Account) -> None:
    team = account.teams[0]
    assert len(team.members) >= 5
    assert account.me.key in {m.user.key for m in team.members}
    assert {m.user.key for m in team.members} == set(account.users)
    assert team.contact_fields and team.organization_fields
    contacts = account.contacts[team.key]
    organizations = account.organizations[team.key]
    assert len(contacts) >= 100 and len(organizations) >= 40
    assert [c.key for c in contacts] == sorted(c.key for c in contacts)
    assert any(c.fields for c in contacts) and any(o.fields for o in organizations)
    assert len(account.snippets) >= 3
    box_contact_keys = {link.key for b in account.all_boxes() for link in b.contact_links}
    box_org_keys = {link.key for b in account.all_boxes() for link in b.organization_links}
    assert box_contact_keys and box_contact_keys <= {c.key for c in contacts}
    assert box_org_keys and box_org_keys <= {o.key for o in organizations}


def test_pipelines_cover_all_field_types_stage_orders_and_empty_cases(account: Account) -> None:
    field_types = {f.type for p in account.pipelines for f in p.fields}
    assert field_types == set(FIELD_TYPES)
    for pipeline in account.pipelines:
        assert sorted(pipeline.stage_order) == sorted(s.key for s in pipeline.stages)
        assert [s.key for s in pipeline.stages] == [
            str(5001 + i) for i in range(len(pipeline.stages))
        ]
        assert [f.key for f in pipeline.fields] == [
            str(1001 + i) for i in range(len(pipeline.fields))
        ]
        option_keys = [int(o.key) for f in pipeline.fields for o in f.options]
        assert all(key >= 9001 for key in option_keys)
    empty_pipelines = [p for p in account.pipelines if not p.boxes]
    assert len(empty_pipelines) == 1
    stages_without_boxes = [
        (p.name, s.key)
        for p in account.pipelines
        if p.boxes
        for s in p.stages
        if not any(b.stage_key == s.key for b in p.boxes)
    ]
    assert stages_without_boxes, "one stage of a non-empty pipeline must hold no box"
    sales = account.pipelines[0]
    assert sales.stage_order != sorted(sales.stage_order), "display order differs from key order"


def test_keys_look_like_streaks(account: Account) -> None:
    keys = [account.me.key, account.teams[0].key]
    keys += [p.key for p in account.pipelines]
    for box in account.all_boxes()[:50]:
        keys.append(box.key)
        keys += (
            [t.key for t in box.tasks]
            + [c.key for c in box.comments]
            + [m.key for m in box.meetings]
        )
    assert all(k.startswith(KEY_PREFIX) and is_well_formed_key(k) for k in keys)
    all_keys = [b.key for b in account.all_boxes()]
    assert len(set(all_keys)) == len(all_keys)


def test_exact_child_shares_and_busy_boxes(account: Account) -> None:
    boxes = account.all_boxes()
    attribute = {
        "tasks": "tasks",
        "threads": "threads",
        "comments": "comments",
        "meetings": "meetings",
        "files": "files",
    }
    for kind, share in CHILD_SHARES.items():
        with_children = sum(1 for b in boxes if getattr(b, attribute[kind]))
        assert with_children == round(share * len(boxes)), kind
    busy = [
        b
        for b in boxes
        if min(len(b.tasks), len(b.comments), len(b.meetings), len(b.threads), len(b.files)) > 10
    ]
    assert len(busy) >= 3, "some boxes must hold more children than a small page"


def test_awkward_values_are_planted(account: Account) -> None:
    boxes = account.all_boxes()
    assert any(has_non_ascii_letter(b.name) for b in boxes)
    assert any(has_emoji(b.name) for b in boxes)
    assert any(has_non_ascii_letter(b.notes) for b in boxes)
    assert any(b.notes == "" for b in boxes)
    assert any(b.fields == {} for b in boxes)
    sales = account.pipelines[0]
    by_name = {f.name: f for f in sales.fields}
    live_options = {o.key for o in by_name["Priority"].options}
    assert any(b.fields.get("1002") not in live_options | {None} for b in sales.boxes), (
        "deleted option"
    )
    assert any(
        isinstance(b.fields.get("1007"), list) and len(b.fields["1007"]) >= 2 for b in sales.boxes
    )
    assert any(isinstance(b.fields.get("1001"), (int, float)) for b in sales.boxes), (
        "numeric text value"
    )
    values = [v for b in boxes for v in b.fields.values()]
    assert False in values and 0 in [v for v in values if not isinstance(v, bool)]
    assert any(v in ("", [], None) for v in values), "present-but-empty values"
    assert any(has_non_ascii_letter(name) for name in by_name), "a unicode field name"


def test_tasks_are_overdue_due_soon_done_and_undated(account: Account) -> None:
    now = account.anchor_ms
    tasks = [t for b in account.all_boxes() for t in b.tasks]
    assert any(not t.done and t.due_ms is not None and t.due_ms < now for t in tasks)
    assert any(
        not t.done and t.due_ms is not None and now < t.due_ms < now + 14 * 86_400_000
        for t in tasks
    )
    assert any(t.done for t in tasks)
    assert any(t.due_ms is None for t in tasks)
    history = [t.creation_ms for t in tasks] + [
        c.timestamp for b in account.all_boxes() for c in b.comments
    ]
    assert max(history) < now


def test_newsfeed_per_pipeline_capped_at_fifty(account: Account) -> None:
    for pipeline in account.pipelines:
        # Every event is a box's (NEW_BOX, EDIT_STAGE, ...): a pipeline without boxes has none.
        assert (0 < len(pipeline.newsfeed) <= NEWSFEED_CAP) == bool(pipeline.boxes)
        stamps = [e.timestamp for e in pipeline.newsfeed]
        assert stamps == sorted(stamps, reverse=True)
    assert len(account.pipelines[0].newsfeed) == NEWSFEED_CAP


def test_ground_truth_definitions(account: Account) -> None:
    counts = table_counts(account)
    boxes = account.all_boxes()
    assert counts["boxes"] == 300
    assert counts["users"] == len({account.me.key} | {m.user.key for m in account.teams[0].members})
    assert counts["box_field_values"] == sum(
        1 for b in boxes for v in b.fields.values() if v is not None and v != "" and v != []
    )
    assert counts["pipeline_field_options"] == sum(
        len(f.options) for p in account.pipelines for f in p.fields
    )
    assert counts["pipeline_newsfeed"] == sum(len(p.newsfeed) for p in account.pipelines)
    assert is_field_value(False) and is_field_value(0) and is_field_value(0.0)
    assert not is_field_value(None) and not is_field_value("") and not is_field_value([])


