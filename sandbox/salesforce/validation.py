"""Field validation and derived values, as a real org applies them on save.

`prepare(...)` turns an API body into the stored field dict or a list of
errors with Salesforce's codes and message shapes; references and the unique
external id are checked later in one query per batch (services.py).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from ..jsonbody import unstorable
from . import clock
from .ids import to18
from .schema import CLOSED_STATUSES, KEY_PREFIX, OBJECTS, Field, field_lookup

MAX_EVENT_MINUTES = 14 * 24 * 60
INT32 = (-(2**31), 2**31 - 1)
YEARS = (1700, 4000)
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


@dataclass
class SfError(Exception):
    """One entry of Salesforce's error list."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)
    status: int = 400
    # JSON_PARSER_ERROR and the like fail the whole HTTP request, even inside a collection.
    whole_request: bool = False

    def __post_init__(self):
        super().__init__(self.message)

    def as_api(self) -> dict:
        return {"message": self.message, "errorCode": self.code, "fields": list(self.fields)}

    def as_collection(self) -> dict:
        """sObject Collections name the code `statusCode`."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}


def _parser_error(kind: str, value) -> SfError:
    shown = value if not isinstance(value, str) else value
    token = {str: "VALUE_STRING", bool: "VALUE_TRUE" if value else "VALUE_FALSE", int: "VALUE_NUMBER_INT",
             float: "VALUE_NUMBER_FLOAT", list: "START_ARRAY", dict: "START_OBJECT"}.get(type(value), "VALUE_STRING")
    return SfError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {token} value {shown} or request may be missing a required field",
        whole_request=True,
    )


def _check_year(f: Field, year: int) -> None:
    """Salesforce stores dates from 1700 to 4000 only."""
    if not YEARS[0] <= year <= YEARS[1]:
        raise SfError("FIELD_INTEGRITY_EXCEPTION", f"{f.name}: the year must be between {YEARS[0]} and {YEARS[1]}",
                      [f.name])


def coerce(f: Field, value):
    """JSON value → stored API value for this field; raises SfError."""
    if value is None:
        return None
    t = f.type
    if t in ("string", "textarea", "email", "phone", "url", "picklist", "combobox"):
        if isinstance(value, (list, dict)):
            raise _parser_error("string", value)
        if isinstance(value, bool):
            value = "true" if value else "false"
        text = str(value)
        why = unstorable(text)
        if why:
            raise SfError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.name}: value not of required type: it {why}",
                          [f.name])
        return text if text != "" else None  # Salesforce stores an empty string as null
    if t in ("id", "reference"):
        if not isinstance(value, str):
            raise _parser_error("reference", value)
        if value == "":
            return None
        full = to18(value)
        if full is None:
            raise SfError("MALFORMED_ID", f"{f.name}: id value of incorrect type: {value}", [f.name])
        return full
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parser_error("boolean", value)
    if t == "int":
        if isinstance(value, bool):
            raise _parser_error("int", value)
        integral = (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"-?\d{1,30}", value.strip()))
        if integral:
            value = int(value)
        if not isinstance(value, int):
            raise _parser_error("int", value)
        if not INT32[0] <= value <= INT32[1]:
            raise SfError("NUMBER_OUTSIDE_VALID_RANGE", f"{f.name}: value outside of valid range on numeric field: "
                          f"{value}", [f.name])
        return value
    if t == "double":
        if isinstance(value, bool):
            raise _parser_error("double", value)
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _parser_error("double", value) from None
    if t == "datetime":
        parsed = clock.parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _parser_error("datetime", value)
        _check_year(f, parsed.year)
        return clock.fmt_datetime(clock.to_ms(parsed))
    if t == "date":
        parsed = clock.parse_date(value) if isinstance(value, str) else None
        if parsed is None:
            raise _parser_error("date", value)
        _check_year(f, parsed.year)
        return parsed.isoformat()
    return value


def _check_value(f: Field, value) -> SfError | None:
    if value is None:
        if f.restricted and f.picklist:
            return SfError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{f.name}: bad value for restricted picklist field: null", [f.name])
        return None
    if f.length and isinstance(value, str) and f.type not in ("id", "reference") and len(value) > f.length:
        return SfError("STRING_TOO_LONG", f"{f.name}: data value too large: {value} (max length={f.length})", [f.name])
    if f.type == "email" and not EMAIL.match(value):
        return SfError("INVALID_EMAIL_ADDRESS", f"{f.name}: invalid email address: {value}", [f.name])
    if f.restricted and value not in f.picklist:
        return SfError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"{f.name}: bad value for restricted picklist field: {value}", [f.name])
    if f.type == "reference" and value[:3] not in {KEY_PREFIX[t] for t in f.reference_to}:
        return SfError("FIELD_INTEGRITY_EXCEPTION",
                       f"{f.name}: id value of incorrect type: {value}", [f.name])
    return None


@dataclass
class Prepared:
    sobject: str
    values: dict  # full stored field dict
    supplied: set  # field names present in the body
    slots: list = field(default_factory=list)  # an event series' occurrences (series.slots), when creating one


def prepare(*, sobject: str, body: dict, existing: dict | None, owner_id: str, now: dt.datetime,
            owner_tz: str = "America/Los_Angeles", fields: dict[str, Field] | None = None) -> Prepared:
    """Validate a create (existing None) or an update; raise SfError or return the new field values.

    `fields`: the object as the org has it (schema.schema_for: custom fields, licensed features).
    """
    creating = existing is None
    schema = fields if fields is not None else OBJECTS[sobject]
    lookup = field_lookup(sobject) if fields is None else {n.lower(): f for n, f in fields.items()}
    patch: dict = {}
    forbidden: list[str] = []
    for key, raw in body.items():
        if key == "attributes":
            continue
        f = lookup.get(key.lower())
        if f is None:
            raise SfError("INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject}", [key])
        if f.name == "Id":
            if creating:
                # REST API Developer Guide, "Status Codes and Error Responses": an Id on insert is
                # INVALID_FIELD_FOR_INSERT_UPDATE, the code of every field an insert may not set.
                raise SfError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
            continue  # an update may repeat its own Id
        if not (f.createable if creating else f.updateable):
            forbidden.append(f.name)
            continue
        patch[f.name] = coerce(f, raw)
    if forbidden:
        raise SfError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(forbidden)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            forbidden,
        )

    if creating:
        values = {}
        for f in schema.values():
            if f.name in ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                          "LastModifiedById", "SystemModstamp"):
                continue
            values[f.name] = f.default
        if "OwnerId" in values:
            values["OwnerId"] = owner_id
        values.update(patch)
    else:
        values = {**existing, **patch}

    missing = [f.name for f in schema.values()
               if f.required and (creating or f.name in patch) and values.get(f.name) in (None, "")]
    if missing:
        raise SfError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    for name in patch:
        error = _check_value(lookup[name.lower()], values[name])
        if error:
            raise error
    if creating:
        for f in schema.values():
            if f.restricted and f.createable and f.name not in patch and values.get(f.name) is None:
                values[f.name] = f.default

    derive = {"Event": _derive_event, "Task": _derive_task, "Contact": _derive_contact,
              "Lead": _derive_contact}.get(sobject)
    if derive:
        try:
            derive(values, set(patch), creating, now, owner_tz)
        except OverflowError:  # e.g. an event ending after 9999-12-31
            raise SfError("FIELD_INTEGRITY_EXCEPTION", "The record's dates are outside the valid range.",
                          [name for name in patch if lookup[name.lower()].type in ("datetime", "date", "int")]
                          ) from None
    prepared = Prepared(sobject=sobject, values=values, supplied=set(patch))
    if creating and sobject == "Event" and values.get("IsRecurrence2"):
        from . import series

        prepared.slots = series.slots(values)
    return prepared


def _derive_contact(values, supplied, creating, now, owner_tz):
    values["Name"] = " ".join(p for p in (values.get("FirstName"), values.get("LastName")) if p)


def _derive_task(values, supplied, creating, now, owner_tz):
    closed = values.get("Status") in CLOSED_STATUSES
    if closed and not values.get("IsClosed"):
        values["CompletedDateTime"] = clock.fmt_datetime(clock.to_ms(now))
    elif not closed:
        values["CompletedDateTime"] = None
    values["IsClosed"] = closed
    values["IsHighPriority"] = values.get("Priority") == "High"


def _dt(text):
    return clock.parse_datetime(text) if text else None


def _derive_event(values, supplied, creating, now, owner_tz):
    def integrity(message, fields):
        return SfError("FIELD_INTEGRITY_EXCEPTION", message, fields)

    if values.get("IsAllDayEvent"):
        if "ActivityDate" in supplied or "StartDateTime" not in supplied:
            day = clock.parse_date(values.get("ActivityDate") or "")
            if day is None and values.get("StartDateTime"):
                day = _dt(values["StartDateTime"]).date()
        else:
            day = _dt(values["StartDateTime"]).date() if values.get("StartDateTime") else None
        if day is None:
            raise SfError("REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDate]", ["ActivityDate"])
        start = dt.datetime(day.year, day.month, day.day, tzinfo=clock.UTC)
        if "EndDateTime" in supplied and values.get("EndDateTime"):
            days = (_dt(values["EndDateTime"]).date() - day).days + 1
        elif "DurationInMinutes" in supplied and values.get("DurationInMinutes") is not None:
            days = -(-int(values["DurationInMinutes"]) // 1440)
        elif not creating and values.get("DurationInMinutes"):
            days = max(1, -(-int(values["DurationInMinutes"]) // 1440))
        else:
            days = 1  # an all-day event with neither end nor duration lasts one day
        if days < 1:
            raise integrity("EndDateTime: End date can't be earlier than the start date.", ["EndDateTime"])
        if days > 14:
            raise integrity("Event duration can't exceed 14 days.", ["DurationInMinutes"])
        # All-day events are stored at midnight GMT; EndDateTime marks the last day itself.
        values["StartDateTime"] = clock.fmt_datetime(start)
        values["EndDateTime"] = clock.fmt_datetime(start + dt.timedelta(days=days - 1))
        values["ActivityDate"] = day.isoformat()
        values["ActivityDateTime"] = None
        values["DurationInMinutes"] = days * 1440
    else:
        start_text = values.get("StartDateTime")
        if "StartDateTime" in supplied and "ActivityDateTime" in supplied:
            if values.get("ActivityDateTime") and values["ActivityDateTime"] != start_text:
                raise integrity("ActivityDateTime must be the same as StartDateTime.", ["ActivityDateTime"])
        elif "ActivityDateTime" in supplied:
            start_text = values.get("ActivityDateTime")
        start = _dt(start_text)
        if start is None:
            raise SfError("REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDateTime]",
                          ["ActivityDateTime"])
        end_given = "EndDateTime" in supplied and values.get("EndDateTime")
        duration_given = "DurationInMinutes" in supplied and values.get("DurationInMinutes") is not None
        if end_given:
            end = _dt(values["EndDateTime"])
            if duration_given and int((end - start).total_seconds() // 60) != values["DurationInMinutes"]:
                raise integrity("DurationInMinutes doesn't match the difference between StartDateTime and "
                                "EndDateTime.", ["DurationInMinutes"])
        elif duration_given:
            end = start + dt.timedelta(minutes=int(values["DurationInMinutes"]))
        elif not creating and values.get("DurationInMinutes") is not None:
            end = start + dt.timedelta(minutes=int(values["DurationInMinutes"]))  # a moved event keeps its length
        else:
            raise SfError("REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]",
                          ["DurationInMinutes"])
        if end < start:
            raise integrity("EndDateTime: End time can't be earlier than the start time.", ["EndDateTime"])
        minutes = int((end - start).total_seconds() // 60)
        if minutes > MAX_EVENT_MINUTES:
            raise integrity("Event duration can't exceed 14 days.", ["DurationInMinutes"])
        values["StartDateTime"] = clock.fmt_datetime(start)
        values["ActivityDateTime"] = clock.fmt_datetime(start)
        values["EndDateTime"] = clock.fmt_datetime(end)
        values["DurationInMinutes"] = minutes
        values["ActivityDate"] = start.date().isoformat()

    if creating and (values.get("IsRecurrence2") or values.get("Recurrence2PatternText")):
        from . import series  # series.py builds on SfError from here

        if not values.get("Recurrence2PatternText"):
            raise SfError("REQUIRED_FIELD_MISSING", "Required fields are missing: [Recurrence2PatternText]",
                          ["Recurrence2PatternText"])
        values["Recurrence2PatternText"] = series.normalise(values["Recurrence2PatternText"])
        values["IsRecurrence2"] = True
        values["Recurrence2PatternStartDate"] = values["StartDateTime"]
        values["Recurrence2PatternTimeZone"] = values.get("Recurrence2PatternTimeZone") or owner_tz
        series.zone_of(values["Recurrence2PatternTimeZone"])
        values["Recurrence2PatternVersion"] = "1"
        values["GroupEventType"] = "0"  # an occurrence; the series record (3) is internal (series.py)
        values["IsRecurrence2Exception"] = values["IsRecurrence2Exclusion"] = False


def normalise_rrule(text: str) -> str:
    """Check an RFC 5545 RRULE against Salesforce's subset and store it in its saved form (series.py)."""
    from . import series

    return series.normalise(text)
