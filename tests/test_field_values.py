"""Decoding of box custom-field values (streak_source.field_values): every type, every failure."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest

from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    EMPTY_LOOKUPS,
    NameLookups,
    Person,
    box_field_value_rows,
    field_options,
    has_value,
    index_fields,
    summarize_decode_statuses,
)
from streak_source.people import contact_name, organization_name

PIPELINE_FIELDS: list[dict[str, Any]] = [
    {"key": "1001", "name": "Deal size", "type": "TEXT_INPUT"},
    {
        "key": "1002",
        "name": "Source",
        "type": "DROPDOWN",
        "dropdownSettings": {
            "items": [{"key": "9001", "name": "Inbound"}, {"key": "9002", "name": "Referral"}]
        },
    },
    {"key": "1003", "name": "Signed", "type": "CHECKBOX"},
    {"key": "1004", "name": "Close date", "type": "DATE"},
    {"key": "1005", "name": "Account manager", "type": "PERSON"},
    {"key": "1006", "name": "Score", "type": "FORMULA"},
    {
        "key": "1007",
        "name": "Labels",
        "type": "TAG",
        "tagSettings": {"tags": [{"key": "9003", "tag": "Hot"}, {"key": "9004", "tag": "Enterprise"}]},
    },
    {"key": "1008", "name": "Contact", "type": "TEAM_CONTACT"},
    {"key": "1009", "name": "Company", "type": "TEAM_ORGANIZATION"},
    {"key": "1010", "name": "Mood", "type": "EMOJI_RATING"},
]
FIELDS = index_fields(PIPELINE_FIELDS)

LOOKUPS = NameLookups(
    users={
        "u-ada": Person(name="Ada Lovelace", email="ada@example.com"),
        "u-mail": Person(email="bob@example.com"),
    },
    contacts={"c-1": "Grace Hopper", "c-2": "Alan Turing"},
    organizations={"o-1": "Acme Corp"},
)

CLOSE_DATE_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def decode(field_key: str, value: Any, lookups: NameLookups = LOOKUPS) -> dict[str, Any]:
    """The single row for one field value of a box."""
    rows = box_field_value_rows(
        {"boxKey": "box-1", "pipelineKey": "pipe-1", "fields": {field_key: value}}, FIELDS, lookups
    )
    assert len(rows) == 1
    return rows[0]


def typed(row: dict[str, Any]) -> dict[str, Any]:
    """Only the decoded-value columns, to assert that nothing else was set."""
    return {
        k: row[k]
        for k in (
            "value_text",
            "value_number",
            "value_bool",
            "value_timestamp",
            "value_labels",
            "decode_status",
        )
    }


def expect(
    status: str = "ok",
    text: str | None = None,
    number: float | None = None,
    boolean: bool | None = None,
    timestamp: datetime | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "value_text": text,
        "value_number": number,
        "value_bool": boolean,
        "value_timestamp": timestamp,
        "value_labels": labels,
        "decode_status": status,
    }


# --- has_value ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", []])
def test_has_value_false_only_for_none_empty_string_empty_list(value: Any) -> None:
    assert has_value(value) is False


@pytest.mark.parametrize("value", [False, 0, 0.0, " ", "0", [None], {}, [""], "false"])
def test_has_value_true_for_falsy_but_real_values(value: Any) -> None:
    assert has_value(value) is True


# --- field_options ---------------------------------------------------------------------------------


def test_field_options_dropdown_items_and_tags() -> None:
    assert field_options(FIELDS["1002"]) == {"9001": "Inbound", "9002": "Referral"}
    assert field_options(FIELDS["1007"]) == {"9003": "Hot", "9004": "Enterprise"}
    assert field_options(FIELDS["1001"]) == {}


def test_field_options_tolerates_junk_and_skips_unlabelled_options() -> None:
    field = {
        "type": "DROPDOWN",
        "dropdownSettings": {
            "items": [None, "x", {"key": 9005, "name": "Numeric key"}, {"key": "9006"}, {"name": "no key"}]
        },
        "tagSettings": None,
    }
    assert field_options(field) == {"9005": "Numeric key"}
    assert field_options({"dropdownSettings": {"items": "nope"}}) == {}
    assert field_options(None) == {}
    assert field_options(["not", "a", "field"]) == {}


# --- one type at a time ----------------------------------------------------------------------------


def test_text_input() -> None:
    row = decode("1001", "Big one")
    assert typed(row) == expect(text="Big one")
    assert row["value_raw"] == '"Big one"'


def test_text_input_that_came_back_as_a_number_keeps_text_and_number() -> None:
    assert typed(decode("1001", 42)) == expect(text="42", number=42.0)
    assert typed(decode("1001", 12.5)) == expect(text="12.5", number=12.5)
    assert typed(decode("1001", 0)) == expect(text="0", number=0.0)


def test_text_input_plain_number_as_text_also_gets_a_number() -> None:
    assert typed(decode("1001", "42")) == expect(text="42", number=42.0)
    assert typed(decode("1001", " -3.5 ")) == expect(text=" -3.5 ", number=-3.5)
    assert typed(decode("1001", "1e3")) == expect(text="1e3", number=1000.0)


def test_text_input_amount_gets_a_number_by_the_one_rule_and_keeps_its_text() -> None:
    """Issue 11 #2: ``119,500 €`` was ``ok`` with value_number NULL (the rule is streak_source.numbers)."""
    for text, number in (("119,500 €", 119500.0), ("12,000", 12000.0), ("$5", 5.0), ("42 USD", 42.0),
                         ("1.234.567", 1234567.0), ("1 234,5", 1234.5), ("12%", 12.0), ("1.5k", 1500.0)):
        assert typed(decode("1001", text)) == expect(text=text, number=number), text


def test_text_input_that_only_looks_numeric_stays_text_only() -> None:
    for text in ("nan", "inf", "0x10", "1_000", "1e999", "about 5", "5-10", "1,2,3", "$5%"):
        assert typed(decode("1001", text)) == expect(text=text), text


def test_dropdown_label_instead_of_option_key() -> None:
    row = decode("1002", "9002")
    assert typed(row) == expect(text="Referral")
    assert row["value_raw"] == '"9002"'


def test_dropdown_deleted_option_keeps_raw_key() -> None:
    assert typed(decode("1002", "9099")) == expect("unknown_option", text="9099")


def test_dropdown_option_key_sent_as_integer_is_still_looked_up() -> None:
    assert typed(decode("1002", 9001)) == expect(text="Inbound")


def test_checkbox_true_and_false_are_values() -> None:
    checked = decode("1003", True)
    unchecked = decode("1003", False)
    assert typed(checked) == expect(boolean=True)
    assert typed(unchecked) == expect(boolean=False)
    assert unchecked["value_raw"] == "false"


def test_date_becomes_aware_utc_timestamp() -> None:
    row = decode("1004", CLOSE_DATE_MS)
    assert typed(row) == expect(timestamp=datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc))
    assert row["value_timestamp"].utcoffset().total_seconds() == 0


def test_date_as_numeric_string_is_accepted() -> None:
    assert decode("1004", str(CLOSE_DATE_MS))["value_timestamp"] == datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc
    )


def test_person_sharing_entries_name_preference() -> None:
    value = [
        {"userKey": "u-x", "email": "x@example.com", "fullName": "Xavier Full", "displayName": "Xav"},
        {"userKey": "u-y", "email": "y@example.com", "displayName": "Yolanda"},
        {"userKey": "u-z", "email": "z@example.com"},
        {"userKey": "u-ada"},
        {"userKey": "u-mail"},
    ]
    names = ["Xavier Full", "Yolanda", "z@example.com", "Ada Lovelace", "bob@example.com"]
    assert typed(decode("1005", value)) == expect(text=", ".join(names), labels=names)


def test_person_as_user_key_strings_resolved_through_lookups() -> None:
    assert typed(decode("1005", ["u-ada"])) == expect(text="Ada Lovelace", labels=["Ada Lovelace"])
    assert typed(decode("1005", "u-ada")) == expect(text="Ada Lovelace", labels=["Ada Lovelace"])


def test_person_unknown_user_key_falls_back_to_key() -> None:
    row = decode("1005", ["u-ada", "u-ghost"])
    assert typed(row) == expect(
        "unknown_option", text="Ada Lovelace, u-ghost", labels=["Ada Lovelace", "u-ghost"]
    )
    assert typed(decode("1005", [{"userKey": "u-ghost"}], EMPTY_LOOKUPS)) == expect(
        "unknown_option", text="u-ghost", labels=["u-ghost"]
    )


def test_formula_number_or_text() -> None:
    assert typed(decode("1006", 1234.5)) == expect(number=1234.5)
    assert typed(decode("1006", 7)) == expect(number=7.0)
    assert typed(decode("1006", "$1,200")) == expect(text="$1,200")
    assert typed(decode("1006", True)) == expect(boolean=True)


def test_tags_labels_in_stored_order() -> None:
    row = decode("1007", ["9004", "9003"])
    assert typed(row) == expect(text="Enterprise, Hot", labels=["Enterprise", "Hot"])
    assert row["value_raw"] == '["9004","9003"]'


def test_multi_tag_with_one_unknown_tag_keeps_its_key_in_place() -> None:
    row = decode("1007", ["9003", "9999", "9004"])
    assert typed(row) == expect(
        "unknown_option", text="Hot, 9999, Enterprise", labels=["Hot", "9999", "Enterprise"]
    )


def test_team_contact_keys_to_names() -> None:
    assert typed(decode("1008", ["c-1", "c-2"])) == expect(
        text="Grace Hopper, Alan Turing", labels=["Grace Hopper", "Alan Turing"]
    )


@pytest.mark.parametrize("value", ["c-1", [{"key": "c-1"}], {"key": "c-1"}])
def test_team_contact_accepts_single_key_and_key_objects(value: Any) -> None:
    assert typed(decode("1008", value)) == expect(text="Grace Hopper", labels=["Grace Hopper"])


def test_team_contact_unknown_key_kept_with_unknown_option() -> None:
    assert typed(decode("1008", ["c-1", "c-404"])) == expect(
        "unknown_option", text="Grace Hopper, c-404", labels=["Grace Hopper", "c-404"]
    )


def test_team_organization_keys_to_names_and_unknown_fallback() -> None:
    assert typed(decode("1009", ["o-1"])) == expect(text="Acme Corp", labels=["Acme Corp"])
    assert typed(decode("1009", [{"key": "o-2"}])) == expect("unknown_option", text="o-2", labels=["o-2"])
    # a contact key is not an organization: no cross-lookup
    assert decode("1009", ["c-1"])["decode_status"] == "unknown_option"


def test_unknown_field_type_keeps_raw_as_text() -> None:
    row = decode("1010", {"stars": 4})
    assert typed(row) == expect("unknown_type", text='{"stars":4}')
    assert (row["field_name"], row["field_type"]) == ("Mood", "EMOJI_RATING")


def test_unknown_type_string_value_is_kept_verbatim() -> None:
    assert typed(decode("1010", "🙂")) == expect("unknown_type", text="🙂")


def test_field_key_missing_from_pipeline_schema() -> None:
    row = decode("1999", ["a", 1])
    assert typed(row) == expect("unknown_field", text='["a",1]')
    assert row["field_name"] is None and row["field_type"] is None
    assert row["field_key"] == "1999"


def test_field_type_is_matched_case_insensitively() -> None:
    rows = box_field_value_rows(
        {"key": "b", "fields": {"1": True}}, {"1": {"name": "Flag", "type": "checkbox"}}, EMPTY_LOOKUPS
    )
    assert typed(rows[0]) == expect(boolean=True)
    assert rows[0]["field_type"] == "checkbox"  # stored as declared


# --- mismatched JSON types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_key", "value", "text"),
    [
        ("1004", "tomorrow", "tomorrow"),
        ("1004", True, "true"),
        ("1004", -5, "-5"),  # before 1970: not a real Streak time
        ("1004", {"ms": CLOSE_DATE_MS}, '{"ms":1700000000000}'),
        ("1003", "yes", "yes"),
        ("1003", 1, "1"),
        ("1003", ["true"], '["true"]'),
        ("1007", "9003", "9003"),
        ("1007", [["9003"]], '[["9003"]]'),
        ("1007", ["9003", None], '["9003",null]'),
        ("1002", ["9001"], '["9001"]'),
        ("1002", True, "true"),
        ("1001", True, "true"),
        ("1001", ["a", "b"], '["a","b"]'),
        ("1001", {"text": "x"}, '{"text":"x"}'),
        ("1006", [1, 2], "[1,2]"),
        ("1005", [42], "[42]"),
        ("1005", [{"image": "http://x"}], '[{"image":"http://x"}]'),
        ("1008", [1.5], "[1.5]"),
        ("1009", True, "true"),
    ],
)
def test_value_that_does_not_match_declared_type_keeps_raw_text(
    field_key: str, value: Any, text: str
) -> None:
    row = decode(field_key, value)
    assert typed(row) == expect("type_mismatch", text=text)
    assert row["value_raw"] == json.dumps(value, separators=(",", ":"))


def test_non_finite_numbers_are_not_stored_as_numbers() -> None:
    # json.loads accepts NaN/Infinity; databases and analysts should not get them as numbers
    assert typed(decode("1006", float("nan"))) == expect("type_mismatch", text="NaN")
    assert typed(decode("1001", float("inf"))) == expect("type_mismatch", text="Infinity")


# --- whole boxes ----------------------------------------------------------------------------------


def test_row_columns_and_keys() -> None:
    box = {"key": "box-9", "boxKey": "box-9", "pipelineKey": "pipe-1", "fields": {"1001": "x"}}
    [row] = box_field_value_rows(box, FIELDS, LOOKUPS)
    assert tuple(row) == tuple(BOX_FIELD_VALUES_COLUMNS)
    assert (row["box_key"], row["pipeline_key"], row["field_key"], row["field_name"], row["field_type"]) == (
        "box-9",
        "pipe-1",
        "1001",
        "Deal size",
        "TEXT_INPUT",
    )


def test_box_key_falls_back_to_key() -> None:
    [row] = box_field_value_rows({"key": "box-k", "fields": {"1001": "x"}}, FIELDS, LOOKUPS)
    assert row["box_key"] == "box-k"
    assert row["pipeline_key"] is None


def test_absent_values_produce_no_rows_and_falsy_values_do() -> None:
    box = {
        "boxKey": "b",
        "fields": {"1001": "", "1002": None, "1007": [], "1003": False, "1006": 0, "1005": []},
    }
    rows = box_field_value_rows(box, FIELDS, LOOKUPS)
    assert [(r["field_key"], r["value_bool"], r["value_number"]) for r in rows] == [
        ("1003", False, None),
        ("1006", None, 0.0),
    ]


def test_every_field_type_in_one_box() -> None:
    box = {
        "boxKey": "b",
        "pipelineKey": "p",
        "fields": {
            "1001": "Big",
            "1002": "9001",
            "1003": True,
            "1004": CLOSE_DATE_MS,
            "1005": [{"fullName": "Ada"}],
            "1006": 3,
            "1007": ["9003"],
            "1008": ["c-1"],
            "1009": ["o-1"],
            "1010": "x",
            "2000": "orphan",
        },
    }
    rows = box_field_value_rows(box, FIELDS, LOOKUPS)
    assert len(rows) == 11
    statuses = summarize_decode_statuses(rows)
    assert statuses == Counter(
        {"ok": 9, "unknown_type": 1, "unknown_field": 1, "unknown_option": 0, "type_mismatch": 0}
    )


def test_box_fields_as_key_value_list_is_accepted() -> None:
    box = {"boxKey": "b", "fields": [{"key": "1002", "value": "9002"}, {"key": "1001", "value": ""}, "junk"]}
    rows = box_field_value_rows(box, FIELDS, LOOKUPS)
    assert [(r["field_key"], r["value_text"]) for r in rows] == [("1002", "Referral")]


@pytest.mark.parametrize("fields", [None, "x", 3, {}, []])
def test_box_without_usable_fields_has_no_rows(fields: Any) -> None:
    assert box_field_value_rows({"boxKey": "b", "fields": fields}, FIELDS, LOOKUPS) == []
    assert box_field_value_rows({"boxKey": "b"}, FIELDS, LOOKUPS) == []


def test_garbage_field_definition_is_treated_as_unknown_field() -> None:
    definitions: Any = {"1": "not a mapping"}
    rows = box_field_value_rows({"boxKey": "b", "fields": {"1": "v"}}, definitions, EMPTY_LOOKUPS)
    assert typed(rows[0]) == expect("unknown_field", text="v")


def test_field_definition_without_type_is_unknown_type() -> None:
    rows = box_field_value_rows({"boxKey": "b", "fields": {"1": 5}}, {"1": {"name": "N"}}, EMPTY_LOOKUPS)
    assert typed(rows[0]) == expect("unknown_type", text="5")
    assert rows[0]["field_name"] == "N"


def test_index_fields_skips_junk_and_keeps_first_duplicate() -> None:
    indexed = index_fields(
        [{"key": "1", "name": "a"}, {"key": "1", "name": "b"}, {"name": "no key"}, None, {"key": 2}]
    )
    assert {k: v.get("name") for k, v in indexed.items()} == {"1": "a", "2": None}
    assert index_fields(None) == {}


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_a_blank_key_is_no_key_by_the_one_key_rule(blank: str) -> None:
    """Issue 22: field keys and bare references follow streak_source/keys.py, where " " is no key
    (a field or reference keyed " " was taken as real and looked up)."""
    assert index_fields([{"key": blank, "name": "blank", "type": "TEXT_INPUT"}]) == {}
    box = {"boxKey": "b", "fields": [{"key": blank, "value": "v"}, {"key": "1002", "value": "9002"}]}
    assert [row["field_key"] for row in box_field_value_rows(box, FIELDS, LOOKUPS)] == ["1002"]
    for field_key in ("1005", "1008", "1009"):  # PERSON, TEAM_CONTACT, TEAM_ORGANIZATION
        assert decode(field_key, [blank, "c-1"])["decode_status"] == "type_mismatch", field_key


def test_contact_and_organization_labels_have_one_rule() -> None:
    """Issue 11 "one home": contacts.full_name and TEAM_CONTACT labels come from one function."""
    assert contact_name({"key": "c1", "givenName": "Grace", "familyName": "Hopper"}) == "Grace Hopper"
    assert contact_name({"key": "c0", "fullName": "Dr. G. Hopper", "givenName": "Grace"}) == "Dr. G. Hopper"
    assert contact_name({"key": "c2", "emailAddresses": ["", "only@mail.io"]}) == "only@mail.io"
    assert contact_name({"key": "c3"}) is None
    assert organization_name({"key": "o1", "name": "Acme"}) == "Acme"
    assert organization_name({"key": "o2", "domains": ["acme.io"]}) == "acme.io"
    lookups = NameLookups(contacts={"c1": "Grace Hopper"})
    assert typed(decode("1008", ["c1", "c3"], lookups)) == expect(
        "unknown_option", text="Grace Hopper, c3", labels=["Grace Hopper", "c3"]
    )


def test_summarize_counts_every_status() -> None:
    rows = [{"decode_status": "ok"}, {"decode_status": "ok"}, {"decode_status": "type_mismatch"}]
    counts = summarize_decode_statuses(rows)
    assert counts["ok"] == 2 and counts["type_mismatch"] == 1 and counts["unknown_field"] == 0
    assert sum(summarize_decode_statuses([]).values()) == 0
