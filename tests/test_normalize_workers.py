"""How many processes normalize a run's package (issue 26 item 2): ``[normalize] workers`` from
``[normalize] parallel_from_mb`` of extracted files up, one below; the choice leaves the environment
as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines import dlt_steps
from pipelines.dlt_steps import MB, normalize_workers

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("workers", "threshold", "extracted_mb", "expected"), [
    ("2", "6", 5.9, 1),
    ("2", "6", 6.0, 2),
    ("4", "6", 300, 4),
    ("1", "6", 300, 1),  # one configured: never more
    ("2", "0", 0.1, 2),  # 0: always fork (tests that need the workers)
])
def test_workers_follow_the_package_size(monkeypatch: pytest.MonkeyPatch, workers: str, threshold: str,
                                         extracted_mb: float, expected: int) -> None:
    monkeypatch.setenv("NORMALIZE__WORKERS", workers)
    monkeypatch.setenv("NORMALIZE__PARALLEL_FROM_MB", threshold)
    assert normalize_workers(int(extracted_mb * MB)) == expected


def test_the_committed_configuration_forks_from_six_mb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NORMALIZE__WORKERS", raising=False)
    monkeypatch.delenv("NORMALIZE__PARALLEL_FROM_MB", raising=False)
    monkeypatch.setenv("DLT_PROJECT_DIR", str(REPO_ROOT))
    assert (normalize_workers(int(5.9 * MB)), normalize_workers(6 * MB)) == (1, 2)


@pytest.mark.parametrize("before", [None, "3"])
def test_the_choice_is_undone_after_normalize(monkeypatch: pytest.MonkeyPatch, before: str | None) -> None:
    if before is None:
        monkeypatch.delenv("NORMALIZE__WORKERS", raising=False)
    else:
        monkeypatch.setenv("NORMALIZE__WORKERS", before)
    with dlt_steps._normalize_workers_set(1):
        assert os.environ["NORMALIZE__WORKERS"] == "1"
    assert os.environ.get("NORMALIZE__WORKERS") == before
