"""'Preview this change' on the settings page: a plan under the proposed setting, nothing saved or written."""

from __future__ import annotations

import pytest

from policy.models import OrgPolicy, UserPolicy
from syncengine.models import SyncCursor, SyncLink, SyncRun

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS)
URL = "/o/acme/sync/preview-settings/"


def _sandbox_state(member):
    """Every remote item on both sides with its version: a write changes this."""
    from sandbox.microsoft.models import Item
    from sandbox.salesforce.models import SfRecord

    outlook = sorted(Item.objects.filter(mailbox=member.mailbox).values_list("pk", "change_key", "deleted"))
    salesforce = sorted(SfRecord.objects.filter(org=member.sf_user.org).values_list("pk", "system_modstamp", "is_deleted"))
    return outlook, salesforce


def test_a_dry_run_of_a_direction_change_writes_nothing(member, client_for, carol):
    from sandbox.accounting import api_counts_by_family, api_counts_reset
    from sandbox.microsoft.services import contact_create
    from syncengine.tasks import run_queued

    contact_create(member.mailbox, {"givenName": "Ada", "surname": "Lovelace"})
    member.sf_create("Contact", FirstName="Alan", LastName="Turing")
    before = _sandbox_state(member)
    api_counts_reset()
    client = client_for(carol)
    response = client.post(URL, {"kind": "contacts", "field": "direction", "value": "outlook_to_salesforce"})
    run = SyncRun.objects.get(purpose="settings_preview")
    assert response.status_code == 302 and response["Location"] == f"/o/acme/sync/runs/{run.pk}/review/"
    assert run.policy_overrides == {"direction": "outlook_to_salesforce"}
    run_queued(run.pk)

    html = client.get(response["Location"]).content.decode()
    assert "What this change would do" in html and "Run selected" not in html
    assert "Ada Lovelace" in html and "Alan Turing" not in html  # one way: nothing comes back to Outlook
    assert _sandbox_state(member) == before
    families = {family for (_side, family) in api_counts_by_family()}
    assert not families & {"sf-collections", "sf-composite", "sf-upsert", "graph-batch"}, families
    assert not UserPolicy.objects.filter(membership=member.membership, kind="contacts").exists()
    assert not SyncLink.objects.exists() and not SyncCursor.objects.filter(outlook_delta_link__gt="").exists()


def test_run_history_names_a_dry_run_and_never_asks_to_apply_it(member, client_for, carol):
    """History listed a settings dry run as a plain manual run with "review, then apply the
    plan", which a dry run can never be."""
    from syncengine.tasks import run_queued

    client = client_for(carol)
    client.post(URL, {"kind": "contacts", "field": "direction", "value": "outlook_to_salesforce"})
    run = SyncRun.objects.get(purpose="settings_preview")
    run_queued(run.pk)
    run.refresh_from_db()
    assert run.status == "planned" and "apply" not in run.error
    assert "nothing was saved or written" in run.error
    html = client.get("/o/acme/sync/history/").content.decode()
    assert "Settings dry run" in html and "then apply the plan" not in html


def test_an_invalid_value_is_shown_on_the_settings_page(member, client_for, carol):
    response = client_for(carol).post(URL, {"kind": "calendar", "field": "days_back", "value": "-4"}, follow=True)
    assert response.redirect_chain[-1][0] == "/o/acme/policy/me/calendar/"
    assert "Past days must be between" in response.content.decode()
    assert not SyncRun.objects.exists()


def test_a_locked_or_unpreviewable_field_is_refused(member, client_for, carol, org_a):
    policy = OrgPolicy.with_defaults(organization_id=org_a.pk, kind="contacts")
    policy.locked_fields = ["direction"]
    policy.save()
    client = client_for(carol)
    locked = client.post(URL, {"kind": "contacts", "field": "direction", "value": "both"}, follow=True)
    assert "locked" in locked.content.decode().lower()
    mode = client.post(URL, {"kind": "contacts", "field": "mode", "value": "auto"}, follow=True)
    assert "cannot be previewed" in mode.content.decode()
    assert not SyncRun.objects.exists()


def test_an_htmx_post_redirects_the_whole_page(member, client_for, carol):
    response = client_for(carol).post(URL, {"kind": "tasks", "field": "direction", "value": "both"},
                                      headers={"HX-Request": "true"})
    run = SyncRun.objects.get(purpose="settings_preview")
    assert response["HX-Redirect"] == f"/o/acme/sync/runs/{run.pk}/review/"


def test_without_connections_the_settings_page_says_what_to_connect(client_for, carol):
    response = client_for(carol).post(URL, {"kind": "tasks", "field": "direction", "value": "both"}, follow=True)
    assert "Outlook is not connected" in response.content.decode()


def test_first_auto_advisor(member, org_a):
    from django.utils import timezone

    from policy.extensions import advise

    advice = advise(org=org_a, membership=member.membership, kind="contacts", field="mode", value="auto")
    (a,) = [x for x in advice if "preview what Auto would do" in x.message]
    assert a.blocking and a.url == "/o/acme/sync/#card-contacts" and a.url_label == "Preview first"
    assert "You have not synced contacts yet" in a.message
    assert not [x for x in advise(org=org_a, membership=member.membership, kind="contacts", field="mode",
                                  value="manual") if "Auto" in x.message]
    org_wide = advise(org=org_a, membership=None, kind="contacts", field="mode", value="auto")
    assert any("asked to preview" in x.message and not x.blocking for x in org_wide)
    SyncRun.objects.create(membership=member.membership, kind="contacts", trigger="manual", purpose="apply_plan",
                           status="succeeded", started_at=timezone.now())
    assert not [x for x in advise(org=org_a, membership=member.membership, kind="contacts", field="mode",
                                  value="auto") if x.blocking]
