"""Fidelity against Streak's own published types (issue 11 #11).

Streak's official Python SDK (PyPI ``streak-crm``, Fern-generated from Streak's OpenAPI file) has
a pydantic model for many responses. Every sandbox response the SDK models is validated against
it here: required fields present, types right, and (stricter than the SDK, whose enums also
accept any value) every enum value one the SDK lists. The SDK is a test-only dependency
(``requirements.txt``, "sandbox fidelity tests").
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pydantic
import pytest
import requests
from streak_crm import types as T  # the SDK's models (test-only dependency)

from streak_source.sandbox import ENDPOINTS, Sandbox

MODELS: dict[str, Any] = {
    "v1/users/me": T.User,
    "v1/users/{user_key}": T.User,
    "v2/users/me/teams": T.TeamListResponse,
    "v2/teams/{team_key}": T.Team,
    "v2/teams/{team_key}/users": T.UserListResponse,
    "v1/pipelines": list[T.Pipeline],
    "v1/pipelines/{pipeline_key}": T.Pipeline,
    "v2/pipelines": T.PipelineListResponse,
    "v2/pipelines/{pipeline_key}": T.Pipeline,
    "v1/pipelines/{pipeline_key}/stages": dict[str, T.PipelineStage],
    "v1/pipelines/{pipeline_key}/stages/{stage_key}": T.PipelineStage,
    "v2/pipelines/{pipeline_key}/stages": dict[str, T.PipelineStage],
    "v2/pipelines/{pipeline_key}/stages/{stage_key}": T.PipelineStage,
    "v1/pipelines/{pipeline_key}/fields": list[T.PipelineField],
    "v1/pipelines/{pipeline_key}/fields/{field_key}": T.PipelineField,
    "v2/boxes/{box_key}/tasks": T.TaskListResponse,
    "v2/tasks/{task_key}": T.Task,
    "v2/tasks": T.TaskListResponse,
    "v2/boxes/{box_key}/comments": T.CommentListResponse,
    "v2/comments/{comment_key}": T.Comment,
    "v2/boxes/{box_key}/meetings": T.MeetingListResponse,
    "v2/meetings/{meeting_key}": T.Meeting,
    "v2/teams/{team_key}/contacts": T.ContactPage,
    "v2/teams/{team_key}/organizations": T.OrganizationPage,
    "v2/contacts/{contact_key}": T.Contact,
    "v2/organizations/{organization_key}": T.Organization,
    "v1/search": T.SearchResponse,
    "v1/apikeys": list[T.ApiKey],
}
"""Every read route of ours whose answer the SDK models (its GET methods, plus v1 lists of
objects it models in v2)."""


def strict_enum_errors(annotation: Any, value: Any, where: str) -> list[str]:
    """Values outside an SDK enum (``Union[Literal[...], Any]``, which pydantic lets through)."""
    if value is None:
        return []
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        literals = [a for a in args if typing.get_origin(a) is typing.Literal]
        if literals and Any in args:
            allowed = {v for lit in literals for v in typing.get_args(lit)}
            return [] if value in allowed else [f"{where}: {value!r} not in {sorted(allowed)}"]
        inner = [a for a in args if a is not type(None)]
        return strict_enum_errors(inner[0], value, where) if len(inner) == 1 else []
    if origin is list and isinstance(value, list):
        return [e for i, v in enumerate(value) for e in strict_enum_errors(args[0], v, f"{where}[{i}]")]
    if origin is dict and isinstance(value, dict):
        return [e for k, v in value.items() for e in strict_enum_errors(args[1], v, f"{where}.{k}")]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        errors = []
        for name, info in annotation.model_fields.items():
            alias = info.alias or name
            if isinstance(value, dict) and alias in value:
                errors += strict_enum_errors(info.annotation, value[alias], f"{where}.{alias}")
        return errors
    return []


def check(model: Any, payload: Any, where: str) -> None:
    try:
        pydantic.TypeAdapter(model).validate_python(payload)
    except pydantic.ValidationError as error:
        pytest.fail(f"{where} does not match streak-crm's {model}:\n{error}")
    assert not strict_enum_errors(model, payload, where)


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(boxes=60, seed=5, anchor_date="2025-03-14") as sb:
        yield sb


def test_every_modelled_route_is_in_the_endpoint_list() -> None:
    assert set(MODELS) <= {e.path for e in ENDPOINTS}


def test_every_response_the_sdk_models_validates(sandbox: Sandbox) -> None:
    account = sandbox.account
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sandbox.api_key}"  # as the SDK sends it
    checked: dict[str, int] = dict.fromkeys(MODELS, 0)

    def fetch(template: str, **params: str) -> Any:
        path = template.format(**params)
        query = {"limit": "1000"} if "{" not in template.rsplit("/", 1)[-1] else {}
        if template == "v1/search":
            query = {"query": "a"}
        answer = session.get(sandbox.url(path), params=query, timeout=30)
        assert answer.status_code == 200, (path, answer.text[:200])
        check(MODELS[template], answer.json(), path)
        checked[template] += 1
        return answer.json()

    fetch("v1/users/me")
    fetch("v2/users/me/teams")
    fetch("v1/pipelines")
    fetch("v2/pipelines")
    fetch("v2/tasks")
    fetch("v1/search")
    fetch("v1/apikeys")
    fetch("v1/users/{user_key}", user_key=account.me.key)
    for team in account.teams:
        fetch("v2/teams/{team_key}", team_key=team.key)
        fetch("v2/teams/{team_key}/users", team_key=team.key)
        for contact in fetch("v2/teams/{team_key}/contacts", team_key=team.key)["results"]:
            fetch("v2/contacts/{contact_key}", contact_key=contact["key"])
        for org in fetch("v2/teams/{team_key}/organizations", team_key=team.key)["results"]:
            fetch("v2/organizations/{organization_key}", organization_key=org["key"])
    for pipeline in account.pipelines:
        key = pipeline.key
        fetch("v1/pipelines/{pipeline_key}", pipeline_key=key)
        fetch("v2/pipelines/{pipeline_key}", pipeline_key=key)
        fetch("v2/pipelines/{pipeline_key}/stages", pipeline_key=key)
        for stage_key in fetch("v1/pipelines/{pipeline_key}/stages", pipeline_key=key):
            for version in ("v1", "v2"):
                fetch(
                    version + "/pipelines/{pipeline_key}/stages/{stage_key}",
                    pipeline_key=key,
                    stage_key=stage_key,
                )
        for field in fetch("v1/pipelines/{pipeline_key}/fields", pipeline_key=key):
            fetch(
                "v1/pipelines/{pipeline_key}/fields/{field_key}",
                pipeline_key=key,
                field_key=field["key"],
            )
        for box in pipeline.boxes:
            for task in fetch("v2/boxes/{box_key}/tasks", box_key=box.key)["results"]:
                fetch("v2/tasks/{task_key}", task_key=task["key"])
            for comment in fetch("v2/boxes/{box_key}/comments", box_key=box.key)["results"]:
                fetch("v2/comments/{comment_key}", comment_key=comment["key"])
            for meeting in fetch("v2/boxes/{box_key}/meetings", box_key=box.key)["results"]:
                fetch("v2/meetings/{meeting_key}", meeting_key=meeting["key"])
    session.close()
    assert all(checked.values()), [t for t, n in checked.items() if not n]


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("Pipeline", "icon"),
        ("Pipeline", "customPermissionSets"),
        ("PipelineField", "aiSettings"),
        ("Contact", "domains"),
        ("Contact", "normalizedDomains"),
    ],
)
def test_the_fields_issue_11_found_missing_are_required_by_the_sdk(model: str, field: str) -> None:
    """Guards the regression test above: these are required in the pinned SDK, so a sandbox
    that omits them fails ``test_every_response_the_sdk_models_validates``."""
    fields = {info.alias or name: info for name, info in getattr(T, model).model_fields.items()}
    assert fields[field].is_required()
