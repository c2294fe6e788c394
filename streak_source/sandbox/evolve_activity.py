"""What a simulated day does inside a box: tasks added and completed, comments, email threads,
meetings and call logs, files, field values and notes edited (the day itself: evolve.py).

Text comes from the day-0 account's own text (box names, comments, subjects, task texts, file
names), so no Faker run is needed to move a 20,000-box account on; new keys come from a key
factory seeded by (seed, day) and are checked against every key the account ever had.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from .generate_boxes import person_value
from .generate_newsfeed import entry_text
from .generator import DAY_MS, HOUR_MS, MINUTE_MS
from .keys import KeyFactory, PathElement, parse_datastore_key
from .model import (
    Account,
    Box,
    Comment,
    Contact,
    Email,
    File,
    Meeting,
    NewsfeedEntry,
    Pipeline,
    Task,
    Thread,
)

FALLBACK_TEXT: Final = ("Follow up next week", "Sent the updated proposal", "Call scheduled")
TASK_VERBS: Final = ("Call", "Email", "Send proposal to", "Follow up with", "Book a demo with")
UNEDITABLE: Final = frozenset({"FORMULA"})
"""Field types a person cannot set (Streak computes a formula)."""


def _pool(items: list[str], limit: int = 2000) -> list[str]:
    return [item for item in items[:limit] if item] or list(FALLBACK_TEXT)


def _text_field_texts(account: Account) -> list[str]:
    """What day 0 typed into text fields (cities, \"12,000 €\"): an edited text field gets text of its
    own kind, never a thread subject, so a canary marker (which text fields do not carry) cannot
    move into a field the privacy presets rightly keep."""
    texts: list[str] = []
    for pipeline in account.pipelines:
        text_keys = {f.key for f in pipeline.fields if f.type == "TEXT_INPUT"}
        for box in pipeline.boxes:
            texts.extend(
                v for k, v in box.fields.items() if k in text_keys and isinstance(v, str) and v
            )
    return texts


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that happened: its type, when, and the keys it is about."""

    day: int
    at: int
    type: str
    pipeline_key: str
    box_key: str | None
    key: str
    """The key of what the event is about: the box, task, comment, meeting, thread, file, stage
    (``STAGE_CREATE``) or field (``FIELD_CREATE``)."""
    extra: tuple[tuple[str, Any], ...] = ()
    """``stage_key``/``from_stage_key`` for moves, ``field_key`` for edits, ..."""

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "type": self.type,
            "at": self.at,
            "pipeline_key": self.pipeline_key,
            "box_key": self.box_key,
            "key": self.key,
            **dict(self.extra),
        }


class ActivityMaker:
    """The per-box half of a day; ``evolve.Evolver`` adds the day and the box life cycle."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.humans = [u for u in account.users.values() if u.user_type == "HUMAN"]
        boxes = account.all_boxes()
        self.contacts: list[Contact] = [c for team in account.contacts.values() for c in team]
        self.contacts_by_key = {c.key: c for c in self.contacts}
        self.organization_keys = [o.key for team in account.organizations.values() for o in team]
        self.box_names = {p.key: _pool([b.name for b in p.boxes]) for p in account.pipelines}
        self.sentences = _pool([c.message for b in boxes for c in b.comments if not c.mentions])
        self.subjects = _pool([t.subject for b in boxes for t in b.threads])
        self.task_texts = _pool([t.text for b in boxes for t in b.tasks])
        self.field_texts = _pool(_text_field_texts(account))
        self.file_names = [
            (f.main_file_name, f.extension, f.mime_type) for b in boxes for f in b.files
        ][:500] or [("Proposal", "pdf", "application/pdf")]
        root = parse_datastore_key(boxes[0].key) if boxes else None
        self.org_root: PathElement = root[0] if root else ("Organization", "sandbox.example")
        self.domain = str(self.org_root[1])
        self.known_keys: set[str] = {p.key for p in account.pipelines}
        for pipeline in account.pipelines:
            self.known_keys.update(e.key for e in pipeline.events)
        for box in boxes:
            self.known_keys.add(box.key)
            for kind in (box.tasks, box.comments, box.meetings, box.files):
                self.known_keys.update(item.key for item in kind)
            for thread in box.threads:
                self.known_keys.update((thread.key, thread.gmail_thread_key))
        self.day = 0
        self.day_start = self.day_end = account.anchor_ms
        self.rng = random.Random()
        self.keys = KeyFactory(random.Random())
        self.changes: list[Change] = []
        self.new_events: dict[str, list[NewsfeedEntry]] = {}
        self.deleted_today: set[str] = set()

    def begin_day(self, day: int, day_start: int) -> None:
        seed = self.account.seed
        self.day, self.day_start, self.day_end = day, day_start, day_start + DAY_MS
        self.rng = random.Random(f"{seed}:day:{day}")
        self.keys = KeyFactory(random.Random(f"{seed}:keys:day:{day}"))
        self.changes = []
        self.new_events = {}
        self.deleted_today = set()

    # ------------------------------------------------------------------ helpers

    def between(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (max(0, high - low) + 1))

    def event_time(self) -> int:
        """A box event's time: after the day's first hour (when stages/fields are added)."""
        return self.between(self.day_start + HOUR_MS, self.day_end - MINUTE_MS)

    def fresh_key(self, kind: str) -> str:
        while True:
            key = self.keys.key(self.org_root, kind=kind)
            if key not in self.known_keys:
                self.known_keys.add(key)
                return key

    @staticmethod
    def field_types(pipeline: Pipeline) -> dict[str, str]:
        return {f.key: f.type for f in pipeline.fields}

    def record(self, kind: str, at: int, box: Box, key: str, **extra: Any) -> None:
        self.changes.append(
            Change(self.day, at, kind, box.pipeline_key, box.key, key, tuple(extra.items()))
        )

    def add_event(
        self,
        box: Box,
        when: int,
        specific: str,
        operation: str,
        creator_key: str,
        extra: dict[str, Any],
        did: str,
    ) -> None:
        pipeline = self.account.pipelines_by_key[box.pipeline_key]
        variables, stories = entry_text(pipeline, box, self.account.users[creator_key], extra, did)
        self.new_events.setdefault(pipeline.key, []).append(
            NewsfeedEntry(
                key=self.fresh_key("NewsfeedEntry"),
                creator_key=creator_key,
                timestamp=when,
                scope="BOX",
                operation=operation,
                specific=specific,
                variables=variables,
                pipeline_key=pipeline.key,
                box_key=box.key,
                story_box=stories[0],
                story_pipeline=stories[1],
                story_global=stories[2],
            )
        )

    @staticmethod
    def _touch(box: Box, when: int) -> None:
        box.last_updated_ms = max(box.last_updated_ms, when)

    # ------------------------------------------------------------------ tasks

    def add_task(self, box: Box, when: int) -> None:
        rng = self.rng
        creator = rng.choice(self.humans)
        if rng.random() < 0.5:
            text = rng.choice(self.task_texts)
        else:
            text = f"{rng.choice(TASK_VERBS)} {rng.choice(self.humans).given_name}"
        due = None
        if rng.random() < 0.8:  # due 1-14 days on, at a whole day (midnight UTC)
            due = (when // DAY_MS + rng.randint(1, 14)) * DAY_MS
        task = Task(
            key=self.fresh_key("Task"),
            creator_key=creator.key,
            assignee_keys=[creator.key] if rng.random() < 0.7 else [rng.choice(self.humans).key],
            text=text,
            done=False,
            due_ms=due,
            creation_ms=when,
            status_change_ms=when,
            reminder_status="SCHEDULED" if due is not None else "NONE",
        )
        box.tasks.append(task)  # served in creation order: today is after every older task
        self._touch(box, when)
        self.add_event(
            box,
            when,
            "ADD_TASK",
            "CREATE",
            creator.key,
            {"TASK_TEXT": task.text, "DUE_DATE": task.due_ms, "STATUS": "NOT_DONE"},
            "added a task",
        )
        self.record("TASK_CREATE", when, box, task.key)

    def complete_task(self, box: Box, when: int) -> None:
        task = self.rng.choice([t for t in box.tasks if not t.done])
        task.done = True
        task.status_change_ms = max(when, task.creation_ms + 1)
        task.reminder_status = "NOT_REMINDED_BECAUSE_TASK_DONE"
        self._touch(box, task.status_change_ms)
        self.record("TASK_COMPLETE", task.status_change_ms, box, task.key)

    # ------------------------------------------------------------------ comments, meetings, files

    def add_comment(self, box: Box, when: int) -> None:
        comment = Comment(
            key=self.fresh_key("Comment"),
            creator_key=self.rng.choice(self.humans).key,
            message=self.rng.choice(self.sentences),
            timestamp=when,
            parent_key=None,
            child_keys=[],
            mentions=[],
            reactions=[],
        )
        box.comments.append(comment)  # oldest first, as served
        self._touch(box, when)
        self.record("COMMENT_CREATE", when, box, comment.key)

    def add_meeting(self, box: Box, when: int) -> None:
        rng = self.rng
        call = rng.random() < 0.4
        duration = rng.randint(2, 45) * MINUTE_MS if call else rng.randint(3, 12) * 5 * MINUTE_MS
        start = max(self.day_start, when - duration - rng.randint(0, 30) * MINUTE_MS)
        creator = rng.choice(self.humans)
        meeting = Meeting(
            key=self.fresh_key("Meeting"),
            creator_key=creator.key,
            meeting_type="CALL_LOG" if call else "MEETING_NOTES",
            start_ms=start,
            duration_ms=duration,
            notes=rng.choice(self.sentences) if rng.random() < 0.85 else "",
            creation_ms=when,
        )
        box.meetings.append(meeting)
        box.meetings.sort(key=lambda m: (m.start_ms, m.key))
        self._touch(box, when)
        self.add_event(
            box,
            when,
            "ADD_MEETING",
            "CREATE",
            creator.key,
            {
                "MEETING_TYPE": meeting.meeting_type,
                "MEETING_START_TIMESTAMP": meeting.start_ms,
                "MEETING_NOTES": meeting.notes,
            },
            "logged a call" if call else "added meeting notes",
        )
        self.record("MEETING_CREATE", when, box, meeting.key)

    def add_file(self, box: Box, when: int) -> None:
        stem, extension, mime_type = self.rng.choice(self.file_names)
        thread = self.rng.choice(box.threads) if box.threads and self.rng.random() < 0.5 else None
        file = File(
            key=self.fresh_key("File"),
            owner_key=self.rng.choice(self.humans).key,
            main_file_name=stem,
            extension=extension,
            mime_type=mime_type,
            size=self.rng.randint(2_000, 8_000_000),
            file_type="GMAIL_API" if thread else "DRIVE",
            thread_key=thread.key if thread else None,
            creation_ms=when,
        )
        if thread:
            thread.file_keys.append(file.key)
        box.files.append(file)  # creation order: today is after every older file
        self._touch(box, when)
        self.record("FILE_CREATE", when, box, file.key)

    # ------------------------------------------------------------------ email

    def add_thread(self, box: Box, when: int) -> None:
        rng = self.rng
        teammate = rng.choice(self.humans)
        linked = [
            self.contacts_by_key[c.key] for c in box.contact_links if c.key in self.contacts_by_key
        ]
        outsider = rng.choice(linked or self.contacts) if (linked or self.contacts) else None
        last = min(self.day_end - 1, when + rng.randint(0, 6) * HOUR_MS)
        emails = []
        for moment in sorted(self.between(when, last) for _ in range(rng.randint(1, 3))):
            sent = outsider is None or rng.random() < 0.5
            sender = teammate.email if sent else outsider.email_addresses[0]  # type: ignore[union-attr]
            emails.append(Email(moment, sent, sender))
        people = [outsider] if outsider else []
        thread = Thread(
            key=self.fresh_key("Thread"),
            gmail_thread_key=self.fresh_key("GmailThread"),
            gmail_id=f"{rng.getrandbits(64):016x}",
            creator_key=teammate.key,
            subject=rng.choice(self.subjects),
            names=[teammate.full_name] + [f"{c.given_name} {c.family_name}" for c in people],
            email_addresses=[teammate.email] + [c.email_addresses[0] for c in people],
            emails=emails,
            file_keys=[],
            views=rng.randint(0, 3) if any(e.sent for e in emails) else 0,
        )
        box.threads.append(thread)
        box.threads.sort(key=lambda t: (t.emails[-1].timestamp, t.key), reverse=True)
        self._touch(box, emails[-1].timestamp)
        self.record("THREAD_CREATE", when, box, thread.key)
        # Day 0's rule for the box's addresses: outside addresses of its threads, first five.
        addresses = {
            a for t in box.threads for a in t.email_addresses if not a.endswith(self.domain)
        }
        new_addresses = sorted(addresses)[:5]
        if new_addresses != box.email_addresses:
            box.email_addresses = new_addresses
            self.record("BOX_NEW_EMAIL_ADDRESS", when, box, box.key)

    # ------------------------------------------------------------------ edits

    def edit_box(self, box: Box, when: int) -> None:
        """A field value edited (a value of the field's type; the pipeline's value field a value
        from its sales process's value model), or the notes when nothing is."""
        pipeline = self.account.pipelines_by_key[box.pipeline_key]
        editable = [f for f in pipeline.fields if f.type not in UNEDITABLE]
        if not editable or self.rng.random() < 0.1:
            box.notes = self.rng.choice(self.sentences)
            self._touch(box, when)
            self.record("BOX_EDIT", when, box, box.key, property="notes")
            return
        field = self.rng.choice(editable)
        process = self.account.processes.get(box.pipeline_key)
        if process is not None and field.key == process.value_field:  # re-priced, as drawn
            box.fields[field.key] = process.model.value.draw(self.rng)
        else:
            box.fields[field.key] = self._value(
                field.type, [o.key for o in field.options], box.fields.get(field.key), when
            )
        self._touch(box, when)
        self.record("BOX_EDIT", when, box, box.key, field_key=field.key)

    def _value(self, field_type: str, options: list[str], current: Any, when: int) -> Any:
        """A new value in Streak's encoding for the type (see account.py's table)."""
        rng = self.rng
        if field_type == "DROPDOWN" and options:
            return rng.choice([o for o in options if o != current] or options)
        if field_type == "TAG" and options:
            return rng.sample(options, rng.randint(1, min(2, len(options))))
        if field_type == "CHECKBOX":
            return not current if isinstance(current, bool) else rng.random() < 0.5
        if field_type == "DATE":
            return (when // DAY_MS + rng.randint(1, 90)) * DAY_MS
        if field_type == "PERSON":
            return [person_value(rng.choice(self.humans))]
        if field_type == "TEAM_CONTACT" and self.contacts:
            return [rng.choice(self.contacts).key]
        if field_type == "TEAM_ORGANIZATION" and self.organization_keys:
            return [rng.choice(self.organization_keys)]
        if rng.random() < 0.5:  # TEXT_INPUT: a number (served as a JSON number) or text
            return rng.randrange(1_000, 250_000, 500)
        return rng.choice(self.field_texts)
