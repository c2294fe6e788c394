"""benchmarks/events.py runs and counts lost events, single and batched (short smoke runs; the
figures are in benchmarks/results/events.json and events_batch.json, measured with longer runs)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("batch", "status", "seconds"), [(1, "202", 2.0), (50, "200", 1.0)])
def test_short_benchmark_run_loses_nothing(batch: int, status: str, seconds: float) -> None:
    spec = importlib.util.spec_from_file_location("events_benchmark", ROOT / "benchmarks" / "events.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.run(clients=4, seconds=seconds, synchronous="FULL", batch=batch)
    assert result["acknowledged"] > 0 and result["lost"] == 0
    assert result["acknowledged"] == sum(result["statuses"].values()) * batch
    assert result["stored"] == result["acknowledged"] and result["receiver_exit"] == 0
    assert set(result["statuses"]) == {status}
