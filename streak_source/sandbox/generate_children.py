"""The children of a box: tasks, email threads, files, comments, meetings and call logs."""

from __future__ import annotations

from typing import Final

from .generator import DAY_MS, HOUR_MS, MINUTE_MS, GeneratorBase
from .model import (
    Box,
    Comment,
    Contact,
    Email,
    File,
    Meeting,
    Mention,
    Reaction,
    Task,
    Thread,
    User,
)

TASK_VERBS: Final = ("Call", "Email", "Send proposal to", "Follow up with", "Book a demo with")
REACTION_EMOJI: Final = ("👍", "🎉", "❤️", "👀")


class ChildBuilder(GeneratorBase):
    """Adds children to a box; box counters are derived from them at render time."""

    def add_children(
        self,
        box: Box,
        counts: dict[str, int],
        humans: list[User],
        contacts: list[Contact],
        contacts_by_key: dict[str, Contact],
    ) -> None:
        rng = self.rng
        start, end = box.creation_ms + MINUTE_MS, self.now - MINUTE_MS
        for _ in range(counts["tasks"]):
            box.tasks.append(self.task(box, humans, start, end))
        box.tasks.sort(key=lambda t: (t.creation_ms, t.key))
        people = [contacts_by_key[link.key] for link in box.contact_links]
        for _ in range(counts["threads"]):
            box.threads.append(
                self.thread(box, humans, people or rng.sample(contacts, 1), start, end)
            )
        box.threads.sort(key=lambda t: (t.emails[-1].timestamp, t.key), reverse=True)
        addresses = {
            a for t in box.threads for a in t.email_addresses if not a.endswith(self.domain)
        }
        box.email_addresses = sorted(addresses)[:5]
        for _ in range(counts["files"]):
            box.files.append(self.file(box, humans, start, end))
        box.files.sort(key=lambda f: (f.creation_ms, f.key))
        for _ in range(counts["comments"]):
            box.comments.append(self.comment(box, humans, start, end))
        box.comments.sort(key=lambda c: (c.timestamp, c.key))
        self._thread_replies(box.comments)
        for _ in range(counts["meetings"]):
            box.meetings.append(self.meeting(humans, start, end))
        box.meetings.sort(key=lambda m: (m.start_ms, m.key))
        activity = [box.last_updated_ms]
        activity += [t.status_change_ms for t in box.tasks]
        activity += [t.emails[-1].timestamp for t in box.threads]
        activity += [c.timestamp for c in box.comments]
        activity += [m.creation_ms for m in box.meetings]
        activity += [f.creation_ms for f in box.files]
        box.last_updated_ms = max(activity)

    def task(self, box: Box, humans: list[User], start: int, end: int) -> Task:
        rng = self.rng
        created = self.between(start, end)
        creator = rng.choice(humans)
        assignees = [creator.key] if rng.random() < 0.7 else [u.key for u in rng.sample(humans, 2)]
        if rng.random() < 0.3:
            text = rng.choice(self.text.sentences)
        else:
            text = f"{rng.choice(TASK_VERBS)} {rng.choice(self.text.person_names)[0]}"
        roll = rng.random()
        if roll < 0.4:  # done
            done, due = True, (self.between(created, end) if rng.random() < 0.7 else None)
            changed, reminder = self.between(created, end), "NOT_REMINDED_BECAUSE_TASK_DONE"
        elif roll < 0.6:  # overdue: due at least a day before the anchor
            done, changed, reminder = False, created, "REMINDED"
            due = min(self.between(created, self.now - DAY_MS), self.now - DAY_MS)
        elif roll < 0.85:  # due soon: 1-14 days after the anchor
            done, changed, reminder = False, created, "SCHEDULED"
            due = self.now + rng.randint(DAY_MS, 14 * DAY_MS)
        else:  # no due date
            done, due, changed, reminder = False, None, created, "NONE"
        return Task(
            key=self.key("Task"),
            creator_key=creator.key,
            assignee_keys=assignees,
            text=text,
            done=done,
            due_ms=due,
            creation_ms=created,
            status_change_ms=changed,
            reminder_status=reminder,
        )

    def thread(
        self, box: Box, humans: list[User], people: list[Contact], start: int, end: int
    ) -> Thread:
        rng = self.rng
        teammate = rng.choice(humans)
        outsiders = rng.sample(people, min(len(people), rng.randint(1, 2)))
        first = self.between(start, end)
        last = min(end, first + rng.randint(0, 20) * DAY_MS + rng.randint(0, DAY_MS))
        moments = sorted(self.between(first, last) for _ in range(rng.randint(1, 8)))
        emails = []
        for moment in moments:
            sent = rng.random() < 0.5
            sender = teammate.email if sent else outsiders[0].email_addresses[0]
            emails.append(Email(moment, sent, sender))
        subject = rng.choice(self.text.subjects)
        if rng.random() < 0.1:
            subject = rng.choice(self.text.sentences)
        elif rng.random() < 0.3:
            subject = f"Re: {subject}"
        return Thread(
            key=self.key("Thread"),
            gmail_thread_key=self.key("GmailThread"),
            gmail_id=f"{rng.getrandbits(64):016x}",
            creator_key=teammate.key,
            subject=self.maybe_emoji(subject, 0.05),
            names=[teammate.full_name] + [f"{c.given_name} {c.family_name}" for c in outsiders],
            email_addresses=[teammate.email] + [c.email_addresses[0] for c in outsiders],
            emails=emails,
            file_keys=[],
            views=rng.randint(0, 6) if any(e.sent for e in emails) else 0,
        )

    def file(self, box: Box, humans: list[User], start: int, end: int) -> File:
        rng = self.rng
        stem, extension, mime_type = rng.choice(self.text.file_names)
        thread = rng.choice(box.threads) if box.threads and rng.random() < 0.6 else None
        created = self.between(start, end)
        file = File(
            key=self.key("File"),
            owner_key=rng.choice(humans).key,
            main_file_name=stem,
            extension=extension,
            mime_type=mime_type,
            size=rng.randint(2_000, 8_000_000),
            file_type="GMAIL_API" if thread else "DRIVE",
            thread_key=thread.key if thread else None,
            creation_ms=created,
        )
        if thread:
            thread.file_keys.append(file.key)
        return file

    def comment(self, box: Box, humans: list[User], start: int, end: int) -> Comment:
        rng = self.rng
        message = self.maybe_emoji(rng.choice(self.text.sentences), 0.15)
        mentions = []
        if rng.random() < 0.15:
            mentioned = rng.choice(humans)
            handle = f"@{mentioned.display_name}"
            message = f"{handle} {message}"
            mentions.append(Mention(mentioned.key, 0, len(handle)))
        reactions = []
        if rng.random() < 0.1:
            reactions.append(
                Reaction(
                    rng.choice(REACTION_EMOJI),
                    [u.key for u in rng.sample(humans, rng.randint(1, 2))],
                )
            )
        return Comment(
            key=self.key("Comment"),
            creator_key=rng.choice(humans).key,
            message=message,
            timestamp=self.between(start, end),
            parent_key=None,
            child_keys=[],
            mentions=mentions,
            reactions=reactions,
        )

    def _thread_replies(self, comments: list[Comment]) -> None:
        """Make some comments replies to an earlier top-level comment (``parent``/``children``)."""
        for index in range(1, len(comments)):
            if self.rng.random() < 0.15:
                parent = self.rng.choice(
                    [c for c in comments[:index] if c.parent_key is None] or [None]
                )
                if (
                    parent is not None
                    and comments[index].parent_key is None
                    and not comments[index].child_keys
                ):
                    comments[index].parent_key = parent.key
                    parent.child_keys.append(comments[index].key)

    def meeting(self, humans: list[User], start: int, end: int) -> Meeting:
        rng = self.rng
        call = rng.random() < 0.4
        started = self.between(start, end - 2 * HOUR_MS)
        duration = rng.randint(2, 45) * MINUTE_MS if call else rng.randint(3, 12) * 5 * MINUTE_MS
        roll = rng.random()
        if roll < 0.15:
            notes = ""
        elif call:
            notes = rng.choice(self.text.sentences)
        else:
            notes = rng.choice(self.text.paragraphs)
        return Meeting(
            key=self.key("Meeting"),
            creator_key=rng.choice(humans).key,
            meeting_type="CALL_LOG" if call else "MEETING_NOTES",
            start_ms=started,
            duration_ms=duration,
            notes=notes,
            creation_ms=min(end, started + duration + rng.randint(0, 30) * MINUTE_MS),
        )
