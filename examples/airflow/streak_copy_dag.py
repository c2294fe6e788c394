"""Airflow DAG ``streak_copy``: the Streak account copied every night, with the main job's guarantees.

The one task calls :func:`pipelines.job.run_full_load`, the function ``pipelines/streak_full.py``
runs, so an Airflow run keeps everything the command promises: the run lock (a second run, say a
manual trigger during the nightly one, is *skipped* rather than racing it), the atomic swap of the
whole copy (a fresh DuckDB file or Postgres schema renamed into place only when complete), the
tables kept across runs (stage history, events, load history) and the wide views.

Why not dlt's ``PipelineTasksGroup`` (``dlt.helpers.airflow_helper``) with ``streak_source``: its
tasks call ``pipeline.run(source)`` straight into the live dataset, table by table, so a failure
half-way leaves a mixed copy, nothing stops two runs, and the stage history, events merge, load
history and views (all done by ``run_full_load`` around the load) never happen. It also points
``DLT_PROJECT_DIR`` at the dags folder and ``DLT_DATA_DIR`` at a temporary folder while the DAG
file is parsed, and the source would resolve the API key at parse time. docs/scheduling.md, "Airflow".

Install: the project (``pip install -r requirements.txt`` from its checkout) and Airflow in the
same environment; copy or link this file into the dags folder. Configuration as for the command:
``.dlt/secrets.toml`` of the project or the environment (``SOURCES__STREAK__API_KEY``, and
``DESTINATION__WAREHOUSE__*`` for a warehouse) of the Airflow workers.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import streak_clock

try:  # Airflow 3
    from airflow.sdk import DAG, Param, task
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined,unused-ignore]
    from airflow.decorators import task  # type: ignore[no-redef,unused-ignore]
    from airflow.exceptions import AirflowSkipException  # type: ignore[no-redef,unused-ignore]
    from airflow.models.param import Param  # type: ignore[no-redef,unused-ignore]

DAG_ID = "streak_copy"
SCHEDULE = "17 3 * * *"  # 03:17 every night, as the cron line and the systemd timer in docs/scheduling.md


@task(task_id="copy_account", retries=0, execution_timeout=timedelta(hours=3))
def copy_account(refresh: str = "full") -> dict[str, Any]:
    """The full load; returns the ``--summary-json`` document (an XCom a monitor can read).

    Not retried by Airflow: a failed run left the previous copy whole, and tomorrow's run (or a
    manual trigger) makes a complete new one. A run that finds another one loading is skipped.
    """
    from pipelines.failures import EXIT_OK
    from pipelines.job import run_full_load
    from pipelines.progress import outcome_document, success_reason
    from streak_warehouse.locks import LoadAlreadyRunning

    started = streak_clock.now()
    try:
        summary = run_full_load({}, progress=sys.stdout, refresh=refresh)
    except LoadAlreadyRunning as exc:
        raise AirflowSkipException(str(exc)) from exc
    return outcome_document(summary, exit_code=EXIT_OK, reason=success_reason(), started_at=started,
                            finished_at=streak_clock.now(), requested_mode=refresh)


with DAG(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,  # a copy is of the account now: missed nights are not made up
    max_active_runs=1,  # and the run lock stops a second one anyway
    params={"refresh": Param("full", enum=["full", "changed"],
                             description="full: every box's children; changed: only changed boxes'")},
    tags=["streak", "dlt"],
    doc_md=__doc__,
) as dag:
    copy_account(refresh="{{ params.refresh }}")
