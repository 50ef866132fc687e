"""Writes of the SnapRecord calendar: record, unrecord, relate (with SnapField values), SnapFields.

Every refusal is a `SnapRefused` whose message is for the person on the page;
remote failures are logged for support. Validation happens before any write,
so a refused relate writes nothing anywhere.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db import transaction

from orgs.audit import audit_record

from . import snap_selectors as sel
from .models import SnapField, SnapRelation, SyncLink

log = logging.getLogger(__name__)

CALENDAR = "calendar"
MAX_OTHERS = 10


class SnapRefused(Exception):
    pass


# ---------------------------------------------------------------- record / unrecord


def snap_record(*, membership, outlook_event_id: str) -> tuple[SyncLink | None, str]:
    """Record one Outlook event (idempotent): (its link, message)."""
    from policy.selectors import policy_effective_for

    from .services import sync_snaprecord

    if not outlook_event_id or len(outlook_event_id) > 512:
        raise SnapRefused("That event cannot be found in your calendar.")
    mode = policy_effective_for(membership, CALENDAR).mode.value
    if mode != "snaprecord":
        # Modes are exclusive: under Manual or Auto the engine's direction rules own the calendar.
        raise SnapRefused("Recording single events is SnapRecord's: your calendar sync is "
                          f"{ {'auto': 'Auto', 'manual': 'Manual', 'off': 'off'}.get(mode, mode) }.")
    existing = SyncLink.objects.filter(membership=membership, kind=CALENDAR, outlook_id=outlook_event_id,
                                       sf_id__isnull=False).exclude(state="tombstoned").first()
    if existing is not None:
        return existing, "Already recorded in Salesforce."
    _check_recordable(membership, outlook_event_id)
    result = sync_snaprecord(membership=membership, outlook_event_id=outlook_event_id)
    link = SyncLink.objects.filter(membership=membership, kind=CALENDAR, outlook_id=outlook_event_id,
                                   sf_id__isnull=False).exclude(state="tombstoned").first()
    if link is None:
        raise SnapRefused(result.message or "Salesforce did not take the event; see your sync log.")
    defaults = {f.name: _typed(f, f.default) for f in sel.snapfields_for(membership.organization_id)
                if f.default != "" and not f.problem}
    if defaults:
        try:
            _write_event(membership, link.sf_id, defaults)
            SnapRelation.objects.update_or_create(link=link, defaults={"values": defaults})
        except SnapRefused as exc:
            log.warning("SnapField defaults refused for link %s: %s", link.pk, exc)
            return link, f"Recorded. The SnapField defaults were not written: {exc}"
    return link, result.message or "Recorded in Salesforce."


def _check_recordable(membership, outlook_event_id: str) -> None:
    """The page's skip rules hold for a posted id too: private events per policy, single occurrences."""
    from connections import errors
    from connections.selectors import graph_client_for
    from policy.selectors import policy_effective_for

    try:
        ev = graph_client_for(membership).request(
            "GET", f"/me/events/{outlook_event_id}", params={"$select": "sensitivity,type,seriesMasterId"}) or {}
    except errors.NotFound:
        raise SnapRefused("That event cannot be found in your calendar.") from None
    except errors.ValidationFailed:
        raise SnapRefused("That event cannot be found in your calendar.") from None
    except errors.RemoteError as exc:
        log.warning("record: Outlook read failed for membership %s: %s", membership.pk, exc)
        raise SnapRefused(f"Outlook did not answer ({exc}); nothing was recorded.") from None
    private = (ev.get("sensitivity") or "normal") in ("private", "confidential")
    if private and not policy_effective_for(membership, CALENDAR).include_private.value:
        raise SnapRefused("Private event: your organization's policy keeps private events out of Salesforce.")
    if ev.get("type") == "occurrence" or ev.get("seriesMasterId"):
        raise SnapRefused("One meeting of a series: a series is synced whole by Manual or Auto sync.")


def snap_unrecord(*, membership, link_id: int, delete_in_salesforce: bool) -> str:
    """Forget a recorded event's link; optionally delete the Salesforce Event first (idempotent)."""
    from connections import errors
    from connections.selectors import salesforce_client_for

    from .engine.run import lease_acquire, lease_release

    link = SyncLink.objects.filter(pk=link_id, membership=membership, kind=CALENDAR).first()
    if link is None:
        return "This event is not recorded."
    if not link.one_way_from:
        raise SnapRefused("This event is synced by Manual or Auto sync, not recorded: change it from My sync.")
    holder = uuid.uuid4().hex
    if not lease_acquire(membership, CALENDAR, holder):
        raise SnapRefused("A calendar sync is running; try again in a moment.")
    try:
        if delete_in_salesforce and link.sf_id:
            try:
                salesforce_client_for(membership).delete("Event", link.sf_id)
            except errors.NotFound:
                pass  # already gone: the wish is met
            except errors.RemoteError as exc:
                log.warning("unrecord: Salesforce delete failed for link %s: %s", link.pk, exc)
                raise SnapRefused(f"Salesforce did not delete the event ({exc}); nothing changed.") from None
        link.delete()
    finally:
        lease_release(membership, CALENDAR, holder)
    if delete_in_salesforce:
        return "Unrecorded, and the Salesforce Event was deleted."
    return "Unrecorded. The Salesforce Event stays in Salesforce; Outlook edits no longer reach it."


# ---------------------------------------------------------------- relate


@dataclass(frozen=True)
class RelateInput:
    who: str = ""
    what: str = ""
    others: tuple[str, ...] = ()
    values: dict | None = None  # SnapField name → raw posted text


def _typed(f: SnapField, raw):
    if f.type == "boolean":
        return str(raw).lower() in ("1", "true", "on", "yes")
    return raw if raw not in (None, "") else None


def snapfield_values(org_id: int, posted: dict, describe: dict) -> dict:
    """Posted SnapField values, checked against the admin's settings and the live describe."""
    live = {f["name"]: f for f in describe.get("fields") or ()}
    out = {}
    for f in sel.snapfields_for(org_id):
        if f.problem or f.name not in live:
            continue  # shown to the admin; never a failed write
        raw = (posted.get(f.name) or "").strip() if f.type != "boolean" else posted.get(f.name, "")
        if f.locked:
            raw = f.default
        if f.type == "boolean":
            out[f.name] = _typed(f, raw)
            continue
        if raw == "":
            if f.required:
                raise SnapRefused(f"{f.label} is required.")
            continue
        if f.type == "picklist" and raw not in sel.picklist_values(live[f.name]):
            raise SnapRefused(f"“{raw[:60]}” is not a value of {f.label} in Salesforce.")
        if f.type == "date":
            try:
                dt.date.fromisoformat(raw)
            except ValueError:
                raise SnapRefused(f"{f.label} needs a date (YYYY-MM-DD).") from None
        limit = live[f.name].get("length") or 0
        if limit and len(raw) > limit:
            raise SnapRefused(f"{f.label} takes at most {limit} characters.")
        out[f.name] = raw
    return out


def _write_event(membership, sf_id: str, fields: dict) -> None:
    from connections import errors
    from connections.selectors import salesforce_client_for

    try:
        salesforce_client_for(membership).update("Event", sf_id, fields)
    except errors.ValidationFailed as exc:
        log.warning("relate: Salesforce refused Event %s: %s", sf_id, exc)
        raise SnapRefused(f"Salesforce refused the change: {exc}") from None
    except errors.NotFound:
        raise SnapRefused("The Salesforce Event no longer exists; Unrecord, then record again.") from None
    except errors.RemoteError as exc:
        log.warning("relate: Salesforce write failed for Event %s: %s", sf_id, exc)
        raise SnapRefused(f"Salesforce did not answer ({exc}); nothing changed.") from None


def _check_ids(data: RelateInput) -> dict[str, list[str]]:
    wanted: dict[str, list[str]] = {}
    for value, allowed, what in ((data.who, sel.WHO_TYPES, "Name"), (data.what, sel.WHAT_TYPES, "Related To")):
        if not value:
            continue
        if not sel.ID_RE.match(value) or value[:3] not in allowed:
            kinds = " or ".join(allowed.values())
            raise SnapRefused(f"{what} must be a {kinds}; that id is not one.")
        wanted.setdefault(allowed[value[:3]], []).append(value)
    for value in data.others:
        if not sel.ID_RE.match(value) or value[:3] not in sel.WHO_TYPES:
            raise SnapRefused("Further people must be Contacts or Leads; one of the ids is not.")
        wanted.setdefault(sel.WHO_TYPES[value[:3]], []).append(value)
    return wanted


def snap_relate(*, membership, link: SyncLink, data: RelateInput) -> str:
    """Set Name (WhoId), Related To (WhatId), further Contacts/Leads and SnapField values."""
    from connections import errors

    others = tuple(dict.fromkeys(o for o in data.others if o and o != data.who))
    if len(others) > MAX_OTHERS:
        raise SnapRefused(f"At most {MAX_OTHERS} further people can be related.")
    data = RelateInput(who=data.who, what=data.what, others=others, values=data.values)
    wanted = _check_ids(data)
    try:
        describe = sel.describe_cached(membership=membership, sobject="Event")
        values = snapfield_values(membership.organization_id, data.values or {}, describe)
        try:
            found = sel.lookup_ids(membership=membership, ids=wanted)
        except errors.ValidationFailed:  # an id Salesforce cannot read (bad checksum): no such record
            found = {}
        if others and not sel.shared_activities(membership=membership):
            raise SnapRefused("Your Salesforce org relates one person per event (Shared Activities is off).")
    except errors.RemoteError as exc:
        log.warning("relate: Salesforce read failed for membership %s: %s", membership.pk, exc)
        raise SnapRefused(f"Salesforce did not answer ({exc}); nothing changed.") from None
    for rid in [data.who, data.what, *others]:
        if rid and rid not in found:
            raise SnapRefused("That record is not in your Salesforce org (deleted, or from another org); "
                              "nothing was changed.")
    rel = getattr(link, "relation", None) if SnapRelation.objects.filter(link=link).exists() else None
    _write_event(membership, link.sf_id, {"WhoId": data.who or None, "WhatId": data.what or None, **values})
    kept_others = _sync_others(membership, link, rel.others if rel else [], others, found)
    with transaction.atomic():
        SnapRelation.objects.update_or_create(link=link, defaults={
            "who_id": data.who, "who_label": found[data.who].label if data.who else "",
            "what_id": data.what, "what_label": found[data.what].label if data.what else "",
            "others": kept_others, "values": {**(rel.values if rel else {}), **values},
        })
        SyncLink.objects.filter(pk=link.pk).update(relation_by_member=True)
    return "Saved in Salesforce."


def _sync_others(membership, link, before: list[dict], others: tuple[str, ...], found) -> list[dict]:
    """EventRelation rows (IsParent) for the further people: add the new, remove the dropped."""
    from connections import errors
    from connections.selectors import salesforce_client_for

    had = {o["id"]: o for o in before}
    add = [o for o in others if o not in had]
    drop = [o.get("relation_id") for i, o in had.items() if i not in others and o.get("relation_id")]
    if not add and not drop:
        return [had[o] for o in others]
    sfc = salesforce_client_for(membership)
    kept = [had[o] for o in others if o in had]
    try:
        if add:
            results = sfc.collection_create("EventRelation", [
                {"EventId": link.sf_id, "RelationId": o, "IsParent": True, "IsInvitee": False} for o in add])
            for o, r in zip(add, results, strict=True):
                if r.success:
                    kept.append({"id": o, "label": found[o].label, "relation_id": r.id})
                else:
                    log.warning("relate: EventRelation for %s refused: %s", o, r.errors)
        if drop:
            sfc.collection_delete(drop)
    except errors.RemoteError as exc:
        log.warning("relate: EventRelation write failed for link %s: %s", link.pk, exc)
        raise SnapRefused(f"Name and Related To are saved; the further people were not ({exc}).") from None
    return kept


# ---------------------------------------------------------------- SnapFields (org admins)


def snapfield_add(*, ctx, describe: dict, name: str) -> SnapField:
    live = {f["name"]: f for f in sel.snapfield_candidates(describe, set())}
    f = live.get(name)
    if f is None:
        raise SnapRefused("Pick a field from the list: that one cannot be a SnapField.")
    if SnapField.objects.filter(organization=ctx.org, name=name).exists():
        raise SnapRefused(f"{f.get('label') or name} is already a SnapField.")
    position = SnapField.objects.filter(organization=ctx.org).count()
    with transaction.atomic():
        row = SnapField.objects.create(
            organization=ctx.org, name=name, label=(f.get("label") or name)[:120], type=sel.SNAP_TYPES[f["type"]],
            picklist=sel.picklist_values(f), length=f.get("length") or 0, required=not f.get("nillable", True),
            position=position,
        )
        audit_record(ctx=ctx, action="snapfield.add", target=name, after=_facts(row))
    return row


def snapfield_save(*, ctx, describe: dict, field_id: int, required: bool, locked: bool, default: str) -> SnapField:
    row = SnapField.objects.filter(organization=ctx.org, pk=field_id).first()
    if row is None:
        raise SnapRefused("That SnapField no longer exists.")
    before = _facts(row)
    default = (default or "").strip()[:255]
    live = {f["name"]: f for f in describe.get("fields") or ()}
    if row.type == "boolean":
        default = "true" if default in ("1", "true", "on") else ""
    elif default and row.type == "picklist" and row.name in live and default not in sel.picklist_values(live[row.name]):
        raise SnapRefused(f"“{default[:60]}” is not a value of {row.label} in Salesforce.")
    elif default and row.type == "date":
        try:
            dt.date.fromisoformat(default)
        except ValueError:
            raise SnapRefused(f"{row.label}: the default needs a date (YYYY-MM-DD).") from None
    if locked and default == "" and row.type != "boolean":
        raise SnapRefused(f"{row.label}: a locked field needs a default for everyone.")
    row.required, row.locked, row.default = required, locked, default
    with transaction.atomic():
        row.save(update_fields=["required", "locked", "default"])
        audit_record(ctx=ctx, action="snapfield.change", target=row.name, before=before, after=_facts(row))
    return row


def snapfield_remove(*, ctx, field_id: int) -> None:
    row = SnapField.objects.filter(organization=ctx.org, pk=field_id).first()
    if row is None:
        return
    with transaction.atomic():
        audit_record(ctx=ctx, action="snapfield.remove", target=row.name, before=_facts(row))
        row.delete()


def snapfields_check(*, org, describe: dict) -> list[SnapField]:
    """Compare the SnapFields with a fresh describe; record what changed on each row (shown to admins)."""
    from django.utils import timezone

    live = {f["name"]: f for f in describe.get("fields") or ()}
    rows = sel.snapfields_for(org.pk)
    for row in rows:
        f = live.get(row.name)
        if f is None:
            problem = "This field is no longer on the Salesforce Event: it is left out until you remove it."
        else:
            values = sel.picklist_values(f) if row.type == "picklist" else []
            retired = [v for v in row.picklist if v not in values] if row.type == "picklist" else []
            problem = ""
            if row.type == "picklist" and row.default and row.default not in values:
                problem = (f"The default “{row.default}” was retired in Salesforce: pick another default. "
                           "The field is left out until then.")
            if row.type == "picklist":
                row.picklist = values
            if retired and not problem:
                problem = ""  # members simply no longer see the retired values
            row.checked_at = timezone.now()
            row.retired_values = retired  # shown once on the settings page
        if problem != row.problem or f is not None:
            row.problem = problem
            row.save(update_fields=["problem", "picklist", "checked_at"])
    return rows


def _facts(row: SnapField) -> dict:
    return {"label": row.label, "required": row.required, "locked": row.locked, "default": row.default}
