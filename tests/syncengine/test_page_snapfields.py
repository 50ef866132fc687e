"""SnapFields settings: org admins pick extra Event fields from the describe; describe changes shown."""

from __future__ import annotations

import pytest

from orgs.models import AuditEntry
from syncengine.models import SnapField

from .conftest import SANDBOX_DBS

pytestmark = [pytest.mark.django_db(databases=SANDBOX_DBS), pytest.mark.usefixtures("fresh_cache")]

URL = "/o/acme/sync/calendar/fields/"


@pytest.fixture
def admin_sf(bob, org_a, client_for):
    """bob (admin), connected to the Acme Salesforce org, which has a meeting-type picklist."""
    from sandbox.salesforce.services import sf_custom_field_ensure, sf_user_ensure
    from tests.connections.conftest import Journey

    sf_user = sf_user_ensure(email=bob.email, org_name="Acme", time_zone="UTC")
    sf_custom_field_ensure(org=sf_user.org, sobject="Event", name="Meeting_Type__c", label="Meeting type",
                           type="picklist", picklist=["Discovery", "Demo", "Negotiation"])
    assert Journey(client_for(bob), org_a.slug).connect("salesforce", email=bob.email).status_code == 302
    return sf_user


def test_admin_adds_a_custom_picklist_and_sets_required_default_and_lock(admin_sf, client_for, bob):
    client = client_for(bob)
    page = client.get(URL).content.decode()
    assert "Meeting type (Meeting_Type__c, picklist)" in page and "WhoId" not in page
    client.post(URL, {"action": "add", "name": "Meeting_Type__c"})
    row = SnapField.objects.get()
    assert (row.type, row.picklist, row.required) == ("picklist", ["Discovery", "Demo", "Negotiation"], False)
    client.post(URL, {"action": "save", "field": row.pk, "required": "1", "locked": "1", "default": "Demo"})
    row.refresh_from_db()
    assert (row.required, row.locked, row.default) == (True, True, "Demo")
    assert AuditEntry.objects.filter(action__startswith="snapfield.").count() == 2


@pytest.mark.parametrize(("post", "message"), [
    ({"action": "add", "name": "WhoId"}, "cannot be a SnapField"),
    ({"action": "add", "name": "Nope__c"}, "cannot be a SnapField"),
    ({"action": "save", "default": "Party"}, "is not a value of Meeting type in Salesforce"),
    ({"action": "save", "locked": "1", "default": ""}, "a locked field needs a default"),
    ({"action": "save", "field": "abc"}, "That field is not known."),
])
def test_bad_settings_are_refused_with_a_message(admin_sf, client_for, bob, post, message):
    client = client_for(bob)
    client.post(URL, {"action": "add", "name": "Meeting_Type__c"})
    row = SnapField.objects.get()
    answer = client.post(URL, {"field": row.pk, **post}, follow=True)
    assert message in answer.content.decode()
    row.refresh_from_db()
    assert (row.locked, row.default) == (False, "") and SnapField.objects.count() == 1


def test_a_describe_change_is_shown_to_the_admin_never_a_failed_write(admin_sf, client_for, bob):
    from sandbox.salesforce.services import sf_custom_field_change

    client = client_for(bob)
    client.post(URL, {"action": "add", "name": "Meeting_Type__c"})
    row = SnapField.objects.get()
    client.post(URL, {"action": "save", "field": row.pk, "default": "Demo"})
    sf_custom_field_change(org=admin_sf.org, sobject="Event", name="Meeting_Type__c", retire=("Demo",))
    page = client.get(URL).content.decode()
    assert "The default “Demo” was retired in Salesforce" in page and "Retired in Salesforce: Demo" in page
    row.refresh_from_db()
    assert row.picklist == ["Discovery", "Negotiation"] and row.problem
    sf_custom_field_change(org=admin_sf.org, sobject="Event", name="Meeting_Type__c", delete=True)
    assert "no longer on the Salesforce Event" in client.get(URL).content.decode()


def test_members_get_403_staff_read_only_outsiders_404(admin_sf, client_for, carol, pat, charlie):
    assert client_for(carol).get(URL).status_code == 403
    staff = client_for(pat).get(URL)
    assert staff.status_code == 200 and "staff see the settings read-only" in staff.content.decode()
    assert client_for(pat).post(URL, {"action": "add", "name": "Meeting_Type__c"}).status_code == 302
    assert not SnapField.objects.exists()
    assert client_for(charlie).get(URL).status_code == 404
