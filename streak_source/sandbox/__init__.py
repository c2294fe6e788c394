"""A local, faithful stand-in for Streak's API: for the demo, the tests and the benchmarks.

Layout (a backend/rendering split in the style of moto):

* ``endpoints.py``: Streak's read routes as data, written from the API reference (the ONE list
  the server routes from and the coverage test walks).
* ``account.py`` (+ ``generator.py``, ``generate_boxes.py``, ``generate_children.py``,
  ``generate_newsfeed.py``, ``hostile.py``, ``model.py``, ``text.py``, ``keys.py``): the
  deterministic generated account, data only: the ground truth.
* ``render.py``, ``render_boxes.py``: the account as Streak's JSON objects.
* ``server.py`` (+ ``routes_account.py``, ``routes_boxes.py``, ``responses.py``, ``lookups.py``,
  ``auth.py``, ``paging.py``, ``stats.py``): Starlette routes, auth, paging, errors, stats.
* ``faults.py``: latency, server-side rate limit, injected faults (``--fault`` syntax).
* ``ground_truth.py``: destination row counts, expected quarantines, and the fewest calls a
  complete extraction needs.
* ``timeline.py`` (+ ``evolve.py``, ``evolve_activity.py``, ``routes_time.py``): sandbox time,
  the account after N simulated days, its true stage history and every change (``--day``,
  ``advance``, ``__sandbox__/history``, ``__sandbox__/changes``).
* ``sales_process.py``: how boxes move, win and lose (day 0's past and every simulated day), its
  true parameters and exact figures (``__sandbox__/sales_process``).
* ``webhooks.py`` (+ ``routes_webhooks.py``): the webhook registry (``POST``/``DELETE
  v2/webhooks``, ``endpoints.WRITE_ENDPOINTS``) and delivery of changes on ``advance``.
* ``canary.py``: ``--canary TOKEN``, a marker planted in every personal-data field (issue 25).
* ``runner.py``: :class:`Sandbox`, uvicorn in a background thread; ``__main__.py``: the CLI.
* ``demo_settings.py``: what the demo account's owner would configure (its closed stages), which
  ``--demo`` records in the copy it loads.

It imports nothing from the source package (it knows Streak from the reference, not from the
loader), and the source never imports it. ``docs/sandbox.md`` is the user guide.
"""

from .account import ACCOUNT_KINDS, DEFAULT_BOX_COUNT, DEFAULT_SEED, generate_account
from .canary import Canary, CanaryError
from .demo_settings import DEMO_CLOSED_STAGES, DEMO_LOST_STAGES, DEMO_SETTINGS, DEMO_WON_STAGES
from .endpoints import ENDPOINTS, Endpoint
from .faults import FAULT_SYNTAX, FaultSpec, FaultSpecError, parse_fault
from .ground_truth import TABLES, needed_calls, rejected_counts, table_counts
from .model import Account
from .paging import MAX_PAGE_SIZE, PageSizes
from .runner import Sandbox, SandboxError
from .timeline import Change, Rates, Timeline

__all__ = [
    "ACCOUNT_KINDS",
    "DEFAULT_BOX_COUNT",
    "DEFAULT_SEED",
    "DEMO_CLOSED_STAGES",
    "DEMO_LOST_STAGES",
    "DEMO_SETTINGS",
    "DEMO_WON_STAGES",
    "ENDPOINTS",
    "FAULT_SYNTAX",
    "MAX_PAGE_SIZE",
    "TABLES",
    "Account",
    "Canary",
    "CanaryError",
    "Change",
    "Endpoint",
    "FaultSpec",
    "FaultSpecError",
    "PageSizes",
    "Rates",
    "Sandbox",
    "SandboxError",
    "Timeline",
    "generate_account",
    "needed_calls",
    "parse_fault",
    "rejected_counts",
    "table_counts",
]
