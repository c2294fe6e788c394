"""The pure parts of ``forget`` (streak_warehouse/forget_values.py) and of a rule change
(streak_warehouse/privacy_rewrite.py), by hand-made values: what goes, what stays byte for byte."""

from __future__ import annotations

import json

from streak_source.field_values import NameLookups
from streak_source.privacy import policy_from
from streak_warehouse.forget_values import ERASED, FORGOTTEN, json_text_like, person_from, redact, redacted_cells
from streak_warehouse.privacy_rewrite import event_change, protect_field_value

SALT = "unit-salt-0123456789abcdef"
STRICT = policy_from("strict", SALT)
ADA = "ada.lovelace@example.com"
CONTACT = {"contact_key": "c1", "full_name": "Ada Lovelace", "given_name": "Ada", "email_addresses": json.dumps([ADA]),
           "phone_numbers": json.dumps(["+1 555 0100"])}


def ada(hashing: bool = False) -> object:
    return person_from([ADA], [("contacts", CONTACT)], STRICT.hash if hashing else None)


def test_a_list_loses_the_persons_entries_and_an_object_their_values_others_stay() -> None:
    person = ada()
    assert redact(["bob@example.com", "ADA.Lovelace@example.com "], person) == ["bob@example.com"]
    assert redact({"sender": ADA, "to": "bob@example.com"}, person) == {"sender": None, "to": "bob@example.com"}
    assert redact("Bob Smith, Ada Lovelace", person) == "Bob Smith"
    assert redact("call Ada Lovelace at +1 555 0100 today", person) == f"call {FORGOTTEN} at {FORGOTTEN} today"
    assert redact(ADA, person) is ERASED
    untouched = {"names": ["Bob"], "n": 3}
    assert redact(untouched, person) is untouched  # nothing of hers: the same object, written back never


def test_a_given_name_alone_goes_only_beside_a_strong_value() -> None:
    person = ada()
    assert redact({"givenName": "Ada", "note": "x"}, person) == {"givenName": "Ada", "note": "x"}  # another Ada
    assert redact({"givenName": "Ada", "email": ADA}, person) == {"givenName": None, "email": None}
    cells = {"names": json.dumps(["Ada", "Bob"]), "email_addresses": json.dumps([ADA, "bob@example.com"])}
    assert redacted_cells(cells, person, {}, {}) == {"names": '["Bob"]', "email_addresses": '["bob@example.com"]'}


def test_hashed_values_match_and_a_clear_name_matches_its_hash() -> None:
    hashed_row = {"contact_key": "c1", "full_name": STRICT.hash("name", "Ada Lovelace"),
                  "email_addresses": json.dumps([STRICT.hash("email", ADA)])}
    person = person_from([ADA.upper()], [("contacts", hashed_row)], STRICT.hash)
    assert redact([STRICT.hash("email", ADA), "h:" + "0" * 32], person) == ["h:" + "0" * 32]
    assert redact(["Ada  Lovelace", "Bob Smith"], person) == ["Bob Smith"]  # only her hash was kept
    assert redact("team: " + STRICT.hash("email", ADA), person) == f"team: {FORGOTTEN}"
    by_parts = {"contact_key": "c1", "given_name": STRICT.hash("name", "Nina"),
                "family_name": STRICT.hash("name", "da Rosa"), "email_addresses": json.dumps([ADA])}
    person = person_from([ADA], [("contacts", by_parts)], STRICT.hash)
    assert redact(["Nina da Rosa", "Nina Simone"], person) == ["Nina Simone"]  # her full name, from its parts


def test_json_text_keeps_its_style_and_keys_stay_distinct() -> None:
    assert json_text_like('{"a": [1, "é"]}', {"a": [1]}) == '{"a": [1]}'
    assert json_text_like('{"a":["\\u00e9"]}', {"a": ["é", "x"]}) == '{"a":["\\u00e9","x"]}'
    person = ada()
    cells = {"event_key": f"api:{ADA}", "properties": json.dumps({"email": ADA, "plan": "pro"})}
    changed = redacted_cells(cells, person, {"event_key": False, "properties": False}, {"properties": True})
    assert changed["properties"] == '{"email": null, "plan": "pro"}'
    other = redacted_cells({"event_key": f"api:x-{ADA}"}, person, {"event_key": False}, {})["event_key"]
    assert changed["event_key"].startswith(f"api:{FORGOTTEN}~") and other != changed["event_key"]
    assert redacted_cells(cells, person, {"event_key": False}, {})["event_key"] == changed["event_key"]


def test_a_stored_field_value_is_decoded_again_from_its_protected_raw_value() -> None:
    entries = [{"userKey": "u1", "email": ADA, "fullName": "Ada Lovelace", "image": "https://x/a.png"},
               {"userKey": "u2", "email": "bob@example.com", "displayName": "Bob"}]
    raw = STRICT.protect("boxes", {"fields": {"1005": json.loads(json.dumps(entries))}})["fields"]["1005"]
    person = {"field_key": "1005", "field_type": "PERSON", "value_text": "Ada Lovelace, Bob",
              "value_labels": ["Ada Lovelace", "Bob"], "value_raw": json.dumps(entries, separators=(",", ":"))}
    protect_field_value(STRICT, person, {})
    assert json.loads(person["value_raw"]) == raw
    assert person["value_labels"] == [STRICT.hash("name", "Ada Lovelace"), STRICT.hash("name", "Bob")]
    assert person["value_text"] == ", ".join(person["value_labels"])
    contact = {"field_key": "1008", "field_type": "TEAM_CONTACT", "value_text": "Ada Lovelace",
               "value_labels": ["Ada Lovelace"], "value_raw": '["c1"]'}
    protect_field_value(STRICT, contact, {}, NameLookups(contacts={"c1": "h:one h:two"}))
    assert contact["value_labels"] == ["h:one h:two"] and contact["value_raw"] == '["c1"]'  # the copy's name
    phone = {"field_key": "1003", "field_type": "TEXT_INPUT", "value_text": "+1 555 0100", "value_number": 15550100.0,
             "value_raw": '"+1 555 0100"'}
    protect_field_value(STRICT, phone, {"1003": "phone"})
    hashed = STRICT.hash("phone", "+1 555 0100")
    assert phone == {"field_key": "1003", "field_type": "TEXT_INPUT", "value_text": hashed, "value_number": None,
                     "value_raw": json.dumps(hashed)}
    kept = {"field_key": "1002", "field_type": "DROPDOWN", "value_text": "Negotiation", "value_raw": '"9002"'}
    protect_field_value(STRICT, kept, {})
    assert kept == {"field_key": "1002", "field_type": "DROPDOWN", "value_text": "Negotiation", "value_raw": '"9002"'}


def test_a_custom_events_key_follows_its_hashed_id_and_a_newer_one_supersedes_it() -> None:
    hashed = STRICT.hash("email", ADA)
    taken = {f"api:{ADA}", f"api:{hashed}"}
    superseded: list[str] = []
    change = event_change(STRICT, taken, superseded)
    old = {"event_key": f"api:{ADA}", "event_name": "signup", "source": "api", "distinct_id": ADA,
           "properties": json.dumps({"email": ADA, "plan": "pro"})}
    assert change(old) == {} and superseded == [f"api:{ADA}"]  # the event under the new rules is kept
    fresh = event_change(STRICT, {f"api:{ADA}"}, [])(old)
    assert fresh["event_key"] == f"api:{hashed}" and fresh["distinct_id"] == hashed
    assert json.loads(fresh["properties"]) == {"email": hashed, "plan": "pro"}
