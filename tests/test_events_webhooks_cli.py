"""``streak_events.py webhooks register|list|delete`` against the sandbox, through StreakClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from events_support import TOKEN

from pipelines.events_cli import main
from streak_eventlog.streak_api import client_from_config
from streak_eventlog.webhook_events import PIPELINE_EVENTS, TEAM_EVENTS
from streak_source.client import StreakClient
from streak_source.sandbox import Sandbox

RECEIVER = "https://events.example.test/"


@pytest.fixture()
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(boxes=40, seed=5, anchor_date="2025-03-14") as sandbox:
        monkeypatch.setenv("SOURCES__STREAK__API_KEY", sandbox.api_key)
        monkeypatch.setenv("SOURCES__STREAK__BASE_URL", sandbox.base_url)
        monkeypatch.setenv("SOURCES__STREAK__MAX_REQUESTS_PER_SECOND", "200")
        monkeypatch.setenv("EVENTS__API_KEY", "k")
        monkeypatch.setenv("EVENTS__WEBHOOK_TOKEN", TOKEN)
        yield sandbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [line for line in out.splitlines() if line], err


def hooks(sb: Sandbox) -> list[Any]:
    return [h for p in sb.account.pipelines for h in sb.server.webhooks.listed("pipelineKey", p.key)] + [
        h for t in sb.account.teams for h in sb.server.webhooks.listed("teamKey", t.key)
    ]


def test_the_client_is_the_main_jobs(sb: Sandbox) -> None:
    client = client_from_config()
    assert isinstance(client, StreakClient) and hasattr(client, "_http")


def test_register_by_pipeline_name_and_event(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = sb.account.pipelines[0]
    code, lines, _ = run(capsys, "webhooks", "register", "--url", RECEIVER, "--event", "BOX_CHANGE_STAGE", "--event", "TASK_CREATE", "--pipeline", pipeline.name)
    assert code == 0 and len(lines) == 2
    made = hooks(sb)
    assert {(h.event, h.target_url, h.scope_key, h.token) for h in made} == {
        ("BOX_CHANGE_STAGE", RECEIVER + "webhooks/streak/BOX_CHANGE_STAGE", pipeline.key, TOKEN),
        ("TASK_CREATE", RECEIVER + "webhooks/streak/TASK_CREATE", pipeline.key, TOKEN),
    }
    assert TOKEN not in "\n".join(lines)
    # registering again creates nothing
    code, lines, _ = run(capsys, "webhooks", "register", "--url", RECEIVER, "--event", "BOX_CHANGE_STAGE", "--event", "TASK_CREATE", "--pipeline", pipeline.key)
    assert code == 0 and lines == [] and len(hooks(sb)) == 2


def test_register_everything_list_and_delete_ours(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "webhooks", "register", "--url", RECEIVER, "--team")
    assert code == 0
    expected = len(sb.account.pipelines) * len(PIPELINE_EVENTS) + len(sb.account.teams) * len(TEAM_EVENTS)
    assert len(hooks(sb)) == expected
    # someone else's webhook survives --all-ours
    other = sb.server.webhooks.register("BOX_CREATE", "https://zapier.example/hook", "pipelineKey", sb.account.pipelines[0].key, None, 0)
    code, lines, _ = run(capsys, "webhooks", "list")
    assert code == 0 and len(lines) == expected + 1 and TOKEN not in "\n".join(lines)
    code, lines, _ = run(capsys, "webhooks", "delete", "--all-ours")
    assert code == 0 and len(lines) == expected
    assert [h.key for h in hooks(sb)] == [other.key]
    code, lines, _ = run(capsys, "webhooks", "delete", other.key)
    assert code == 0 and hooks(sb) == []


def test_delete_all_ours_for_one_receiver_only(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    other_receiver = "https://other.example.test/"
    run(capsys, "webhooks", "register", "--url", RECEIVER, "--event", "BOX_CREATE")
    run(capsys, "webhooks", "register", "--url", other_receiver, "--event", "BOX_CREATE")
    code, _, _ = run(capsys, "webhooks", "delete", "--all-ours", "--url", other_receiver)
    assert code == 0 and {h.target_url for h in hooks(sb)} == {RECEIVER + "webhooks/streak/BOX_CREATE"}


def test_the_calls_go_through_the_limiter_and_stats(sb: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    sb.reset_stats()
    run(capsys, "webhooks", "register", "--url", RECEIVER, "--event", "BOX_CREATE")
    routes = sb.stats()["requests_by_route"]
    assert routes["/api/v2/webhooks"] == len(sb.account.pipelines)
    assert routes["/api/v1/pipelines"] >= 1


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["webhooks", "register", "--url", RECEIVER, "--event", "BOX_CREATED"], 1, "unknown Streak webhook event"),
        (["webhooks", "register", "--url", RECEIVER, "--event", "CONTACT_CREATE"], 1, "--team"),
        (["webhooks", "register", "--url", RECEIVER, "--pipeline", "No such pipeline"], 1, "no pipeline"),
        (["webhooks", "register", "--url", "events.example"], 2, "--url"),
        (["webhooks", "delete", "agxzfm1haWxmb29nYWVyDwsSB1dlYmhvb2sYofc2DA"], 1, "404"),
    ],
)
def test_errors_are_one_line(sb: Sandbox, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, words: str) -> None:
    got, _, err = run(capsys, *argv)
    assert got == code and words in err and err.count("\n") == 1
    assert sb.api_key not in err


def test_missing_streak_key_is_a_config_error(
    sb: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SOURCES__STREAK__API_KEY")
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))  # no .dlt/secrets.toml there
    code, _, err = run(capsys, "webhooks", "list")
    assert code == 3 and err.count("\n") == 1


def test_missing_token_is_a_config_error(
    sb: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EVENTS__WEBHOOK_TOKEN")
    monkeypatch.setenv("DLT_PROJECT_DIR", str(tmp_path))
    code, _, err = run(capsys, "webhooks", "register", "--url", RECEIVER)
    assert code == 3 and "events.webhook_token" in err and "EVENTS__WEBHOOK_TOKEN" in err
