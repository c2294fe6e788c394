"""Won, lost and closed stages, a pipeline's value field, a stage's win probability: the rules of
``[outcomes]`` (docs/metrics.md), pure (names and numbers in, decisions out), in one place for the
warehouse's outcome views and the dashboard's closed stages.

Streak has no idea of won or lost: a stage is just a name. The user names stages in lists
(``[outcomes] won_stages``, ``lost_stages``, ``[dashboard] closed_stages``, the keys of
``[outcomes.probability]``). An entry names a stage in one of two forms:

* ``"Won"``: the stage called so in every pipeline (case-insensitive, spaces around trimmed);
* ``"Sales/Won"``: the stage ``Won`` of the pipeline ``Sales`` only (spaces around the ``/`` do not
  count), for a name that means different things in two pipelines.

An entry is compared with both forms of every stage, so a stage whose own name holds a ``/`` is
still found. Where several entries name one stage, the ``Pipeline/Stage`` form wins over the bare
name: ``won_stages = ["Done"]``, ``lost_stages = ["Support/Done"]`` makes Done won everywhere but in
Support. The same entry in two lists that contradict each other (won and lost) is a configuration
error (:func:`shared_entries`). Closed = won + lost + the closed stages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Outcome = Literal["won", "lost", "closed", "open"]
WON: Final = "won"
LOST: Final = "lost"
CLOSED: Final = "closed"
OPEN: Final = "open"

BARE: Final = 1
QUALIFIED: Final = 2
"""How strongly an entry names a stage: by its name alone, or as ``Pipeline/Stage``."""

VALUE_WORDS: Final = ("value", "amount", "size")
"""A field whose name holds one of these (case-insensitive) says it holds a deal's value."""


class StageListError(ValueError):
    """A stage list setting is not a list of names."""


# --- names -------------------------------------------------------------------------------------------


def normalize_stage_name(name: Any) -> str:
    """A name as matched: trimmed, lower-case."""
    return str(name).strip().lower()


def normalize_stage_names(names: Iterable[Any]) -> tuple[str, ...]:
    """Names as matched, without blanks and duplicates, sorted."""
    cleaned = {normalize_stage_name(name) for name in names if name is not None and str(name).strip()}
    return tuple(sorted(cleaned))


def qualified_form(text: str) -> str:
    """``text`` as a ``Pipeline/Stage`` entry is compared: normalized, no spaces around any ``/``."""
    return "/".join(part.strip() for part in normalize_stage_name(text).split("/"))


def stage_list(value: Any, setting: str) -> list[str]:
    """A configured stage list as names (display case kept, blanks dropped): a TOML/JSON list as it
    is, a string holding a JSON list parsed, any other string split on commas. Anything else (a
    number, a table) raises :class:`StageListError` naming ``setting``."""
    if value is None:
        return []
    items: list[Any]
    if isinstance(value, str):
        text = value.strip()
        parsed = None
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        items = parsed if isinstance(parsed, list) else text.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise StageListError(f"{setting} must be a list of stage names, e.g. [\"Won\"]; got {value!r}")
    names = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise StageListError(f"{setting} must be a list of stage names; {item!r} is not a name")
        if str(item).strip():
            names.append(str(item).strip())
    return names


# --- stages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRef:
    """A stage of the account, by key and by name."""

    pipeline_key: str
    pipeline_name: str | None
    stage_key: str
    stage_name: str | None


def match_strength(entry: str, stage: StageRef) -> int:
    """:data:`QUALIFIED` when ``entry`` is ``Pipeline/Stage`` of this stage, :data:`BARE` when it is
    its name, 0 otherwise."""
    if stage.stage_name is None:
        return 0
    if "/" in entry and stage.pipeline_name is not None:
        if qualified_form(entry) == qualified_form(f"{stage.pipeline_name}/{stage.stage_name}"):
            return QUALIFIED
    return BARE if normalize_stage_name(entry) == normalize_stage_name(stage.stage_name) else 0


def best_match(entries: Iterable[str], stage: StageRef) -> tuple[int, str | None]:
    """The strongest entry naming ``stage``: (strength, entry); (0, None) when none does."""
    best: tuple[int, str | None] = (0, None)
    for entry in entries:
        strength = match_strength(entry, stage)
        if strength > best[0]:
            best = (strength, entry)
    return best


def shared_entries(first: Sequence[str], second: Sequence[str]) -> list[str]:
    """Entries of ``first`` that ``second`` also holds (the same once normalized): a stage named in
    both would be both; the run refuses such a configuration."""
    def forms(entry: str) -> set[str]:
        return {normalize_stage_name(entry), qualified_form(entry)} if "/" in entry else {normalize_stage_name(entry)}

    other = set().union(*(forms(entry) for entry in second)) if second else set()
    return [entry for entry in first if forms(entry) & other]


@dataclass(frozen=True)
class StageOutcome:
    """What one stage means: its outcome, the entry that decided it, and its configured probability."""

    stage: StageRef
    outcome: Outcome
    decided_by: str | None
    """``setting: entry`` that made it won, lost or closed; None for an open stage."""
    configured_probability: float | None = None


@dataclass(frozen=True)
class StageSettings:
    """The stage lists and probabilities of ``[outcomes]`` / ``[dashboard]``, as configured."""

    won: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    probability: Mapping[str, float] | None = None

    def closed_entries(self) -> tuple[str, ...]:
        """Every entry that closes a stage: won, lost and closed."""
        return (*self.won, *self.lost, *self.closed)


def stage_outcome(settings: StageSettings, stage: StageRef) -> StageOutcome:
    """The outcome of one stage: won or lost by the stronger entry (``Pipeline/Stage`` beats a bare
    name), else closed when a closed entry names it, else open."""
    won, lost = best_match(settings.won, stage), best_match(settings.lost, stage)
    outcome: Outcome = OPEN
    decided_by = None
    if won[0] and won[0] >= lost[0]:
        outcome, decided_by = WON, f"outcomes.won_stages: {won[1]}"
    if lost[0] and lost[0] > won[0]:
        outcome, decided_by = LOST, f"outcomes.lost_stages: {lost[1]}"
    if outcome == OPEN:
        closed = best_match(settings.closed, stage)
        if closed[0]:
            outcome, decided_by = CLOSED, f"dashboard.closed_stages: {closed[1]}"
    probabilities = settings.probability or {}
    strength, entry = best_match(probabilities, stage)
    configured = float(probabilities[entry]) if strength and entry is not None else None
    return StageOutcome(stage, outcome, decided_by, configured)


def resolve_stages(settings: StageSettings, stages: Iterable[StageRef]) -> list[StageOutcome]:
    """:func:`stage_outcome` of every stage."""
    return [stage_outcome(settings, stage) for stage in stages]


def closed_stage_keys(entries: Iterable[str], stages: Iterable[StageRef]) -> tuple[tuple[str, str], ...]:
    """``(pipeline_key, stage_key)`` of every stage an entry names, sorted: the closed stages of a
    closed-stage choice (the dashboard's)."""
    listed = [entry for entry in entries if entry.strip()]
    return tuple(sorted({(s.pipeline_key, s.stage_key) for s in stages if best_match(listed, s)[0]}))


def unmatched_entries(entries: Iterable[str], stages: Sequence[StageRef]) -> list[str]:
    """Entries that name no stage of the account (a typo, a renamed stage): worth a warning."""
    return [entry for entry in entries if not any(match_strength(entry, stage) for stage in stages)]


# --- the value field ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A custom field of a pipeline; ``numeric``: its values are numbers (the wide view's ``double``)."""

    pipeline_key: str
    field_key: str
    name: str
    field_order: int
    numeric: bool


def says_value(name: str) -> bool:
    """Whether a field's name says it holds a value, an amount or a size (:data:`VALUE_WORDS`)."""
    lowered = name.lower()
    return any(word in lowered for word in VALUE_WORDS)


def default_value_field(fields: Iterable[FieldRef]) -> FieldRef | None:
    """The first numeric field (in the pipeline's field order) whose name says value, amount or size."""
    candidates = [f for f in fields if f.numeric and says_value(f.name)]
    return min(candidates, key=lambda f: (f.field_order, f.field_key)) if candidates else None


@dataclass(frozen=True)
class ValueFieldChoice:
    """A pipeline's value field and how it was chosen: ``configured``, ``default`` or ``none``."""

    pipeline_key: str
    pipeline_name: str | None
    field: FieldRef | None
    chosen_by: Literal["configured", "default", "none"]


def choose_value_fields(
    pipelines: Mapping[str, str | None], fields: Iterable[FieldRef], configured: str | Mapping[str, str] | None,
) -> tuple[list[ValueFieldChoice], list[str]]:
    """Each pipeline's value field, and warnings for a setting that names nothing.

    ``configured``: one field name (used by every pipeline that has a field so named; the others
    take the default), or ``{pipeline name: field name}`` (a pipeline listed gets exactly that field,
    or none when it has no such field; ``""`` means none; a pipeline not listed takes the default).
    Names are compared as stage names are (trimmed, case-insensitive)."""
    by_pipeline: dict[str, list[FieldRef]] = {}
    for field in fields:
        by_pipeline.setdefault(field.pipeline_key, []).append(field)
    per_pipeline = {normalize_stage_name(k): str(v) for k, v in configured.items()} if isinstance(configured, Mapping) else {}
    warnings: list[str] = []
    if isinstance(configured, Mapping):
        known = {normalize_stage_name(name) for name in pipelines.values() if name is not None}
        warnings += [f"outcomes.value_field: no pipeline is named {name!r}" for name in configured
                     if normalize_stage_name(name) not in known]
    choices = []
    for key, name in sorted(pipelines.items(), key=lambda item: (str(item[1]), item[0])):
        own = by_pipeline.get(key, [])
        wanted = per_pipeline.get(normalize_stage_name(name)) if name is not None and per_pipeline else None
        if wanted is None and isinstance(configured, str) and configured.strip():
            wanted = configured if _named(own, configured) else None
        if wanted is not None:
            field = _named(own, wanted) if wanted.strip() else None
            if wanted.strip() and field is None:
                warnings.append(f"outcomes.value_field: pipeline {name!r} has no field named {wanted!r}; "
                                "its boxes have no value")
            elif field is not None and not field.numeric:
                warnings.append(f"outcomes.value_field: field {field.name!r} of pipeline {name!r} is not numeric; "
                                "values that are not numbers count as no value")
            choices.append(ValueFieldChoice(key, name, field, "configured" if field else "none"))
            continue
        picked = default_value_field(own)
        choices.append(ValueFieldChoice(key, name, picked, "default" if picked else "none"))
    if isinstance(configured, str) and configured.strip() and not any(
            _named(by_pipeline.get(key, []), configured) for key in pipelines):
        warnings.append(f"outcomes.value_field: no pipeline has a field named {configured!r}")
    return choices, warnings


def _named(fields: Iterable[FieldRef], name: str) -> FieldRef | None:
    wanted = normalize_stage_name(name)
    return next((f for f in sorted(fields, key=lambda f: (f.field_order, f.field_key))
                 if normalize_stage_name(f.name) == wanted), None)


# --- a stage's probability ---------------------------------------------------------------------------

ProbabilitySource = Literal["history", "configured", "pipeline", "won stage", "lost stage", "none"]


def probability_choice(
    outcome: Outcome, closed: int, won: int, configured: float | None, pipeline_closed: int, pipeline_won: int,
    min_sample: int,
) -> tuple[float | None, ProbabilitySource]:
    """A stage's chance that a box in it is won, and where it comes from, first that applies:

    1. a won stage 1, a lost stage 0 (the box is there);
    2. ``history``: the share won of the boxes ever in the stage that have closed (``won / closed``),
       when at least ``min_sample`` have;
    3. ``configured``: ``[outcomes.probability]`` for the stage;
    4. ``pipeline``: the share won of all the pipeline's closed boxes, when at least ``min_sample``
       (the prior: without a better number, a box wins as often as the pipeline's boxes do);
    5. ``none``: no number (NULL; its boxes count in no weighted value)."""
    if outcome == WON:
        return 1.0, "won stage"
    if outcome == LOST:
        return 0.0, "lost stage"
    if closed >= min_sample and closed > 0:
        return won / closed, "history"
    if configured is not None:
        return configured, "configured"
    if pipeline_closed >= min_sample and pipeline_closed > 0:
        return pipeline_won / pipeline_closed, "pipeline"
    return None, "none"
