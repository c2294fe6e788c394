"""What a complete, correct extraction of an account must produce, and the fewest calls it needs.

Row counts (``table_counts``), keyed by the destination table names of the README's "Tables" section:

* ``users`` = distinct users: ``users/me`` plus every user of every team (me is a team member and
  counts once). ``teams`` = teams. ``team_members`` = sum over teams of ``len(team.members)``.
* ``pipelines``; ``stages`` and ``pipeline_fields`` = sums over pipelines (empty ones included);
  ``pipeline_field_options`` = DROPDOWN items + TAG tags over all fields (a deleted option that a
  box still references is not an option).
* ``boxes``; ``box_field_values`` = (box, field) pairs whose key is present in ``box.fields`` with a
  value that is not null, not ``""`` and not ``[]`` (``false`` and ``0`` ARE values).
* ``box_tasks``, ``box_threads``, ``box_comments``, ``box_meetings`` (meeting notes + call logs),
  ``box_files`` = children served by the box child endpoints (boxes made "gone" by a fault are still
  counted: the account has them; ``stats()["faults"]["gone_children"]`` says how many are
  unreachable).
* ``snippets``, ``contacts``, ``organizations`` (over all teams), ``pipeline_newsfeed`` = sum over
  pipelines of the newsfeed entries served (at most 50 each).

Fewest calls (``needed_calls``), with ``L_x`` the page sizes in effect (capped at 1000):

    1 (v1/users/me) + max(1, ceil(teams / L_teams))
    + per team [max(1, ceil(team users / L_team_users)) + max(1, ceil(contacts / L_contacts))
                + max(1, ceil(orgs / L_organizations))]
    + 1 (v1/pipelines) + 1 (v1/snippets)
    + per pipeline [1 (newsfeed) + ceil(boxCount / L_boxes)]     (0 box pages for an empty pipeline)
    + per box [ceil(taskTotal / L_tasks) + (1 if gmailThreadCount > 0)
               + ceil(commentCount / L_comments)
               + ceil((meetingNotesCount + callLogCount) / L_meetings) + (1 if fileCount > 0)]

Exact paging (``hasNextPage`` false on a full last page, ``cursor`` null with nothing left) is what
makes these the true minimum.
"""

from __future__ import annotations

from math import ceil
from typing import Any, Final

from streak_source.settings import PageSizes

from .model import Account
from .paging import effective_page_sizes

TABLES: Final = (
    "users",
    "teams",
    "team_members",
    "pipelines",
    "stages",
    "pipeline_fields",
    "pipeline_field_options",
    "boxes",
    "box_field_values",
    "box_tasks",
    "box_threads",
    "box_comments",
    "box_meetings",
    "box_files",
    "snippets",
    "contacts",
    "organizations",
    "pipeline_newsfeed",
)
"""The tables of the README's "Tables" section whose row counts the account determines."""


def is_field_value(value: Any) -> bool:
    """A ``box.fields`` entry that makes a ``box_field_values`` row: not null, "" or []."""
    if value is None:
        return False
    if isinstance(value, (str, list)) and len(value) == 0:
        return False
    return True


def table_counts(account: Account) -> dict[str, int]:
    boxes = account.all_boxes()
    user_keys = {account.me.key} | {m.user.key for team in account.teams for m in team.members}
    return {
        "users": len(user_keys),
        "teams": len(account.teams),
        "team_members": sum(len(team.members) for team in account.teams),
        "pipelines": len(account.pipelines),
        "stages": sum(len(p.stages) for p in account.pipelines),
        "pipeline_fields": sum(len(p.fields) for p in account.pipelines),
        "pipeline_field_options": sum(
            len(f.options) for p in account.pipelines for f in p.fields
        ),
        "boxes": len(boxes),
        "box_field_values": sum(1 for b in boxes for v in b.fields.values() if is_field_value(v)),
        "box_tasks": sum(len(b.tasks) for b in boxes),
        "box_threads": sum(len(b.threads) for b in boxes),
        "box_comments": sum(len(b.comments) for b in boxes),
        "box_meetings": sum(len(b.meetings) for b in boxes),
        "box_files": sum(len(b.files) for b in boxes),
        "snippets": len(account.snippets),
        "contacts": sum(len(c) for c in account.contacts.values()),
        "organizations": sum(len(o) for o in account.organizations.values()),
        "pipeline_newsfeed": sum(len(p.newsfeed) for p in account.pipelines),
    }


def _pages(count: int, size: int) -> int:
    """Pages of a list that may be empty: an empty list still costs one call."""
    return max(1, ceil(count / size))


def needed_calls(account: Account, page_sizes: PageSizes) -> int:
    """The fewest API calls a complete extraction needs (formula in the module docstring)."""
    sizes = effective_page_sizes(page_sizes)
    calls = 1 + _pages(len(account.teams), sizes.teams)
    for team in account.teams:
        calls += _pages(len(team.members), sizes.team_users)
        calls += _pages(len(account.contacts.get(team.key, [])), sizes.contacts)
        calls += _pages(len(account.organizations.get(team.key, [])), sizes.organizations)
    calls += 1 + 1
    for pipeline in account.pipelines:
        calls += 1 + ceil(len(pipeline.boxes) / sizes.boxes)
        for box in pipeline.boxes:
            calls += ceil(len(box.tasks) / sizes.tasks)
            calls += 1 if box.threads else 0
            calls += ceil(len(box.comments) / sizes.comments)
            calls += ceil(len(box.meetings) / sizes.meetings)
            calls += 1 if box.files else 0
    return calls
