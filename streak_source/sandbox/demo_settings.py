"""Settings the demo account comes with: what its owner would write in ``.dlt/config.toml``.

Streak has no "closed" flag, so for a user's own account nobody but the user can say which stages end
a box's journey and how. The demo account is ours: a box in Won (Sales) or Hired (Hiring) is won, in
Lost or Rejected lost (``[outcomes]``, docs/metrics.md; closed = won + lost), and a box's value is its
"Deal size" (Sales) or "Salary expectation" (Hiring), the fields the sales process draws values
into. ``python pipelines/streak_full.py --demo`` records :data:`DEMO_SETTINGS` in the copy it loads
(``streak_warehouse.account_defaults``), where readers such as the dashboard take them as defaults; a
user's own configuration always wins. Keys are configuration keys (``section.name``), values what that
key takes, so a setting the demo should come with later is one more entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from .sales_process import SALES_PROCESS

DEMO_WON_STAGES: Final = tuple(model.won for model in SALES_PROCESS)
"""The demo pipelines' stages where a box ends well (Sales: Won, Hiring: Hired), as their sales
process (sales_process.py) says."""
DEMO_LOST_STAGES: Final = tuple(model.lost for model in SALES_PROCESS)
"""... and where it ends badly (Lost, Rejected)."""
DEMO_CLOSED_STAGES: Final = (*DEMO_WON_STAGES, *DEMO_LOST_STAGES)

DEMO_SETTINGS: Final[Mapping[str, Any]] = MappingProxyType({
    "outcomes.won_stages": list(DEMO_WON_STAGES),
    "outcomes.lost_stages": list(DEMO_LOST_STAGES),
    "outcomes.value_field": {"Sales": "Deal size", "Hiring": "Salary expectation"},
})
"""Configuration key -> value, for the copy of the demo account."""
