"""Day 0 has a past (issue 21): boxes moved through several stages, some back, and every move is in
the box's newsfeed, so ``lastStageChangeTimestamp`` always has a move (or the creation) behind it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox, generate_account
from streak_source.sandbox.generate_paths import Funnel
from streak_source.sandbox.generator import DAY_MS
from streak_source.sandbox.model import NEWSFEED_CAP, Account

pytestmark = pytest.mark.timeout(120)

ANCHOR = "2025-03-14"
MOVES = ("NEW_BOX", "EDIT_STAGE")


@pytest.fixture(scope="module")
def served() -> Iterator[Sandbox]:
    with Sandbox(seed=7, boxes=300, anchor_date=ANCHOR) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def account() -> Account:
    return generate_account(seed=7, boxes=300, anchor_date=ANCHOR)


def test_every_box_newsfeed_backs_its_stage_and_last_stage_change(served: Sandbox) -> None:
    history = served.history()
    with requests.Session() as session:
        session.auth = (served.api_key, "")
        for box in served.account.all_boxes():
            listed: dict[str, Any] = session.get(served.url(f"v1/boxes/{box.key}"), timeout=10).json()
            feed = session.get(served.url(f"v1/boxes/{box.key}/newsfeed"), timeout=10).json()
            moves = [{"stage_key": e["specificVariables"]["STAGE_KEY"], "entered_at": e["timestamp"]}
                     for e in reversed(feed) if e["newsfeedEntrySpecific"] in MOVES]
            path = history[box.key]
            if len(feed) < NEWSFEED_CAP:  # the whole life fits: it starts with the creation
                assert moves == path and moves[0]["entered_at"] == listed["creationTimestamp"], box.key
            else:
                assert moves == path[len(path) - len(moves):], box.key
            assert (listed["stageKey"], listed["lastStageChangeTimestamp"]) == (
                path[-1]["stage_key"], path[-1]["entered_at"]), box.key
            assert listed["lastUpdatedTimestamp"] >= listed["lastStageChangeTimestamp"]


def test_history_is_the_generated_paths_and_only_moves_change_stage(account: Account) -> None:
    for pipeline in account.pipelines:
        for box in pipeline.boxes:
            path = box.stage_path
            assert path[0] == (pipeline.stage_order[0], box.creation_ms)
            assert path[-1] == (box.stage_key, box.stage_change_ms)
            times = [at for _, at in path]
            assert times == sorted(set(times)) and times[-1] <= account.anchor_ms - DAY_MS
            assert all(a != b for (a, _), (b, _) in zip(path, path[1:], strict=False)), "a move changes stage"


def test_boxes_travel_through_several_stages_some_back_and_many_close(account: Account) -> None:
    for pipeline in (p for p in account.pipelines if p.boxes):
        funnel = Funnel.of(pipeline)
        order = {key: index for index, key in enumerate(pipeline.stage_order)}
        moves = Counter(len(box.stage_path) - 1 for box in pipeline.boxes)
        assert sum(n for k, n in moves.items() if k >= 3) > len(pipeline.boxes) / 3, moves
        steps = [(a, b) for box in pipeline.boxes for (a, _), (b, _) in zip(box.stage_path, box.stage_path[1:])]
        assert any(order[b] < order[a] for a, b in steps if b != funnel.side), "some moves go back"
        current = Counter(box.stage_key for box in pipeline.boxes)
        closed = current[funnel.won] + current[funnel.lost]
        assert 0.3 < closed / len(pipeline.boxes) < 0.7, current
        assert all(current[stage] for stage in funnel.line), "every stage of the line holds open boxes"
        left = {a for a, _ in steps}  # stages some box has left: a time in stage to measure
        assert len(left) > len(pipeline.stages) / 2 and set(funnel.line) <= left
        if funnel.side is not None:  # visited and left, never where a box sits on day 0
            assert funnel.side in left and not current[funnel.side]
