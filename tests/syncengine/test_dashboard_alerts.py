"""Alerts (issue 14): a member who must reconnect, or a kind failing three times in a row,
e-mails the member and the org's admins once per cause and day and shows a banner; admins
may choose a daily digest instead."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from syncengine import tasks
from syncengine.models import SyncAlert
from tests.connections.conftest import clock  # noqa: F401

from .conftest import SANDBOX_DBS

pytestmark = pytest.mark.django_db(databases=SANDBOX_DBS, transaction=True)


@pytest.fixture
def refused_outlook(member):
    """Microsoft refuses carol's stored sign-in from now on."""
    from django.utils import timezone

    from connections.models import Connection
    from sandbox.faults import fault_add

    Connection.objects.filter(membership=member.membership, provider="microsoft").update(
        access_expires_at=timezone.now())
    fault_add(side="outlook", kind="revoked_refresh_token", path_pattern="/token", count=None)
    return member


def to_of(message) -> set[str]:
    return set(message.to)


def test_reconnect_alert_is_mailed_once_per_day(refused_outlook, alice, bob, clock, client_for):  # noqa: F811
    m = refused_outlook.membership
    mail.outbox.clear()
    tasks.run_sync(m.pk, "contacts", "manual")
    assert [to_of(e) for e in mail.outbox] == [{"carol@acme.test"}, {"alice@acme.test", "bob@acme.test"}]
    assert "needs to reconnect Outlook" in mail.outbox[0].body
    assert "/o/acme/" in mail.outbox[0].body

    tasks.run_sync(m.pk, "contacts", "manual")  # the same cause, the same day: no second e-mail
    tasks.run_sync(m.pk, "tasks", "manual")
    assert len(mail.outbox) == 2
    assert SyncAlert.objects.filter(membership=m).count() == 1

    # The banner, for the member on My sync and for admins on the dashboard.
    my_sync = client_for(m.user).get(reverse("syncengine:my-sync", args=["acme"])).content.decode()
    assert 'id="sync-alerts"' in my_sync and "needs to reconnect Outlook" in my_sync
    home = client_for(alice).get(reverse("orgs:home", args=["acme"])).content.decode()
    assert 'id="sync-alerts"' in home and "carol@acme.test needs to reconnect Outlook" in home

    clock.advance(days=1)
    tasks.run_sync(m.pk, "contacts", "manual")
    assert len(mail.outbox) == 4  # a new day: one reminder to the member, one to the admins


def test_three_failures_in_a_row_alert(member, alice, bob):
    from sandbox.faults import fault_add

    fault_add(side="salesforce", kind="http_503", count=None, retry_after=3600)
    mail.outbox.clear()
    for _ in range(2):
        tasks.run_sync(member.membership.pk, "tasks", "manual")
    assert mail.outbox == []  # two failures are not yet "in a row" enough
    tasks.run_sync(member.membership.pk, "tasks", "manual")
    subjects = [e.subject for e in mail.outbox]
    assert len(subjects) == 2 and "Tasks sync of carol@acme.test failed 3 times in a row" in mail.outbox[0].body
    tasks.run_sync(member.membership.pk, "tasks", "manual")
    assert len(mail.outbox) == 2
    alert = SyncAlert.objects.get(cause="failing", subject="tasks")
    assert alert.resolved_at is None


def test_a_success_resolves_the_alert(member, alice):
    from sandbox.faults import fault_add, faults_clear

    fault_add(side="salesforce", kind="http_503", count=None, retry_after=3600)
    for _ in range(3):
        tasks.run_sync(member.membership.pk, "tasks", "manual")
    faults_clear()
    tasks.run_sync(member.membership.pk, "tasks", "manual")
    assert SyncAlert.objects.get(cause="failing").resolved_at is not None


def test_digest_admins_get_one_mail_a_day(refused_outlook, alice, bob, client_for):
    from syncengine.models import OrgSyncSettings
    from syncengine.services import alerts_digest_send

    OrgSyncSettings.objects.create(organization=refused_outlook.membership.organization,
                                   alert_delivery="digest")
    mail.outbox.clear()
    tasks.run_sync(refused_outlook.membership.pk, "contacts", "manual")
    assert [to_of(e) for e in mail.outbox] == [{"carol@acme.test"}]  # the member at once
    assert alerts_digest_send() == 1
    digest = mail.outbox[-1]
    assert to_of(digest) == {"alice@acme.test", "bob@acme.test"} and "daily digest" in digest.subject
    assert "carol@acme.test needs to reconnect Outlook" in digest.body
    assert alerts_digest_send() == 0  # a re-run sends nothing twice
    assert len(mail.outbox) == 2


def test_the_digest_schedule_is_created_once_by_name(db):
    from django_q.models import Schedule

    from syncengine.services import ALERT_DIGEST_SCHEDULE, alerts_schedule_ensure

    alerts_schedule_ensure()
    alerts_schedule_ensure()
    assert Schedule.objects.filter(name=ALERT_DIGEST_SCHEDULE).count() == 1
