"""Top-level names of one object that dlt would fold into one column: suffix them, never drop one.

dlt's naming convention turns ``DealSize`` and ``deal_size`` into the same column ``deal_size``
(and ``!!!`` and ``🔥`` both into ``x``); normalize then keeps only one of the two values, silently.
Before a row reaches dlt, :func:`resolve_clashes` renames every member of such a group but one:

* the member whose name already *is* the column name (``deal_size``) keeps it; otherwise the first
  by Python string order keeps it (deterministic whatever order Streak sends the keys in);
* the others, in string order, become ``<column>_2``, ``<column>_3``... (the first free number),
  the same ``<base>_<tag>`` shape the wide views use for their clashes.

Only top-level names can clash: the source loads with ``max_table_nesting=0``, so nested objects
are JSON values whose keys dlt never renames. Renames are counted in ``RunReport.renamed_columns``.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention

__all__ = ["column_name", "resolve_clashes"]

_NAMING = NamingConvention()


@lru_cache(maxsize=8192)
def column_name(name: str) -> str:
    """The column dlt's default (snake_case) naming convention makes of ``name``."""
    return _NAMING.normalize_identifier(name)


def resolve_clashes(row: dict[str, Any]) -> int:
    """Rename, in place, the names of ``row`` that would become the same column; how many were renamed."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in row:
        groups[column_name(name)].append(name)
    clashing = {column: names for column, names in groups.items() if len(names) > 1}
    if not clashing:
        return 0
    taken = set(groups)
    renamed = 0
    for column, names in sorted(clashing.items()):
        keeper = column if column in names else min(names)
        for name in sorted(n for n in names if n != keeper):
            number = 2
            while f"{column}_{number}" in taken:
                number += 1
            new_name = f"{column}_{number}"
            taken.add(new_name)
            row[new_name] = row.pop(name)
            renamed += 1
    return renamed
