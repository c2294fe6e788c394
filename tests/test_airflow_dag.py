"""examples/airflow/streak_copy_dag.py, run by Airflow (``dag.test()``) against the sandbox.

Skipped unless Airflow is installed (``pip install -r examples/airflow/requirements.txt``; the
``airflow-dag`` job of .github/workflows/ci.yml does). Checked with ``importlib.util.find_spec``
rather than ``pytest.importorskip``: importing Airflow in the test process would set up its logging
and write ``~/airflow`` at collection time; the DAG runs in a subprocess with its own AIRFLOW_HOME.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("airflow") is None:
    pytest.skip("Airflow is not installed (pip install -r examples/airflow/requirements.txt)", allow_module_level=True)

import jsonschema

from streak_source.sandbox import Sandbox
from tests.loadtools import ACCOUNT_TABLES, REPO_ROOT, table_counts

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
DAG_FILE = REPO_ROOT / "examples" / "airflow" / "streak_copy_dag.py"

RUN_DAG = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("streak_copy_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
ti = run.get_task_instance("copy_account")
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.query(XComModel).filter_by(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id,
                                              key="return_value").all()
    values = [row.value for row in rows]
values = [json.loads(v) if isinstance(v, str) else v for v in values]
print("RESULT " + json.dumps({"run": str(run.state), "task": str(ti.state), "xcom": values}, default=str))
"""


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh Airflow metadata database (SQLite) for this module's DAG runs; the env that uses it."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent)}
    migrated = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return env


def run_dag(airflow_env: dict[str, str], source: dict[str, str]) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
    done = subprocess.run([sys.executable, "-c", RUN_DAG, str(DAG_FILE)], env={**base, **airflow_env, **source},
                          capture_output=True, text=True, timeout=540, cwd=str(REPO_ROOT.parent))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-4000:] + done.stderr[-4000:]
    return dict(json.loads(lines[-1].removeprefix("RESULT ")))


def test_the_dag_copies_the_sandbox_account_and_returns_the_summary(airflow_home: dict[str, str], dlt_isolated: Any) -> None:
    with Sandbox(boxes=8, seed=41) as sb:
        result = run_dag(airflow_home, {"SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url,
                                        "SOURCES__STREAK__MAX_REQUESTS_PER_SECOND": "500"})
        truth = sb.ground_truth()
    assert (result["run"], result["task"]) == ("success", "success"), result
    [summary] = result["xcom"]
    schema = json.loads((REPO_ROOT / "docs" / "summary.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(summary)
    assert summary["status"] == "ok" and summary["mode"] == "full"
    counts = table_counts(dlt_isolated.duckdb_path)
    assert {t: counts.get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}
    assert {t: summary["rows"].get(t) for t in ACCOUNT_TABLES} == {t: truth[t] for t in ACCOUNT_TABLES}


def test_the_dag_skips_while_another_run_holds_the_lock(airflow_home: dict[str, str], dlt_isolated: Any) -> None:
    from streak_warehouse.targets.duckdb_file import lock_path
    from streak_warehouse.locks import FileRunLock, RunOwner

    target = dlt_isolated.duckdb_path
    with Sandbox(boxes=2, seed=42) as sb, FileRunLock(lock_path(target), str(target), RunOwner.this_process()):
        result = run_dag(airflow_home, {"SOURCES__STREAK__API_KEY": sb.api_key, "SOURCES__STREAK__BASE_URL": sb.base_url})
        calls = sb.stats()["requests_total"]
    assert (result["run"], result["task"]) == ("success", "skipped"), result
    assert calls == 0 and not target.exists()
