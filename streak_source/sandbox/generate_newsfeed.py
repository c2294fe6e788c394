"""Every pipeline's history in Streak's newsfeed shape (streak_api.md 6.13).

Events, one per fact the account holds (all BOX scope; the reference names no pipeline-level
specific, so none is invented):

============  ==========  ==============================================================
NEW_BOX       CREATE      a box was created (``STAGE_KEY`` = the stage it was created in)
EDIT_STAGE    UPDATE      a box moved; ``STAGE_KEY`` = the stage ENTERED (the previous stage
                          is the previous entry's, as on Streak)
ADD_TASK      CREATE      a task was added (``TASK_TEXT``, ``DUE_DATE``, ``STATUS``)
ADD_MEETING   CREATE      a meeting note or call log was added (``MEETING_TYPE``,
                          ``MEETING_START_TIMESTAMP``, ``MEETING_NOTES``)
============  ==========  ==============================================================

Every entry also carries ``BOX_NAME``, ``PIPELINE_NAME`` and ``STORY_AUTHOR_DISPLAY_NAME``.
A box's ``NEW_BOX`` and ``EDIT_STAGE`` entries are its ``stage_path`` (generate_paths.py), one
entry per stage it entered, so every move is backed and its last entry is its
``lastStageChangeTimestamp``; moves are by its assignees in turn (its creator when it has none).
``Pipeline.events`` holds them all, newest first; the pipeline newsfeed serves the newest 50, a
box's newsfeed its own newest 50.
"""

from __future__ import annotations

from typing import Any

from .generator import GeneratorBase
from .model import NEWSFEED_CAP, Box, NewsfeedEntry, Pipeline, User, keyless

__all__ = ["NEWSFEED_CAP", "NewsfeedBuilder", "entry_text"]

_Candidate = tuple[int, str, str, dict[str, Any], str, str, tuple[str, str, str]]
"""(timestamp, specific, operation, variables, box key, creator key, (box, pipeline, global) story)."""


class NewsfeedBuilder(GeneratorBase):
    """Builds ``Pipeline.events``; draws keys only (no random choices), so nothing else moves."""

    def build_events(self, pipeline: Pipeline, users: dict[str, User]) -> list[NewsfeedEntry]:
        candidates: list[_Candidate] = []
        for box in pipeline.boxes:
            if keyless(box.patch):  # its history would name the key it does not have
                continue
            candidates.extend(_box_candidates(pipeline, box, users))
        candidates.sort(key=lambda c: (c[0], c[1], c[4]), reverse=True)
        return [
            NewsfeedEntry(
                key=self.key("NewsfeedEntry"),
                creator_key=creator,
                timestamp=timestamp,
                scope="BOX",
                operation=operation,
                specific=specific,
                variables=variables,
                pipeline_key=pipeline.key,
                box_key=box_key,
                story_box=stories[0],
                story_pipeline=stories[1],
                story_global=stories[2],
            )
            for timestamp, specific, operation, variables, box_key, creator, stories in candidates
        ]


def entry_text(
    pipeline: Pipeline, box: Box, author: User, extra: dict[str, Any], did: str
) -> tuple[dict[str, Any], tuple[str, str, str]]:
    """An entry's ``specificVariables`` and its (box, pipeline, global) story texts: the ONE rule,
    for day 0's history and for every simulated day's (evolve_activity.py)."""
    name = author.display_name
    variables = {
        "BOX_NAME": box.name,
        "PIPELINE_NAME": pipeline.name,
        "STORY_AUTHOR_DISPLAY_NAME": name,
        **extra,
    }
    stories = (
        f"{name} {did}",
        f"{name} {did} ({box.name})",
        f"{name} {did} ({box.name}, {pipeline.name})",
    )
    return variables, stories


def _box_candidates(pipeline: Pipeline, box: Box, users: dict[str, User]) -> list[_Candidate]:
    stage_names = {s.key: s.name for s in pipeline.stages}
    first_stage = pipeline.stage_order[0] if pipeline.stage_order else None

    def event(
        timestamp: int, specific: str, operation: str, creator: str, extra: dict[str, Any], did: str
    ) -> _Candidate:
        variables, stories = entry_text(pipeline, box, users[creator], extra, did)
        return (timestamp, specific, operation, variables, box.key, creator, stories)

    path = box.stage_path or [(first_stage or "", box.creation_ms)]
    found = [
        event(
            path[0][1],
            "NEW_BOX",
            "CREATE",
            box.creator_key,
            {"STAGE_KEY": path[0][0]},
            "created this box",
        )
    ]
    movers = box.assignee_keys or [box.creator_key]
    for index, (stage, entered) in enumerate(path[1:]):
        found.append(
            event(
                entered,
                "EDIT_STAGE",
                "UPDATE",
                movers[index % len(movers)],
                {"STAGE_KEY": stage},
                f"moved this box to {stage_names.get(stage, stage)}",
            )
        )
    for task in box.tasks:
        found.append(
            event(
                task.creation_ms,
                "ADD_TASK",
                "CREATE",
                task.creator_key,
                {
                    "TASK_TEXT": task.text,
                    "DUE_DATE": task.due_ms,
                    "STATUS": "DONE" if task.done else "NOT_DONE",
                },
                "added a task",
            )
        )
    for meeting in box.meetings:
        found.append(
            event(
                meeting.creation_ms,
                "ADD_MEETING",
                "CREATE",
                meeting.creator_key,
                {
                    "MEETING_TYPE": meeting.meeting_type,
                    "MEETING_START_TIMESTAMP": meeting.start_ms,
                    "MEETING_NOTES": meeting.notes,
                },
                "logged a call" if meeting.meeting_type == "CALL_LOG" else "added meeting notes",
            )
        )
    return found
