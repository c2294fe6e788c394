"""A first look at the loaded copy, or any SQL against it, from any folder.

    python pipelines/streak_query.py                   # the 10 boxes updated last: pipeline, box, stage, owner, a value
    python pipelines/streak_query.py "SELECT ..."      # your own query (tables in dataset crm: docs/tables.md)
    python -m pipelines.streak_query                   # the same, from any folder (the project is installed)

It reads the destination the main job writes, found by the same rule (``streak.duckdb`` in the project
root unless configured otherwise), never the current folder. A DuckDB file is opened read-only, so
a missing one is reported, not created empty.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from pipelines.failures import EXIT_FAILED, EXIT_OK, one_line
from streak_warehouse.destination import DATASET_NAME, duckdb_file_target, use_project_settings, warehouse_destination

FIRST_LOOK: Final = f"""
WITH numbers AS (
    SELECT v.box_key, v.field_name, v.value_number,
           ROW_NUMBER() OVER (PARTITION BY v.box_key ORDER BY f.field_order, v.field_key) AS position
    FROM {DATASET_NAME}.box_field_values AS v
    JOIN {DATASET_NAME}.pipeline_fields AS f ON f.pipeline_key = v.pipeline_key AND f.field_key = v.field_key
    WHERE v.value_number IS NOT NULL
)
SELECT p.name AS pipeline, b.name AS box, b.stage_name AS stage, COALESCE(b.owner_name, '(unassigned)') AS owner,
       n.field_name AS value_field, n.value_number AS value, CAST(b.last_updated_timestamp AS DATE) AS last_updated
FROM {DATASET_NAME}.boxes AS b
JOIN {DATASET_NAME}.pipelines AS p ON p.pipeline_key = b.pipeline_key
LEFT JOIN numbers AS n ON n.box_key = b.box_key AND n.position = 1
ORDER BY b.last_updated_timestamp DESC NULLS LAST, b.box_key
LIMIT 10
"""
"""The boxes updated last, with what a newcomer looks for: pipeline, name, stage, owner, and the box's
first numeric custom field (in the pipeline's field order) with its name. Plain SQL for DuckDB and Postgres."""

LOAD_FIRST: Final = "load one first: python pipelines/streak_full.py --demo (or your own account: see README.md)"
COLUMN_WIDTH: Final = 40


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streak_query.py", description=__doc__.split("\n")[0])
    parser.add_argument("sql", nargs="?", default=None,
                        help=f"a query (default: a first look at the boxes); tables are in dataset {DATASET_NAME}")
    args = parser.parse_args(argv)
    use_project_settings()
    try:
        print(as_text(run_query(args.sql or FIRST_LOOK)))
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class QueryError(RuntimeError):
    """Nothing to read, or the query failed; ``str()`` is the one line to show."""


def run_query(sql: str) -> Any:
    """The query's result as a pandas DataFrame, from the DuckDB file (read-only) or, for any other
    destination, through dlt's dataset over the configured warehouse."""
    path = duckdb_file_target()
    try:
        if path is not None:
            return _from_duckdb(path, sql)
        import dlt

        return dlt.dataset(warehouse_destination(), DATASET_NAME)(sql).df()
    except QueryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line, whatever the database said
        raise QueryError(one_line(f"the query failed: {exc}")) from None


def _from_duckdb(path: Path, sql: str) -> Any:
    import duckdb

    if not path.is_file():
        raise QueryError(f"no copy at {path} yet; {LOAD_FIRST}")
    with duckdb.connect(str(path), read_only=True) as con:
        schemas = con.execute("SELECT schema_name FROM information_schema.schemata WHERE catalog_name = "
                              "current_database()").fetchall()
        if (DATASET_NAME,) not in schemas:
            raise QueryError(f"{path} holds no Streak copy (no dataset {DATASET_NAME}); {LOAD_FIRST}")
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(sql).to_arrow_table().to_pandas()


def as_text(frame: Any) -> str:
    """The rows as an aligned text table (text left, numbers right, long texts cut), with the row count."""
    names = [str(name) for name in frame.columns]
    if frame.empty:
        return f"(no rows; columns: {', '.join(names)})"
    values = list(frame.itertuples(index=False, name=None))
    numeric = [all(_is_number(row[i]) or _is_null(row[i]) for row in values) for i in range(len(names))]
    rows = [[_cell(value) for value in row] for row in values]
    widths = [max(_width(name), *(_width(row[i]) for row in rows)) for i, name in enumerate(names)]

    def line(cells: Sequence[str]) -> str:
        pads = [" " * (w - _width(cell)) for cell, w in zip(cells, widths, strict=True)]
        return "  ".join(pad + cell if num else cell + pad
                         for cell, pad, num in zip(cells, pads, numeric, strict=True)).rstrip()

    count = f"({len(rows)} row{'' if len(rows) == 1 else 's'})"
    return "\n".join([line(names), line(["-" * w for w in widths]), *(line(row) for row in rows), count])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _is_null(value: Any) -> bool:
    import pandas as pd

    return value is None or (not isinstance(value, (list, dict)) and bool(pd.isna(value)))


def _cell(value: Any) -> str:
    """One value as shown: nothing for NULL, amounts with thousands separators, text cut at
    :data:`COLUMN_WIDTH` characters."""
    if _is_null(value):
        return ""
    if isinstance(value, (float, Decimal)) and _is_number(value):
        return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    if _is_number(value):
        return f"{value:,}"
    text = " ".join(str(value).split())
    if _width(text) <= COLUMN_WIDTH:
        return text
    while _width(text) > COLUMN_WIDTH - 1:
        text = text[:-1]
    return text + "…"


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


if __name__ == "__main__":
    sys.exit(main())
