"""The outcome views recomputed in plain Python from the copy's raw tables (a different path than
the views' SQL), and the comparison, for tests/test_outcome_views.py on DuckDB and Postgres.

The configuration the tests load with (:data:`SETTINGS_ENV`) is spelled out here again as plain
sets, so nothing of ``outcome_rules.py`` is reused: won = Won/Hired, lost = Lost/Rejected, Sales'
"On hold" closed, probabilities configured for Sales' Lead and every "Offer".
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from tests.destinations_support import Reader

MIN_SAMPLE = 6
SETTINGS_ENV = {
    "OUTCOMES__WON_STAGES": '["Won", "hired"]',
    "OUTCOMES__LOST_STAGES": '["LOST", "Rejected", "Wonn"]',  # "Wonn" names no stage: a warning
    "DASHBOARD__CLOSED_STAGES": '["Sales / On hold"]',
    "OUTCOMES__PROBABILITY": '{"Sales/Lead": 0.05, "offer": 0.7}',  # Lead has history enough; Offer not
    "OUTCOMES__MIN_SAMPLE": str(MIN_SAMPLE),
}
WON, LOST = {"won", "hired"}, {"lost", "rejected"}
CONFIGURED = {("sales", "lead"): 0.05, (None, "offer"): 0.7}
VALUE_WORDS = ("value", "amount", "size")


def _utc(value: Any) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _stage_outcome(pipeline: str | None, stage: str | None) -> str:
    name = (stage or "").strip().lower()
    if name in WON:
        return "won"
    if name in LOST:
        return "lost"
    if (pipeline or "").lower() == "sales" and name == "on hold":
        return "closed"
    return "open"


def _version_at(versions: list[dict[str, Any]], at: datetime) -> dict[str, Any] | None:
    """The version valid at ``at``, or the first one when ``at`` is before all of them."""
    ordered = sorted(versions, key=lambda v: v["valid_from"])
    for version in ordered:
        if version["valid_from"] <= at and (version["valid_to"] is None or at < version["valid_to"]):
            return version
    return ordered[0] if ordered and at < ordered[0]["valid_from"] else None


def _table(reader: Reader, sql: str, names: str) -> list[dict[str, Any]]:
    keys = [n.strip() for n in names.split(",")]
    return [dict(zip(keys, row)) for row in reader.rows(sql)]


def expected(reader: Reader) -> dict[str, Any]:
    """Every outcome view's rows, computed from ``crm``'s raw tables."""
    as_of = _utc(max(r[0] for r in reader.rows("select finished_at from crm.load_history where outcome = 'ok'")))
    pipelines = dict(reader.rows("select pipeline_key, name from crm.pipelines"))
    stages = {(p, s): (n, o) for p, s, n, o in reader.rows("select pipeline_key, stage_key, name, stage_order from crm.stages")}
    boxes = _table(reader, "select box_key, pipeline_key, stage_key, stage_name, owner_name, owner_email, creation_timestamp, "
                           "last_stage_change_timestamp from crm.boxes",
                   "box_key, pipeline_key, stage_key, stage_name, owner_name, owner_email, created, last_change")
    stays = _table(reader, "select box_key, pipeline_key, stage_key, stage_name, entered_at, left_at, entered_exact, "
                           "box_deleted_at from crm.box_stage_history",
                   "box_key, pipeline_key, stage_key, stage_name, entered_at, left_at, exact, deleted_at")
    for stay in stays:
        stay["entered_at"], stay["left_at"], stay["deleted_at"] = (_utc(stay[k]) for k in ("entered_at", "left_at", "deleted_at"))

    # the value field: the first numeric field (FORMULA, or TEXT_INPUT whose every value is a number) named value/amount/size
    fields = reader.rows("select pipeline_key, field_key, name, type, field_order from crm.pipeline_fields")
    values_now = _table(reader, "select box_key, pipeline_key, field_key, value_number from crm.box_field_values",
                        "box_key, pipeline_key, field_key, value_number")
    numeric_text = defaultdict(lambda: [0, 0])
    for v in values_now:
        numeric_text[(v["pipeline_key"], v["field_key"])][0] += 1
        numeric_text[(v["pipeline_key"], v["field_key"])][1] += v["value_number"] is not None
    value_field: dict[str, str] = {}
    for p, f, name, kind, order in sorted(fields, key=lambda r: (r[4], r[1])):
        counts = numeric_text[(p, f)]
        numeric = kind == "FORMULA" or (kind == "TEXT_INPUT" and counts[0] > 0 and counts[0] == counts[1])
        if numeric and any(w in str(name).lower() for w in VALUE_WORDS):
            value_field.setdefault(p, f)
    history = defaultdict(list)
    for box_key, field_key, number, valid_from, valid_to in reader.rows(
            "select box_key, field_key, value_number, valid_from, valid_to from crm.box_field_values_history"):
        history[(box_key, field_key)].append(dict(value=number, valid_from=_utc(valid_from), valid_to=_utc(valid_to)))
    owners = defaultdict(list)
    for box_key, name, email, valid_from, valid_to in reader.rows(
            "select box_key, owner_name, owner_email, valid_from, valid_to from crm.boxes_history"):
        owners[box_key].append(dict(name=name, email=email, valid_from=_utc(valid_from), valid_to=_utc(valid_to)))
    now_value = {(v["box_key"], v["field_key"]): v["value_number"] for v in values_now}

    outcomes = {}
    for box in boxes:
        pipeline_name = pipelines.get(box["pipeline_key"])
        stage_name = stages.get((box["pipeline_key"], box["stage_key"]), (box["stage_name"], None))[0]
        kind = _stage_outcome(pipeline_name, stage_name)
        current = [s for s in stays if s["box_key"] == box["box_key"] and s["stage_key"] == box["stage_key"] and s["left_at"] is None]
        latest = max(current, key=lambda s: s["entered_at"]) if current else None
        entered = latest["entered_at"] if latest else _utc(box["last_change"] or box["created"])
        closed_at = entered if kind in ("won", "lost") else None
        field_key = value_field.get(box["pipeline_key"])
        owner = dict(name=box["owner_name"], email=box["owner_email"])
        if closed_at is None:
            value = now_value.get((box["box_key"], field_key))
        else:
            version = _version_at(history.get((box["box_key"], field_key), []), closed_at)
            value = version["value"] if version else None
            owner = _version_at(owners[box["box_key"]], closed_at) or owner
        outcomes[box["box_key"]] = dict(
            pipeline_key=box["pipeline_key"], pipeline_name=pipeline_name, stage_key=box["stage_key"],
            outcome=kind if kind in ("won", "lost") else "open", closed=kind != "open", closed_at=closed_at,
            closed_at_exact=(bool(latest["exact"]) if latest else False) if closed_at else None,
            cycle_days=(closed_at - _utc(box["created"])).total_seconds() / 86400 if closed_at else None,
            stage_entered_at=entered, value=value, owner_name=owner["name"], owner_email=owner["email"])

    months = defaultdict(lambda: dict(won=0, lost=0, won_value=None, lost_value=None, with_value=0))
    for o in outcomes.values():
        if o["outcome"] == "open":
            continue
        row = months[(o["pipeline_key"], date(o["closed_at"].year, o["closed_at"].month, 1))]
        row[o["outcome"]] += 1
        if o["value"] is not None:
            row["with_value"] += 1
            row[f"{o['outcome']}_value"] = (row[f"{o['outcome']}_value"] or 0.0) + o["value"]
    win_rate = {key: dict(won=r["won"], lost=r["lost"], win_rate=r["won"] / (r["won"] + r["lost"]),
                          won_value=r["won_value"], lost_value=r["lost_value"], boxes_with_value=r["with_value"],
                          win_rate_by_value=((r["won_value"] or 0.0) / ((r["won_value"] or 0.0) + (r["lost_value"] or 0.0))
                                             if r["with_value"] and (r["won_value"] or 0.0) + (r["lost_value"] or 0.0) else None))
                for key, r in months.items()}

    closed_boxes = {k: o for k, o in outcomes.items() if o["outcome"] != "open"}
    per_pipeline = defaultdict(lambda: [0, 0])
    for o in closed_boxes.values():
        per_pipeline[o["pipeline_key"]][0] += 1
        per_pipeline[o["pipeline_key"]][1] += o["outcome"] == "won"
    probability = {}
    for (p, s), (name, _) in stages.items():
        ever = {st["box_key"] for st in stays if st["pipeline_key"] == p and st["stage_key"] == s
                and st["box_key"] in closed_boxes and closed_boxes[st["box_key"]]["pipeline_key"] == p
                and st["entered_at"] <= closed_boxes[st["box_key"]]["closed_at"]}
        won = sum(closed_boxes[b]["outcome"] == "won" for b in ever)
        kind = _stage_outcome(pipelines.get(p), name)
        configured = CONFIGURED.get(((pipelines.get(p) or "").lower(), name.lower()), CONFIGURED.get((None, name.lower())))
        total, total_won = per_pipeline[p]
        if kind in ("won", "lost"):
            chosen = (1.0 if kind == "won" else 0.0, f"{kind} stage")
        elif len(ever) >= MIN_SAMPLE:
            chosen = (won / len(ever), "history")
        elif configured is not None:
            chosen = (configured, "configured")
        elif total >= MIN_SAMPLE:
            chosen = (total_won / total, "pipeline")
        else:
            chosen = (None, "none")
        probability[(p, s)] = dict(closed_boxes=len(ever), won_boxes=won, probability=chosen[0], probability_source=chosen[1])

    weighted = {}
    for (p, s), (name, _) in stages.items():
        if _stage_outcome(pipelines.get(p), name) != "open":
            continue
        here = [o for o in outcomes.values() if o["pipeline_key"] == p and o["stage_key"] == s and not o["closed"]]
        values = [o["value"] for o in here if o["value"] is not None]
        chance = probability[(p, s)]["probability"]
        weighted[(p, s)] = dict(open_boxes=len(here), boxes_with_value=len(values), open_value=sum(values) if values else None,
                                probability=chance,
                                weighted_value=sum(values) * chance if values and chance is not None else None)

    scorecard = _scorecard(reader, outcomes, probability, as_of)
    forecast = _forecast(outcomes, stays, probability, stages, pipelines, as_of)
    return dict(box_outcomes=outcomes, win_rate_monthly=win_rate, stage_win_probability=probability,
                weighted_pipeline=weighted, owner_scorecard=scorecard, forecast_monthly=forecast, as_of=as_of)


def _scorecard(reader: Reader, outcomes: dict[str, Any], probability: dict[Any, Any], as_of: datetime) -> dict[Any, Any]:
    rows: dict[Any, dict[str, Any]] = defaultdict(lambda: dict(won=0, lost=0, won_value=None, open_boxes=0, open_value=None,
                                                               weighted_value=None, cycles=[], overdue_tasks=0))
    for o in outcomes.values():
        row = rows[o["owner_email"].lower() if o["owner_email"] else None]
        if o["outcome"] in ("won", "lost"):
            row[o["outcome"]] += 1
        if o["outcome"] == "won":
            row["cycles"].append(o["cycle_days"])
            if o["value"] is not None:
                row["won_value"] = (row["won_value"] or 0.0) + o["value"]
        if not o["closed"]:
            row["open_boxes"] += 1
            chance = probability.get((o["pipeline_key"], o["stage_key"]), {}).get("probability")
            if o["value"] is not None:
                row["open_value"] = (row["open_value"] or 0.0) + o["value"]
                if chance is not None:
                    row["weighted_value"] = (row["weighted_value"] or 0.0) + o["value"] * chance
    overdue = defaultdict(set)
    for task_key, email, status, due in reader.rows(
            "select t.task_key, a.email, t.status, t.due_date from crm.box_tasks t "
            "join crm.box_task_assignees a on a.task_key = t.task_key"):
        if email and status == "NOT_DONE" and due is not None and _utc(due) < as_of:
            overdue[email.lower()].add(task_key)
    for email, tasks in overdue.items():
        rows[email]["overdue_tasks"] = len(tasks)
    for row in rows.values():
        cycles = sorted(row.pop("cycles"))
        middle = len(cycles) // 2
        row["median_cycle_days"] = (None if not cycles else cycles[middle] if len(cycles) % 2
                                    else (cycles[middle - 1] + cycles[middle]) / 2)
        row["win_rate"] = row["won"] / (row["won"] + row["lost"]) if row["won"] + row["lost"] else None
    return dict(rows)


def _survival(observations: list[tuple[float, bool, bool]], t: float, before: bool = False) -> float:
    """Kaplan-Meier by its definition: the product over close times up to ``t`` (``before``: strictly
    before) of (1 - closes / at risk)."""
    result = 1.0
    for moment in sorted({d for d, closed, _ in observations if closed and (d < t if before else d <= t)}):
        at_risk = sum(1 for d, _, _ in observations if d >= moment)
        closes = sum(1 for d, closed, _ in observations if closed and d == moment)
        result *= 1 - closes / at_risk
    return result


def _won_by(observations: list[tuple[float, bool, bool]], t: float) -> float:
    """The share won by ``t`` by its definition (Aalen-Johansen): the sum over close times up to ``t`` of
    (not closed just before) x wins / at risk."""
    total = 0.0
    for moment in sorted({d for d, closed, _ in observations if closed and d <= t}):
        at_risk = sum(1 for d, _, _ in observations if d >= moment)
        wins = sum(1 for d, closed, won in observations if closed and won and d == moment)
        total += _survival(observations, moment, before=True) * wins / at_risk
    return total


def _forecast(outcomes: dict[str, Any], stays: list[dict[str, Any]], probability: dict[Any, Any],
              stages: dict[Any, Any], pipelines: dict[str, Any], as_of: datetime) -> dict[Any, Any]:
    closing = {key for key, (name, _) in stages.items() if _stage_outcome(pipelines.get(key[0]), name) in ("won", "lost")}
    closing |= {(s["pipeline_key"], s["stage_key"]) for s in stays if (s["stage_name"] or "").lower() in WON | LOST}
    winning = {key for key in closing if (stages.get(key, (None,))[0] or "").lower() in WON}
    winning |= {(s["pipeline_key"], s["stage_key"]) for s in stays if (s["stage_name"] or "").lower() in WON}
    deleted = {s["box_key"]: s["deleted_at"] for s in stays if s["deleted_at"] is not None}
    observations: dict[Any, list[tuple[float, bool, bool]]] = defaultdict(list)
    pooled: dict[str, list[tuple[float, bool, bool]]] = defaultdict(list)
    for stay in stays:
        if (stay["pipeline_key"], stay["stage_key"]) in closing:
            continue
        closes = sorted((s["entered_at"], (s["pipeline_key"], s["stage_key"]) in winning) for s in stays
                        if s["box_key"] == stay["box_key"] and (s["pipeline_key"], s["stage_key"]) in closing
                        and s["entered_at"] > stay["entered_at"])
        end = closes[0][0] if closes else max(stay["entered_at"], min(as_of, deleted.get(stay["box_key"], as_of)))
        item = ((end - stay["entered_at"]).total_seconds() / 86400, bool(closes), bool(closes and closes[0][1]))
        observations[(stay["pipeline_key"], stay["stage_key"])].append(item)
        pooled[stay["pipeline_key"]].append(item)
    month = date(as_of.year, as_of.month, 1)
    bounds = [as_of]
    for _ in range(3):
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        bounds.append(datetime(month.year, month.month, 1, tzinfo=UTC))
    result = {}
    for p in pipelines:
        for index in range(3):
            start, end = bounds[index], bounds[index + 1]
            boxes = value = 0.0
            for o in outcomes.values():
                if o["closed"] or o["pipeline_key"] != p:
                    continue
                chance = probability.get((p, o["stage_key"]), {}).get("probability")
                if chance is None:
                    continue
                own = observations.get((p, o["stage_key"]), [])
                curve = own if sum(closed for _, closed, _ in own) >= MIN_SAMPLE else pooled.get(p, [])
                age = max(0.0, (as_of - o["stage_entered_at"]).total_seconds() / 86400)
                t1, t2 = (start - as_of).total_seconds() / 86400, (end - as_of).total_seconds() / 86400
                to_come = _won_by(curve, math.inf) - _won_by(curve, age)  # of the wins, those after age days
                timing = (_won_by(curve, age + t2) - _won_by(curve, age + t1)) / to_come if to_come > 1e-12 else 0.0
                boxes += chance * timing
                value += chance * timing * (o["value"] or 0.0)
            result[(p, bounds[index].date() if index else date(as_of.year, as_of.month, 1))] = dict(
                expected_won_boxes=boxes, expected_won_value=value)
    return result


def same(got: Any, want: Any) -> bool:
    """Equal, floats within 1e-6 (relative), timestamps compared in UTC."""
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(want, datetime) and isinstance(got, datetime):
        return want.astimezone(UTC) == got.astimezone(UTC)
    return bool(got == want)


def differences(view: str, got: dict[Any, dict[str, Any]], want: dict[Any, dict[str, Any]]) -> list[str]:
    """Where the view's rows (by key) differ from the recomputation, column by column."""
    problems = [f"{view}: keys only in the view {sorted(set(got) - set(want), key=str)[:3]}, "
                f"only recomputed {sorted(set(want) - set(got), key=str)[:3]}"] if set(got) != set(want) else []
    for key in sorted(set(got) & set(want), key=str):
        for column, value in want[key].items():
            if not same(got[key].get(column), value):
                problems.append(f"{view} {key} {column}: view {got[key].get(column)!r}, recomputed {value!r}")
    return problems
