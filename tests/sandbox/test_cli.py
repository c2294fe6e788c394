"""``python -m streak_source.sandbox``: base URL first, serves, exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from streak_source.sandbox import Sandbox, generate_account, table_counts

pytestmark = pytest.mark.timeout(90)

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE_S = 30
EXIT_DEADLINE_S = 15


def sandbox_command(*args: str) -> list[str]:
    return [sys.executable, "-u", "-m", "streak_source.sandbox", *args]


def run_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


class Served:
    """A running CLI sandbox: its process and the first stdout line, read with a deadline."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            sandbox_command("serve", *args),
            cwd=REPO_ROOT,
            env=run_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=self._pump, args=(self.process.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)

    def first_line(self) -> str:
        try:
            return self._lines.get(timeout=STARTUP_DEADLINE_S).rstrip("\n")
        except queue.Empty:
            self.process.kill()
            raise AssertionError(f"no stdout line within {STARTUP_DEADLINE_S}s") from None

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=EXIT_DEADLINE_S)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_DEADLINE_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def serve() -> Iterator[type[Served]]:
    started: list[Served] = []

    class Tracked(Served):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for served in started:
        served.close()


def test_prints_base_url_first_serves_and_exits_0_on_sigterm(serve: type[Served]) -> None:
    served = serve("--boxes", "30", "--seed", "3", "--anchor-date", "2025-03-14", "--port", "0")
    base_url = served.first_line()
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/")
    me = requests.get(base_url + "v1/users/me", auth=("demo", ""), timeout=10)
    assert me.status_code == 200
    assert me.json()["key"] == generate_account(seed=3, boxes=30, anchor_date="2025-03-14").me.key
    assert requests.get(base_url + "v1/users/me", timeout=10).status_code == 401
    assert served.stop(signal.SIGTERM) == 0


def test_options_reach_the_server_and_sigint_exits_0(serve: type[Served]) -> None:
    served = serve(
        "--boxes",
        "40",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--fault",
        "gone=2",
        "--page-size",
        "tasks=2",
        "--page-size",
        "comments=2",
        "--boxes-array",
        "--anchor-date",
        "2025-03-14",
    )
    base_url = served.first_line()
    assert requests.get(base_url + "v1/users/me", auth=("k2", "k2"), timeout=10).status_code == 200
    assert requests.get(base_url + "v1/users/me", auth=("demo", ""), timeout=10).status_code == 401
    stats = requests.get(base_url + "__sandbox__/stats", timeout=10).json()
    assert len(stats["faults"]["gone_box_keys"]) == 2
    assert stats["page_sizes"]["tasks"] == 2 and stats["page_sizes"]["boxes"] == 1000
    pipelines = requests.get(base_url + "v1/pipelines", auth=("k1", ""), timeout=10).json()
    paged = requests.get(
        base_url + f"v1/pipelines/{pipelines[0]['key']}/boxes",
        params={"page": 0, "limit": 3},
        auth=("k1", ""),
        timeout=10,
    ).json()
    assert isinstance(paged, list) and len(paged) == 3
    assert served.stop(signal.SIGINT) == 0


def test_serve_the_hostile_account(serve: type[Served]) -> None:
    served = serve("--account", "hostile", "--boxes", "25", "--anchor-date", "2025-03-14")
    base_url = served.first_line()
    pipelines = requests.get(base_url + "v1/pipelines", auth=("demo", ""), timeout=10).json()
    assert any("key" not in p for p in pipelines)
    assert requests.get(base_url + "__sandbox__/stats", timeout=10).json()["account"] == "hostile"
    rejected = requests.get(base_url + "__sandbox__/rejected", timeout=10).json()
    assert rejected["pipelines"] == 1
    assert served.stop(signal.SIGTERM) == 0


def test_unknown_account_is_a_usage_error() -> None:
    result = subprocess.run(
        sandbox_command("serve", "--account", "evil"),
        cwd=REPO_ROOT,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_help_documents_the_fault_syntax() -> None:
    result = subprocess.run(
        sandbox_command("serve", "--help"),
        cwd=REPO_ROOT,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    for text in (
        "status=503:share=0.2:route=/api/v2/boxes/{box_key}/tasks",
        "hang=30",
        "gone=3",
        "malformed",
        "revoke-after=200",
        "--latency-ms",
        "--rate-limit",
        "--anchor-date",
    ):
        assert text in result.stdout


def test_bad_fault_spec_exits_nonzero_with_the_reason() -> None:
    result = subprocess.run(
        sandbox_command("serve", "--fault", "status=abc"),
        cwd=REPO_ROOT,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not an integer" in result.stderr and result.stdout == ""


def test_account_command_prints_ground_truth() -> None:
    result = subprocess.run(
        sandbox_command("account", "--boxes", "25", "--anchor-date", "2025-03-14"),
        cwd=REPO_ROOT,
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tables"] == table_counts(generate_account(boxes=25, anchor_date="2025-03-14"))
    assert report["needed_calls"] > 25


def test_day_flag_serves_the_account_after_that_many_days(serve: type[Served]) -> None:
    args = ("--boxes", "40", "--seed", "5", "--anchor-date", "2025-03-14")
    rate = ("--day-rate", "changed=0.2", "--day-rate", "created=0.05")
    served = serve(*args, *rate, "--day", "4")
    base_url = served.first_line()
    stats = requests.get(base_url + "__sandbox__/stats", timeout=10).json()
    assert stats["day"] == 4
    with Sandbox(boxes=40, seed=5, anchor_date="2025-03-14", day=4,
                 rates={"changed": 0.2, "created": 0.05}) as same:
        assert stats["needed_calls"] == same.needed_calls
        assert stats["needed_history_calls"] == same.needed_history_calls
        for path in ("__sandbox__/history", "__sandbox__/changes?since_day=2", "__sandbox__/account",
                     f"v1/pipelines/{same.account.pipelines[0].key}/boxes"):
            served_body = requests.get(base_url + path, auth=("demo", ""), timeout=10).content
            assert served_body == requests.get(same.url(path), auth=("demo", ""), timeout=10).content
    assert served.stop(signal.SIGTERM) == 0


def test_day_flag_and_rates_are_checked() -> None:
    for bad in (["--day", "-1"], ["--day", "x"], ["--day-rate", "moved=0.5"], ["--day-rate", "changed=2"]):
        result = subprocess.run(
            sandbox_command("account", "--boxes", "10", *bad),
            cwd=REPO_ROOT, env=run_env(), capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 2, (bad, result.stderr)
        assert result.stdout == ""


def test_account_command_with_a_day() -> None:
    result = subprocess.run(
        sandbox_command("account", "--boxes", "25", "--anchor-date", "2025-03-14", "--day", "3"),
        cwd=REPO_ROOT, env=run_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with Sandbox(boxes=25, anchor_date="2025-03-14", day=3) as same:
        assert report["day"] == 3
        assert report["tables"] == same.ground_truth()
        assert report["needed_history_calls"] == same.needed_history_calls
