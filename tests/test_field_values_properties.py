"""Property tests: the field-value decoder and the epoch converter never raise and never lose data.

Fixed budget so CI is repeatable: a named profile (200 examples, no deadline, derandomized, no
example database written into the repository), applied per test rather than loaded globally so
other test modules keep their own settings.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streak_source.epoch import epoch_ms_to_datetime
from streak_source.field_values import (
    BOX_FIELD_VALUES_COLUMNS,
    DECODE_STATUSES,
    FIELD_TYPES,
    NameLookups,
    Person,
    box_field_value_rows,
    has_value,
    summarize_decode_statuses,
)

settings.register_profile(
    "streak-fixed-budget",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
FIXED_BUDGET = settings(settings.get_profile("streak-fixed-budget"))

FIELD_KEYS = [f"10{n:02d}" for n in range(1, 13)]  # 1001..1012: some declared, some not
OPTION_KEYS = ["9001", "9002", "9003", "9004", "9005"]
USER_KEYS = ["u-1", "u-2", "u-3"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(OPTION_KEYS + USER_KEYS + ["", " ", "tomorrow", "1700000000000", "-1", "c-1", "o-1"]),
)
huge_strings = st.builds(
    lambda ch, n: ch * n, st.characters(), st.integers(min_value=1_000, max_value=50_000)
)
timestamps = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**16),
    st.just(0),
    st.just(-1),
    st.floats(min_value=-1e16, max_value=1e16, allow_nan=False),
)
json_values = st.recursive(
    st.one_of(scalars, huge_strings, timestamps),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
sharing_entries = st.fixed_dictionaries(
    {},
    optional={
        "userKey": st.one_of(st.sampled_from(USER_KEYS), json_values),
        "email": st.one_of(st.text(max_size=20), st.none()),
        "fullName": st.one_of(st.text(max_size=20), st.none()),
        "displayName": st.one_of(st.text(max_size=20), st.none()),
        "key": st.sampled_from(["c-1", "c-2", "o-1", "x"]),
    },
)
field_values = st.one_of(
    json_values,
    timestamps,
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(OPTION_KEYS),
    st.lists(st.sampled_from(OPTION_KEYS), max_size=4),
    st.lists(st.one_of(sharing_entries, st.sampled_from(USER_KEYS + ["c-1", "o-1"])), max_size=3),
)
options = st.lists(
    st.one_of(
        st.fixed_dictionaries({"key": st.sampled_from(OPTION_KEYS), "name": st.text(max_size=10)}),
        st.fixed_dictionaries({"key": st.sampled_from(OPTION_KEYS), "tag": st.text(max_size=10)}),
        st.fixed_dictionaries({}, optional={"key": json_values, "name": json_values, "tag": json_values}),
        json_values,
    ),
    max_size=5,
)
well_formed_definitions = st.fixed_dictionaries(
    {
        "name": st.text(max_size=20),
        "type": st.sampled_from(sorted(FIELD_TYPES)),
        "dropdownSettings": st.fixed_dictionaries({"items": options}),
        "tagSettings": st.fixed_dictionaries({"tags": options}),
    }
)
odd_definitions = st.fixed_dictionaries(
    {},
    optional={
        "key": st.sampled_from(FIELD_KEYS),
        "name": st.one_of(st.text(max_size=20), json_values),
        "type": st.one_of(st.sampled_from(["checkbox", "NEW_TYPE", ""]), json_values),
        "dropdownSettings": json_values,
        "tagSettings": json_values,
    },
)
# one_of draws its branches evenly: mostly well formed, so the "ok" paths get exercised too
field_definitions = st.one_of(
    well_formed_definitions, well_formed_definitions, well_formed_definitions, odd_definitions, json_values
)
# 1001..1010 declared (mostly well formed), 1011 and 1012 never: unknown fields stay in the mix.
fields_by_key = st.fixed_dictionaries({key: field_definitions for key in FIELD_KEYS[:10]})
box_fields = st.dictionaries(
    st.one_of(st.sampled_from(FIELD_KEYS), st.sampled_from(["", " ", "9999", "1001 ", "é"])),
    field_values,
    max_size=10,
)
boxes = st.fixed_dictionaries(
    {"fields": box_fields},
    optional={"boxKey": json_values, "key": json_values, "pipelineKey": json_values},
)
lookups = st.builds(
    NameLookups,
    users=st.dictionaries(
        st.sampled_from(USER_KEYS),
        st.builds(
            Person, st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=10))
        ),
    ),
    contacts=st.dictionaries(st.sampled_from(["c-1", "c-2"]), st.text(max_size=10)),
    organizations=st.dictionaries(st.sampled_from(["o-1"]), st.text(max_size=10)),
)

OPTION_LABELS = {key: f"Option {key}" for key in OPTION_KEYS[:3]}  # 9004, 9005: deleted options
OPTIONS = [{"key": key, "name": label, "tag": label} for key, label in OPTION_LABELS.items()]
non_blank = st.text(min_size=1, max_size=20).filter(lambda text: text.strip() != "")
finite = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False, allow_infinity=False)
)
references = st.one_of(
    st.sampled_from(["c-1", "o-1", "u-1", "zz"]),
    st.lists(
        st.one_of(st.sampled_from(["c-1", "o-1", "u-1", "zz"]), st.fixed_dictionaries({"key": non_blank})),
        min_size=1,
    ),
)
person_entries = st.one_of(
    st.sampled_from(USER_KEYS + ["u-unknown"]),
    st.fixed_dictionaries(
        {"userKey": st.sampled_from(USER_KEYS)}, optional={"fullName": st.text(), "email": st.text()}
    ),
    st.fixed_dictionaries({"email": non_blank}),
)
well_typed = st.one_of(
    st.tuples(st.just("TEXT_INPUT"), st.one_of(non_blank, finite)),
    st.tuples(st.just("DROPDOWN"), st.sampled_from(OPTION_KEYS)),
    st.tuples(st.just("CHECKBOX"), st.booleans()),
    st.tuples(st.just("DATE"), st.integers(min_value=0, max_value=7_258_118_400_000)),
    st.tuples(st.just("FORMULA"), st.one_of(st.text(min_size=1), finite, st.booleans())),
    st.tuples(st.just("TAG"), st.lists(st.sampled_from(OPTION_KEYS), min_size=1, max_size=5)),
    st.tuples(st.just("PERSON"), st.lists(person_entries, min_size=1, max_size=4)),
    st.tuples(st.just("TEAM_CONTACT"), references),
    st.tuples(st.just("TEAM_ORGANIZATION"), references),
)
EXPECTED_COLUMN = {
    "TEXT_INPUT": "value_text",
    "DROPDOWN": "value_text",
    "CHECKBOX": "value_bool",
    "DATE": "value_timestamp",
    "TAG": "value_labels",
    "PERSON": "value_labels",
    "TEAM_CONTACT": "value_labels",
    "TEAM_ORGANIZATION": "value_labels",
}

TYPED_COLUMNS = ("value_text", "value_number", "value_bool", "value_timestamp", "value_labels")


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@FIXED_BUDGET
@given(box=boxes, definitions=fields_by_key, names=lookups)
def test_one_row_per_field_with_a_value_and_nothing_lost(
    box: dict[str, Any], definitions: dict[str, Any], names: NameLookups
) -> None:
    rows = box_field_value_rows(box, definitions, names)

    with_value = {key: value for key, value in box["fields"].items() if has_value(value)}
    assert [row["field_key"] for row in rows] == list(with_value)
    for row in rows:
        value = with_value[row["field_key"]]
        assert tuple(row) == tuple(BOX_FIELD_VALUES_COLUMNS)
        assert row["value_raw"] == compact(value)
        assert row["decode_status"] in DECODE_STATUSES
        if row["decode_status"] == "ok":
            assert any(row[column] is not None for column in TYPED_COLUMNS), row
        elif row["decode_status"] == "unknown_option":
            assert row["value_text"]  # the unresolved key(s) are kept as text
        else:  # undecodable: the raw value itself, as text, and no half-decoded typed value
            assert row["value_text"] == (value if isinstance(value, str) else compact(value))
            assert all(row[column] is None for column in TYPED_COLUMNS if column != "value_text")
        if row["decode_status"] == "unknown_field":
            assert row["field_name"] is None
            assert not isinstance(definitions.get(row["field_key"]), Mapping)
        if row["value_number"] is not None:
            assert isinstance(row["value_number"], float) and math.isfinite(row["value_number"])
        if row["value_timestamp"] is not None:
            assert row["value_timestamp"].utcoffset() == timedelta(0)
        if row["value_bool"] is not None:
            assert isinstance(row["value_bool"], bool)
        if row["value_labels"] is not None:
            assert all(isinstance(label, str) for label in row["value_labels"])
            assert row["value_text"] == ", ".join(row["value_labels"])
    assert sum(summarize_decode_statuses(rows).values()) == len(rows)


@FIXED_BUDGET
@given(typed_value=well_typed, names=lookups)
def test_values_of_the_declared_json_type_are_always_decoded(
    typed_value: tuple[str, Any], names: NameLookups
) -> None:
    field_type, value = typed_value
    settings_of_type = {"dropdownSettings": {"items": OPTIONS}, "tagSettings": {"tags": OPTIONS}}
    definitions = {"1001": {"key": "1001", "name": "F", "type": field_type, **settings_of_type}}
    [row] = box_field_value_rows({"boxKey": "b", "fields": {"1001": value}}, definitions, names)

    assert row["decode_status"] in ("ok", "unknown_option")
    if field_type == "FORMULA":
        assert row["value_number"] is not None or row["value_text"] is not None or row["value_bool"] is value
    else:
        assert row[EXPECTED_COLUMN[field_type]] is not None
    if field_type == "CHECKBOX":
        assert row["value_bool"] is value
    if isinstance(value, list):  # list-valued types: one label per element, in order
        assert len(row["value_labels"]) == len(value)
    if field_type in ("DROPDOWN", "TAG"):
        keys = value if isinstance(value, list) else [value]
        assert row["value_labels" if field_type == "TAG" else "value_text"] == (
            [OPTION_LABELS.get(k, k) for k in keys]
            if field_type == "TAG"
            else OPTION_LABELS.get(value, value)
        )
        assert (row["decode_status"] == "ok") == all(k in OPTION_LABELS for k in keys)


@FIXED_BUDGET
@given(box=json_values, definitions=st.one_of(fields_by_key, json_values))
def test_any_json_at_all_never_raises(box: Any, definitions: Any) -> None:
    rows = box_field_value_rows(box, definitions, NameLookups())
    assert isinstance(rows, list)
    assert all(isinstance(row["value_raw"], str) for row in rows)


@FIXED_BUDGET
@given(value=st.one_of(json_values, timestamps, st.text(alphabet="0123456789.-e+ ", max_size=25)))
def test_epoch_ms_to_datetime_never_raises_and_is_none_or_aware_utc(value: Any) -> None:
    result = epoch_ms_to_datetime(value)
    assert result is None or (isinstance(result, datetime) and result.utcoffset() == timedelta(0))


@FIXED_BUDGET
@given(ms=st.integers(min_value=0, max_value=7_258_118_400_000))
def test_epoch_ms_to_datetime_converts_every_plausible_time(ms: int) -> None:
    result = epoch_ms_to_datetime(ms)
    assert result is not None and result.tzinfo == timezone.utc
    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    assert abs(result - expected) <= timedelta(milliseconds=1)
    assert epoch_ms_to_datetime(str(ms)) == result


@FIXED_BUDGET
@given(ms=st.one_of(st.integers(max_value=-1), st.integers(min_value=7_258_118_400_001), st.booleans()))
def test_epoch_ms_to_datetime_rejects_implausible_times(ms: int) -> None:
    assert epoch_ms_to_datetime(ms) is None
