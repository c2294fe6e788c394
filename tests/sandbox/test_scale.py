"""Big accounts stay quick to generate and to serve; the throughput benchmark runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from streak_source.sandbox import Sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_twenty_thousand_boxes_are_served_in_pages_with_indexed_children() -> None:
    """What a big account serves; how fast is benchmarks/sandbox_scale.py's to measure."""
    sandbox = Sandbox(boxes=20_000, seed=2, anchor_date="2025-03-14")
    with sandbox, requests.Session() as session:
        session.auth = (sandbox.api_key, "")
        pipeline = sandbox.account.pipelines[0]
        page = session.get(
            sandbox.url(f"v1/pipelines/{pipeline.key}/boxes"),
            params={"page": 3, "limit": 1000},
            timeout=30,
        )
        assert page.status_code == 200 and len(page.json()["results"]) == 1000
        box_key = page.json()["results"][0]["key"]
        tasks = session.get(sandbox.url(f"v2/boxes/{box_key}/tasks"), params={"limit": 1000}, timeout=10)
        assert tasks.ok
        assert [t["boxKey"] for t in tasks.json()["results"]] == [box_key] * len(tasks.json()["results"])
    assert sandbox.ground_truth()["boxes"] == 20_000


@pytest.mark.timeout(90)
def test_throughput_benchmark_runs(tmp_path: Path) -> None:
    output = tmp_path / "throughput.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "sandbox_throughput.py"),
            "--seconds",
            "1",
            "--boxes",
            "30",
            "--mode",
            "inprocess",
            "--json",
            str(output),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(output.read_text())
    assert measured["clients"] == 16 and measured["requests"] > 0
    assert measured["statuses"] == {"200": measured["requests"]}
