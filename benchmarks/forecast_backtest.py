"""Backtest of the outcome forecast and the stage win probabilities against the sandbox's truth (issue 24).

    python benchmarks/forecast_backtest.py [--boxes 2000] [--days 180] [--horizon 30] [--every 1]
                                           [--seed 24] [--json benchmarks/results/forecast_backtest.json]

A warehouse loaded every day, as a user's would be: the sandbox's account (``--boxes``, its sales
process, ``sales_process.py``) loaded on day 0 with its past (``--backfill-history``, as docs/history.md
recommends once), then advanced one simulated day at a time with a load after each day (``--refresh
changed``: the copy, the stage history and the history tables a daily load keeps). The clock is pinned
to sandbox time (a load ends a minute after the account's "now"), so each copy's "now" is its load's end.

At every ``--every``-th day up to ``days - horizon - 1`` (a *cut-off*), read from that day's copy:

* the forecast of won value in the next ``--horizon`` days, per pipeline, by the warehouse's own code
  (``outcome_views.forecast_periods`` over ``forecast.horizon(as_of, horizon)``), with its range;
* the naive baseline: the won value of the last ``horizon`` days (``crm.box_outcomes``, value at close);
* each open box's stage probability (``crm.stage_win_probability``).

Then compared with what the sandbox did (its truth: every box's stage path, ``sb.history()``; a box's
value as it stood at the end of the day it was won, read by the project's one numeric-text rule):

* per pipeline, the won value in the ``horizon`` days after each cut-off; the mean absolute error
  (MAE) of the forecast and of the baseline over the cut-offs, the bias, how often the 10-90 % range
  held the truth;
* calibration: the predictions binned by predicted probability (deciles 0-10 %, ..., 90-100 %); per
  bin the mean predicted chance and the share of those boxes won. A box still open at the end counts
  as the exact chance the sales process gives it from where it stands (``win_probability``), a deleted
  open box not at all; the target (within 10 points) applies to bins holding at least 50 distinct
  boxes (a box predicted at several cut-offs is one box, counted once per cut-off in the means).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "benchmarks" / "results" / "forecast_backtest.json"
ANCHOR_DATE = date(2025, 1, 6)
"""Day 0 of the account (fixed, so a rerun gives the same figures whatever the calendar says)."""
CALIBRATION_MIN_BOXES = 50
CALIBRATION_TOLERANCE = 0.10
DAY_MS = 86_400_000


# --- pure scoring (tests/test_forecast_backtest.py) --------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """An open box at a cut-off and its stage's probability."""

    cutoff_day: int
    box_key: str
    pipeline_key: str
    stage_key: str
    probability: float


def won_in_window(paths: Mapping[str, Sequence[tuple[str, int]]], pipeline_of: Mapping[str, str],
                  won_stages: Mapping[str, set[str]], value_at_win: Mapping[str, float | None],
                  start_ms: int, end_ms: int) -> dict[str, tuple[int, float]]:
    """Per pipeline: (boxes won, their value) whose first entry into a won stage falls in
    ``(start_ms, end_ms]``; a box without a value counts as a box and adds nothing."""
    found: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for box_key, path in paths.items():
        pipeline = pipeline_of.get(box_key)
        wins = [at for stage, at in path if pipeline is not None and stage in won_stages.get(pipeline, set())]
        if wins and start_ms < wins[0] <= end_ms:
            found[pipeline][0] += 1
            found[pipeline][1] += value_at_win.get(box_key) or 0.0
    return {pipeline: (int(n), float(value)) for pipeline, (n, value) in found.items()}


def final_chance(path: Sequence[tuple[str, int]], process: Mapping[str, Any], deleted: bool) -> float | None:
    """The truth for a box predicted open: 1 if it ended won, 0 if lost; still open at the end, the
    exact chance the sales process gives it from its stage (on hold: the stage it left); a deleted
    open box: None (no outcome)."""
    stages = process["stages"]
    last = path[-1][0]
    if last in process["won_stage_keys"]:
        return 1.0
    if last in process["lost_stage_keys"] or deleted:
        return None if deleted and last not in process["lost_stage_keys"] else 0.0
    here = stages.get(last, {})
    if here.get("kind") == "hold":
        earlier = [stage for stage, _ in path[:-1] if stages.get(stage, {}).get("kind") == "line"]
        here = stages.get(earlier[-1], {}) if earlier else {}
    chance = here.get("win_probability")
    return None if chance is None else float(chance)


def calibration(predictions: Iterable[Prediction], truth: Mapping[str, float | None], bins: int = 10) -> list[dict[str, Any]]:
    """Predictions binned by predicted probability (``[i/bins, (i+1)/bins)``, the last bin closed): per
    bin the predictions, the distinct boxes, the mean predicted chance, the share won (truth), and the
    difference in points; a box without truth is left out (and counted)."""
    grouped: dict[int, list[tuple[Prediction, float | None]]] = defaultdict(list)
    for p in predictions:
        grouped[min(int(p.probability * bins), bins - 1)].append((p, truth.get(p.box_key)))
    rows = []
    for index in range(bins):
        items = grouped.get(index, [])
        known = [(p, t) for p, t in items if t is not None]
        predicted = sum(p.probability for p, _ in known) / len(known) if known else None
        observed = sum(t for _, t in known) / len(known) if known else None
        rows.append({
            "bin": f"{index * 100 // bins}-{(index + 1) * 100 // bins} %", "predictions": len(known),
            "boxes": len({p.box_key for p, _ in known}), "without_outcome": len(items) - len(known),
            "mean_predicted": _round(predicted), "observed_won": _round(observed),
            "difference_points": _round(None if predicted is None else 100 * (observed - predicted), 1),
            "judged": len({p.box_key for p, _ in known}) >= CALIBRATION_MIN_BOXES,
            "within_10_points": None if predicted is None else abs(observed - predicted) <= CALIBRATION_TOLERANCE,
        })
    return rows


def scores(cutoffs: Sequence[Mapping[str, Any]], pipeline: str) -> dict[str, Any]:
    """MAE of the forecast and of the baseline over the cut-offs, for one pipeline's rows."""
    rows = [c["pipelines"][pipeline] for c in cutoffs if pipeline in c["pipelines"]]
    if not rows:
        return {}
    n = len(rows)
    actual = [r["actual_value"] for r in rows]
    mae = sum(abs(r["forecast_value"] - r["actual_value"]) for r in rows) / n
    baseline = sum(abs(r["baseline_value"] - r["actual_value"]) for r in rows) / n
    return {
        "cutoffs": n, "mean_actual_value": _round(sum(actual) / n, 0), "mae_forecast": _round(mae, 0),
        "mae_baseline": _round(baseline, 0), "mae_ratio_forecast_to_baseline": _round(mae / baseline if baseline else None),
        "forecast_beats_baseline": mae < baseline,
        "bias_forecast": _round(sum(r["forecast_value"] - r["actual_value"] for r in rows) / n, 0),
        "bias_baseline": _round(sum(r["baseline_value"] - r["actual_value"] for r in rows) / n, 0),
        "range_held_actual": _round(sum(r["low"] <= r["actual_value"] <= r["high"] for r in rows) / n),
        "mean_actual_boxes": _round(sum(r["actual_boxes"] for r in rows) / n, 2),
        "mean_forecast_boxes": _round(sum(r["forecast_boxes"] for r in rows) / n, 2),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class Observed:
    """What the run kept while the sandbox moved on."""

    pipeline_of: dict[str, str] = field(default_factory=dict)
    value_at_win: dict[str, float | None] = field(default_factory=dict)
    cutoffs: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[Prediction] = field(default_factory=list)
    load_seconds: list[float] = field(default_factory=list)


def _value(raw: Any) -> float | None:
    """A box's value as the warehouse reads it (numbers as they are, text by the one rule)."""
    from streak_source.numbers import parse_number

    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    return parse_number(str(raw)) if str(raw).strip() else None


def _watch(sandbox: Any, process: Mapping[str, Any], seen: Observed) -> None:
    """Each box's pipeline, and the value of every box found in a won stage for the first time."""
    for box in sandbox.account.all_boxes():
        seen.pipeline_of[box.key] = box.pipeline_key
        own = process.get(box.pipeline_key)
        if own and box.stage_key in own["won_stage_keys"] and box.key not in seen.value_at_win:
            seen.value_at_win[box.key] = _value(box.fields.get(own["value_field"]["key"]))


def _read_cutoff(database: Path, day: int, horizon: int, seen: Observed) -> None:
    """The forecast, the baseline and the open boxes' probabilities of the copy just loaded."""
    import duckdb

    from streak_warehouse.forecast import horizon as next_days
    from streak_warehouse.outcome_views import copy_sources, forecast_periods

    with duckdb.connect(str(database), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        rows: Callable[[str], list[Any]] = lambda sql: con.execute(sql).fetchall()  # noqa: E731
        (as_of,) = rows("SELECT max(finished_at) FROM crm.load_history WHERE outcome = 'ok'")[0]
        as_of = as_of.astimezone(UTC)
        forecast = forecast_periods(rows, copy_sources(rows, "crm"), as_of, [next_days(as_of, horizon)])
        since = as_of - timedelta(days=horizon)
        baseline = {p: (int(n), float(v or 0.0)) for p, n, v in rows(
            "SELECT pipeline_key, COUNT(*), SUM(value) FROM crm.box_outcomes WHERE outcome = 'won' "
            f"AND closed_at > TIMESTAMPTZ '{since.isoformat()}' AND closed_at <= TIMESTAMPTZ '{as_of.isoformat()}' GROUP BY 1")}
        for box, pipeline, stage, chance in rows(
                "SELECT o.box_key, o.pipeline_key, o.stage_key, w.probability FROM crm.box_outcomes AS o "
                "JOIN crm.stage_win_probability AS w USING (pipeline_key, stage_key) "
                "WHERE NOT o.closed AND w.probability IS NOT NULL"):
            seen.predictions.append(Prediction(day, box, pipeline, stage, float(chance)))
    seen.cutoffs.append({"day": day, "as_of": as_of, "pipelines": {
        row.pipeline_key: {"forecast_value": row.expected_won_value, "low": row.won_value_low, "high": row.won_value_high,
                           "forecast_boxes": row.expected_won_boxes, "open_boxes": row.open_boxes,
                           "baseline_value": baseline.get(row.pipeline_key, (0, 0.0))[1],
                           "baseline_boxes": baseline.get(row.pipeline_key, (0, 0.0))[0]}
        for row in forecast if row.open_boxes}})


def simulate(boxes: int, days: int, horizon: int, every: int, seed: int, work: Path,
             progress: Callable[[str], None] = lambda _: None) -> tuple[Observed, dict[str, Any], dict[str, Any]]:
    """The daily loads and the cut-offs; returns what was seen, the sandbox's paths and its process."""
    import streak_clock
    from streak_source.sandbox import Sandbox

    database = work / "streak.duckdb"
    os.environ.update({"DLT_DATA_DIR": str(work / "dlt"), "DLT_LOCAL_DIR": str(work), "DLT_PROJECT_DIR": str(REPO_ROOT),
                       "STREAK_DUCKDB_PATH": str(database), "RUNTIME__DLTHUB_TELEMETRY": "false"})
    seen = Observed()
    last_cutoff = days - horizon - 1
    wall_clock = streak_clock.now
    with Sandbox(boxes=boxes, seed=seed, anchor_date=ANCHOR_DATE) as sb:
        # sandbox time is not the wall clock's: each load ends a minute after the account's "now"
        streak_clock.now = lambda: datetime.fromtimestamp(sb.account.anchor_ms / 1000, UTC) + timedelta(minutes=1)
        try:
            process = sb.sales_process()
            _days(sb, days, horizon, every, last_cutoff, process, database, seen, progress)
        finally:
            streak_clock.now = wall_clock
        paths = {key: [(e["stage_key"], int(e["entered_at"])) for e in path] for key, path in sb.history().items()}
        live = {box.key for box in sb.account.all_boxes()}
    return seen, {"paths": paths, "live": live}, process


def _days(sb: Any, days: int, horizon: int, every: int, last_cutoff: int, process: Mapping[str, Any], database: Path,
          seen: Observed, progress: Callable[[str], None]) -> None:
    """Day 0 with its past, then a day at a time, a load after each; the cut-offs read on the way."""
    from pipelines.job import run_full_load
    from streak_source.sandbox import DEMO_SETTINGS

    args = {"api_key": sb.api_key, "base_url": sb.base_url, "max_requests_per_second": 1000}
    for day in range(days + 1):
        if day:
            sb.advance(1)
        started = time.monotonic()
        run_full_load(dict(args), progress=None, backfill_history=day == 0, refresh="changed",
                      account_defaults=DEMO_SETTINGS)
        seen.load_seconds.append(time.monotonic() - started)
        _watch(sb, process, seen)
        if day <= last_cutoff and day % every == 0:
            _read_cutoff(database, day, horizon, seen)
        progress(f"day {day}: load {seen.load_seconds[-1]:.1f} s, {len(seen.cutoffs)} cut-offs")


def score(seen: Observed, truth: Mapping[str, Any], process: Mapping[str, Any], horizon: int) -> dict[str, Any]:
    """Every figure of the module docstring."""
    paths, live = truth["paths"], truth["live"]
    won_stages = {p: set(info["won_stage_keys"]) for p, info in process.items()}
    for cutoff in seen.cutoffs:
        start = int(cutoff["as_of"].timestamp() * 1000)
        actual = won_in_window(paths, seen.pipeline_of, won_stages, seen.value_at_win, start, start + horizon * DAY_MS)
        for pipeline, row in cutoff["pipelines"].items():
            row["actual_boxes"], row["actual_value"] = actual.get(pipeline, (0, 0.0))
        cutoff["as_of"] = cutoff["as_of"].isoformat()
    chances = {box: final_chance(path, process[seen.pipeline_of[box]], box not in live)
               for box, path in paths.items() if seen.pipeline_of.get(box) in process}
    names = {p: info["pipeline_name"] for p, info in process.items()}
    pipelines = sorted({p for c in seen.cutoffs for p in c["pipelines"]}, key=lambda p: names.get(p, p))
    bins = calibration(seen.predictions, chances)
    judged = [b for b in bins if b["judged"]]
    return {
        "forecast": {names.get(p, p): scores(seen.cutoffs, p) for p in pipelines},
        "calibration": bins,
        "calibration_within_10_points_where_judged": all(b["within_10_points"] for b in judged) if judged else None,
        "calibration_by_stage": _by_stage(seen.predictions, chances, process),
        "cutoffs": [{"day": c["day"], "as_of": c["as_of"],
                     "pipelines": {names.get(p, p): {k: _round(v, 2) for k, v in row.items()} for p, row in c["pipelines"].items()}}
                    for c in seen.cutoffs],
    }


def _by_stage(predictions: Sequence[Prediction], chances: Mapping[str, float | None],
              process: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per stage: the mean predicted chance, the share won, and the chain's exact chance from there."""
    grouped: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for p in predictions:
        if chances.get(p.box_key) is not None:
            grouped[(p.pipeline_key, p.stage_key)].append((p.probability, chances[p.box_key] or 0.0))
    rows = []
    for (pipeline, stage), items in sorted(grouped.items()):
        info = process[pipeline]["stages"].get(stage, {})
        rows.append({"pipeline": process[pipeline]["pipeline_name"], "stage": info.get("name", stage),
                     "predictions": len(items), "mean_predicted": _round(sum(a for a, _ in items) / len(items)),
                     "observed_won": _round(sum(b for _, b in items) / len(items)),
                     "true_chance": info.get("win_probability")})
    return rows


def main(argv: list[str] | None = None) -> int:
    from benchmarks.report import machine, publish

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--boxes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--horizon", type=int, default=30, help="days the forecast looks ahead")
    parser.add_argument("--every", type=int, default=1, help="a cut-off every N days")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if args.days <= args.horizon:
        parser.error("--days must be more than --horizon: the last cut-off needs the horizon's truth after it")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="streak-backtest-") as tmp:
        seen, truth, process = simulate(args.boxes, args.days, args.horizon, args.every, args.seed, Path(tmp),
                                        progress=lambda line: print(line, file=sys.stderr, flush=True))
    import streak_clock

    result = {
        "benchmark": "forecast_backtest",
        "command": " ".join(["python benchmarks/forecast_backtest.py", *(argv if argv is not None else sys.argv[1:])]),
        "measured_on": streak_clock.today().isoformat(),
        "boxes": args.boxes, "days": args.days, "horizon_days": args.horizon, "every_days": args.every,
        "seed": args.seed, "anchor_date": ANCHOR_DATE.isoformat(), "machine": machine(),
        "load_avg_1m_before": round(load_before, 2), "wall_s": round(time.monotonic() - started, 1),
        "load_s_mean": round(sum(seen.load_seconds) / len(seen.load_seconds), 2),
        **score(seen, truth, process, args.horizon),
    }
    publish(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
