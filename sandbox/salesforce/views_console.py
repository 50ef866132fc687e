"""The demo console: look at a sandbox org's Events, Contacts and Tasks, edit or delete one.

Staff only, and only where the sandbox is mounted at all (never in production).
Every change goes through services.py, so it bumps SystemModstamp and shows up
in the next sync exactly like a change a Salesforce user made.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ..console_access import staff_only
from .models import SfRecord, SfUser
from .services import (
    SfWriteError,
    record_api,
    sf_org_find,
    sf_records_delete,
    sf_records_update,
    sf_series_delete_onwards,
)

# What the console lets a person edit, per object, in display order.
EDITABLE = {
    "Event": ("Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "Location", "ShowAs", "Description"),
    "Contact": ("FirstName", "LastName", "Email", "Phone", "Title", "Department"),
    "Task": ("Subject", "ActivityDate", "Status", "Priority", "Description"),
}
COLUMNS = {
    "Event": ("Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "LinkPoint_Key__c"),
    "Contact": ("Name", "Email", "Phone", "Title", "LinkPoint_Key__c"),
    "Task": ("Subject", "ActivityDate", "Status", "Priority", "LinkPoint_Key__c"),
}
LIST_MAX = 200
# An edit of one occurrence of an event series, as Lightning Experience asks: "this event" is the
# API's pre-58.0 rule (the occurrence alone, an exception), "this and following" the pinned version's.
ONE_OCCURRENCE_VERSION = "57.0"


def _org_or_404(key: str):
    org = sf_org_find(key)
    if org is None:
        raise Http404("No such sandbox org")
    return org


def _acting_user(org, rec: SfRecord) -> SfUser:
    """Edits are made as the record's owner, as if they changed it in Salesforce themselves."""
    return SfUser.objects.filter(org=org, user_id=rec.owner_id).first() or SfUser.objects.filter(org=org).first()


def _tables(org) -> list[dict]:
    tables = []
    for sobject, columns in COLUMNS.items():
        rows = SfRecord.objects.filter(org=org, sobject=sobject, is_deleted=False).order_by("-sf_id")[:LIST_MAX]
        records = [record_api(r) for r in rows]
        series = _series_notes(org, rows) if sobject == "Event" else {}
        tables.append({
            "sobject": sobject,
            "columns": columns,
            "rows": [{"id": r["Id"], "series": series.get(r["Id"], ""), "cells": [r.get(c) for c in columns]}
                     for r in records],
            "total": SfRecord.objects.filter(org=org, sobject=sobject, is_deleted=False).count(),
        })
    return tables


def _series_notes(org, rows) -> dict[str, str]:
    """For each listed occurrence of an event series: "2 of 6 · FREQ=… · zone", and whether it was changed
    alone or kept as history (one query for every series on the page)."""
    listed = {r.sf_id: r.fields for r in rows if r.fields.get("_series")}
    if not listed:
        return {}
    members: dict[str, list[tuple[str, str]]] = {}
    for sf_id, key, start in (SfRecord.objects.filter(org=org, sobject="Event", is_deleted=False,
                                                      fields___series__in={f["_series"] for f in listed.values()})
                              .values_list("sf_id", "fields___series", "fields__StartDateTime")):
        members.setdefault(key, []).append((start or "", sf_id))
    notes = {}
    for sf_id, fields in listed.items():
        group = sorted(members.get(fields["_series"], []))
        position = [i for _, i in group].index(sf_id) + 1 if any(i == sf_id for _, i in group) else "?"
        bits = [f"{position} of {len(group)}", (fields.get("Recurrence2PatternText") or "").removeprefix("RRULE:"),
                fields.get("Recurrence2PatternTimeZone") or ""]
        if fields.get("IsRecurrence2Exception"):
            bits.append("changed alone")
        if fields.get("IsRecurrence2Exclusion"):
            bits.append("history")
        notes[sf_id] = " · ".join(b for b in bits if b)
    return notes


def _render(request, org, *, editing=None, error="", status=200):
    template = "sandbox/salesforce/console.html"
    if request.htmx:
        template += "#records"
    context = {"org": org, "users": org.users.all(), "tables": _tables(org), "editing": editing, "error": error}
    return render(request, template, context, status=status)


def _edit_form(rec: SfRecord, values: dict | None = None) -> dict:
    data = record_api(rec)
    values = values or {}
    return {
        "id": rec.sf_id,
        "sobject": rec.sobject,
        "series": bool(rec.fields.get("_series")),
        "fields": [{"name": f, "value": values.get(f, data.get(f)), "boolean": isinstance(data.get(f), bool)}
                   for f in EDITABLE[rec.sobject]],
    }


def _record_or_404(org, record_id: str) -> SfRecord:
    rec = SfRecord.objects.filter(org=org, sf_id=record_id, is_deleted=False, sobject__in=EDITABLE).first()
    if rec is None:
        raise Http404("No such record")
    return rec


@staff_only
def console(request, key: str):
    org = _org_or_404(key)
    edit_id = request.GET.get("edit")
    editing = _edit_form(_record_or_404(org, edit_id)) if edit_id else None
    return _render(request, org, editing=editing)


@staff_only
@require_POST
def record_save(request, key: str, record_id: str):
    org = _org_or_404(key)
    rec = _record_or_404(org, record_id)
    body = {}
    for name in EDITABLE[rec.sobject]:
        if isinstance(record_api(rec).get(name), bool):
            body[name] = request.POST.get(name) == "on"
        else:
            body[name] = request.POST.get(name, "").strip() or None
    version = ONE_OCCURRENCE_VERSION if request.POST.get("scope") == "one" else None
    result = sf_records_update(user=_acting_user(org, rec), records=[(rec.sobject, rec.sf_id, body)],
                               api_version=version)[0]
    if not result.success:
        error = "; ".join(f"{e.code}: {e.message}" for e in result.errors)
        return _render(request, org, editing=_edit_form(rec, body), error=error, status=400)
    return redirect(request.path.rsplit("/", 3)[0] + "/")


@staff_only
@require_POST
def record_delete(request, key: str, record_id: str):
    org = _org_or_404(key)
    rec = _record_or_404(org, record_id)
    if request.POST.get("onwards") and rec.fields.get("_series"):
        sf_series_delete_onwards(user=_acting_user(org, rec), record_id=rec.sf_id)
    else:
        result = sf_records_delete(user=_acting_user(org, rec), ids=[rec.sf_id])[0]
        if not result.success:
            raise SfWriteError(result.errors)
    if request.htmx:
        return _render(request, org)
    return redirect(request.path.rsplit("/", 3)[0] + "/")
