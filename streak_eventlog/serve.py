"""``serve``: bind, print the base URL (first stdout line), run uvicorn until SIGTERM/SIGINT.

uvicorn runs in the main thread, so its own SIGTERM/SIGINT handlers stop it gracefully: it stops
accepting, lets in-flight requests finish (each waits for its commit), then the spool writer commits
what is queued and stops. uvicorn re-raises the signal it caught once it has stopped; the no-op
handlers installed here receive it, so the process ends with status 0 after closing the spool.
No access log: nothing a request carries is logged. uvicorn parses HTTP with httptools (C, in
requirements.txt) when it is installed, else with the pure-Python h11, and runs on uvloop (C, in
requirements.txt) when it is installed, else on asyncio's own loop: the receiver works with any of
them, and takes less CPU per request with the C ones (docs/events.md, "Performance").
"""

from __future__ import annotations

import signal
import socket
import sys
from typing import TextIO

import uvicorn

from streak_source.privacy import NO_PRIVACY, PrivacyPolicy

from .app import Receiver, ReceiverSettings
from .config import EventsConfiguration
from .spool import Spool


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # before the URL is printed: a client may connect at once (uvicorn accepts later)
    return sock


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _stopped(signum: int, frame: object) -> None:
    """Receives the signal uvicorn re-raises after its graceful stop: nothing left to do."""


def serve(config: EventsConfiguration, host: str = "127.0.0.1", port: int = 0, out: TextIO = sys.stdout,
          privacy: PrivacyPolicy = NO_PRIVACY) -> None:
    """Serve until a signal stops it. Raises OSError if the address cannot be bound. ``privacy``
    (``[privacy]``) is applied to every event before the spool is written."""
    sock = bind(host, port)
    spool = Spool(config.spool_path, synchronous=config.spool_synchronous)  # type: ignore[arg-type]
    spool.start()
    try:
        receiver = Receiver(
            spool,
            ReceiverSettings(str(config.api_key), str(config.webhook_token), int(config.max_body_bytes)),
            privacy,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                receiver.app,
                interface="asgi3",  # a bound method: uvicorn would guess ASGI 2
                loop="auto",  # uvloop (requirements.txt) when installed, else asyncio's own loop
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                proxy_headers=False,  # the receiver never reads the client's address
                backlog=2048,
                timeout_graceful_shutdown=5,
            )
        )
        print(base_url(host, int(sock.getsockname()[1])), file=out, flush=True)
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        spool.close()
        sock.close()
