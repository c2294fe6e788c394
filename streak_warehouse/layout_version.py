"""The version of the warehouse layout this code writes: the ONE number both the upgrade path and the
refresh mode compare against what a destination was written with.

Bump it when a release changes tables or columns (added, renamed, dropped, retyped) of the copy or
of the persistent tables; a run that finds an older number rebuilds what it must (and a ``changed``
refresh falls back to a full load) instead of mixing two layouts.
"""

from __future__ import annotations

from typing import Final

LAYOUT_VERSION: Final = 1
"""1: the layout of the first releases (copy, wide views, load_history, box_stage_history, events)."""
