"""Records that cannot be loaded as they are: kept aside in ``rejected_records``, never lost.

A box without ``boxKey``, a pipeline, thread, task or team member without a key, or a ``null`` in a
child list cannot get a primary key: loading it would fail normalize ("Cannot coerce NULL") and
with it the whole run, and using it would call URLs like ``/v1/boxes/None/threads``. Such a record
goes to the ``rejected_records`` table instead, with the reason and its raw JSON, and the rest of the
account loads. The run summary counts them (``RunReport.rejected``).

``rejected_records`` (replaced every run like the other tables; ``_dlt_load_id`` says which load):
``table_name`` (the table the record was meant for), ``reason``, ``raw_json`` (the object exactly
as Streak sent it), ``parent_key`` (the box / pipeline / team it hung off, NULL for top-level lists).
No primary key: two identical broken records are two rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import dlt
from dlt.common.schema.typing import TColumnSchema

__all__ = ["REJECTED_TABLE", "REJECTED_COLUMNS", "rejected_row", "split_rows", "split_keyed", "as_rejected",
           "declare_rejected_variant"]

REJECTED_TABLE: Final = "rejected_records"

REJECTED_COLUMNS: Final[dict[str, TColumnSchema]] = {
    "table_name": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": False},
    "raw_json": {"data_type": "text", "nullable": False},
    "parent_key": {"data_type": "text", "nullable": True},
}


def raw_json(value: Any) -> str:
    """The record as JSON text, whatever it holds (NaN, huge ints, odd objects never raise)."""
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):
        return repr(value)


def rejected_row(table: str, reason: str, raw: Any, parent_key: str | None = None) -> dict[str, Any]:
    return {"table_name": table, "reason": reason, "raw_json": raw_json(raw), "parent_key": parent_key}


def split_rows(
    table: str,
    items: Iterable[Any],
    build: Callable[[Any], dict[str, Any]],
    key_columns: Sequence[str],
    parent_key: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build one row per item; ``(rows to load, rejected rows)``.

    An item that is not a JSON object, or whose row has a NULL in any ``key_columns``, is rejected
    with a reason naming what is missing.
    """
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            reason = "null item in the list" if item is None else f"not an object ({type(item).__name__})"
            rejected.append(rejected_row(table, reason, item, parent_key))
            continue
        row = build(item)
        missing = [column for column in key_columns if row.get(column) is None]
        if missing:
            rejected.append(rejected_row(table, f"no usable {' / '.join(missing)}", item, parent_key))
        else:
            rows.append(row)
    return rows, rejected


def split_keyed(
    table: str, rows: Iterable[dict[str, Any]], key_columns: Sequence[str], parent_column: str = "pipeline_key"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Already built rows (a pipeline's fields and options): ``(rows with every key, rejected rows)``."""
    good: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for row in rows:
        missing = [column for column in key_columns if row.get(column) is None]
        if missing:
            parent = row.get(parent_column)
            rejected.append(rejected_row(table, f"no usable {' / '.join(missing)}", row,
                                         parent if isinstance(parent, str) else None))
        else:
            good.append(row)
    return good, rejected


def declare_rejected_variant(resource: Any) -> None:
    """Declare ``rejected_records`` as a variant of ``resource`` before the resource's own columns:
    a variant starts as a copy of the resource's hints, so declared later it would carry them all."""
    resource.apply_hints(table_name=REJECTED_TABLE, write_disposition="replace", columns=dict(REJECTED_COLUMNS),
                         primary_key=(), create_table_variant=True)


def as_rejected(rows: list[dict[str, Any]]) -> Any:
    """Mark rows for ``rejected_records`` so any resource can yield them next to its own rows.

    ``create_table_variant`` keeps the yielding resource's own hints (primary key, columns) off
    this table. Transformers downstream still receive these rows: they skip rows without a key.
    """
    hints = dlt.mark.make_hints(
        table_name=REJECTED_TABLE, write_disposition="replace", columns=dict(REJECTED_COLUMNS),
        primary_key=(),  # explicitly none: else the yielding resource's key would be required here
    )
    return dlt.mark.with_hints(rows, hints, create_table_variant=True)
