"""``--canary TOKEN``: a unique marker planted in every field of the account that holds personal data,
so a test can search every byte a run produced for it (issue 25; docs/sandbox.md, "Canary").

Each person and each piece of text gets its own marker, ``TOKEN-<id>``, where ``<id>`` is a
letter saying what it marks and six digits: ``u`` users, ``c`` contacts, ``o`` organizations,
``s`` snippets, ``b`` box notes, ``k`` tasks, ``t`` thread subjects, ``m`` comments, ``n`` meeting
notes, ``e`` newsfeed entries, ``x`` an e-mail address that belongs to nobody above. So a marker
found says whose data leaked (``TOKEN-c000007``: the seventh contact), and every marker of one
person shares its prefix (``forget`` tests look for one person's and not the others').

Where markers go (and the values built from them agree: a contact's address in a thread is the
contact's planted address, a PERSON field value is the user's planted name and address):

* people: given, family and display names, e-mail addresses (``TOKEN-c000007.ada.lovelace@...``:
  the token must be lower case, as e-mail addresses are compared), photo URLs, handles;
* phone numbers: a phone holds digits, so the marker rides in its extension text, as people type
  them (``+1 555 0100 ext. TOKEN-c000007``), and the digits stay the person's own;
* postal addresses, the ``other`` notes of contacts and organizations, organization names;
* text people wrote: snippets, box notes, task texts, thread subjects, comments (the marker at
  the end, so mention offsets stay right), meeting notes, newsfeed task texts, meeting notes and
  stories (whose author names are the planted ones).

Not planted, because they are not personal data or the copy keeps them on purpose: box, pipeline,
stage, team and file names, job titles, domains, keys. Empty texts stay empty. Planting is
idempotent and runs again after every simulated day (``Timeline.after_advance``), so what a day
adds is marked before it is served or delivered by a webhook. Without a canary nothing changes:
the account is byte-identical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

from .generate_boxes import person_value
from .model import Account, Box, Contact, NewsfeedEntry, Organization, User

__all__ = ["Canary", "CanaryError", "TOKEN_PATTERN"]

TOKEN_PATTERN: Final = re.compile(r"[a-z][a-z0-9]{3,31}")
"""Lower-case letters and digits, 4 to 32, starting with a letter: it survives e-mail address
lower-casing, JSON and SQL quoting, and no hex digest can contain it by chance (a letter past f)."""


class CanaryError(ValueError):
    """A token that cannot be planted (one line)."""


class Canary:
    """Plants ``TOKEN-<id>`` markers (module doc); one instance per account."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token) or not re.search(r"[g-z]", token):
            raise CanaryError(f"canary token {token!r}: 4 to 32 lower-case letters and digits, starting with a letter "
                              "and holding a letter after f (so no hex digest can contain it)")
        self.token = token
        self._next: dict[str, int] = {}
        self._emails: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._old_display: dict[str, str] = {}

    def marker(self, kind: str) -> str:
        """The next unused marker of ``kind`` (``u``, ``c``...)."""
        number = self._next.get(kind, 0) + 1
        self._next[kind] = number
        return f"{self.token}-{kind}{number:06d}"

    def marked(self, value: Any) -> bool:
        return isinstance(value, str) and self.token in value

    def plant(self, account: Account, deleted_boxes: Iterable[Box] = ()) -> None:
        """Mark every unmarked personal value of ``account`` (and of boxes deleted since), in place."""
        for user in account.users.values():
            self._user(user)
        for contacts in account.contacts.values():
            for contact in contacts:
                self._contact(contact)
        for organizations in account.organizations.values():
            for organization in organizations:
                self._organization(organization)
        for snippet in account.snippets:
            snippet.text = self._prefixed("s", snippet.text)
        for box in [*account.all_boxes(), *deleted_boxes]:
            self._box(box, account)
        for pipeline in account.pipelines:
            for entry in pipeline.events:
                self._entry(entry, account)

    # -- people ------------------------------------------------------------------------------------

    def _user(self, user: User) -> None:
        if self.marked(user.email):
            return
        mark = self.marker("u")
        self._old_display[user.key] = user.display_name
        old_full, old_display = user.full_name, user.display_name
        user.given_name = f"{mark}-{user.given_name}"
        user.family_name = f"{mark}-{user.family_name}"
        user.display_name = f"{mark}-{user.display_name}"
        user.email = self._planted_email(user.email, mark)
        if user.image:
            user.image = f"{user.image}-{mark}"
        self._names[old_full] = user.full_name
        self._names.setdefault(old_display, user.display_name)

    def _contact(self, contact: Contact) -> None:
        if any(self.marked(address) for address in contact.email_addresses) or self.marked(contact.given_name):
            return
        mark = self.marker("c")
        old_name = f"{contact.given_name} {contact.family_name}"
        contact.given_name = f"{mark}-{contact.given_name}"
        contact.family_name = f"{mark}-{contact.family_name}"
        self._names[old_name] = f"{contact.given_name} {contact.family_name}"
        contact.email_addresses = [self._planted_email(address, mark) for address in contact.email_addresses]
        contact.phone_numbers = [f"{phone} ext. {mark}" for phone in contact.phone_numbers]
        contact.addresses = [f"{mark}, {address}" for address in contact.addresses]
        contact.other = f"{mark} {contact.other}" if contact.other else contact.other
        contact.linkedin_handle = f"{mark}-{contact.linkedin_handle}" if contact.linkedin_handle else None
        contact.twitter_handle = f"{mark}-{contact.twitter_handle}" if contact.twitter_handle else None
        contact.photo_url = f"{contact.photo_url}-{mark}" if contact.photo_url else None

    def _organization(self, organization: Organization) -> None:
        if self.marked(organization.name):
            return
        mark = self.marker("o")
        organization.name = f"{mark} {organization.name}"
        organization.phone_numbers = [f"{phone} ext. {mark}" for phone in organization.phone_numbers]
        organization.addresses = [f"{mark}, {address}" for address in organization.addresses]
        organization.other = f"{mark} {organization.other}" if organization.other else organization.other

    def _planted_email(self, address: str, mark: str) -> str:
        local, _, domain = address.partition("@")
        planted = f"{mark}.{local}@{domain}" if domain else f"{mark}.{address}"
        self._emails[address] = planted
        return planted

    def _email(self, address: str) -> str:
        """An address as planted: its person's, or one of its own when it belongs to nobody known."""
        if self.marked(address):
            return address
        return self._emails.get(address) or self._planted_email(address, self.marker("x"))

    def _name(self, name: str, kind: str) -> str:
        if self.marked(name):
            return name
        return self._names.get(name) or f"{self.marker(kind)} {name}"

    # -- boxes and their children ----------------------------------------------------------------

    def _box(self, box: Box, account: Account) -> None:
        box.notes = self._prefixed("b", box.notes)
        box.email_addresses = [self._email(address) for address in box.email_addresses]
        for key, value in box.fields.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) and "userKey" in v for v in value):
                box.fields[key] = [person_value(account.users[v["userKey"]]) if v["userKey"] in account.users else v
                                   for v in value]
        for task in box.tasks:
            task.text = self._prefixed("k", task.text)
        for thread in box.threads:
            thread.subject = self._prefixed("t", thread.subject)
            thread.names = [self._name(name, "x") for name in thread.names]
            thread.email_addresses = [self._email(address) for address in thread.email_addresses]
            for email in thread.emails:
                email.sender = self._email(email.sender)
        for comment in box.comments:
            if self.marked(comment.message):
                continue
            for mention in comment.mentions:  # the handle is the user's display name: the planted one
                user = account.users.get(mention.user_key)
                old = "@" + self._old_display.get(mention.user_key, "")
                if user is not None and comment.message[mention.offset:mention.offset + mention.length] == old:
                    handle = "@" + user.display_name
                    comment.message = comment.message[:mention.offset] + handle + comment.message[mention.offset
                                                                                                 + mention.length:]
                    mention.length = len(handle)
            if not self.marked(comment.message):
                comment.message = f"{comment.message} {self.marker('m')}"
        for meeting in box.meetings:
            meeting.notes = self._prefixed("n", meeting.notes)

    def _entry(self, entry: NewsfeedEntry, account: Account) -> None:
        author = account.users.get(entry.creator_key)
        if author is not None and "STORY_AUTHOR_DISPLAY_NAME" in entry.variables:
            entry.variables["STORY_AUTHOR_DISPLAY_NAME"] = author.display_name
        texts = [entry.variables.get(name) for name in ("TASK_TEXT", "MEETING_NOTES")]
        stories = (entry.story_box, entry.story_pipeline, entry.story_global)
        if all(self.marked(text) or not text for text in (*texts, *stories)):
            return
        mark = self.marker("e")
        for name in ("TASK_TEXT", "MEETING_NOTES"):
            text = entry.variables.get(name)
            if isinstance(text, str) and text and not self.marked(text):
                entry.variables[name] = f"{mark} {text}"
        old = self._old_display.get(entry.creator_key)
        new = author.display_name if author is not None else None

        def story(text: str) -> str:
            if not text or self.marked(text):
                return text
            if old and new and text.startswith(old):
                return new + text[len(old):]
            return f"{mark} {text}"

        entry.story_box, entry.story_pipeline, entry.story_global = (story(s) for s in stories)

    def _prefixed(self, kind: str, text: str) -> str:
        """``text`` with a marker of ``kind`` in front (empty and marked texts as they are)."""
        if not text or self.marked(text):
            return text
        return f"{self.marker(kind)} {text}"
