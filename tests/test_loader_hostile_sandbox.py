"""The sandbox's hostile account (``Sandbox(account="hostile")``) through the real source and DuckDB.

Every table equals the account's ground truth, every keyless record or ``null`` item is in
``rejected_records`` exactly as ``/__sandbox__/rejected`` says (issue 12 #6), the calls are still
the fewest the account needs, clashing box properties keep both values (issue 12 #9), and the
numeric-looking "Deal size" texts get the one rule's numbers (issue 11 #2).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from streak_source import RunReport
from streak_source.numbers import parse_number
from streak_source.sandbox import Sandbox
from tests.test_loader_support import query

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def run(dlt_dirs: Any, sb: Any, report: RunReport) -> None:
    import dlt

    from streak_source import streak_source

    pipeline = dlt.pipeline(pipeline_name="streak_hostile", pipelines_dir=str(dlt_dirs.pipelines_dir),
                            destination=dlt.destinations.duckdb(str(dlt_dirs.duckdb_path)), dataset_name="crm")
    pipeline.run(streak_source(api_key=sb.api_key, base_url=sb.base_url, max_requests_per_second=1000,
                               report=report))


def test_hostile_account_loads_everything_else_and_quarantines_the_rest(dlt_isolated: Any) -> None:
    report = RunReport()
    with Sandbox(account="hostile", boxes=20, seed=7) as sb:
        run(dlt_isolated, sb, report)
        truth = sb.ground_truth()
        stats = sb.stats()
        rejected_truth = requests.get(sb.base_url + "__sandbox__/rejected", timeout=10).json()
    counts = {t: query(dlt_isolated, f"select count(*) from crm.{t}")[0][0] for t in truth}
    assert counts == truth
    assert rejected_truth and dict(report.rejected) == rejected_truth
    loaded = dict(query(dlt_isolated, "select table_name, count(*) from crm.rejected_records group by 1"))
    assert loaded == rejected_truth
    assert report.requests_sent == stats["requests_total"] == stats["needed_calls"]
    assert not [r for r in stats["requests_by_route"] if "None" in r]
    assert report.renamed_columns["boxes"] >= 2

    # the clashing properties: nothing dropped (DealSize/deal_size, !!!/🔥)
    [clash] = query(dlt_isolated, "select deal_size, deal_size_2, x, x_2 from crm.boxes where deal_size_2 is not null")
    assert None not in clash

    # numeric text: the loaded number is the one rule's, for every TEXT_INPUT value
    for text, number in query(dlt_isolated, "select value_text, value_number from crm.box_field_values "
                                            "where field_type = 'TEXT_INPUT'"):
        assert number == parse_number(text), text
    assert ("119,500 €", 119500.0) in query(dlt_isolated, "select value_text, value_number from crm.box_field_values")

    # box_task_assignees: one row per (task, assignee); the sandbox gives every assignee an email
    per_task = query(dlt_isolated, """
        select t.task_key, coalesce(len(string_split(t.assignee_emails, ', ')), 0), count(a.assignee_id)
        from crm.box_tasks t left join crm.box_task_assignees a using (task_key)
        group by t.task_key, t.assignee_emails""")
    assert per_task and all(expected == got for _, expected, got in per_task)
