"""The scheduling recipes are checked, not just written (issue 16 item 3).

* every workflow in .github/workflows/ passes actionlint (with shellcheck on its ``run:`` scripts),
  and actionlint does fail on a broken copy (so the check has teeth);
* the systemd units pass ``systemd-analyze verify`` where it is installed (else: skipped, with the
  reason) and always parse, with a timer that starts the service;
* the command of every recipe (cron line, systemd ``ExecStart=``, the GitHub workflow's step) is
  accepted by the job's own argument parser, and the README's cron line is the docs' one.
"""

from __future__ import annotations

import configparser
import getpass
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.cli import parse_args
from tests.loadtools import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
SYSTEMD = REPO_ROOT / "examples" / "systemd"
JOB = "pipelines/streak_full.py"


def tool(name: str) -> str:
    """A tool installed by requirements.txt: next to this Python first (a venv not on PATH), then PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements.txt", pytrace=False)
    return found


def actionlint(*paths: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("actionlint"), "-no-color", f"-shellcheck={tool('shellcheck')}",
                           *map(str, paths)], capture_output=True, text=True, timeout=120, cwd=str(cwd))


def job_arguments(command: str, tmp_path: Path) -> list[str]:
    """The job's arguments in a shell command line, with --summary-json's directory made real."""
    words = shlex.split(command)
    args = words[words.index(JOB) + 1:]
    args = args[:args.index(">>")] if ">>" in args else args
    return [str(tmp_path / Path(a).name) if i and args[i - 1] == "--summary-json" else a for i, a in enumerate(args)]


# --- GitHub Actions ---------------------------------------------------------------------------


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "streak-nightly.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow: Path) -> None:
    result = actionlint(workflow.relative_to(REPO_ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path: Path) -> None:
    text = (REPO_ROOT / ".github" / "workflows" / "streak-nightly.yml").read_text()
    broken = text.replace("secrets.STREAK_API_KEY", "secret.STREAK_API_KEY").replace('cron: "17 3', 'cron: "77 3')
    assert broken != text
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    path = tmp_path / ".github" / "workflows" / "broken.yml"
    path.write_text(broken)
    result = actionlint(path.relative_to(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert 'undefined variable "secret"' in result.stdout and "invalid CRON format" in result.stdout


def test_the_nightly_workflow_runs_the_job_with_valid_arguments_and_secrets_from_the_repository(tmp_path: Path) -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "streak-nightly.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "workflow_dispatch" in triggers and triggers["schedule"][0]["cron"] == "17 3 * * *"
    env = workflow["jobs"]["copy"]["env"]
    assert env["SOURCES__STREAK__API_KEY"] == "${{ secrets.STREAK_API_KEY }}"
    [command] = [s["run"] for s in workflow["jobs"]["copy"]["steps"] if JOB in s.get("run", "")]
    line = next(li for li in command.splitlines() if JOB in li).replace('"${REFRESH}"', "changed")
    parse_args(job_arguments(line, tmp_path))


def test_ci_runs_the_ci_script_and_the_airflow_dag_test() -> None:
    jobs = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert "bash .ci/run" in runs["tests"]
    assert "examples/airflow/requirements.txt" in runs["airflow-dag"]
    assert "tests/test_airflow_dag.py" in runs["airflow-dag"]


# --- cron ---------------------------------------------------------------------------------------


def cron_line(page: Path) -> str:
    block = re.search(r"```cron\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert block, f"{page.name} has no cron block"
    [line] = [li for li in block[1].splitlines() if li.strip() and not li.startswith("#")]
    return line


def test_the_cron_line_is_valid_and_the_same_in_readme_and_docs(tmp_path: Path) -> None:
    line = cron_line(REPO_ROOT / "docs" / "scheduling.md")
    assert cron_line(REPO_ROOT / "README.md") == line
    fields = line.split()[:5]
    for value, (low, high) in zip(fields, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)], strict=True):
        assert value == "*" or low <= int(value) <= high, (value, line)
    parse_args(job_arguments(" ".join(line.split()[5:]), tmp_path))


# --- systemd ------------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text())
    return parser


def test_the_systemd_units_parse_and_run_the_job_with_valid_arguments(tmp_path: Path) -> None:
    service, timer = unit("streak-copy.service"), unit("streak-copy.timer")
    assert service["Service"]["Type"] == "oneshot"
    parse_args(job_arguments(service["Service"]["ExecStart"], tmp_path))
    assert timer["Timer"]["OnCalendar"] == "*-*-* 03:17:00"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd); the units are still parsed")
    # the example's paths, user and interpreter made real on this machine: verify checks they exist
    text = (SYSTEMD / "streak-copy.service").read_text()
    text = text.replace("/opt/streak-crm-copy/.venv/bin/python", sys.executable)
    text = text.replace("/opt/streak-crm-copy", str(REPO_ROOT)).replace("User=streak", f"User={getpass.getuser()}")
    (tmp_path / "streak-copy.service").write_text(text)
    shutil.copy(SYSTEMD / "streak-copy.timer", tmp_path / "streak-copy.timer")
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / "streak-copy.service"),
                             str(tmp_path / "streak-copy.timer")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), result.stderr
    calendar = subprocess.run([analyze, "calendar", unit("streak-copy.timer")["Timer"]["OnCalendar"]],
                              capture_output=True, text=True, timeout=60)
    assert calendar.returncode == 0 and "Next elapse" in calendar.stdout, calendar.stderr
