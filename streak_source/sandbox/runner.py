"""``Sandbox``: the account plus its HTTP server, run by uvicorn in a background thread.

    with Sandbox(boxes=300, seed=7) as sb:
        requests.get(sb.base_url + "v1/users/me", auth=(sb.api_key, ""))
        sb.stats()["requests_total"]  # 1

uvicorn runs without signal handlers (it only installs them on the main thread) and without
touching the host's logging configuration; ``__exit__`` stops it and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Self

import uvicorn

from .account import DEFAULT_BOX_COUNT, DEFAULT_SEED, generate_account
from .canary import Canary
from .faults import FaultSpec, parse_fault
from .ground_truth import rejected_counts
from .model import Account
from .paging import PageSizes, coerce_page_sizes
from .server import SandboxServer, ServerOptions
from .routes_time import sales_process_of
from .timeline import Rates, Timeline

STARTUP_TIMEOUT_S = 20.0
SHUTDOWN_TIMEOUT_S = 20.0


class SandboxError(RuntimeError):
    """The sandbox server could not start or stop."""


class Sandbox:
    """A local, faithful stand-in for Streak's API, serving one generated account.

    ``boxes``/``seed``/``anchor_date`` pick the account (same three: byte-identical responses);
    ``latency_ms`` is added to every API call; ``rate_limit`` (requests/s) answers 429 beyond a
    bucket of one second's worth; ``faults`` are ``--fault`` specs (``faults.FAULT_SYNTAX``);
    ``api_keys`` are accepted keys, the first is ``api_key``; ``page_sizes`` are the client's
    ``limit`` per endpoint (a mapping such as ``{"tasks": 2}``, or any object with those
    attributes; default Streak's maximum, 1000), used for ``needed_calls`` only;
    ``boxes_paged_as_array`` serves the paged box list as a plain array; ``account`` is
    ``"default"`` or ``"hostile"`` (hostile.py); ``day`` serves the account after that many
    simulated days (timeline.py; default account only), ``rates`` says how much happens per day
    (``evolve.Rates`` or a mapping such as ``{"changed": 0.05}``); ``canary`` plants that token,
    made unique per person and text (``TOKEN-c000007``), in every field holding personal data
    (canary.py; None: the account as generated). The account is generated (and moved on) here;
    ``start()`` (or ``with``) serves it; ``advance()`` moves it on while served.
    """

    def __init__(
        self,
        boxes: int = DEFAULT_BOX_COUNT,
        seed: int = DEFAULT_SEED,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        faults: str | Iterable[str | FaultSpec] = (),
        api_keys: str | Iterable[str] = ("demo",),
        page_sizes: PageSizes | Mapping[str, int] | object | None = None,
        anchor_date: date | str | None = None,
        boxes_paged_as_array: bool = False,
        account: str = "default",
        host: str = "127.0.0.1",
        port: int = 0,
        day: int = 0,
        rates: Rates | Mapping[str, float] | None = None,
        webhook_attempts: int = 8,
        webhook_backoff_s: float = 0.25,
        canary: str | None = None,
    ) -> None:
        keys = (api_keys,) if isinstance(api_keys, str) else tuple(api_keys)
        fault_list = (faults,) if isinstance(faults, str) else tuple(faults)
        self.account: Account = generate_account(
            seed=seed, boxes=boxes, anchor_date=anchor_date, account=account
        )
        self.timeline = Timeline(self.account, rates)
        self.canary = Canary(canary) if canary is not None else None
        if self.canary is not None:
            planted = self.canary
            self.timeline.after_advance.append(
                lambda: planted.plant(self.account, self.timeline.deleted_boxes.values()))
            planted.plant(self.account)
        self.timeline.advance(day)
        self._stop = threading.Event()
        self.server = SandboxServer(
            self.account,
            ServerOptions(
                seed=seed,
                latency_ms=latency_ms,
                rate_limit=rate_limit,
                faults=tuple(f if isinstance(f, FaultSpec) else parse_fault(f) for f in fault_list),
                api_keys=keys,
                page_sizes=coerce_page_sizes(page_sizes),
                boxes_paged_as_array=boxes_paged_as_array,
                webhook_attempts=webhook_attempts,
                webhook_backoff_s=webhook_backoff_s,
            ),
            self._stop,
            self.timeline,
        )
        self.api_key: str = keys[0]
        self.host = host
        self._requested_port = port
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        if self._thread is not None:
            raise SandboxError("sandbox already started")
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and
        # without it every keep-alive response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise SandboxError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc}"
            ) from exc
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.server.app,
            http="h11",  # pure Python whatever is installed: the receiver's httptools changes nothing here
            loop="asyncio",  # nor does the receiver's uvloop
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=2048,
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"streak-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._uvicorn.started:
            if not self._thread.is_alive():
                raise SandboxError(f"sandbox server thread died during startup: {self._failure!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise SandboxError("sandbox server did not start in time")
            self._thread.join(0.005)
        return self

    def _run(self) -> None:
        assert self._uvicorn is not None and self._socket is not None
        try:
            self._uvicorn.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 - reported by start()/running
            self._failure = exc

    def stop(self) -> None:
        """Stop serving (in-flight hangs end at once) and join the server thread."""
        self._stop.set()
        self.server.webhooks.stop()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_S)
            if self._thread.is_alive():
                raise SandboxError("sandbox server thread did not stop in time")
        if self._socket is not None:
            self._socket.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ what tests and tools need

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/``: append ``v1/...`` / ``v2/...`` paths."""
        if self.port is None:
            raise SandboxError("sandbox not started")
        return f"http://{self.host}:{self.port}/api/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    def stats(self) -> dict[str, Any]:
        """Same as ``GET <base>/__sandbox__/stats``."""
        return self.server.stats_snapshot()

    def reset_stats(self) -> None:
        self.server.stats.reset()

    def ground_truth(self) -> dict[str, int]:
        """Same as ``GET <base>/__sandbox__/account``: row count per destination table."""
        return dict(self.server.ground_truth)

    def rejected(self) -> dict[str, int]:
        """Same as ``GET <base>/__sandbox__/rejected``: records a correct loader quarantines."""
        return rejected_counts(self.account)

    @property
    def needed_calls(self) -> int:
        """The fewest calls a complete extraction of the current day needs."""
        return self.server.needed_calls

    # ------------------------------------------------------------------ sandbox time

    @property
    def day(self) -> int:
        """Simulated days since the generated account (0 = as generated)."""
        return self.timeline.day

    def advance(self, days: int = 1) -> int:
        """Simulate ``days`` more days (same as ``POST <base>/__sandbox__/advance?days=N``);
        returns the new day. Works before ``start()`` and while serving."""
        self.server.advance(days)
        return self.timeline.day

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Same as ``GET <base>/__sandbox__/history``: every box's true stage path."""
        with self.server.state_lock:
            return self.timeline.history()

    def changes(self, since_day: int = 0) -> list[dict[str, Any]]:
        """The ``changes`` of ``GET <base>/__sandbox__/changes?since_day=N``, oldest first."""
        with self.server.state_lock:
            return self.timeline.changes(since_day)

    def sales_process(self) -> dict[str, Any]:
        """Same as ``GET <base>/__sandbox__/sales_process``: per pipeline key, the true parameters
        of the process its boxes move by (sales_process.py) and its exact figures: the chance to be
        won and the mean days to close from each stage, the value field and its distribution."""
        with self.server.state_lock:
            return sales_process_of(self.account, self.timeline.rates.pace)

    @property
    def needed_history_calls(self) -> int:
        """Per-box newsfeed calls a daily run needs today: one per box new or moved since
        yesterday (0 on day 0)."""
        return self.server.needed_history_calls

    # ------------------------------------------------------------------ webhooks (webhooks.py)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery attempt so far: ``webhook_key``, ``event``, ``target_url``,
        ``day``, ``objects``, ``attempt``, ``status`` (None: no answer), ``error``, ``outcome``
        (``delivered``, ``retry``, ``webhook deleted``, ``given up``). Never the token."""
        return self.server.webhooks.log()

    def wait_for_deliveries(self, timeout: float = 60.0) -> bool:
        """Wait until no delivery is queued, waiting for a retry or in flight; False on timeout."""
        return self.server.webhooks.wait_idle(timeout)

    @property
    def gone_box_keys(self) -> list[str]:
        return self.server.faults.gone_box_keys
