"""One run of the main job: its id, owner, and what it did so far (``pipelines/job.py`` fills it)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import streak_clock
from streak_warehouse.history_tables import HistoryResult, PreviousHistory
from streak_warehouse.locks import RunOwner
from streak_warehouse.outcome_config import OutcomeSettings
from streak_warehouse.refresh_basis import RefreshSettings
from streak_warehouse.upgrade import Upgrade

if TYPE_CHECKING:
    from streak_source import RunReport
    from streak_source.privacy import PrivacyPolicy
    from streak_source.refresh import RefreshPlan


@dataclass
class Run:
    """One run: its id (in staging names and ``load_history``), owner line, and what it did so far."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: streak_clock.now())
    started_clock: float = field(default_factory=time.monotonic)
    report: RunReport | None = None
    location: str | None = None
    recorded: bool = False
    destination_type: str = ""
    backfill_history: bool = False
    backfill_first_load: bool = False
    """Backfill the history when the destination holds no copy yet (``--demo``: its first load)."""
    previous: PreviousHistory = field(default_factory=PreviousHistory)
    history: HistoryResult | None = None
    stage_events: list[Any] = field(default_factory=list)
    """``BOX_CHANGE_STAGE`` webhook events (``crm.events`` + the spool) for the stage history."""
    refresh_settings: RefreshSettings = field(default_factory=RefreshSettings)
    refresh: RefreshPlan | None = None
    """The run's refresh plan (streak_warehouse/refresh_basis.py), built once the live copy was read."""
    upgrade: Upgrade = field(default_factory=Upgrade)
    """Layouts found and what this run does about them (streak_warehouse/upgrade.py)."""
    account_defaults: Mapping[str, Any] | None = None
    """Settings the account comes with (the demo's), recorded in the copy: streak_warehouse/account_defaults.py."""
    outcomes: OutcomeSettings = field(default_factory=OutcomeSettings)
    """``[outcomes]``, checked before the run reads anything (streak_warehouse/outcome_config.py)."""
    privacy: PrivacyPolicy | None = None
    """``[privacy]``, checked before the run reads anything (streak_source/privacy/); None: not read yet."""

    @property
    def owner(self) -> RunOwner:
        return RunOwner.this_process(self.started_at)
