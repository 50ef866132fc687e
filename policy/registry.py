"""Every sync setting, listed once.

The models' columns, the check constraints, the service validation, the
resolver, both pages and the tests are all generated from `SETTINGS`, so adding
a setting is one entry here plus a migration.

Defaults follow LinkPoint Connect (research/anchors_features.md §1.2–§1.3):
SnapRecord is the calendar default, manual for contacts and tasks; 30 days
back / 365 ahead; private items excluded; Salesforce contact deletes off.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

CALENDAR, CONTACTS, TASKS = "calendar", "contacts", "tasks"
KINDS: tuple[str, ...] = (CALENDAR, CONTACTS, TASKS)
KIND_LABELS = {CALENDAR: "Calendar", CONTACTS: "Contacts", TASKS: "Tasks"}
ALL = frozenset(KINDS)

OUTLOOK_TO_SALESFORCE = "outlook_to_salesforce"
SALESFORCE_TO_OUTLOOK = "salesforce_to_outlook"
BOTH = "both"
SIDE_LABELS = {"outlook": "Outlook", "salesforce": "Salesforce"}
# The side whose version always wins in a one-way sync.
SOURCE_SIDE = {OUTLOOK_TO_SALESFORCE: "outlook", SALESFORCE_TO_OUTLOOK: "salesforce"}

CHOICE, INT, BOOL, TIME, TEXT = "choice", "int", "bool", "time", "text"


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    help: str
    type: str
    kinds: frozenset[str]
    # Default per kind; a setting whose default is the same everywhere gets a
    # column default too, the others are filled from here on row creation.
    defaults: Mapping[str, Any]
    # Choices per kind (value, label); the column accepts their union.
    choices: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    min: int | None = None
    max: int | None = None
    max_length: int = 255
    unit: str = ""
    # The modes in which the engine reads this setting; the pages show only those rows.
    modes: frozenset[str] = frozenset({"snaprecord", "manual", "auto", "off"})
    # A change can be dry-run ("Preview this change": a plan computed under it, nothing written).
    previewable: bool = False

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds

    def default_for(self, kind: str) -> Any:
        return self.defaults[kind]

    def choices_for(self, kind: str) -> tuple[tuple[str, str], ...]:
        return self.choices.get(kind, ())

    @property
    def all_choices(self) -> tuple[tuple[str, str], ...]:
        seen: dict[str, str] = {}
        for kind in KINDS:
            for value, label in self.choices.get(kind, ()):
                seen.setdefault(value, label)
        return tuple(seen.items())

    @property
    def column_default(self) -> Any:
        values = {repr(v) for v in self.defaults.values()}
        return next(iter(self.defaults.values())) if len(values) == 1 else None

    def display(self, value: Any, kind: str | None = None) -> str:
        """The value as a person reads it on a page or in a message."""
        if value is None:
            return "—"
        if self.type == CHOICE:
            labels = dict(self.all_choices)
            return labels.get(value, str(value))
        if self.type == BOOL:
            return "On" if value else "Off"
        if self.type == TIME:
            return value.strftime("%H:%M")
        if self.type == TEXT:
            return value or "(none)"
        return f"{value} {self.unit}".strip()

    def applies_in(self, mode: str) -> bool:
        """Does the engine read this setting when the member's mode is `mode`?"""
        return mode in self.modes

    def clean(self, raw: Any, kind: str) -> Any:
        """Coerce a submitted value to this setting's type or raise a clear ValidationError.

        The value stored must be exactly the value the page shows afterwards, so
        nothing is silently adjusted: a time with an offset, a NUL byte or a
        number in another script is refused, not truncated (issue 10).
        """
        if not self.applies_to(kind):
            raise ValidationError(
                f"{self.label} does not apply to {KIND_LABELS[kind].lower()} sync.",
                code="not_applicable",
            )
        if self.type == BOOL and isinstance(raw, bool):
            return raw
        if self.type == INT and isinstance(raw, int) and not isinstance(raw, bool):
            return self._bounded(raw)
        if self.type == TIME and isinstance(raw, dt.time):
            if raw.tzinfo is not None:
                raise ValidationError(self._time_message(), code="invalid")
            return raw.replace(second=0, microsecond=0)
        if not isinstance(raw, str):
            raise ValidationError(f"{self.label}: unreadable value.", code="invalid")
        if self.type == TEXT:
            return self._clean_text(raw)
        text = raw.strip()
        if len(text) > 64 or not _PRINTABLE.fullmatch(text):
            # Choices, numbers and times are short ASCII; anything else is not one of them.
            text = "\ufffd"
        if self.type == CHOICE:
            allowed = dict(self.choices_for(kind))
            if text not in allowed:
                if text == "snaprecord":
                    raise ValidationError(
                        "SnapRecord is available for calendar only.", code="invalid_choice"
                    )
                raise ValidationError(
                    f"{self.label}: choose one of {', '.join(allowed.values())}.",
                    code="invalid_choice",
                )
            return text
        if self.type == BOOL:
            text = text.lower()
            if text in {"on", "true", "1", "yes"}:
                return True
            if text in {"off", "false", "0", "no", ""}:
                return False
            raise ValidationError(f"{self.label}: choose on or off.", code="invalid")
        if self.type == INT:
            if not _INTEGER.fullmatch(text):
                raise ValidationError(f"{self.label} must be a whole number.", code="invalid")
            # At most 7 digits reach int(): huge inputs are out of bounds, not a slow parse.
            digits = text.lstrip("+-").lstrip("0") or "0"
            if len(digits) > 7:
                raise ValidationError(self._bounds_message(), code="out_of_bounds")
            return self._bounded(int(text))
        if self.type == TIME:
            match = _TIME.fullmatch(text)
            if not match:
                raise ValidationError(self._time_message(), code="invalid")
            return dt.time(int(match["h"]), int(match["m"]))
        raise AssertionError(f"unknown setting type {self.type}")

    def _bounded(self, value: int) -> int:
        if not (self.min <= value <= self.max):
            raise ValidationError(self._bounds_message(), code="out_of_bounds")
        return value

    def _bounds_message(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.label} must be between {self.min} and {self.max}{unit}."

    def _time_message(self) -> str:
        return f"{self.label}: enter a time such as 08:30 (24-hour, without a time zone)."

    def _clean_text(self, raw: str) -> str:
        value = raw.strip()
        if len(value) > self.max_length:
            raise ValidationError(
                f"{self.label} must be at most {self.max_length} characters.", code="too_long"
            )
        # NUL cannot be stored by PostgreSQL; control characters and U+FFFD (what an
        # undecodable byte became) cannot be typed in Outlook either.
        if any(unicodedata.category(c) in _UNPRINTABLE for c in value) or "\ufffd" in value:
            raise ValidationError(
                f"{self.label} contains characters that cannot be used (control characters "
                "or bytes that are not text). Type the category as Outlook shows it.",
                code="invalid_characters",
            )
        return value


_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# 24-hour HH:MM, optionally with :SS (a browser's time input may send seconds); no offset.
_TIME = re.compile(r"(?P<h>[01][0-9]|2[0-3]):(?P<m>[0-5][0-9])(?::[0-5][0-9](?:\.[0-9]{1,6})?)?")
# Control, surrogate, private-use and unassigned code points.
_UNPRINTABLE = frozenset({"Cc", "Cs", "Co", "Cn"})


MODE_CHOICES_CALENDAR = (
    ("snaprecord", "SnapRecord"),
    ("manual", "Manual sync"),
    ("auto", "Auto sync"),
    ("off", "Off"),
)
MODE_CHOICES_OTHER = (("manual", "Manual sync"), ("auto", "Auto sync"), ("off", "Off"))
DIRECTION_CHOICES = (
    (OUTLOOK_TO_SALESFORCE, "Outlook → Salesforce"),
    (SALESFORCE_TO_OUTLOOK, "Salesforce → Outlook"),
    (BOTH, "Both ways"),
)
SIDE_CHOICES = (("outlook", "Outlook"), ("salesforce", "Salesforce"))


# Which modes read a setting (DESIGN §4; issue 11: members saw the auto window under
# Manual and SnapRecord). SnapRecord is one-way Outlook → Salesforce on a chosen
# event, so direction, the winner and Salesforce deletes mean nothing there; Off reads
# nothing but the mode itself.
SYNCING_MODES = frozenset({"snaprecord", "manual", "auto"})
TWO_WAY_MODES = frozenset({"manual", "auto"})
AUTO_MODES = frozenset({"auto"})


def _same(value: Any, kinds: Iterable[str] = KINDS) -> dict[str, Any]:
    return {kind: value for kind in kinds}


SETTINGS: tuple[Setting, ...] = (
    Setting(
        name="mode",
        label="Sync mode",
        help="Only one mode is active at a time. Auto sync replaces SnapRecord.",
        type=CHOICE,
        kinds=ALL,
        defaults={CALENDAR: "snaprecord", CONTACTS: "manual", TASKS: "manual"},
        choices={
            CALENDAR: MODE_CHOICES_CALENDAR,
            CONTACTS: MODE_CHOICES_OTHER,
            TASKS: MODE_CHOICES_OTHER,
        },
    ),
    Setting(
        name="direction",
        modes=TWO_WAY_MODES,
        previewable=True,
        label="Direction",
        help="Which way changes flow in manual and auto sync. SnapRecord is always Outlook → Salesforce.",
        type=CHOICE,
        kinds=ALL,
        defaults=_same(BOTH),
        choices=_same(DIRECTION_CHOICES),
    ),
    Setting(
        name="days_back",
        modes=SYNCING_MODES,
        previewable=True,
        label="Past days",
        help="Events that ended more than this many days ago stop syncing.",
        type=INT,
        kinds=frozenset({CALENDAR}),
        defaults={CALENDAR: 30},
        min=0,
        max=730,
        unit="days",
    ),
    Setting(
        name="days_ahead",
        modes=SYNCING_MODES,
        previewable=True,
        label="Future days",
        help="Events starting more than this many days ahead are not synced yet.",
        type=INT,
        kinds=frozenset({CALENDAR}),
        defaults={CALENDAR: 365},
        min=1,
        max=730,
        unit="days",
    ),
    Setting(
        name="completed_within_days",
        modes=TWO_WAY_MODES,
        previewable=True,
        label="Completed tasks",
        help="Open tasks always sync; completed ones only if completed within this many days.",
        type=INT,
        kinds=frozenset({TASKS}),
        defaults={TASKS: 30},
        min=0,
        max=365,
        unit="days",
    ),
    Setting(
        name="contact_scope",
        modes=TWO_WAY_MODES,
        previewable=True,
        label="Contacts to sync",
        help="Salesforce contacts you own, or every contact you can see in Salesforce.",
        type=CHOICE,
        kinds=frozenset({CONTACTS}),
        defaults={CONTACTS: "mine"},
        choices={CONTACTS: (("mine", "Contacts I own"), ("all", "All contacts I can see"))},
    ),
    Setting(
        name="frequency_minutes",
        modes=AUTO_MODES,
        label="Auto sync every",
        help="How often auto sync runs, from 5 minutes to 24 hours.",
        type=INT,
        kinds=ALL,
        defaults=_same(30),
        min=5,
        max=1440,
        unit="minutes",
    ),
    Setting(
        name="window_enabled",
        modes=AUTO_MODES,
        label="Only sync within hours",
        help="Restrict auto sync to a time-of-day window in the member's time zone.",
        type=BOOL,
        kinds=ALL,
        defaults=_same(False),
    ),
    Setting(
        name="window_start",
        modes=AUTO_MODES,
        label="Window starts",
        help="Start of the auto sync window, member's local time.",
        type=TIME,
        kinds=ALL,
        defaults=_same(dt.time(8, 0)),
    ),
    Setting(
        name="window_end",
        modes=AUTO_MODES,
        label="Window ends",
        help="End of the auto sync window; earlier than the start means it runs past midnight.",
        type=TIME,
        kinds=ALL,
        defaults=_same(dt.time(18, 0)),
    ),
    Setting(
        name="conflict_winner",
        modes=TWO_WAY_MODES,
        previewable=True,
        label="When both sides changed",
        help="Whose edit wins when the same field changed in Outlook and in Salesforce.",
        type=CHOICE,
        kinds=ALL,
        # Meetings are scheduled in Outlook; contact and task data is mastered in the CRM.
        defaults={CALENDAR: "outlook", CONTACTS: "salesforce", TASKS: "salesforce"},
        choices=_same(SIDE_CHOICES),
    ),
    Setting(
        name="delete_outlook_to_salesforce",
        modes=SYNCING_MODES,
        previewable=True,
        label="Outlook deletes reach Salesforce",
        help="Deleting an item in Outlook deletes its Salesforce copy.",
        type=BOOL,
        kinds=ALL,
        defaults=_same(True),
    ),
    Setting(
        name="delete_salesforce_to_outlook",
        modes=TWO_WAY_MODES,
        previewable=True,
        label="Salesforce deletes reach Outlook",
        help="Deleting a record in Salesforce deletes its Outlook copy. Off for contacts by default, to protect data from errant deletion.",
        type=BOOL,
        kinds=ALL,
        defaults={CALENDAR: True, CONTACTS: False, TASKS: True},
    ),
    Setting(
        name="include_private",
        modes=SYNCING_MODES,
        previewable=True,
        label="Sync private items",
        help="Private Outlook items are left out unless this is on.",
        type=BOOL,
        kinds=ALL,
        defaults=_same(False),
    ),
    Setting(
        name="outlook_category_filter",
        modes=SYNCING_MODES,
        previewable=True,
        label="Outlook category",
        help="Only sync Outlook items with this category. Leave empty to sync all.",
        type=TEXT,
        kinds=ALL,
        defaults=_same(""),
        max_length=255,
    ),
    Setting(
        name="mass_delete_threshold_percent",
        modes=SYNCING_MODES,
        label="Mass-delete guard",
        help="A run that would delete more than this share of your synced items stops and asks first.",
        type=INT,
        kinds=ALL,
        defaults=_same(10),
        min=1,
        max=100,
        unit="%",
    ),
    Setting(
        name="mass_delete_min_items",
        modes=SYNCING_MODES,
        label="Mass-delete guard minimum",
        help="The guard only applies when a run would delete at least this many items.",
        type=INT,
        kinds=ALL,
        defaults=_same(5),
        min=1,
        max=10000,
        unit="items",
    ),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def settings_for(kind: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if s.applies_to(kind))


def defaults_for(kind: str) -> dict[str, Any]:
    return {s.name: s.default_for(kind) for s in settings_for(kind)}


def get(name: str, kind: str | None = None) -> Setting:
    """The setting called `name`, or a ValidationError a person can read."""
    setting = BY_NAME.get(name)
    if setting is None:
        raise ValidationError(f"Unknown setting “{str(name)[:40]}”.", code="unknown_setting")
    if kind is not None and not setting.applies_to(kind):
        raise ValidationError(
            f"{setting.label} does not apply to {KIND_LABELS[kind].lower()} sync.",
            code="not_applicable",
        )
    return setting


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValidationError(f"Unknown kind “{str(kind)[:40]}”.", code="unknown_kind")
    return kind


def clean_values(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Type and bound checks per field; all errors at once, keyed by field. None stays None."""
    cleaned, errors = {}, {}
    for name, raw in values.items():
        try:
            setting = get(name, kind)
            cleaned[name] = None if raw is None else setting.clean(raw, kind)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def check_combination(*, combined: Mapping[str, Any], submitted: Mapping[str, Any]) -> None:
    """Refuse combinations that cannot mean anything, with a message naming the fix.

    `combined` holds the stored values after the change, `submitted` what this
    change sets; only what the change turns on is refused (a stored flag that a
    later direction change made moot is merely unused).
    """
    errors: dict[str, list[str]] = {}
    if combined["window_enabled"] and combined["window_start"] == combined["window_end"]:
        errors["window_end"] = [
            "The sync window must not start and end at the same time. "
            "Turn the window off to sync around the clock."
        ]
    direction = combined["direction"]
    label = dict(DIRECTION_CHOICES)[direction]
    for name, needs in (
        ("delete_outlook_to_salesforce", SALESFORCE_TO_OUTLOOK),
        ("delete_salesforce_to_outlook", OUTLOOK_TO_SALESFORCE),
    ):
        if submitted.get(name) is True and direction == needs:
            errors[name] = [
                f"{BY_NAME[name].label} can't be on: this policy only syncs {label}. "
                "Choose “Both ways” first."
            ]
    if errors:
        raise ValidationError(errors)
