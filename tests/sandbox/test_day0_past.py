"""Day 0 has a past (issue 21): boxes moved through their pipeline by its sales process (issue 24),
some back, and every move is in the box's newsfeed, so ``lastStageChangeTimestamp`` always has a
move (or the creation) behind it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from math import sqrt
from typing import Any

import pytest
import requests

from streak_source.sandbox import Sandbox, generate_account
from streak_source.sandbox.generator import DAY_MS
from streak_source.sandbox.model import NEWSFEED_CAP, Account
from streak_source.sandbox.sales_process import PipelineProcess, distribution_by_day

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


def test_boxes_travel_by_their_sales_process_and_as_many_close_as_it_says(account: Account) -> None:
    """Every step is one the process allows, some go back, and the boxes closed and open in each
    stage on day 0 are what the process predicts for boxes of those ages (within 4 standard
    deviations: the counts are sums of independent boxes)."""
    end = account.anchor_ms - DAY_MS  # day 0's paths stop here (generate_boxes.py)
    backs = 0
    for pipeline in (p for p in account.pipelines if p.boxes):
        process = account.processes[pipeline.key]
        line = process.line
        steps = [(a, b) for box in pipeline.boxes for (a, _), (b, _) in zip(box.stage_path, box.stage_path[1:])]
        allowed = allowed_steps(process)
        assert not [step for step in steps if step not in allowed], "a step the process does not make"
        backs += sum(1 for a, b in steps if a in line and b in line and line.index(b) < line.index(a))
        chances = distribution_by_day(process.model, 430)
        per_box = [chances[(end - box.creation_ms) // DAY_MS] for box in pipeline.boxes]
        current = Counter(box.stage_key for box in pipeline.boxes)
        closed = current[process.won] + current[process.lost]
        expect_closed = [row[-1] + row[-2] for row in per_box]
        assert abs(closed - sum(expect_closed)) <= 4 * spread(expect_closed) + 1, (closed, sum(expect_closed))
        for i, stage in enumerate(line):
            expect_here = [row[i] for row in per_box]
            assert abs(current[stage] - sum(expect_here)) <= 4 * spread(expect_here) + 1, (stage, current)
        left = {a for a, _ in steps}  # stages some box has left: a time in stage to measure
        assert set(line) <= left
        if process.hold is not None:  # visited and left, never where a box sits on day 0
            assert process.hold in left and not current[process.hold]
    assert backs, "some moves go back"


def allowed_steps(process: PipelineProcess) -> set[tuple[str, str]]:
    """The moves the process makes: along the line either way, to won or lost, on hold and back."""
    line = process.line
    allowed = {pair for pair in zip(line, line[1:])} | {(b, a) for a, b in zip(line, line[1:])}
    allowed |= {(stage, closed) for stage in line for closed in (process.won, process.lost)}
    if process.hold is not None:
        allowed |= {(stage, process.hold) for stage in line} | {(process.hold, stage) for stage in line}
    return allowed


def spread(chances: list[float]) -> float:
    """Standard deviation of the number of successes of independent trials with these chances."""
    return sqrt(sum(p * (1 - p) for p in chances))
