"""Resending an invitation mails the invitee again, but not without limit."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from orgs import services
from orgs.access import resolve_org_context
from orgs.models import AuditEntry

HX = {"HX-Request": "true"}
pytestmark = pytest.mark.usefixtures("fresh_cache")


@pytest.fixture
def invitation(alice, org_a):
    return services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="dave@example.com", role="member")


def resend(client, org, invitation, **extra):
    return client.post(reverse("orgs:invitation-resend", args=[org.slug, invitation.public_id]), **extra)


@pytest.mark.django_db
def test_twenty_clicks_send_one_mail_and_say_when_it_can_go_again(
        client_for, alice, invitation, org_a, django_capture_on_commit_callbacks):
    client = client_for(alice)
    responses = []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(20):
            responses.append(resend(client, org_a, invitation, headers=HX))
    assert len(mail.outbox) == 1
    assert b"Sent again" in responses[0].content
    refused = responses[1]
    assert refused.status_code == 200 and b"<html" not in refused.content  # the row, in place
    assert b"This invitation was sent a moment ago. You can send it again in about 5 minutes." in refused.content
    assert AuditEntry.objects.filter(action="invitation.resend").count() == 1


@pytest.mark.django_db
def test_without_javascript_the_refusal_is_a_message_on_the_members_page(client_for, alice, invitation, org_a):
    client = client_for(alice)
    resend(client, org_a, invitation)
    page = resend(client, org_a, invitation, follow=True)
    assert page.redirect_chain[-1][0] == reverse("orgs:member-list", args=[org_a.slug])
    assert b"You can send it again in about" in page.content


@pytest.mark.django_db
def test_daily_cap_holds_even_when_the_cooldown_has_passed(
        client_for, alice, invitation, org_a, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "RESEND_COOLDOWN", timedelta(seconds=1))
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(services.RESEND_DAILY_CAP):
            assert b"Sent again" in resend(client, org_a, invitation, headers=HX).content
            time.sleep(1.05)
        refused = resend(client, org_a, invitation, headers=HX)
    assert len(mail.outbox) == services.RESEND_DAILY_CAP
    assert b"already sent again 5 times in the last 24 hours" in refused.content


@pytest.mark.django_db
def test_each_invitation_has_its_own_limit(client_for, alice, invitation, org_a, django_capture_on_commit_callbacks):
    other = services.invitation_create(ctx=resolve_org_context(alice, org_a.slug), email="erin@example.com", role="member")
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        resend(client, org_a, invitation, headers=HX)
        resend(client, org_a, other, headers=HX)
    assert sorted(m.to[0] for m in mail.outbox) == ["dave@example.com", "erin@example.com"]
