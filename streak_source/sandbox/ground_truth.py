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

The hostile account (``hostile.py``) serves records that cannot be keyed: a pipeline, a box, a
task, a thread and a team member without their key, and a ``null`` item in a child list. The
counts above leave them out (a correct loader loads everything else), and ``rejected_counts``
(``GET <base>/__sandbox__/rejected``) says, per table, how many such records a correct loader
must quarantine instead (one per keyless record or ``null`` item); ``rejected_records`` in the
counts is their total.

Fewest calls (``needed_calls``), with ``L_x`` the page sizes in effect (capped at 1000):

    1 (v1/users/me) + max(1, ceil(teams / L_teams))
    + per team [max(1, ceil(team users / L_team_users)) + max(1, ceil(contacts / L_contacts))
                + max(1, ceil(orgs / L_organizations))]
    + 1 (v1/pipelines) + 1 (v1/snippets)
    + per keyed pipeline [1 (newsfeed) + ceil(boxCount / L_boxes)]  (0 box pages for an empty one)
    + per keyed box [ceil(tasks served / L_tasks) + (1 if gmailThreadCount > 0)
                     + ceil(comments served / L_comments)
                     + ceil(meetings served / L_meetings) + (1 if fileCount > 0)]

A child list is called only when the box's counters say it is not empty; "served" counts a
hostile ``null`` item too (it takes a place on a page). A keyless pipeline or box is never used
in a path, so it costs no calls of its own.

Exact paging (``hasNextPage`` false on a full last page, ``cursor`` null with nothing left) is what
makes these the true minimum.
"""

from __future__ import annotations

from math import ceil
from typing import Any, Final

from .model import Account, Box, keyless
from .paging import PageSizes, effective_page_sizes

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
    "rejected_records",
)
"""The tables of the README's "Tables" section whose row counts the account determines."""


def is_field_value(value: Any) -> bool:
    """A ``box.fields`` entry that makes a ``box_field_values`` row: not null, "" or []."""
    if value is None:
        return False
    return not (isinstance(value, (str, list)) and len(value) == 0)


def _served(box: Box, kind: str) -> int:
    """Items a box child list serves: its children plus a hostile ``null`` item, if any."""
    return len(getattr(box, kind)) + (1 if kind in box.null_items else 0)


def table_counts(account: Account) -> dict[str, int]:
    boxes = [b for b in account.all_boxes() if not keyless(b.patch)]
    user_keys = {account.me.key} | {m.user.key for team in account.teams for m in team.members}
    return {
        "users": len(user_keys),
        "teams": len(account.teams),
        "team_members": sum(
            1 for team in account.teams for m in team.members if not keyless(m.patch)
        ),
        "pipelines": sum(1 for p in account.pipelines if not keyless(p.patch)),
        "stages": sum(len(p.stages) for p in account.pipelines),
        "pipeline_fields": sum(len(p.fields) for p in account.pipelines),
        "pipeline_field_options": sum(
            len(f.options) for p in account.pipelines for f in p.fields
        ),
        "boxes": len(boxes),
        "box_field_values": sum(1 for b in boxes for v in b.fields.values() if is_field_value(v)),
        "box_tasks": sum(1 for b in boxes for t in b.tasks if not keyless(t.patch)),
        "box_threads": sum(1 for b in boxes for t in b.threads if not keyless(t.patch)),
        "box_comments": sum(len(b.comments) for b in boxes),
        "box_meetings": sum(len(b.meetings) for b in boxes),
        "box_files": sum(len(b.files) for b in boxes),
        "snippets": len(account.snippets),
        "contacts": sum(len(c) for c in account.contacts.values()),
        "organizations": sum(len(o) for o in account.organizations.values()),
        "pipeline_newsfeed": sum(len(p.newsfeed) for p in account.pipelines),
        "rejected_records": sum(rejected_counts(account).values()),
    }


def rejected_counts(account: Account) -> dict[str, int]:
    """Per table, the records a correct loader must quarantine: keyless ones and ``null`` items
    of child lists (only the hostile account has any; tables with none are left out)."""
    found: dict[str, int] = {}

    def add(table: str, count: int) -> None:
        if count:
            found[table] = found.get(table, 0) + count

    add("pipelines", sum(1 for p in account.pipelines if keyless(p.patch)))
    add("team_members", sum(1 for t in account.teams for m in t.members if keyless(m.patch)))
    for box in account.all_boxes():
        add("boxes", 1 if keyless(box.patch) else 0)
        add("box_tasks", sum(1 for t in box.tasks if keyless(t.patch)))
        add("box_threads", sum(1 for t in box.threads if keyless(t.patch)))
        for kind in box.null_items:
            add(f"box_{kind}", 1)
    return dict(sorted(found.items()))


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
        if keyless(pipeline.patch):
            continue
        calls += 1 + ceil(len(pipeline.boxes) / sizes.boxes)
        for box in pipeline.boxes:
            if keyless(box.patch):
                continue
            calls += ceil(_served(box, "tasks") / sizes.tasks) if box.tasks else 0
            calls += 1 if box.threads else 0
            calls += ceil(_served(box, "comments") / sizes.comments) if box.comments else 0
            calls += ceil(_served(box, "meetings") / sizes.meetings) if box.meetings else 0
            calls += 1 if box.files else 0
    return calls
