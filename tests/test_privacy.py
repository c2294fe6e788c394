"""Issue 25: the pure parts of ``[privacy]`` (hashing, the catalog, presets and rules, their errors,
the walkers), the canary against the catalog, the receiver applying the policy, and the search the
end-to-end test relies on (tests/test_privacy_e2e.py)."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from benchmarks.marker_search import found_in

from streak_source import settings as source_settings
from streak_source.columns import TABLE_COLUMNS
from streak_source.privacy import (
    CATALOG, COLUMNS, DERIVED, PrivacyConfigError, field_kinds, hash_value, is_hashed, kind_of_name,
    looks_like_email, normalized, policy_from, source_of_endpoint,
)
from streak_source.privacy.catalog import ENDPOINT_SOURCES
from streak_source.refresh import BASIS_FORMAT, BasisStamp, RefreshBasis, first_decision
from streak_source.sandbox import generate_account
from streak_source.sandbox.canary import Canary, CanaryError
from streak_source.sandbox.render import (
    render_contact, render_newsfeed_entry, render_organization, render_pipeline, render_snippet, render_team,
    render_user,
)
from streak_source.sandbox.render_boxes import render_box, render_comment, render_meeting, render_task, render_thread

SALT = "unit-test-salt-0123456789"
STRICT = policy_from("strict", SALT)
HASH = re.compile(r"h:[0-9a-f]{32}")


# --------------------------------------------------------------------------- hashing


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("email", "  Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
    ("email", "Ada Lovelace <ADA@example.com>", "ada@example.com"),
    ("phone", "+1 (555) 010-0003", "+15550100003"),
    ("phone", "0555 010 0003", "05550100003"),
    ("phone", "call the office", "call the office"),
    ("name", "  Ada \t  LOVELACE ", "ada lovelace"),
    ("name", "Straße", "strasse"),
])
def test_values_are_normalized_by_kind_before_hashing(kind: Any, value: str, expected: str) -> None:
    assert normalized(kind, value) == expected


def test_a_hash_is_keyed_recognisable_stable_and_the_same_for_one_person_however_written() -> None:
    one = hash_value("email", "Ada@Example.com", SALT)
    assert HASH.fullmatch(one) and is_hashed(one)
    assert hash_value("email", " ada@example.com ", SALT) == one == STRICT.hash("email", "ADA@EXAMPLE.COM")
    assert hash_value("email", "ada@example.com", SALT + "x") != one  # keyed: another salt, another value
    assert hash_value("phone", "+1 (555) 010-0003", SALT) == hash_value("phone", "+1 555 0100003", SALT)
    assert hash_value("email", one, SALT) == one  # protecting twice changes nothing
    assert [hash_value("name", v, SALT) for v in (None, "", True)] == [None, "", True]
    assert HASH.fullmatch(hash_value("phone", 5550100003, SALT))  # a number in a personal column too


@pytest.mark.parametrize(("value", "is_email"), [
    ("ada@example.com", True), ("Ada <ada@example.co.uk>", True), (" ada+crm@sub.example.org ", True),
    ("not an address", False), ("https://example.com/@ada", False), ("ada@localhost", False),
    ("write to ada@example.com please", False), (42, False),
])
def test_what_counts_as_an_email_address(value: Any, is_email: bool) -> None:
    assert looks_like_email(value) is is_email


@pytest.mark.parametrize(("name", "kind"), [
    ("Personal e-mail", "email"), ("emailAddress", "email"), ("Mobile", "phone"), ("Call notes", "text"),
    ("TASK_TEXT", "text"), ("STORY_AUTHOR_DISPLAY_NAME", "name"), ("customer_name", "name"), ("BOX_NAME", None),
    ("PIPELINE_NAME", None), ("Company name", None), ("Deal size", None), ("Région / 地域", None), ("plan", None),
])
def test_kinds_of_named_fields(name: str, kind: str | None) -> None:
    assert kind_of_name(name) == kind


# --------------------------------------------------------------------------- the catalog


def test_every_catalog_column_is_a_column_of_the_copy_and_derived_ones_follow_a_catalog_column() -> None:
    from streak_warehouse.kept_tables import EVENTS

    declared = {f"{t}.{c}" for t, columns in TABLE_COLUMNS.items() for c in columns}
    declared |= {f"events.{c}" for c, _ in EVENTS.columns} | {"box_threads.snippet"}  # snippet: if Streak sends it
    assert {c.name for c in CATALOG} <= declared
    assert set(DERIVED.values()) <= set(COLUMNS) and not set(DERIVED) & set(COLUMNS)
    from streak_source.field_values import BOX_FIELD_VALUES_COLUMNS

    declared |= {f"box_field_values.{c}" for c in BOX_FIELD_VALUES_COLUMNS}
    assert set(DERIVED) <= declared


def test_every_endpoint_the_source_reads_says_which_object_it_answers_with() -> None:
    endpoints = [value for value in vars(source_settings).values() if isinstance(value, source_settings.Endpoint)]
    assert {e.path for e in endpoints} == set(ENDPOINT_SOURCES)
    assert {c.source for c in CATALOG} <= {*ENDPOINT_SOURCES.values(), "teams", "events"}
    assert source_of_endpoint("v9/something/new") is None


# --------------------------------------------------------------------------- settings and their errors


@pytest.mark.parametrize(("preset", "salt", "rules", "says"), [
    ("strong", SALT, None, '[privacy] preset = \'strong\' (env PRIVACY__PRESET) is not allowed: "none" or '
                           '"contacts" or "strict"'),
    ("strict", None, None, "[privacy] salt is missing: contacts.given_name (and 45 more) are hashed with it; set "
                           "salt under [privacy] in .dlt/secrets.toml or env PRIVACY__SALT"),
    ("contacts", "tiny5", None, "[privacy] salt (env PRIVACY__SALT) is too short: at least 16 characters"),
    (None, SALT, {"contacts.emails": "hash"}, '"contacts.emails" is not a personal-data column of the copy (did '
                                              'you mean "contacts.email_addresses"?)'),
    (None, SALT, {"boxes.owner_email": "hash"}, '"boxes.owner_email" is computed from '
                                                '"boxes.assigned_to_sharing_entries" and follows it'),
    (None, SALT, {"box_comments.message": "scramble"}, "\"box_comments.message\" = 'scramble' is not allowed: "
                                                      '"hash", "drop", "keep"'),
    (None, SALT, "{not json", "[privacy] rules (env PRIVACY__RULES) is not a JSON object"),
    (None, SALT, ["contacts.full_name"], "[privacy] rules must be a table"),
])
def test_a_bad_setting_is_one_line_naming_it(preset: Any, salt: Any, rules: Any, says: str) -> None:
    with pytest.raises(PrivacyConfigError) as refused:
        policy_from(preset, salt, rules)
    line = str(refused.value)
    assert says in line and "\n" not in line and (salt is None or salt not in line)


def test_none_is_the_default_and_protects_nothing_and_dropping_needs_no_salt() -> None:
    assert not policy_from().active and policy_from().fingerprint == "none"
    box = {"notes": "call Ada", "lastEmailFrom": "ada@example.com"}
    assert policy_from().protect("boxes", dict(box)) == box
    dropping = policy_from(rules={"box_comments.message": "drop"})
    assert dropping.active and dropping.protect("box_comments", {"message": "hi", "key": "c1"}) == {"key": "c1"}


def test_presets_cover_their_columns_and_rules_override_them() -> None:
    contacts = policy_from("contacts", SALT)
    assert {name.split(".")[0] for name in contacts.protected()} == {"contacts", "organizations"}
    assert contacts.treatment("contacts.email_addresses").describe() == "hash"
    assert contacts.treatment("contacts.other").describe() == "drop"
    assert contacts.treatment("boxes.email_addresses").describe() == "keep"
    assert set(STRICT.protected()) == set(COLUMNS)
    assert STRICT.treatment("boxes.assigned_to_sharing_entries").describe() == "hash email, name; drop url"
    # rules as TOML gives them (nested when the key is not quoted) or as JSON from the environment
    mixed = policy_from("strict", SALT, {"contacts": {"email_addresses": "keep"}, "box_comments.message": "hash"})
    assert mixed.treatment("contacts.email_addresses").describe() == "keep"
    assert mixed.treatment("box_comments.message").describe() == "hash"
    assert policy_from("none", SALT, '{"boxes.notes": "drop"}').protected().keys() == {"boxes.notes"}
    assert len({STRICT.fingerprint, mixed.fingerprint, policy_from("strict", SALT + "!").fingerprint}) == 3
    assert policy_from("strict", SALT).fingerprint == STRICT.fingerprint


# --------------------------------------------------------------------------- protecting objects


def test_strict_protects_a_box_where_the_catalog_says_and_any_email_address_besides() -> None:
    box = {"boxKey": "b1", "name": "Acme deal", "notes": "Ada's husband is ill", "lastEmailFrom": "Ada <ADA@x.com>",
           "assignedToSharingEntries": [{"email": "bo@us.com", "fullName": "Bo", "image": "https://i/bo", "userKey": "u1"}],
           "fields": {"1001": 12000, "1005": [{"userKey": "u1", "email": "bo@us.com", "fullName": "Bo"}],
                      "1011": "+1 555 0100", "1012": "met at the fair", "1013": "ada@x.com", "1014": "Paris"},
           "someNewField": {"owner": "cy@x.com"}}
    kinds = field_kinds([{"key": "1011", "name": "Mobile", "type": "TEXT_INPUT"},
                         {"key": "1012", "name": "Notes", "type": "TEXT_INPUT"},
                         {"key": "1014", "name": "City", "type": "TEXT_INPUT"},
                         {"key": "1002", "name": "Email sent", "type": "CHECKBOX"}])
    assert kinds == {"1011": "phone", "1012": "text"}
    out = STRICT.protect("boxes", box, kinds)
    ada = STRICT.hash("email", "ada@x.com")
    assert out["lastEmailFrom"] == ada == out["fields"]["1013"]  # one person, one hash: it joins
    assert "notes" not in out and "1012" not in out["fields"] and out["fields"]["1014"] == "Paris"
    assert out["assignedToSharingEntries"] == [{"email": STRICT.hash("email", "bo@us.com"),
                                                "fullName": STRICT.hash("name", "Bo"), "userKey": "u1"}]
    assert out["fields"]["1005"][0]["email"] == STRICT.hash("email", "bo@us.com")
    assert out["fields"]["1011"] == STRICT.hash("phone", "+15550100") and out["fields"]["1001"] == 12000
    assert out["someNewField"] == {"owner": STRICT.hash("email", "cy@x.com")} and out["name"] == "Acme deal"


def test_the_contacts_preset_protects_a_contact_and_hashes_a_stray_item() -> None:
    contact = {"key": "c1", "givenName": "Ada", "familyName": "Lovelace", "emailAddresses": ["ada@x.com"],
               "phoneNumbers": ["+1 555"], "addresses": ["1 Main St"], "other": "likes tea", "title": "CTO"}
    out = policy_from("contacts", SALT).protect_items("contacts", [contact, "stray@x.com", None])
    assert out[0] == {"key": "c1", "givenName": STRICT.hash("name", "Ada"), "familyName": STRICT.hash("name", "LOVELACE"),
                      "emailAddresses": [STRICT.hash("email", "ADA@x.com")], "phoneNumbers": [STRICT.hash("phone", "+1555")],
                      "title": "CTO"}
    assert out[1:] == [STRICT.hash("email", "stray@x.com"), None]  # a stray item, as rejected_records keeps it


def test_newsfeed_variables_webhook_objects_and_custom_events() -> None:
    entry = {"specificVariables": {"BOX_NAME": "Acme", "STORY_AUTHOR_DISPLAY_NAME": "Bo", "TASK_TEXT": "Call Ada",
                                   "STAGE_KEY": "5001"}, "storyTextGlobal": "Bo added a task (Acme)"}
    out = STRICT.protect("pipeline_newsfeed", entry)
    assert out == {"specificVariables": {"BOX_NAME": "Acme", "STORY_AUTHOR_DISPLAY_NAME": STRICT.hash("name", "Bo"),
                                         "STAGE_KEY": "5001"}}
    task = STRICT.protect_webhook_object("TASK_CREATE", {"key": "t1", "text": "Call Ada", "status": "NOT_DONE"})
    assert task == {"key": "t1", "status": "NOT_DONE"}
    properties, distinct_id = STRICT.protect_custom_event(
        {"email": "Ada@x.com", "notes": {"said": "hi"}, "plan": "pro", "seats": 3, "referrer": "bo@x.com"}, "Ada@x.com")
    assert distinct_id == STRICT.hash("email", "ada@x.com") == properties["email"]
    assert properties == {"email": distinct_id, "plan": "pro", "seats": 3, "referrer": STRICT.hash("email", "bo@x.com")}
    assert STRICT.protect_custom_event({}, "user-42") == ({}, "user-42")


def test_a_basis_kept_under_other_privacy_settings_is_not_reused() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2025, 3, 14, tzinfo=UTC)
    url = "http://127.0.0.1:1/api/"

    def decide(kept_under: str | None, now_under: str) -> str:
        stamp = BasisStamp("me", url, 1, BASIS_FORMAT, now - timedelta(days=1), privacy=kept_under)
        return first_decision("changed", RefreshBasis(stamp), unavailable=None, base_url=url, layout_version=1,
                              now=now, full_refresh_every_days=7, privacy=now_under).reason

    assert decide(None, "none").startswith("refresh = changed")  # a basis from before privacy existed
    assert decide(STRICT.fingerprint, STRICT.fingerprint).startswith("refresh = changed")
    assert "kept under other [privacy] settings" in decide(None, STRICT.fingerprint)
    assert "kept under other [privacy] settings" in decide(STRICT.fingerprint, "none")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["ada@x.com", "Ada <ADA@x.com>", "+1 555", "h:" + "0" * 32]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["email", "fullName", "image", "notes", "emailAddresses", "assignedToSharingEntries",
                         "fields", "specificVariables", "members", "name", "x", "1001"]) | st.text(max_size=6),
        inner, max_size=5),
    max_leaves=20)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(source=st.sampled_from(sorted({c.source for c in CATALOG} | {"stages"})), obj=_JSON)
def test_protecting_any_json_never_raises_and_protecting_twice_changes_nothing(source: str, obj: Any) -> None:
    once = STRICT.protect_items(source, [obj])
    assert STRICT.protect_items(source, copy.deepcopy(once)) == once
    assert "ada@x.com" not in json.dumps(once).lower()


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, dlt_isolated: Any) -> None:
    from streak_source.privacy import configured_policy

    assert configured_policy().preset == "none"
    monkeypatch.setenv("PRIVACY__PRESET", "contacts")
    monkeypatch.setenv("PRIVACY__SALT", SALT)
    monkeypatch.setenv("PRIVACY__RULES", '{"box_comments.message": "drop"}')
    policy = configured_policy()
    assert (policy.preset, policy.settings.rules) == ("contacts", {"box_comments.message": "drop"})
    assert policy.fingerprint == policy_from("contacts", SALT, {"box_comments.message": "drop"}).fingerprint
    assert SALT not in repr(policy.settings)


# --------------------------------------------------------------------------- the canary


def _rendered(account: Any) -> dict[str, list[dict[str, Any]]]:
    """Every object of the account as Streak serves it, by the source the catalog names."""
    boxes = account.all_boxes()
    return {
        "users": [render_user(u) for u in account.users.values()],
        "teams": [render_team(t) for t in account.teams],
        "contacts": [render_contact(c) for cs in account.contacts.values() for c in cs],
        "organizations": [render_organization(o) for os in account.organizations.values() for o in os],
        "snippets": [render_snippet(s) for s in account.snippets],
        "pipelines": [render_pipeline(p, account) for p in account.pipelines],
        "pipeline_newsfeed": [render_newsfeed_entry(e) for p in account.pipelines for e in p.events],
        "boxes": [render_box(b, account) for b in boxes],
        "box_tasks": [render_task(t, b, account) for b in boxes for t in b.tasks],
        "box_threads": [render_thread(t, b) for b in boxes for t in b.threads],
        "box_comments": [render_comment(c, b, account) for b in boxes for c in b.comments],
        "box_meetings": [render_meeting(m, b) for b in boxes for m in b.meetings],
    }


def test_the_canary_marks_people_and_texts_and_strict_removes_every_marker() -> None:
    account = generate_account(seed=5, boxes=12)
    before = json.dumps(_rendered(account), sort_keys=True)
    assert json.dumps(_rendered(generate_account(seed=5, boxes=12)), sort_keys=True) == before  # as generated
    canary = Canary("zqxtoken")
    canary.plant(account)
    rendered = _rendered(account)
    text = json.dumps(rendered, ensure_ascii=False)
    contact = next(c for c in account.contacts[account.teams[0].key] if c.phone_numbers)
    mine = contact.email_addresses[0].split(".", 1)[0]  # this contact's marker, e.g. zqxtoken-c000001
    assert re.fullmatch(r"zqxtoken-c\d{6}", mine) and contact.given_name.startswith(mine)
    assert f"ext. {mine}" in contact.phone_numbers[0] and mine in text
    assert {kind for kind in re.findall(r"zqxtoken-([a-z])\d{6}", text)} >= set("ucostkmbe")
    canary.plant(account)  # idempotent
    assert json.dumps(_rendered(account), ensure_ascii=False) == text
    protected = {source: [STRICT.protect(source, obj, field_kinds(account.pipelines[0].fields)) for obj in objs]
                 for source, objs in rendered.items()}
    left = re.findall(r"zqxtoken-\w+", json.dumps(protected, ensure_ascii=False))
    assert not left, f"strict leaves planted markers: {sorted(set(left))[:10]}"


def test_a_row_already_built_is_protected_as_the_row_built_from_the_protected_object() -> None:
    """``protect_row`` (for rewriting kept tables) agrees with protecting as the source reads."""
    from streak_source import transform
    from streak_source.people import task_assignee_rows

    account = generate_account(seed=5, boxes=12)
    Canary("zqxtoken").plant(account)
    rendered = _rendered(account)
    kinds = field_kinds(account.pipelines[0].fields)
    stage_names = transform.stage_names(rendered["pipelines"][0])
    builders: dict[str, Any] = {
        "users": lambda o: transform.user_row(o, False), "contacts": transform.contact_row,
        "organizations": transform.organization_row, "snippets": transform.snippet_row,
        "pipeline_newsfeed": lambda o: transform.newsfeed_row(o, "p1"),
        "boxes": lambda o: transform.box_row(o, stage_names), "box_threads": lambda o: transform.thread_row(o, {}),
        "box_tasks": lambda o: transform.task_row(o, {}), "box_comments": lambda o: transform.comment_row(o, {}),
        "box_meetings": lambda o: transform.meeting_row(o, {}),
    }
    compared = 0
    for source, build in builders.items():
        for raw in rendered[source]:
            field_kinds_ = kinds if source == "boxes" else None
            expected = build(STRICT.protect(source, copy.deepcopy(raw), field_kinds_))
            got = STRICT.protect_row(source, build(copy.deepcopy(raw)), field_kinds_)
            assert {k: v for k, v in got.items() if v is not None} == {k: v for k, v in expected.items() if v is not None}
            compared += 1
            if source == "box_tasks":
                rows = task_assignee_rows(build(copy.deepcopy(raw)) | {"task_key": "t"})
                protected = task_assignee_rows(expected | {"task_key": "t"})
                assert [STRICT.protect_row("box_task_assignees", r) for r in rows] == protected
    assert compared > 100 and "zqxtoken" not in json.dumps(got, default=str)


def test_a_canary_token_that_would_not_survive_is_refused() -> None:
    for token in ("Canary", "ab", "0abc", "abcdef", "has space"):
        with pytest.raises(CanaryError):
            Canary(token)


# --------------------------------------------------------------------------- the receiver


def test_the_receiver_protects_custom_events_and_webhook_objects_before_the_spool(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from streak_eventlog.app import Receiver, ReceiverSettings
    from streak_eventlog.spool import Spool

    with Spool(tmp_path / "s.sqlite") as spool:
        receiver = Receiver(spool, ReceiverSettings("key", "token", 4096), STRICT)
        with TestClient(receiver.app) as client:
            sent = client.post("/events/ingestion/v1", headers={"X-API-Key": "key"}, json={
                "event_name": "signup", "distinct_id": "ada@x.com", "properties": {"email": "ada@x.com", "plan": "pro"}})
            assert sent.status_code == 202 and "ada" not in sent.text
            hooked = client.post("/webhooks/streak/COMMENT_CREATE", headers={"X-Streak-Webhook-Token": "token"},
                                 json=[{"key": "c1", "boxKey": "b1", "timestamp": 1_700_000_000_000,
                                        "message": "Ada's number is 555 0100"}])
            assert hooked.status_code == 200
        rows = spool.all_rows()
    ada = STRICT.hash("email", "ada@x.com")
    assert {r["distinct_id"] for r in rows if r["source"] == "api"} == {ada}
    assert [r["properties"] for r in rows] in ([{"email": ada, "plan": "pro"}, {"object_key": "c1"}],
                                               [{"object_key": "c1"}, {"email": ada, "plan": "pro"}])
    assert b"ada@x.com" not in (tmp_path / "s.sqlite").read_bytes()


# --------------------------------------------------------------------------- the search itself


def test_the_search_finds_a_marker_in_compressed_duckdb_parquet_and_gzip_files(tmp_path: Path) -> None:
    """A marker in each compressed form must be found, or the end-to-end test's "none found" means nothing."""
    rows = [f"row {i} plain words" for i in range(20_000)] + ["zqxfound-c000001.ada@example.com"]
    with duckdb.connect(str(tmp_path / "copy.duckdb")) as con:  # enough rows for DuckDB to compress strings
        con.execute("create schema crm; create table crm.t as select 'row ' || i || ' plain words' as v, i as n "
                    "from range(20000) r(i); insert into crm.t values ('zqxfound-c000001.ada@example.com', -1)")
        con.execute(f"copy crm.t to '{tmp_path / 'part.parquet'}' (format parquet, compression zstd)")
    (tmp_path / "job.insert_values.gz").write_bytes(gzip.compress("\n".join(rows).encode()))
    hits = found_in(tmp_path, "zqxfound")
    assert f"{tmp_path / 'copy.duckdb'}: crm.t.v" in hits
    assert f"{tmp_path / 'part.parquet'}: v" in hits
    assert f"{tmp_path / 'job.insert_values.gz'} (inflated)" in hits
    assert found_in(tmp_path, "zqxabsent") == []


# --------------------------------------------------------------------------- the main job


def test_the_main_job_stops_before_reading_anything_on_a_bad_privacy_setting(dlt_isolated: Any) -> None:
    from tests.loadtools import run_main_job

    unreachable = {"SOURCES__STREAK__API_KEY": "k", "SOURCES__STREAK__BASE_URL": "http://127.0.0.1:9/api/"}
    done = run_main_job([], {**unreachable, "PRIVACY__PRESET": "strict"})
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: [privacy] salt is missing: contacts.given_name (and 45 more) are hashed with it; set salt under "
        "[privacy] in .dlt/secrets.toml or env PRIVACY__SALT"]
    assert not dlt_isolated.duckdb_path.exists()


def test_docs_list_every_column_with_what_each_preset_does_to_it() -> None:
    """docs/privacy.md, "Every column, per preset", is the catalog as the code resolves it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "privacy.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|", page, flags=re.MULTILINE)
    listed = {name: (kinds.strip(), contacts.strip(), strict.strip()) for name, kinds, contacts, strict in rows}
    contacts = policy_from("contacts", SALT)
    assert listed == {c.name: (", ".join(c.kinds), contacts.treatment(c.name).describe(),
                               STRICT.treatment(c.name).describe()) for c in CATALOG}
    follows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| `([a-z_]+\.[a-z_]+)` \|$", page, flags=re.MULTILINE))
    assert follows == dict(DERIVED)
