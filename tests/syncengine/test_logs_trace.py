"""The item trace and the support bundle over real runs through the sandbox."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from connections.models import Connection
from orgs.models import AuditEntry
from syncengine.engine.run import engine_policy, run_sync
from syncengine.models import SyncLogEntry

from .conftest import SANDBOX_DBS
from .test_sync_engine import _o_contact, _o_task, _o_update

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


def _sync(member, kind, **kw):
    result = run_sync(member.membership, kind, "manual", **kw)
    assert result.status == "succeeded", result.message
    return result


def test_trace_shows_field_values_in_words_not_python(member, client_for, carol):
    """A created contact's e-mails read "['ada@example.com']" in the trace (a list's repr)."""
    m = member.membership
    _o_contact(member, "Ada", "Lovelace", "ada@example.com")
    _sync(member, "contacts")
    page = client_for(carol).get(reverse("syncengine:trace", args=[m.organization.slug]),
                                 {"item": "ada@example.com"})
    html = page.content.decode()
    assert "<td>ada@example.com</td>" in html and "[&#x27;" not in html
    assert "<td>First name</td>" in html and "first_name" not in html
    member.sf_create("Contact", FirstName="Alan", LastName="Turing", Email="alan@example.com")
    _o_contact(member, "Alan", "Turing", "alan@example.com")
    _sync(member, "contacts")  # paired by e-mail: the trace says so in words
    paired = client_for(carol).get(reverse("syncengine:trace", args=[m.organization.slug]),
                                   {"item": "alan@example.com"}).content.decode()
    assert "Matched by: <strong>e-mail address</strong>" in paired and ">secondary<" not in paired


def test_trace_shows_matched_then_conflicted_then_skipped_with_reasons(member, client_for, carol):
    m = member.membership
    item = _o_contact(member, "Ada", "Lovelace", "ada@example.com", jobTitle="Analyst")
    member.sf_create("Contact", FirstName="Ada", LastName="Lovelace", Email="ada@example.com",
                     Title="Analyst")
    _sync(member, "contacts")  # 1: paired by e-mail
    (row,) = member.sf("Contact")
    _o_update(item, jobTitle="Countess")
    member.sf_update("Contact", row["Id"], Title="Mathematician")
    _sync(member, "contacts", policy=engine_policy(m, "contacts").replace(conflict_winner="outlook"))
    member.sf_update("Contact", row["Id"], Department="Analytics")
    one_way = engine_policy(m, "contacts").replace(direction="outlook_to_salesforce")
    _sync(member, "contacts", policy=one_way)  # 3: the Salesforce edit is not copied

    from policy.selectors import org_policy_get

    org_policy = org_policy_get(org=m.organization, kind="contacts")
    org_policy.locked_fields = ["direction"]
    org_policy.save()

    page = client_for(carol).get(reverse("syncengine:trace", args=[m.organization.slug]),
                                 {"item": "ADA@example.com"})
    assert page.status_code == 200
    rows = page.context["rows"]
    assert [(r.entry.action, r.entry.detail["rule"]) for r in rows] == [
        ("link", "match:secondary"),
        ("conflict", "conflict_winner"),
        ("touch", "direction"),
    ]
    matched, conflict, skipped = (r.entry.detail for r in rows)
    assert matched["match_key"] == "email:ada@example.com"
    assert conflict["conflicts"] == [{"fields": ["job_title"], "winner": "Outlook",
                                      "kept": {"job_title": "Countess"},
                                      "lost": {"job_title": "Mathematician"}}]
    html = page.content.decode()
    assert "Paired by the same identity on both sides (email:ada@example.com)" in html
    assert "Conflict on job_title: Outlook won" in html
    assert '<td class="lost">Mathematician</td>' in html
    assert "Salesforce edit not copied: one-way sync." in html
    assert "The sync direction does not copy changes this way." in html
    # The setting behind the skip, its value then and where it comes from now.
    assert skipped["setting"] == {"name": "direction", "value": "outlook_to_salesforce"}
    assert conflict["setting"] == {"name": "conflict_winner", "value": "outlook"}
    assert ("Setting: <code>direction</code> = <strong>outlook_to_salesforce</strong> "
            '<span class="muted">(locked by your organization now)</span>') in html
    # The same item is found by either side's id.
    by_id = client_for(carol).get(reverse("syncengine:trace", args=[m.organization.slug]),
                                  {"item": row["Id"]})
    assert [r.entry.pk for r in by_id.context["rows"]] == [r.entry.pk for r in rows]


def test_changed_fields_are_logged_per_side_with_short_values_and_no_body(member):
    task = _o_task(member, "Call Ada", body={"contentType": "text", "content": "x" * 3000})
    _sync(member, "tasks")
    _o_update(task, title="Call Ada about the engine " + "very long " * 20,
              body={"contentType": "text", "content": "The secret plan " * 100})
    result = _sync(member, "tasks")
    (entry,) = SyncLogEntry.objects.filter(run_id=result.run_id, action="update")
    rows = {r["field"]: r for r in entry.detail["changes"]["salesforce"]}
    assert rows["title"]["before"] == "Call Ada"
    assert len(rows["title"]["after"]) <= 80 and rows["title"]["after"].endswith("…")
    assert rows["body"]["after"].startswith("(text, ") and "secret plan" not in json.dumps(
        entry.detail)
    assert entry.detail["rule"] == "changed_in_outlook"


def _token_strings(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_token_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_token_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) and len(value) >= 16 else set()


def _bundle(client, org, membership, **extra):
    today = timezone.localdate()
    response = client.post(reverse("syncengine:bundle", args=[org.slug]), {
        "member": str(membership.public_id), "since": (today - dt.timedelta(days=1)).isoformat(),
        "until": today.isoformat(), **extra})
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return {name: archive.read(name).decode() for name in archive.namelist()}


def test_support_bundle_holds_no_token_secret_or_body_and_redacts_on_request(
    member, client_for, bob
):
    m = member.membership
    _o_contact(member, "Grace", "Hopper", "grace@example.com", jobTitle="Rear Admiral")
    _o_task(member, "Plan the launch", body={"contentType": "text",
                                             "content": "Launch codes are in the blue folder"})
    _sync(member, "contacts")
    _sync(member, "tasks")
    secrets = {settings.SECRET_KEY, settings.MICROSOFT_CLIENT_SECRET,
               settings.SALESFORCE_CLIENT_SECRET, *settings.TOKEN_ENCRYPTION_KEYS}
    for conn in Connection.objects.filter(membership=m):
        secrets |= _token_strings(conn.read_tokens()) | {conn.token_blob}
    secrets = {s for s in secrets if s}
    assert len(secrets) > 4

    client = client_for(bob)
    plain = _bundle(client, m.organization, m)
    assert set(plain) == {"runs.csv", "entries.csv", "policy.json", "connections.json",
                          "version.json", "README.txt"}
    everything = "\n".join(plain.values())
    assert not [s for s in secrets if s in everything]
    assert "blue folder" not in everything and "Launch codes" not in everything
    assert "Grace Hopper" in plain["entries.csv"] and "grace@example.com" in plain["entries.csv"]
    policy = json.loads(plain["policy.json"])
    assert policy["contacts"]["direction"]["source"] == "org"
    states = {c["provider"]: c for c in json.loads(plain["connections.json"])}
    assert states["salesforce"]["status"] == "connected" and "token_blob" not in states["salesforce"]
    assert states["microsoft"]["access_expires_at"]

    hidden = _bundle(client, m.organization, m, redact_emails="on", redact_titles="on")
    everything = "\n".join(hidden.values())
    assert "grace@example.com" not in everything and "carol@acme.test" not in everything
    assert "Grace" not in everything and "Hopper" not in everything
    assert "Plan the launch" not in everything
    assert "[title]" in hidden["entries.csv"]
    assert AuditEntry.objects.filter(action="support.bundle", target="carol@acme.test").count() == 2


def test_a_member_bundles_only_their_own_logs(member, client_for, bob, alice):
    from orgs.models import Membership

    other = Membership.objects.get(user=alice)
    today = timezone.localdate().isoformat()
    response = client_for(member.membership.user).post(
        reverse("syncengine:bundle", args=[member.membership.organization.slug]),
        {"member": str(other.public_id), "since": today, "until": today})
    assert response.status_code == 400
    assert b"Select a valid choice" in response.content
