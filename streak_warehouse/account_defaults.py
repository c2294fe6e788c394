"""Settings that come with the account a copy was loaded from, kept in the copy: ``account_defaults``.

A Streak account does not say which of its stages are closed, so a user names them in
``.dlt/config.toml``. The demo account is ours and comes with its settings
(``streak_source.sandbox.DEMO_SETTINGS``): the run that loads it records them in the copy, and readers
(the dashboard) take a setting from there when the user's configuration has none. A reader opening
the copy needs nothing else: no sandbox, no guess from the data.

The record is the view ``account_defaults``: one row per setting, ``setting`` (a configuration key
such as ``dashboard.closed_stages``) and ``value_json`` (its value as JSON). A view of literal rows
adds no table, so the warehouse layout (``layout_version.py``) is unchanged and an older copy, which
lacks the view, simply has no defaults. Every run on a SQL destination writes it next to the wide
views, into the copy it publishes: created when the account comes with settings, dropped otherwise,
so a user's first load after the demo (into the same destination, in place or not) leaves no demo
setting behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from streak_warehouse.sql import SqlDialect, dialect_for_sql_client, sql_client_or_none

if TYPE_CHECKING:
    import dlt

VIEW: Final = "account_defaults"
SETTING: Final = "setting"
VALUE_JSON: Final = "value_json"


def defaults_view_sql(settings: Mapping[str, Any], dialect: SqlDialect) -> list[str]:
    """Drop the view, then (with settings) create it with one literal row per setting, keys sorted."""
    view = dialect.qualify_table(VIEW)
    statements = [f"DROP VIEW IF EXISTS {view}"]
    if settings:
        text = dialect.type_name("text")
        rows = " UNION ALL ".join(
            f"SELECT CAST({dialect.string_literal(key)} AS {text}) AS {dialect.quote_identifier(SETTING)}, "
            f"CAST({dialect.string_literal(json.dumps(settings[key], ensure_ascii=False))} AS {text}) "
            f"AS {dialect.quote_identifier(VALUE_JSON)}"
            for key in sorted(settings)
        )
        statements.append(f"CREATE VIEW {view} AS {rows}")
    return statements


def record_account_defaults(pipeline: dlt.Pipeline, settings: Mapping[str, Any] | None) -> None:
    """Write ``settings`` (None or empty: none) as the pipeline dataset's ``account_defaults`` view.

    Destinations without a persistent SQL engine (filesystem) keep no defaults: one log line."""
    sql_client = sql_client_or_none(pipeline, "account defaults")
    if sql_client is None:
        return
    with sql_client as client:
        if not client.has_dataset():
            return
        statements = defaults_view_sql(settings or {}, dialect_for_sql_client(client))
        with client.begin_transaction():
            for statement in statements:
                client.execute_sql(statement)


def parse_defaults(rows: Any) -> dict[str, Any]:
    """``(setting, value_json)`` rows as {setting: value}; a value that is not JSON is left out."""
    defaults: dict[str, Any] = {}
    for setting, value_json in rows:
        try:
            defaults[str(setting)] = json.loads(value_json)
        except (TypeError, ValueError):
            continue
    return defaults
