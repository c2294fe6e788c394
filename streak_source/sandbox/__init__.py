"""A local, faithful stand-in for Streak's API: for the demo, the tests and the benchmarks.

Layout (a backend/rendering split in the style of moto):

* ``account.py`` (+ ``model.py``, ``text.py``, ``keys.py``): the deterministic generated account,
  data only: the ground truth.
* ``render.py``: the account as Streak's JSON objects.
* ``server.py`` (+ ``paging.py``, ``stats.py``): Starlette routes, auth, paging, errors, stats.
* ``faults.py``: latency, server-side rate limit, injected faults (``--fault`` syntax).
* ``ground_truth.py``: destination row counts and the fewest calls a complete extraction needs.
* ``runner.py``: :class:`Sandbox`, uvicorn in a background thread; ``__main__.py``: the CLI.

Only ``streak_source.settings`` is imported from the source package; the source never imports this.
"""

from .account import DEFAULT_BOX_COUNT, DEFAULT_SEED, generate_account
from .faults import FAULT_SYNTAX, FaultSpec, FaultSpecError, parse_fault
from .ground_truth import TABLES, needed_calls, table_counts
from .model import Account
from .runner import Sandbox, SandboxError

__all__ = [
    "DEFAULT_BOX_COUNT",
    "DEFAULT_SEED",
    "FAULT_SYNTAX",
    "TABLES",
    "Account",
    "FaultSpec",
    "FaultSpecError",
    "Sandbox",
    "SandboxError",
    "generate_account",
    "needed_calls",
    "parse_fault",
    "table_counts",
]
