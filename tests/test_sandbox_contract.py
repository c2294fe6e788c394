"""Source and sandbox agree on Streak's API (issue 11: "the sandbox stands on its own").

The sandbox declares its routes from the API reference (``streak_source/sandbox/endpoints.py``)
and imports nothing from the source; this test, the one place that imports both, checks that
every endpoint the source reads (``streak_source/settings.py``, which every object of
``streak_source/objects.py`` is read from) is a route the sandbox serves, in the paging shape the
source expects, and that the page-size names and limits the two use to count calls are the same.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from streak_source import settings
from streak_source.objects import ACCOUNT_OBJECTS, BOX_CHILDREN, BOX_NEWSFEED
from streak_source.sandbox import ENDPOINTS, MAX_PAGE_SIZE, PageSizes, Sandbox
from streak_source.sandbox.render_boxes import render_box

pytestmark = pytest.mark.timeout(120)

SANDBOX_SOURCE = Path(__file__).resolve().parent.parent / "streak_source" / "sandbox"


def _shape_key(path: str) -> str:
    """``v2/boxes/{box_key}/tasks`` -> ``v2/boxes/{}/tasks``: parameter names may differ."""
    return re.sub(r"\{[^}]*\}", "{}", path.strip("/"))


def source_paths() -> dict[str, tuple[str, str]]:
    """name -> (path, the shape the source reads it in), from settings: every ``Endpoint`` constant
    (its ``paging`` is what the reader dispatches on)."""
    return {name: (value.path, value.paging) for name, value in vars(settings).items()
            if isinstance(value, settings.Endpoint)}


def test_every_object_is_read_from_a_settings_endpoint() -> None:
    """So the checks below cover every object of the table (account-level, per box, the newsfeed)."""
    endpoints = [value for value in vars(settings).values() if isinstance(value, settings.Endpoint)]
    for obj in (*ACCOUNT_OBJECTS, *BOX_CHILDREN, BOX_NEWSFEED):
        assert obj.endpoint in endpoints, obj.table


SANDBOX_SHAPES = {_shape_key(e.path): e.paging for e in ENDPOINTS}


def test_the_sandbox_imports_nothing_from_the_source() -> None:
    for module in SANDBOX_SOURCE.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("streak_source"), (module.name, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("streak_source"), (module.name, alias.name)


@pytest.mark.parametrize("name", sorted(source_paths()))
def test_every_source_path_is_a_sandbox_route_of_the_expected_shape(name: str) -> None:
    path, expected = source_paths()[name]
    key = _shape_key(path)
    assert key in SANDBOX_SHAPES, f"settings.{name} = {path!r} is not in the API reference list"
    assert SANDBOX_SHAPES[key] == expected, (name, path, SANDBOX_SHAPES[key], expected)


def test_page_size_names_and_limits_agree() -> None:
    source_names = {f.name for f in dataclasses.fields(settings.PageSizes)}
    sandbox_names = {f.name for f in dataclasses.fields(PageSizes)}
    assert source_names == sandbox_names
    assert settings.MAX_PAGE_SIZE == MAX_PAGE_SIZE
    for name, endpoint in vars(settings).items():
        if isinstance(endpoint, settings.Endpoint):
            assert (endpoint.page_size is not None) == (endpoint.paging in ("page", "cursor")), name
            assert endpoint.page_size is None or endpoint.page_size in sandbox_names, name


def test_the_box_counters_the_source_skips_on_are_served() -> None:
    from streak_source.sandbox import generate_account

    account = generate_account(boxes=20, anchor_date="2025-03-14")
    box = account.all_boxes()[0]
    rendered = render_box(box, account)
    for child in BOX_CHILDREN:
        for counter in child.counters:
            assert isinstance(rendered[counter], int), (child.table, counter)


def _sample(sb: Sandbox) -> dict[str, str]:
    account = sb.account
    box = next(b for b in account.all_boxes() if b.tasks and b.threads and b.comments)
    return {
        "team_key": account.teams[0].key,
        "pipeline_key": box.pipeline_key,
        "box_key": box.key,
    }


def _matches(body: Any, shape: str) -> bool:
    if shape == "array":
        return isinstance(body, list)
    if shape == "page":
        return isinstance(body, dict) and isinstance(body.get("results"), list) and isinstance(
            body.get("hasNextPage"), bool
        )
    if shape == "cursor":
        return isinstance(body, dict) and isinstance(body.get("results"), list) and "cursor" in body
    return isinstance(body, dict) and "results" not in body


def test_the_sandbox_answers_every_source_path_live() -> None:
    with Sandbox(boxes=20, seed=4, anchor_date="2025-03-14") as sb:
        values = _sample(sb)
        session = requests.Session()
        session.auth = (sb.api_key, "")
        for name, (path, shape) in sorted(source_paths().items()):
            params: dict[str, Any] = {}
            if shape == "page":
                params = {"page": 0, "limit": settings.MAX_PAGE_SIZE}
            elif shape == "cursor":
                params = {"limit": settings.MAX_PAGE_SIZE}
            if "newsfeed" in path:
                params = {"detailLevel": settings.NEWSFEED_DETAIL_LEVEL}
            url = sb.url(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path))
            answer = session.get(url, params=params, timeout=30)
            assert answer.status_code == 200, (name, answer.text[:200])
            assert _matches(answer.json(), shape), (name, shape, answer.text[:200])
        session.close()


def test_the_sources_page_size_object_is_accepted_as_is() -> None:
    """Tests pass the loader's own ``PageSizes`` to the sandbox; it reads it by attribute."""
    from streak_source.sandbox import generate_account, needed_calls
    from streak_source.sandbox.paging import coerce_page_sizes

    sizes = settings.PageSizes(tasks=2, comments=3, boxes=5)
    coerced = coerce_page_sizes(sizes)
    assert dataclasses.asdict(coerced) == dataclasses.asdict(sizes)
    account = generate_account(boxes=30, anchor_date="2025-03-14")
    assert needed_calls(account, coerced) == needed_calls(
        account, coerce_page_sizes({"tasks": 2, "comments": 3, "boxes": 5})
    )
