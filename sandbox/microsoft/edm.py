"""The property types of the Graph resources we emulate, checked as Graph's OData reader does.

Graph refuses a body whose values do not fit the entity's types (a string where a
`location` object belongs, "abc" for an Int32) with 400 before it touches the
mailbox. Checking the whole payload first means a write either happens completely
or not at all, and nothing stored can later break a read of the mailbox.

Types: "str", "bool", "int" (Int32), "double", "date" (yyyy-mm-dd), "dto"
(DateTimeOffset), ("enum", values), ("list", type), an object {name: type} (complex
type: unknown members are kept, as Graph ignores instance annotations; known ones must
fit), or "any" (opaque JSON, still storable).
"""

from __future__ import annotations

import datetime as dt
import re

from sandbox.jsonbody import unstorable

from .resources import bad_request
from .wire import parse_iso

INT32 = (-(2**31), 2**31 - 1)
MAX_STRING = 4 * 1024 * 1024  # Graph's request limit is 4 MB; no single value can be longer


def enum(*values: str) -> tuple:
    return ("enum", frozenset(values))


def many(inner) -> tuple:
    return ("list", inner)


EMAIL = {"name": "str", "address": "str"}
BODY = {"contentType": enum("text", "html"), "content": "str"}
DTZ = {"dateTime": "str", "timeZone": "str"}
ADDRESS = {"street": "str", "city": "str", "state": "str", "countryOrRegion": "str", "postalCode": "str"}
COORDINATES = {k: "double" for k in ("latitude", "longitude", "altitude", "accuracy", "altitudeAccuracy")}
LOCATION = {
    "displayName": "str", "locationEmailAddress": "str", "locationUri": "str", "uniqueId": "str",
    "locationType": enum("default", "conferenceRoom", "homeAddress", "businessAddress", "geoCoordinates",
                         "streetAddress", "hotel", "restaurant", "localBusiness", "postalAddress"),
    "uniqueIdType": enum("unknown", "locationStore", "directory", "private", "bing"),
    "address": ADDRESS, "coordinates": COORDINATES,
}
WEEKDAY = enum("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
RECURRENCE = {
    "pattern": {
        "type": enum("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"),
        "interval": "int", "month": "int", "dayOfMonth": "int", "daysOfWeek": many(WEEKDAY),
        "firstDayOfWeek": WEEKDAY, "index": enum("first", "second", "third", "fourth", "last"),
    },
    "range": {
        "type": enum("endDate", "noEnd", "numbered"), "startDate": "date", "endDate": "date",
        "recurrenceTimeZone": "str", "numberOfOccurrences": "int",
    },
}
RESPONSE = enum("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")
ATTENDEE = {"type": enum("required", "optional", "resource"), "emailAddress": EMAIL,
            "status": {"response": RESPONSE, "time": "dto"}, "proposedNewTime": "any"}
EXTENDED = many({"id": "str", "value": "str"})
MULTI_EXTENDED = many({"id": "str", "value": many("str")})
EXTENSIONS = many("any")

EVENT = {
    "subject": "str", "body": BODY, "start": DTZ, "end": DTZ, "isAllDay": "bool", "location": LOCATION,
    "locations": many(LOCATION), "showAs": enum("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
    "sensitivity": enum("normal", "personal", "private", "confidential"), "importance": enum("low", "normal", "high"),
    "isReminderOn": "bool", "reminderMinutesBeforeStart": "int", "categories": many("str"),
    "recurrence": RECURRENCE, "attendees": many(ATTENDEE), "organizer": {"emailAddress": EMAIL},
    "responseRequested": "bool", "allowNewTimeProposals": "bool", "isOnlineMeeting": "bool",
    "onlineMeetingProvider": enum("unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"),
    "hideAttendees": "bool", "isDraft": "bool", "originalStartTimeZone": "str", "originalEndTimeZone": "str",
    "transactionId": "str", "singleValueExtendedProperties": EXTENDED,
    "multiValueExtendedProperties": MULTI_EXTENDED, "extensions": EXTENSIONS,
}
_CONTACT_TEXT = (
    "givenName", "middleName", "surname", "displayName", "fileAs", "initials", "nickName", "title", "generation",
    "jobTitle", "department", "companyName", "profession", "manager", "assistantName", "officeLocation",
    "mobilePhone", "personalNotes", "businessHomePage", "spouseName", "yomiGivenName", "yomiSurname",
    "yomiCompanyName",
)
CONTACT = {
    **dict.fromkeys(_CONTACT_TEXT, "str"),
    **dict.fromkeys(("businessPhones", "homePhones", "imAddresses", "children", "categories"), many("str")),
    "emailAddresses": many(EMAIL),
    "businessAddress": ADDRESS, "homeAddress": ADDRESS, "otherAddress": ADDRESS, "birthday": "dto",
    "singleValueExtendedProperties": EXTENDED, "multiValueExtendedProperties": MULTI_EXTENDED,
    "extensions": EXTENSIONS,
}
TASK = {
    "title": "str", "body": BODY, "status": enum("notStarted", "inProgress", "completed", "waitingOnOthers",
                                                 "deferred"),
    "importance": enum("low", "normal", "high"), "isReminderOn": "bool", "reminderDateTime": DTZ,
    "dueDateTime": DTZ, "startDateTime": DTZ, "completedDateTime": DTZ, "categories": many("str"),
    "recurrence": RECURRENCE,
    "linkedResources": many({"id": "str", "webUrl": "str", "applicationName": "str", "displayName": "str",
                             "externalId": "str"}),
    "checklistItems": many({"id": "str", "displayName": "str", "isChecked": "bool", "checkedDateTime": "dto",
                            "createdDateTime": "dto"}),
    "extensions": EXTENSIONS,
}
TODO_LIST = {"displayName": "str", "extensions": EXTENSIONS}

EDM_NAME = {"str": "Edm.String", "bool": "Edm.Boolean", "int": "Edm.Int32", "double": "Edm.Double",
            "date": "Edm.Date", "dto": "Edm.DateTimeOffset"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _refuse(path: str, message: str):
    return bad_request("RequestBodyRead", f"Cannot read the property '{path}': {message}")


def _node(value) -> str:
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    return "PrimitiveValue"


def _text(value, path: str, limit: int = MAX_STRING) -> str:
    if not isinstance(value, str):
        raise _refuse(path, f"a '{_node(value)}' node was found where an 'Edm.String' value was expected.")
    if len(value) > limit:
        raise _refuse(path, f"the value is longer than {limit} characters.")
    why = unstorable(value)
    if why:
        raise _refuse(path, f"the value {why}.")
    return value


def check(value, kind, path: str) -> None:
    """Raise a 400 GraphError naming the first property whose value does not fit `kind`."""
    if value is None:
        return  # Graph's properties are nullable; required ones are checked by the services
    if kind == "any":
        _storable(value, path)
    elif isinstance(kind, dict):
        if not isinstance(value, dict):
            raise _refuse(path, f"a '{_node(value)}' node was found where a 'StartObject' node was expected.")
        for key, member in value.items():
            _text(key, f"{path}/(name)", 400)
            check(member, kind.get(key, "any"), f"{path}/{key}")
    elif isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            raise _refuse(path, f"a '{_node(value)}' node was found where a 'StartArray' node was expected.")
        for i, member in enumerate(value):
            if member is None and kind[1] != "any":
                raise _refuse(f"{path}[{i}]", "a null value was found in a collection that does not allow "
                              "nulls.")
            check(member, kind[1], f"{path}[{i}]")
    elif isinstance(kind, tuple) and kind[0] == "enum":
        if not isinstance(value, str) or value not in kind[1]:
            shown = value if isinstance(value, str) else _node(value)
            raise _refuse(path, f"requested value '{str(shown)[:80]}' was not found.")
    elif kind == "str":
        _text(value, path)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _refuse(path, f"cannot convert '{str(value)[:40]}' to the expected type 'Edm.Boolean'.")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not INT32[0] <= value <= INT32[1]:
            raise _refuse(path, f"cannot convert the literal '{str(value)[:40]}' to the expected type "
                          "'Edm.Int32'.")
    elif kind == "double":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(path, f"cannot convert '{str(value)[:40]}' to the expected type 'Edm.Double'.")
    elif kind == "date":
        _text(value, path, 40)
        try:
            ok = bool(_DATE.match(value)) and dt.date.fromisoformat(value) is not None
        except ValueError:
            ok = False
        if not ok:
            raise _refuse(path, f"cannot convert the literal '{value}' to the expected type 'Edm.Date'.")
    elif kind == "dto":
        _text(value, path, 40)
        if parse_iso(value) is None:
            raise _refuse(path, f"cannot convert the literal '{value}' to the expected type "
                          "'Edm.DateTimeOffset'.")


def _storable(value, path: str) -> None:
    """Opaque JSON (open types, extensions) still has to fit the store."""
    stack = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            _text(current, where)
        elif isinstance(current, dict):
            for key, member in current.items():
                _text(key, f"{where}/(name)", 400)
                stack.append((member, f"{where}/{key}"))
        elif isinstance(current, list):
            stack.extend((member, f"{where}[{i}]") for i, member in enumerate(current))


def check_entity(schema: dict, payload: dict) -> None:
    for key, value in payload.items():
        if key.startswith("@odata."):
            _storable(value, key)
        elif key in schema:
            check(value, schema[key], key)
