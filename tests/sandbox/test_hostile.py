"""The hostile account (issue 12 fixture): what it serves, and that the default account is untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import Any

import pytest
import requests

from streak_source.sandbox import (
    Sandbox,
    generate_account,
    rejected_counts,
    table_counts,
)
from streak_source.sandbox.hostile import COLLIDING_PROPERTIES, NUMERIC_TEXTS, OUTSIDE
from streak_source.sandbox.render import render_pipeline, render_team
from streak_source.sandbox.render_boxes import render_box, render_task, render_thread

ANCHOR = "2025-03-14"


@pytest.fixture(scope="module")
def hostile() -> Any:
    with Sandbox(boxes=40, seed=7, anchor_date=ANCHOR, account="hostile") as sandbox:
        session = requests.Session()
        session.auth = (sandbox.api_key, "")

        def get(path: str, **params: Any) -> Any:
            answer = session.get(sandbox.url(path), params=params or None, timeout=30)
            assert answer.status_code == 200, (path, answer.text[:200])
            return answer.json()

        sandbox.get = get  # type: ignore[attr-defined]
        yield sandbox
        session.close()


def _all_boxes(hostile: Any) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = []
    for pipeline in hostile.get("v1/pipelines"):
        if "key" in pipeline:
            boxes += hostile.get(f"v1/pipelines/{pipeline['key']}/boxes")
    return boxes


def test_names_carry_markup_emoji_and_other_scripts(hostile: Any) -> None:
    pipelines = hostile.get("v1/pipelines")
    names = [p["name"] for p in pipelines]
    sales = pipelines[0]
    assert f"![x]({OUTSIDE}/x.png)" in sales["name"] and "<script>" in sales["name"]
    assert "$x^2$" in sales["name"] and f"]({OUTSIDE}/phish)" in sales["name"]
    assert "Partnerships 🤝" in names and any("Région / 地域" in n for n in names)
    stage_names = [s["name"] for s in sales["stages"].values()]
    assert any("![s](" in n for n in stage_names) and any("$\\frac" in n for n in stage_names)
    field_names = [f["name"] for f in sales["fields"]]
    assert any(f"({OUTSIDE}/field.png)" in n for n in field_names)
    assert any("<script>" in n for n in field_names)
    owner = sales["aclEntries"][0]
    assert owner["displayName"].startswith("![me](") and "onerror" in owner["fullName"]
    me = hostile.get("v1/users/me")
    assert me["displayName"] == owner["displayName"]


def test_records_without_keys_and_null_items(hostile: Any) -> None:
    pipelines = hostile.get("v1/pipelines")
    keyless_pipelines = [p for p in pipelines if "key" not in p]
    assert len(keyless_pipelines) == 1 and "pipelineKey" not in keyless_pipelines[0]
    empty = [p for p in pipelines if "key" in p and not p["stages"] and not p["boxCount"]]
    assert empty and empty[0]["stageOrder"] == [] and empty[0]["fields"] == []
    boxes = _all_boxes(hostile)
    keyless_boxes = [b for b in boxes if "key" not in b]
    assert len(keyless_boxes) == 1 and "boxKey" not in keyless_boxes[0]
    assert keyless_boxes[0]["taskTotal"] == keyless_boxes[0]["gmailThreadCount"] == 0
    tasks: list[Any] = []
    threads: list[Any] = []
    for box in boxes:
        if "key" not in box:
            continue
        if box["taskTotal"]:
            tasks += hostile.get(f"v2/boxes/{box['key']}/tasks", limit=1000)["results"]
        if box["gmailThreadCount"]:
            threads += hostile.get(f"v1/boxes/{box['key']}/threads")
    assert tasks.count(None) == 1
    assert sum(1 for t in tasks if t is not None and "key" not in t) == 1
    assert sum(1 for t in threads if "key" not in t) == 1
    team = hostile.get("v2/users/me/teams")["results"][0]
    assert sum(1 for m in team["members"] if "userKey" not in m) == 1


def test_colliding_properties_null_stage_and_numeric_text(hostile: Any) -> None:
    boxes = _all_boxes(hostile)
    colliding = [b for b in boxes if "DealSize" in b]
    assert len(colliding) == 1
    assert {k: colliding[0][k] for k in COLLIDING_PROPERTIES} == COLLIDING_PROPERTIES
    assert sum(1 for b in boxes if b["stageKey"] is None) == 1
    deal_sizes = {b["fields"].get("1001") for b in boxes}
    assert set(NUMERIC_TEXTS) <= deal_sizes and "119,500 €" in deal_sizes


def test_ground_truth_leaves_unkeyable_records_out(hostile: Any) -> None:
    account = hostile.account
    truth = hostile.ground_truth()
    assert truth["pipelines"] == len(account.pipelines) - 1
    assert truth["boxes"] == len(account.all_boxes()) - 1
    assert truth["team_members"] == len(account.teams[0].members) - 1
    assert truth["rejected_records"] == 6 == sum(hostile.rejected().values())
    assert requests.get(hostile.url("__sandbox__/account"), timeout=10).json() == truth
    over_http = requests.get(hostile.url("__sandbox__/rejected"), timeout=10).json()
    assert over_http == hostile.rejected() == rejected_counts(account)


def test_the_newsfeed_never_names_a_keyless_box(hostile: Any) -> None:
    keyless = next(b for b in hostile.account.all_boxes() if "key" in b.patch)
    for pipeline in hostile.get("v1/pipelines"):
        if "key" in pipeline:
            entries = hostile.get(f"v1/pipelines/{pipeline['key']}/newsfeed")
            assert all(e["boxKey"] != keyless.key for e in entries)


def _fingerprint(account: Any) -> str:
    """Every rendered object of an account, hashed."""
    digest = hashlib.sha256()
    for pipeline in account.pipelines:
        digest.update(json.dumps(render_pipeline(pipeline, account), sort_keys=True).encode())
        for box in pipeline.boxes:
            digest.update(json.dumps(render_box(box, account), sort_keys=True).encode())
            for task in box.tasks:
                digest.update(json.dumps(render_task(task, box, account)).encode())
            for thread in box.threads:
                digest.update(json.dumps(render_thread(thread, box)).encode())
        digest.update(json.dumps([e.key for e in pipeline.events]).encode())
    for team in account.teams:
        digest.update(json.dumps(render_team(team), sort_keys=True).encode())
    digest.update(json.dumps([s.key for s in account.snippets]).encode())
    return digest.hexdigest()


def test_the_default_account_is_untouched_by_the_hostile_one() -> None:
    before = generate_account(seed=7, boxes=40, anchor_date=ANCHOR)
    generate_account(seed=7, boxes=40, anchor_date=ANCHOR, account="hostile")
    after = generate_account(seed=7, boxes=40, anchor_date=ANCHOR)
    assert _fingerprint(before) == _fingerprint(after)
    assert table_counts(before) == table_counts(after)
    assert rejected_counts(after) == {} and table_counts(after)["rejected_records"] == 0
    assert all(not b.patch and not b.null_items for b in after.all_boxes())
    assert all(not p.patch for p in after.pipelines)


def test_same_seed_same_hostile_account() -> None:
    first = generate_account(seed=3, boxes=30, anchor_date=ANCHOR, account="hostile")
    second = generate_account(seed=3, boxes=30, anchor_date=ANCHOR, account="hostile")
    assert _fingerprint(first) == _fingerprint(second)


def test_hostile_needs_enough_boxes_and_unknown_accounts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_account(boxes=5, account="hostile")
    with pytest.raises(ValueError, match="unknown account"):
        generate_account(boxes=5, account="evil")


def test_cli_account_report_for_the_hostile_account() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streak_source.sandbox", "account", "--account", "hostile",
         "--boxes", "30", "--anchor-date", ANCHOR],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rejected"]["boxes"] == 1 and report["tables"]["rejected_records"] == 6
