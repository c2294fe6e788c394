"""The backtest's scoring (benchmarks/forecast_backtest.py) on hand-made paths: what counts as won in a
window, the truth for a box predicted open, the calibration bins and the MAE. The simulation itself is
a benchmark (an hour of daily loads), not a test."""

from __future__ import annotations

from benchmarks.forecast_backtest import Prediction, calibration, final_chance, scores, won_in_window

DAY = 86_400_000
PROCESS = {
    "won_stage_keys": ["W"], "lost_stage_keys": ["L"],
    "stages": {"A": {"kind": "line", "win_probability": 0.2}, "B": {"kind": "line", "win_probability": 0.6},
               "H": {"kind": "hold"}, "W": {"kind": "closed"}, "L": {"kind": "closed"}},
}


def test_a_box_counts_in_the_window_its_first_win_falls_in() -> None:
    paths = {"b1": [("A", 0), ("W", 5 * DAY)], "b2": [("A", 0), ("W", 40 * DAY)], "b3": [("A", 0), ("L", 6 * DAY)],
             "b4": [("A", 0), ("W", 7 * DAY)], "c1": [("X", 0), ("Y", 10 * DAY)], "c2": [("X", 0), ("Y", 3 * DAY)]}
    pipeline = {"b1": "p", "b2": "p", "b3": "p", "b4": "p", "c1": "q", "c2": "q"}
    found = won_in_window(paths, pipeline, {"p": {"W"}, "q": {"Y"}}, {"b1": 100.0, "b2": 50.0, "c1": 7.0},
                          start_ms=4 * DAY, end_ms=34 * DAY)
    assert found == {"p": (2, 100.0), "q": (1, 7.0)}  # b4 won without a value: a box, no value; b2 too late, c2 too early


def test_the_truth_for_a_box_predicted_open() -> None:
    assert final_chance([("A", 0), ("W", 1)], PROCESS, deleted=False) == 1.0
    assert final_chance([("A", 0), ("L", 1)], PROCESS, deleted=True) == 0.0  # lost, then deleted: lost
    assert final_chance([("A", 0), ("B", 1)], PROCESS, deleted=False) == 0.6  # still open: the chain's chance
    assert final_chance([("A", 0), ("B", 1), ("H", 2)], PROCESS, deleted=False) == 0.6  # on hold: the stage it left
    assert final_chance([("A", 0)], PROCESS, deleted=True) is None  # gone while open: no outcome


def test_calibration_bins_by_predicted_probability_and_counts_boxes_once() -> None:
    predictions = [Prediction(day, f"b{i}", "p", "A", 0.15) for day in (0, 1) for i in range(60)]
    predictions += [Prediction(0, "c1", "p", "B", 0.95), Prediction(0, "gone", "p", "A", 0.05)]
    truth = {**{f"b{i}": 1.0 if i < 15 else 0.0 for i in range(60)}, "c1": 1.0, "gone": None}
    bins = {row["bin"]: row for row in calibration(predictions, truth)}
    assert (bins["10-20 %"]["predictions"], bins["10-20 %"]["boxes"]) == (120, 60)
    assert bins["10-20 %"]["observed_won"] == 0.25 and bins["10-20 %"]["difference_points"] == 10.0
    assert bins["10-20 %"]["judged"] and bins["10-20 %"]["within_10_points"]
    assert bins["90-100 %"]["boxes"] == 1 and not bins["90-100 %"]["judged"]
    assert bins["0-10 %"]["predictions"] == 0 and bins["0-10 %"]["without_outcome"] == 1


def test_mae_of_the_forecast_and_of_the_baseline() -> None:
    row = lambda forecast, baseline, actual: {"pipelines": {"p": {  # noqa: E731
        "forecast_value": forecast, "baseline_value": baseline, "actual_value": actual, "low": 0.0, "high": 150.0,
        "actual_boxes": 1, "forecast_boxes": 1.0}}}
    result = scores([row(100.0, 0.0, 120.0), row(80.0, 200.0, 60.0)], "p")
    assert (result["mae_forecast"], result["mae_baseline"], result["forecast_beats_baseline"]) == (20.0, 130.0, True)
    assert result["bias_forecast"] == 0.0 and result["range_held_actual"] == 1.0
