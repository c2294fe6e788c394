"""What every benchmark's result shares: the machine it ran on, and one way to print and keep it."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil


def machine() -> dict[str, Any]:
    """The machine a figure was measured on (a figure means nothing without it)."""
    import dlt

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "dlt": dlt.__version__,
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def publish(result: Mapping[str, Any], json_path: Path | None, indent: int = 2) -> None:
    """Print ``result`` as JSON and, with ``--json PATH``, keep it there (the results folder)."""
    text = json.dumps(result, indent=indent, default=str)
    print(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n", "utf-8")
