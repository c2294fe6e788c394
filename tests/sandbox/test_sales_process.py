"""The sandbox's sales process (issue 24): its exact figures against simulation, the simulated days
following it (closed boxes stay closed, new boxes start in the first stage with a value), and its
true parameters served under ``__sandbox__/sales_process``."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from math import exp, sqrt
from pathlib import Path
from statistics import fmean, stdev

import pytest
import requests

from streak_source.sandbox import DEMO_LOST_STAGES, DEMO_WON_STAGES, Sandbox, generate_account
from streak_source.sandbox.generator import DAY_MS
from streak_source.sandbox.sales_process import SALES_PROCESS, PipelineProcess, figures
from streak_source.sandbox.timeline import Timeline

pytestmark = pytest.mark.timeout(120)

ANCHOR = "2025-03-14"
WALKS = 3000
"""Simulated boxes per starting stage: the tolerances below are 4 standard errors of this many."""
NEVER = 10**15
"""An ``until`` no walk reaches: the box is followed until it closes."""


def processes() -> list[PipelineProcess]:
    account = generate_account(boxes=20, anchor_date=ANCHOR)
    return list(account.processes.values())


def allowed_steps(process: PipelineProcess) -> set[tuple[str, str]]:
    """The moves the process makes: along the line either way, to won or lost, on hold and back."""
    line = process.line
    allowed = set(zip(line, line[1:])) | {(b, a) for a, b in zip(line, line[1:])}
    allowed |= {(stage, closed) for stage in line for closed in (process.won, process.lost)}
    if process.hold is not None:
        allowed |= {(stage, process.hold) for stage in line} | {(process.hold, stage) for stage in line}
    return allowed


@pytest.mark.parametrize("process", processes(), ids=lambda p: p.model.pipeline_name)
def test_exact_figures_equal_the_frequencies_of_simulated_boxes(process: PipelineProcess) -> None:
    """From each open stage: the share won, the mean days to close, the days to win of the won ones
    and the share won within 30 days, each within 4 standard errors of the chain's exact figure."""
    chain = figures(process.model)
    rng = random.Random("sales-process-test")
    for i, stage in enumerate(process.line):
        paths = [[(stage, 0), *process.walk(rng, [(stage, 0)], 0, NEVER)] for _ in range(WALKS)]
        assert all(path[-1][0] in (process.won, process.lost) for path in paths)
        assert all(step in allowed_steps(process) for path in paths for step in zip(
            [s for s, _ in path], [s for s, _ in path[1:]]))
        won = [path[-1][0] == process.won for path in paths]
        days = [path[-1][1] / DAY_MS for path in paths]
        days_won = [d for d, w in zip(days, won, strict=True) if w]
        p = chain.win_probability[i]
        assert abs(fmean(won) - p) <= 4 * sqrt(p * (1 - p) / WALKS), (stage, fmean(won), p)
        assert abs(fmean(days) - chain.mean_days_to_close[i]) <= 4 * stdev(days) / sqrt(WALKS), stage
        assert abs(fmean(days_won) - chain.mean_days_to_win[i]) <= 4 * stdev(days_won) / sqrt(len(days_won))
        within = fmean(w and d <= 30 for w, d in zip(won, days, strict=True))
        q = chain.won_within[30][i]
        assert abs(within - q) <= 4 * sqrt(q * (1 - q) / WALKS) + 1 / WALKS, (stage, within, q)


def test_the_chance_to_be_won_rises_stage_by_stage_and_cycles_take_weeks_to_months() -> None:
    """The plausibility the process was written for: about 10 % won from the first stage, about
    70 % from the last open one, rising in between; winning takes a week to half a year."""
    for model in SALES_PROCESS:
        chain = figures(model)
        win = chain.win_probability[: len(model.line)]
        assert list(win) == sorted(win) and 0.05 <= win[0] <= 0.2 and 0.6 <= win[-1] <= 0.8, win
        assert all(7 <= days <= 183 for days in chain.mean_days_to_win[: len(model.line)])


def test_simulated_days_follow_the_process_and_closed_boxes_never_move() -> None:
    """60 simulated days of a small account: every move is one the process makes, none leaves won
    or lost, new boxes start in the first stage with a value drawn from the value model, and the
    moves out of each stage are as many as its rates times the box-days spent in it."""
    account = generate_account(boxes=300, anchor_date=ANCHOR)
    timeline = Timeline(account)
    start = account.anchor_ms
    days = 60
    closed_before = {
        box.key: list(box.stage_path) for box in account.all_boxes()
        if account.processes[box.pipeline_key].is_closed(box.stage_key)
    }
    timeline.advance(days)
    end = account.anchor_ms
    history = timeline.history()
    changes = timeline.changes()
    processes_by_box = {c["box_key"]: account.processes[c["pipeline_key"]] for c in changes if c["box_key"]}
    processes_by_box |= {b.key: account.processes[b.pipeline_key] for b in account.all_boxes()}
    assert closed_before and all(
        [(e["stage_key"], e["entered_at"]) for e in history[key]] == path for key, path in closed_before.items()
    ), "a closed box moved"
    moves = [c for c in changes if c["type"] == "BOX_CHANGE_STAGE"]
    assert moves
    for move in moves:
        process = processes_by_box[move["box_key"]]
        assert (move["from_stage_key"], move["stage_key"]) in allowed_steps(process), move
    created = [c for c in changes if c["type"] == "BOX_CREATE"]
    assert created
    for change in created:
        process = processes_by_box[change["box_key"]]
        assert change["stage_key"] == history[change["box_key"]][0]["stage_key"] == process.first_stage
        box = account.boxes_by_key.get(change["box_key"]) or timeline.deleted_boxes[change["box_key"]]
        value = process.model.value
        assert box.fields[process.value_field] in range(value.low, value.high + 1, value.step)

    exposure: Counter[tuple[str, str]] = Counter()  # (pipeline, stage) -> box-days there since day 0
    left: Counter[tuple[str, str]] = Counter()  # (pipeline, stage) -> moves out of it since day 0
    for key, entries in history.items():
        pipeline = processes_by_box[key].pipeline_key
        gone = timeline.deleted_boxes.get(key)
        stop = end if gone is None else max(start, max(c["at"] for c in changes if c["box_key"] == key))
        for entry, after in zip(entries, [*entries[1:], None]):
            leaves = stop if after is None else after["entered_at"]
            exposure[pipeline, entry["stage_key"]] += max(0, leaves - max(start, entry["entered_at"])) / DAY_MS
            if after is not None and after["entered_at"] >= start:
                left[pipeline, entry["stage_key"]] += 1
    all_expected = all_left = 0.0
    for process in {id(p): p for p in processes_by_box.values()}.values():
        for stage, rates in zip(process.line, process.model.rates, strict=True):
            expected = rates.total * exposure[process.pipeline_key, stage]
            assert abs(left[process.pipeline_key, stage] - expected) <= 4 * sqrt(expected) + 2, (stage, expected)
            all_expected += expected
            all_left += left[process.pipeline_key, stage]
    assert abs(all_left - all_expected) <= 4 * sqrt(all_expected), (all_left, all_expected)


def test_true_parameters_are_served_and_equal_the_python_api(make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(boxes=40)
    served = requests.get(sandbox.url("__sandbox__/sales_process"), timeout=10)
    assert served.status_code == 200
    truth = served.json()
    assert truth == sandbox.sales_process()
    with_boxes = {p.key: p for p in sandbox.account.pipelines if p.boxes}
    assert set(truth) == set(with_boxes)  # the empty pipeline has no process
    for key, process in truth.items():
        pipeline = with_boxes[key]
        names = {s.key: s.name for s in pipeline.stages}
        assert list(process["stages"]) == pipeline.stage_order
        assert [names[k] for k in process["won_stage_keys"]] == [n for n in DEMO_WON_STAGES if n in names.values()]
        assert [names[k] for k in process["lost_stage_keys"]] == [n for n in DEMO_LOST_STAGES if n in names.values()]
        assert process["first_stage_key"] == pipeline.stage_order[0]
        line = sorted((s for s in process["stages"].values() if s["kind"] == "line"), key=lambda s: s["position"])
        wins = [s["win_probability"] for s in line]
        assert wins == sorted(wins) and 0 < wins[0] and wins[-1] < 1
        for stage in line:
            total = sum(stage["rates_per_day"].values())
            assert stage["mean_days_in_stage"] == pytest.approx(1 / total)
            assert sum(stage["daily_chances"].values()) == pytest.approx(1 - exp(-total))
            assert stage["mean_days_in_stage"] <= stage["mean_days_to_close"]
        field = next(f for f in pipeline.fields if f.key == process["value_field"]["key"])
        assert field.name == process["value_field"]["name"]
    sandbox.advance(2)
    assert requests.get(sandbox.url("__sandbox__/sales_process"), timeout=10).json() == truth


def test_the_documented_parameter_table_is_the_code_s() -> None:
    """docs/sandbox.md tables every stage's rates and exact figures: each row as the code gives it."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "sandbox.md").read_text(encoding="utf-8")
    for model in SALES_PROCESS:
        chain = figures(model)
        for i, (name, rates) in enumerate(zip(model.line, model.rates, strict=True)):
            moves = " | ".join(f"{rate:g}" if rate else "" for rate in rates.as_json().values())
            row = (f"| {model.pipeline_name} / {name} | {moves} | {1 / rates.total:.1f} | "
                   f"{chain.win_probability[i] * 100:.1f} % | {chain.mean_days_to_close[i]:.1f} | "
                   f"{chain.mean_days_to_win[i]:.1f} | {chain.won_within[30][i] * 100:.1f} % / "
                   f"{chain.won_within[90][i] * 100:.1f} % |")
            assert row in docs, row
