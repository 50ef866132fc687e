"""Writes to the emulated mailbox, shared by the Graph views, the seeder, the console and tests.

Every write stamps the item with the mailbox's next change sequence number, a
fresh changeKey and lastModifiedDateTime — what delta and If-Match rely on.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import connections, transaction
from django.db.models import F

from .models import AccessToken, ExtendedProperty, Item, ItemKind, Mailbox, RefreshToken, Tenant
from .resources import (
    CONTACT_FIELDS,
    EVENT_FIELDS,
    LIST_FIELDS,
    TASK_FIELDS,
    GraphError,
    bad_request,
    check_fields,
    event_times,
    ext_props_from,
    parse_dtz,
    series_occurrences,
)
from .wire import new_change_key, new_ical_uid, new_item_id, now, occurrence_id

DB = "sandbox"
MAX_EMAILS = 3
MAX_BUSINESS_PHONES = 2


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- tenants and mailboxes -------------------------------------------------------------

@transaction.atomic(using=DB)
def mailbox_ensure(email: str, display_name: str = "") -> Mailbox:
    """The mailbox for this address, created (with its tenant, from the domain) on first use."""
    email = email.strip().lower()
    domain = email.rsplit("@", 1)[-1]
    tenant, _ = Tenant.objects.get_or_create(domain=domain, defaults={"name": domain.split(".")[0].title()})
    local = email.split("@")[0]
    mailbox, created = Mailbox.objects.get_or_create(
        email=email,
        defaults={"tenant": tenant, "display_name": display_name or local.replace(".", " ").title()},
    )
    if not created and display_name and mailbox.display_name != display_name:
        mailbox.display_name = display_name
        mailbox.save(update_fields=["display_name"])
    todo_default_list(mailbox)
    return mailbox


def todo_default_list(mailbox: Mailbox) -> Item:
    existing = Item.objects.filter(mailbox=mailbox, kind=ItemKind.TODO_LIST, deleted=False,
                                   data__wellknownListName="defaultList").first()
    if existing:
        return existing
    return _insert(mailbox, ItemKind.TODO_LIST, {"displayName": "Tasks", "wellknownListName": "defaultList"})


def token_revoke_all(mailbox: Mailbox) -> int:
    """The user revoked consent: every refresh and access token of the mailbox stops working."""
    n = RefreshToken.objects.filter(mailbox=mailbox, revoked=False).update(revoked=True)
    AccessToken.objects.filter(mailbox=mailbox, revoked=False).update(revoked=True)
    return n


def mailbox_sync_reset(mailbox: Mailbox) -> None:
    """Forget every delta sync state of the mailbox: outstanding tokens now answer 410."""
    Mailbox.objects.filter(pk=mailbox.pk).update(sync_generation=F("sync_generation") + 1)


# --- low-level write helpers ------------------------------------------------------------

def _next_seq(mailbox: Mailbox) -> int:
    # One statement instead of an UPDATE and a SELECT: every write pays this
    # (SQLite >= 3.35 and PostgreSQL both have RETURNING).
    table = connections[DB].ops.quote_name(Mailbox._meta.db_table)
    with connections[DB].cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET change_seq = change_seq + 1 WHERE id = %s RETURNING change_seq",  # noqa: S608
            [mailbox.pk],
        )
        return cursor.fetchone()[0]


def _index_ext(item: Item, *, new: bool = False) -> None:
    if not new:  # a new item has nothing indexed yet: skip the DELETE
        ExtendedProperty.objects.filter(item=item).delete()
    ExtendedProperty.objects.bulk_create(
        ExtendedProperty(item=item, prop_id=pid, value_ci=str(value).lower()[:400])
        for pid, value in item.ext_props.items()
    )


def _stamp(item: Item) -> None:
    item.seq = _next_seq(item.mailbox)
    item.change_key = new_change_key()
    item.modified = now()


def _insert(mailbox: Mailbox, kind: str, data: dict, **columns) -> Item:
    moment = now()
    item = Item(mailbox=mailbox, kind=kind, graph_id=new_item_id(), data=data, created=moment,
                modified=moment, change_key=new_change_key(), seq=_next_seq(mailbox), **columns)
    item.save(force_insert=True)
    if item.ext_props:
        _index_ext(item, new=True)
    return item


# --- events -----------------------------------------------------------------------------

def _event_data(payload: dict, base: dict | None = None) -> tuple[dict, dict | None]:
    check_fields(ItemKind.EVENT, payload, EVENT_FIELDS)
    ext = ext_props_from(payload)
    data = dict(base or {})
    for key, value in payload.items():
        if key in EVENT_FIELDS and key not in ("singleValueExtendedProperties", "transactionId"):
            data[key] = value
    if "start" not in data or "end" not in data:
        raise bad_request("ErrorInvalidRequest", "The event must have a start and an end.")
    for key in ("start", "end"):  # the zone the client used is the event's original zone
        _, name, _ = parse_dtz(data[key], key)
        data[key] = {**data[key], "timeZone": name}
    data.setdefault("originalStartTimeZone", data["start"]["timeZone"])
    data.setdefault("originalEndTimeZone", data["end"]["timeZone"])
    if "location" in payload and payload["location"] is not None and "locations" not in payload:
        data["locations"] = [payload["location"]]
    return data, ext


@transaction.atomic(using=DB)
def event_create(mailbox: Mailbox, graph_payload: dict) -> tuple[Item, bool]:
    """(event, created). A repeated transactionId returns the existing event, created=False."""
    data, ext = _event_data(graph_payload)  # validated before the body is used in any query
    transaction_id = graph_payload.get("transactionId")
    if transaction_id:
        existing = next(iter(Item.objects.filter(mailbox=mailbox, transaction_id=transaction_id)[:1]), None)
        if existing is not None:
            return existing, False
    times = event_times(data)
    if not times.is_master:
        data.pop("recurrence", None)
    item = _insert(
        mailbox, ItemKind.EVENT, data,
        ext_props=ext or {}, transaction_id=transaction_id or None, ical_uid=new_ical_uid(),
        event_type="seriesMaster" if times.is_master else "singleInstance",
        start_utc=times.start_utc, end_utc=times.series_end_utc if times.is_master else times.end_utc,
    )
    return item, True


def _occurrence_horizon() -> tuple[dt.datetime, dt.datetime]:
    moment = now()
    return moment - dt.timedelta(days=400), moment + dt.timedelta(days=800)


def _occurrence_ids(master: Item) -> set[str]:
    if master.event_type != "seriesMaster" or not master.data.get("recurrence"):
        return set()
    return {occurrence_id(master.graph_id, start) for start, _ in
            series_occurrences(master, None, horizon=_occurrence_horizon())}


@transaction.atomic(using=DB)
def event_update(item: Item, graph_payload: dict) -> Item:
    if item.kind != ItemKind.EVENT:
        raise ValueError("not an event")
    if "transactionId" in graph_payload and graph_payload["transactionId"] != item.transaction_id:
        raise bad_request("ErrorInvalidPropertyUpdateSentByClient", "The transactionId cannot be changed.")
    before = _occurrence_ids(item)
    data, ext = _event_data(graph_payload, item.data)
    times = event_times(data)
    if item.event_type == "exception" and data.get("recurrence"):
        raise bad_request("ErrorInvalidRequest", "An occurrence of a series cannot have its own recurrence.")
    if item.event_type == "singleInstance" and times.is_master:
        item.event_type = "seriesMaster"
    elif item.event_type == "seriesMaster" and not times.is_master:
        item.event_type = "singleInstance"
        data.pop("recurrence", None)
    item.data = data
    item.start_utc = times.start_utc
    item.end_utc = times.series_end_utc if item.event_type == "seriesMaster" else times.end_utc
    if ext is not None:
        item.ext_props = {**item.ext_props, **ext}
        _index_ext(item)
    if item.event_type in ("seriesMaster", "singleInstance") and before:
        # Occurrences that no longer exist: delta reports them removed.
        gone = sorted(before - _occurrence_ids(item))
        item.data = {**item.data, "_removedOccurrences": gone[:2000]}
        if any(k in graph_payload for k in ("start", "end", "recurrence", "isAllDay")):
            # Exchange drops exceptions when the series' pattern or times change.
            for child in item.children.filter(deleted=False):
                _delete_row(child)
    elif "_removedOccurrences" in item.data:
        item.data = {k: v for k, v in item.data.items() if k != "_removedOccurrences"}
    _stamp(item)
    item.save()
    return item


@transaction.atomic(using=DB)
def occurrence_update(master: Item, original_start: dt.datetime, graph_payload: dict) -> Item:
    """PATCH of a generated occurrence: it becomes an exception of the series."""
    if "recurrence" in graph_payload:
        raise bad_request("ErrorInvalidRequest", "An occurrence of a series cannot have its own recurrence.")
    base = {k: v for k, v in master.data.items() if k not in ("recurrence", "_removedOccurrences")}
    span = _occurrence_span(master, original_start)
    base["start"] = {"dateTime": _utc_local(span[0]), "timeZone": "UTC"}
    base["end"] = {"dateTime": _utc_local(span[1]), "timeZone": "UTC"}
    if master.data.get("isAllDay"):
        base["start"]["timeZone"] = base["end"]["timeZone"] = master.data["start"].get("timeZone", "UTC")
    data, ext = _event_data(graph_payload, base)
    times = event_times(data)
    item = Item(
        mailbox=master.mailbox, kind=ItemKind.EVENT, graph_id=occurrence_id(master.graph_id, original_start),
        parent=master, data=data, ext_props={**master.ext_props, **(ext or {})}, created=master.created,
        modified=now(), change_key=new_change_key(), ical_uid=master.ical_uid, event_type="exception",
        start_utc=times.start_utc, end_utc=times.end_utc, original_start=original_start,
        seq=_next_seq(master.mailbox),
    )
    item.save()
    if item.ext_props:
        _index_ext(item)
    return item


def _utc_local(value: dt.datetime) -> str:
    return f"{value.replace(tzinfo=None):%Y-%m-%dT%H:%M:%S}.0000000"


def _occurrence_span(master: Item, original_start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    for start, end in series_occurrences(master, (original_start, original_start + dt.timedelta(seconds=1))):
        if start == original_start:
            return start, end
    raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


@transaction.atomic(using=DB)
def occurrence_delete(master: Item, original_start: dt.datetime) -> Item:
    """Deleting one occurrence leaves a cancelled exception behind, so delta can report it removed."""
    span = _occurrence_span(master, original_start)
    item = Item(
        mailbox=master.mailbox, kind=ItemKind.EVENT, graph_id=occurrence_id(master.graph_id, original_start),
        parent=master, data={}, created=master.created, modified=now(), change_key=new_change_key(),
        ical_uid=master.ical_uid, event_type="exception", start_utc=span[0], end_utc=span[1],
        original_start=original_start, cancelled=True, deleted=True, seq=_next_seq(master.mailbox),
    )
    item.save()
    return item


@transaction.atomic(using=DB)
def event_touch(item: Item) -> Item:
    """What Exchange does on its own (a reminder dismissed, a sync agent): new changeKey, same content."""
    _stamp(item)
    item.save(update_fields=["seq", "change_key", "modified"])
    return item


# --- contacts, To Do ----------------------------------------------------------------------

def _contact_data(payload: dict, base: dict | None = None) -> tuple[dict, dict | None]:
    check_fields(ItemKind.CONTACT, payload, CONTACT_FIELDS)
    emails = payload.get("emailAddresses")
    if emails is not None and len(emails) > MAX_EMAILS:
        raise bad_request(
            "ErrorInvalidArgument",
            f"The multi value property EmailAddresses has {len(emails)} entries, that exceeds the max "
            f"allowed value of {MAX_EMAILS}.",
        )
    phones = payload.get("businessPhones")
    if phones is not None and len(phones) > MAX_BUSINESS_PHONES:
        raise bad_request(
            "ErrorInvalidArgument",
            f"The multi value property BusinessPhones has {len(phones)} entries, that exceeds the max "
            f"allowed value of {MAX_BUSINESS_PHONES}.",
        )
    ext = ext_props_from(payload)
    data = dict(base or {})
    data.update({k: v for k, v in payload.items() if k in CONTACT_FIELDS and k != "singleValueExtendedProperties"})
    return data, ext


def contact_create(mailbox: Mailbox, graph_payload: dict) -> Item:
    data, ext = _contact_data(graph_payload)  # refused before anything is written
    # The row and its index stand or fall together; inside a Graph request that is already the
    # request's savepoint, so no second savepoint per contact (a $batch of 20 creates pays for each).
    with transaction.atomic(using=DB, savepoint=False):
        return _insert(mailbox, ItemKind.CONTACT, data, ext_props=ext or {})


_TASK_DATES = ("dueDateTime", "startDateTime", "reminderDateTime", "completedDateTime")


def _task_data(payload: dict, base: dict | None = None) -> dict:
    check_fields(ItemKind.TODO_TASK, payload, TASK_FIELDS)
    data = dict(base or {})
    for key, value in payload.items():
        if key not in TASK_FIELDS or key == "linkedResources":
            continue
        if key in _TASK_DATES and value is not None:
            parse_dtz(value, key)
        data[key] = value
    if payload.get("status") == "completed" and not data.get("completedDateTime"):
        moment = now()
        data["completedDateTime"] = {"dateTime": _utc_local(moment), "timeZone": "UTC"}
    elif "status" in payload and payload["status"] != "completed":
        data.pop("completedDateTime", None)
    return data


def _linked(resources: list[dict]) -> list[dict]:
    import uuid

    out = []
    for res in resources or []:
        if not isinstance(res, dict) or not (res.get("applicationName") or res.get("displayName")):
            raise bad_request("invalidRequest", "A linked resource needs an applicationName.")
        out.append({
            "id": res.get("id") or str(uuid.uuid4()),
            "webUrl": res.get("webUrl"),
            "applicationName": res.get("applicationName"),
            "displayName": res.get("displayName"),
            "externalId": res.get("externalId"),
        })
    return out


@transaction.atomic(using=DB)
def todo_task_create(mailbox: Mailbox, graph_payload: dict, todo_list: Item | None = None) -> Item:
    todo_list = todo_list or todo_default_list(mailbox)
    data = _task_data(graph_payload)
    if "title" not in data:
        raise bad_request("invalidRequest", "The title of a task is required.")
    data["linkedResources"] = _linked(graph_payload.get("linkedResources") or [])
    return _insert(mailbox, ItemKind.TODO_TASK, data, parent=todo_list)


@transaction.atomic(using=DB)
def todo_list_create(mailbox: Mailbox, graph_payload: dict) -> Item:
    check_fields(ItemKind.TODO_LIST, graph_payload, LIST_FIELDS)
    if not graph_payload.get("displayName"):
        raise bad_request("invalidRequest", "displayName is required.")
    return _insert(mailbox, ItemKind.TODO_LIST, {"displayName": graph_payload["displayName"],
                                                 "wellknownListName": "none"})


@transaction.atomic(using=DB)
def linked_resource_add(task: Item, resource: dict) -> dict:
    [res] = _linked([resource])
    task.data = {**task.data, "linkedResources": [*task.data.get("linkedResources", []), res]}
    _stamp(task)
    task.save()
    return res


# --- any kind -------------------------------------------------------------------------------

@transaction.atomic(using=DB)
def item_update(item: Item, graph_payload: dict) -> Item:
    """PATCH semantics: given fields replace stored ones; changeKey rotates."""
    if item.kind == ItemKind.EVENT:
        return event_update(item, graph_payload)
    if item.kind == ItemKind.CONTACT:
        data, ext = _contact_data(graph_payload, item.data)
        if ext is not None:
            item.ext_props = {**item.ext_props, **ext}
            _index_ext(item)
    elif item.kind == ItemKind.TODO_TASK:
        data = _task_data(graph_payload, item.data)
        if "linkedResources" in graph_payload:
            data["linkedResources"] = _linked(graph_payload["linkedResources"])
    else:
        check_fields(ItemKind.TODO_LIST, graph_payload, LIST_FIELDS)
        data = {**item.data, **{k: v for k, v in graph_payload.items() if k in LIST_FIELDS}}
    item.data = data
    _stamp(item)
    item.save()
    return item


def _delete_row(item: Item) -> None:
    item.deleted = True
    _stamp(item)
    item.save(update_fields=["deleted", "seq", "change_key", "modified"])


@transaction.atomic(using=DB)
def item_delete(item: Item) -> None:
    """Keeps a tombstone (deleted=True) so delta can answer @removed."""
    if item.kind == ItemKind.TODO_LIST and item.data.get("wellknownListName") == "defaultList":
        raise bad_request("invalidRequest", "The default list cannot be deleted.")
    for child in item.children.filter(deleted=False):
        _delete_row(child)
    _delete_row(item)


def access_token_issue(mailbox: Mailbox, *, scopes: str = "Calendars.ReadWrite Contacts.ReadWrite Tasks.ReadWrite",
                       lifetime: int = 3599, client_id: str = "") -> str:
    """A bearer token for tests and benchmarks that skip the consent dance (the flow itself is tested)."""
    import secrets

    from django.conf import settings

    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + secrets.token_urlsafe(48)
    AccessToken.objects.create(token_hash=token_hash(token), mailbox=mailbox,
                               client_id=client_id or settings.MICROSOFT_CLIENT_ID, scopes=scopes,
                               expires_at=now() + dt.timedelta(seconds=lifetime))
    return token


def consent_withdraw(mailbox: Mailbox, scopes: list[str]) -> int:
    """An administrator removes delegated permissions from the app's grant for this mailbox.

    Refresh tokens keep working for what is still granted; asking for a withdrawn scope is
    refused with AADSTS65001. Access tokens already issued keep their `scp` until they expire,
    as in Entra. Returns how many refresh tokens changed.
    """
    drop = {s.lower() for s in scopes}
    changed = 0
    for row in RefreshToken.objects.filter(mailbox=mailbox, revoked=False):
        kept = [s for s in row.scopes.split()
                if s.lower().removeprefix("https://graph.microsoft.com/") not in drop]
        if kept != row.scopes.split():
            row.scopes = " ".join(kept)
            row.save(update_fields=["scopes"])
            changed += 1
    return changed
