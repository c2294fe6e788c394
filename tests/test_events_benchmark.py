"""benchmarks/events.py runs and counts lost events (a 2-second smoke run; the figures are in
benchmarks/results/events.json, measured with the default 30 s)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_short_benchmark_run_loses_nothing() -> None:
    spec = importlib.util.spec_from_file_location("events_benchmark", ROOT / "benchmarks" / "events.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(clients=4, seconds=2.0, synchronous="FULL")
    assert result["acknowledged"] > 0 and result["lost"] == 0
    assert result["stored"] == result["acknowledged"] and result["receiver_exit"] == 0
    assert set(result["statuses"]) == {"202"}
