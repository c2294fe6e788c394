"""Every column of the copy that holds personal data: the ONE catalog the presets, the rules, the
docs (docs/privacy.md) and the sandbox's canary agree on.

Each :class:`Column` names a column of the copy (``table.column``, as in ``[privacy] rules``), the
kinds of personal value it holds (``email``, ``phone``, ``name``, ``text``, ``url``: see
streak_source/privacy/hashing.py) and where those values are in the raw Streak object it is built
from (``source``, one per object the source reads, and the ``paths`` inside it). The policy
protects the raw object at those paths as soon as it is read, before anything is built from it,
so every table, the refresh basis and ``rejected_records`` get the protected value alike.

``shape`` says how the values sit at the path:

* ``value``: a string (or a list of strings) of the column's kind;
* ``people``: sharing entries / user briefs / ACL entries (``email``, ``fullName``,
  ``displayName``, ``givenName``, ``image``...), one or a list;
* ``fields``: a custom-field map (box ``fields``, a contact's or organization's ``fields``): PERSON
  values are people, a text field whose name says e-mail, phone or notes (:func:`kind_of_name`) is
  that kind, and any other value that is an e-mail address is an e-mail address;
* ``variables``: a newsfeed entry's ``specificVariables``, kinds by variable name;
* ``free``: free-form JSON (a custom event's properties), kinds by key name;
* ``emails_only``: kept unless it is an e-mail address (a custom event's ``distinct_id``).

Columns computed from another one (``boxes.owner_email`` from the assignees' sharing entries) are
in :data:`DERIVED`: they follow that column, and a rule names the column they follow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from dlt.common.normalizers.naming.snake_case import NamingConvention

from streak_source import settings
from streak_source.privacy.hashing import Kind

__all__ = ["CATALOG", "COLUMNS", "DERIVED", "DERIVED_KINDS", "ENDPOINT_SOURCES", "PERSON_KEYS", "Column", "Scope", "Shape",
           "kind_of_name", "source_of_endpoint", "source_of_webhook"]

Shape = Literal["value", "people", "fields", "variables", "free", "emails_only"]
Scope = Literal["contacts", "account"]
"""``contacts``: the team's contacts and organizations (the ``contacts`` preset); ``account``:
everything else (only ``strict``)."""

_SNAKE: Final = NamingConvention()


@dataclass(frozen=True)
class Column:
    """One personal-data column of the copy and where its values are in the raw object."""

    table: str
    column: str
    kinds: tuple[Kind, ...]
    source: str
    """The raw object it is built from (a key of :data:`ENDPOINT_SOURCES`' values, ``events``...)."""
    paths: tuple[tuple[str, ...], ...]
    """Raw keys from the object down to the value; ``*`` = every item of a list."""
    shape: Shape
    scope: Scope
    why: str

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def _column(table: str, raw: str, kinds: tuple[Kind, ...], why: str, *, shape: Shape = "value",
            source: str | None = None, under: tuple[str, ...] = (), column: str | None = None,
            also: tuple[str, ...] = ()) -> Column:
    """A column named by dlt's snake_case of its raw field ``raw`` (``emailAddresses`` ->
    ``email_addresses``), read from ``source`` (default: the table) under ``under``; ``also``:
    other raw names the same column is built from."""
    paths = tuple((*under, name) for name in (raw, *also))
    return Column(table, column or _SNAKE.normalize_identifier(raw), kinds, source or table, paths, shape,
                  "contacts" if table in ("contacts", "organizations") else "account", why)


_PEOPLE: Final[tuple[Kind, ...]] = ("email", "name", "url")
_SHARING = "sharing entries: the e-mail address, names and photo of each person"
_MEMBER = ("members", "*")

CATALOG: Final[tuple[Column, ...]] = (
    # -- the team's contacts and organizations (preset "contacts" and up)
    _column("contacts", "givenName", ("name",), "the contact's name"),
    _column("contacts", "familyName", ("name",), "the contact's name"),
    _column("contacts", "fullName", ("name",), "the contact's name as Streak sends it; without one the copy "
            "joins the given and family names (each hashed: `h:... h:...`)", also=("name",)),
    _column("contacts", "emailAddresses", ("email",), "the contact's e-mail addresses"),
    _column("contacts", "phoneNumbers", ("phone",), "the contact's phone numbers"),
    _column("contacts", "addresses", ("text",), "postal addresses"),
    _column("contacts", "other", ("text",), "free notes about the contact"),
    _column("contacts", "linkedinHandle", ("name",), "a handle names the person"),
    _column("contacts", "twitterHandle", ("name",), "a handle names the person"),
    _column("contacts", "photoUrl", ("url",), "the person's photo"),
    _column("contacts", "fields", ("email", "phone", "name", "text"), "custom contact fields: by field name "
            "(e-mail, phone, notes) and by value (an e-mail address)", shape="fields"),
    _column("organizations", "name", ("name",), "the organization's name"),
    _column("organizations", "phoneNumbers", ("phone",), "the organization's phone numbers"),
    _column("organizations", "addresses", ("text",), "postal addresses"),
    _column("organizations", "other", ("text",), "free notes about the organization"),
    _column("organizations", "fields", ("email", "phone", "name", "text"), "custom organization fields (as "
            "contacts.fields)", shape="fields"),
    # -- the account's own people (preset "strict")
    _column("users", "email", ("email",), "the user's e-mail address"),
    _column("users", "lowercaseEmail", ("email",), "the user's e-mail address"),
    _column("users", "displayName", ("name",), "the user's name"),
    _column("users", "googleProfileFullName", ("name",), "the user's name"),
    _column("users", "googleProfileFirstName", ("name",), "the user's name"),
    _column("users", "googleProfileLastName", ("name",), "the user's name"),
    _column("users", "googleProfilePhotoUrl", ("url",), "the user's photo"),
    _column("teams", "emailsToSendInvoiceTo", ("email",), "billing e-mail addresses"),
    _column("team_members", "email", ("email",), "the member's e-mail address", source="teams", under=_MEMBER),
    _column("team_members", "fullName", ("name",), "the member's name", source="teams", under=_MEMBER),
    _column("team_members", "displayName", ("name",), "the member's name", source="teams", under=_MEMBER),
    _column("team_members", "givenName", ("name",), "the member's name", source="teams", under=_MEMBER),
    _column("team_members", "image", ("url",), "the member's photo", source="teams", under=_MEMBER),
    _column("pipelines", "aclEntries", _PEOPLE, "who the pipeline is shared with: " + _SHARING, shape="people"),
    # -- boxes
    _column("boxes", "notes", ("text",), "text people wrote"),
    _column("boxes", "assignedToSharingEntries", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "creatorSharingEntry", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "followerSharingEntries", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "taskAssigneeSharingEntrySet", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "incompleteTaskAssigneeSharingEntrySet", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "overdueTaskAssigneeSharingEntrySet", _PEOPLE, _SHARING, shape="people"),
    _column("boxes", "emailAddresses", ("email",), "addresses the box's e-mails were exchanged with"),
    _column("boxes", "emailAddressesAutoExtracted", ("email",), "addresses the box's e-mails were exchanged with"),
    _column("boxes", "emailAddressesBlacklist", ("email",), "addresses left out of the box"),
    _column("boxes", "firstEmailFrom", ("email",), "who sent the box's first e-mail"),
    _column("boxes", "lastEmailFrom", ("email",), "who sent the box's last e-mail"),
    _column("boxes", "fields", ("email", "phone", "name", "text"), "custom fields: PERSON values are sharing "
            "entries; text fields named like e-mail, phone or notes are that; any e-mail address", shape="fields"),
    # -- a box's children
    _column("box_tasks", "text", ("text",), "text people wrote (a task often names the person to call)"),
    _column("box_tasks", "creator", _PEOPLE, _SHARING, shape="people"),
    _column("box_tasks", "assignedTo", _PEOPLE, _SHARING, shape="people"),
    _column("box_tasks", "creatorSharingEntry", _PEOPLE, _SHARING, shape="people"),
    _column("box_tasks", "assignedToSharingEntries", _PEOPLE, _SHARING, shape="people"),
    _column("box_threads", "subject", ("text",), "e-mail subjects people wrote"),
    _column("box_threads", "snippet", ("text",), "an e-mail's opening words, if Streak sends them"),
    _column("box_threads", "names", ("name",), "the names of the thread's participants"),
    _column("box_threads", "emailAddresses", ("email",), "the thread's participants"),
    _column("box_comments", "message", ("text",), "text people wrote"),
    _column("box_comments", "reactionSummary", _PEOPLE, "who reacted: " + _SHARING, shape="people",
            also=()),
    _column("box_meetings", "notes", ("text",), "meeting notes and call logs people wrote"),
    _column("snippets", "snippetText", ("text",), "e-mail templates: text people wrote, often a signature "
            "with a name and phone number"),
    # -- history
    *(_column(table, "specificVariables", ("email", "name", "text"), "the entry's variables: the author's name "
              "(STORY_AUTHOR_DISPLAY_NAME), a task's text, meeting notes", shape="variables")
      for table in ("pipeline_newsfeed", "box_newsfeed")),
    *(_column(table, story, ("text",), "a sentence naming the author and the box")
      for table in ("pipeline_newsfeed", "box_newsfeed") for story in ("storyTextBox", "storyTextPipeline",
                                                                      "storyTextGlobal")),
    # -- custom events (the events receiver; webhook deliveries are protected as their table's objects)
    _column("events", "properties", ("email", "phone", "name", "text"), "a custom event's properties, kinds by "
            "key name (email, phone, name, notes...) and any e-mail address", shape="free"),
    _column("events", "distinct_id", ("email",), "a custom event's id, when it is an e-mail address",
            shape="emails_only", column="distinct_id"),
)
"""Every personal-data column of the copy (docs/privacy.md lists them per preset)."""

COLUMNS: Final[Mapping[str, Column]] = {column.name: column for column in CATALOG}

DERIVED: Final[Mapping[str, str]] = {
    **{f"boxes.{c}": "boxes.assigned_to_sharing_entries"
       for c in ("owner_name", "owner_email", "assigned_to_names", "assigned_to_emails")},
    "boxes.creator_name": "boxes.creator_sharing_entry",
    **{f"box_tasks.{c}": "box_tasks.assigned_to" for c in ("assignee_names", "assignee_emails")},
    "box_tasks.creator_name": "box_tasks.creator",
    **{f"box_task_assignees.{c}": "box_tasks.assigned_to" for c in ("email", "name", "assignee_id")},
    **{f"{t}.author_name": f"{t}.specific_variables" for t in ("pipeline_newsfeed", "box_newsfeed")},
    **{f"box_field_values.{c}": "boxes.fields" for c in ("value_text", "value_labels", "value_raw")},
}
"""Columns the source computes from a catalog column: they follow it (a rule names that one)."""

DERIVED_KINDS: Final[Mapping[str, tuple[Kind, bool]]] = {
    "boxes.owner_name": ("name", False), "boxes.owner_email": ("email", False),
    "boxes.assigned_to_names": ("name", True), "boxes.assigned_to_emails": ("email", True),
    "boxes.creator_name": ("name", False),
    "box_tasks.assignee_names": ("name", True), "box_tasks.assignee_emails": ("email", True),
    "box_tasks.creator_name": ("name", False),
    "box_task_assignees.email": ("email", False), "box_task_assignees.name": ("name", False),
    "pipeline_newsfeed.author_name": ("name", False), "box_newsfeed.author_name": ("name", False),
}
"""What a derived column holds, and whether it is several values joined by ``", "`` (the
transform's joins): how :meth:`PrivacyPolicy.protect_row` protects it in a row already built.
``box_task_assignees.assignee_id`` is rebuilt from the protected ``email`` / ``name``;
``box_field_values`` is not here: rebuild it from the protected ``boxes.fields``."""

PERSON_KEYS: Final[Mapping[str, Kind]] = {
    "email": "email", "lowercaseEmail": "email", "emailAddress": "email",
    "fullName": "name", "displayName": "name", "givenName": "name", "familyName": "name", "name": "name",
    "image": "url", "avatarUrl": "url", "photoUrl": "url", "googleProfilePhotoUrl": "url",
}
"""What each key of a sharing entry / user brief / ACL entry holds."""

ENDPOINT_SOURCES: Final[Mapping[str, str]] = {
    settings.ME.path: "users", settings.TEAM_USERS.path: "users", settings.TEAMS.path: "teams",
    settings.PIPELINES.path: "pipelines", settings.PIPELINE_NEWSFEED.path: "pipeline_newsfeed",
    settings.SNIPPETS.path: "snippets", settings.CONTACTS.path: "contacts",
    settings.ORGANIZATIONS.path: "organizations", settings.BOXES.path: "boxes", settings.BOX_TASKS.path: "box_tasks",
    settings.BOX_THREADS.path: "box_threads", settings.BOX_COMMENTS.path: "box_comments",
    settings.BOX_MEETINGS.path: "box_meetings", settings.BOX_FILES.path: "box_files",
    settings.BOX_NEWSFEED.path: "box_newsfeed",
}
"""Which raw object each endpoint the source reads answers with."""

_WEBHOOK_SOURCES: Final = (("BOX_", "boxes"), ("TASK_", "box_tasks"), ("COMMENT_", "box_comments"),
                           ("MEETING_", "box_meetings"), ("CONTACT_", "contacts"), ("ORG_", "organizations"))


def source_of_endpoint(path: str) -> str | None:
    """The raw object an endpoint path answers with; None for one the catalog does not know
    (its objects are then only swept for e-mail addresses)."""
    return ENDPOINT_SOURCES.get(path)


def source_of_webhook(event: str) -> str | None:
    """The raw object a Streak webhook event delivers (``BOX_CHANGE_STAGE`` -> ``boxes``)."""
    return next((source for prefix, source in _WEBHOOK_SOURCES if event.startswith(prefix)), None)


_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_EMAIL_WORDS: Final = frozenset({"email", "emails", "mail", "mailbox"})
_PHONE_WORDS: Final = frozenset({"phone", "phones", "mobile", "tel", "telephone", "cell", "fax", "whatsapp",
                                 "phonenumber"})
_TEXT_WORDS: Final = frozenset({"note", "notes", "comment", "comments", "message", "messages", "text", "body",
                                "description", "remark", "remarks", "summary", "feedback", "subject", "snippet",
                                "bio", "memo", "address", "addresses", "street"})
_NAME_WORDS: Final = frozenset({"name", "names", "surname", "firstname", "lastname", "fullname", "author",
                                "person", "linkedin", "twitter", "handle", "nickname"})
_NOT_A_PERSON: Final = frozenset({"box", "pipeline", "stage", "event", "field", "file", "product", "plan", "team",
                                  "page", "app", "deal", "project", "task", "company", "org", "organization",
                                  "organisation", "domain", "account", "browser", "os", "device", "campaign",
                                  "source", "city", "country", "region", "tag", "type"})


def kind_of_name(name: str) -> Kind | None:
    """The kind of personal value a field, variable or property named ``name`` holds, by the words
    of its name (``"Personal e-mail"`` -> email, ``STORY_AUTHOR_DISPLAY_NAME`` -> name,
    ``"Call notes"`` -> text, ``BOX_NAME`` -> None); None: nothing it names is personal."""
    words = {word.lower() for word in _WORDS.findall(name)}
    if words & _EMAIL_WORDS:
        return "email"
    if words & _PHONE_WORDS:
        return "phone"
    if words & _TEXT_WORDS:
        return "text"
    if words & _NAME_WORDS and not words & _NOT_A_PERSON:
        return "name"
    return None
