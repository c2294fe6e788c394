"""Shared plumbing of the events tests: an in-process receiver, and the receiver as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from starlette.testclient import TestClient

from streak_eventlog.app import Receiver, ReceiverSettings
from streak_eventlog.spool import Spool

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-api-key-5f1c9e"
TOKEN = "test-webhook-token-77ab2d"
LIMIT = 4096


@contextmanager
def receiver_client(spool_path: Path, limit: int = LIMIT) -> Iterator[tuple[TestClient, Spool]]:
    with Spool(spool_path) as spool:
        receiver = Receiver(spool, ReceiverSettings(API_KEY, TOKEN, limit))
        with TestClient(receiver.app) as client:
            yield client, spool


def receiver_env(spool_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTS__")}
    env.update(
        {
            "EVENTS__API_KEY": API_KEY,
            "EVENTS__WEBHOOK_TOKEN": TOKEN,
            "EVENTS__SPOOL_PATH": str(spool_path),
            "DLT_PROJECT_DIR": str(spool_path.parent),  # no developer's .dlt/secrets.toml
            **extra,
        }
    )
    return env


class ReceiverProcess:
    """``python pipelines/streak_events.py serve`` in a subprocess; ``url`` is its first line."""

    def __init__(self, spool_path: Path, log_dir: Path, port: int = 0) -> None:
        self.log = open(log_dir / f"receiver-{port}-{os.getpid()}.err", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "pipelines" / "streak_events.py"), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=receiver_env(spool_path),
            cwd=str(log_dir),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url:
            self.proc.wait(10)
            raise RuntimeError(f"the receiver did not start (exit {self.proc.returncode})")
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.log.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


def post_event(client: Any, body: Any, key: str = API_KEY, **headers: str) -> Any:
    return client.post("/events/ingestion/v1", json=body, headers={"X-API-Key": key, **headers})


def sigkill_mid_stream(
    receiver: ReceiverProcess, post: Callable[[requests.Session, int, int], list[str]], at_least: int, clients: int = 4
) -> list[str]:
    """``clients`` threads call ``post(session, client, i)`` for i = 0, 1, ... (it sends one request and
    returns the event keys its answer acknowledged) until ``at_least`` keys are acknowledged; then the
    receiver is SIGKILLed while they are still posting. Returns every acknowledged key."""
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                keys = post(session, n, i)
            except requests.RequestException:
                return
            with lock:
                acknowledged.extend(keys)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):  # kill once enough were acknowledged
            with lock:
                if len(acknowledged) >= at_least:
                    break
            threads[0].join(0.01)
    finally:
        assert receiver.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for t in threads:
        t.join()
    return acknowledged
