"""The org policy page: admins and staff edit defaults and locks; members and outsiders can't."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.models import AuditEntry, Membership
from policy.models import OrgPolicy, PolicyNotice, UserPolicy

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_admin_sees_every_calendar_setting_with_defaults(bob, client_for):
    r = client_for(bob).get("/o/acme/policy/")
    assert r.status_code == 200
    html = r.content.decode()
    for label in ("Sync mode", "Direction", "Past days", "Future days", "Mass-delete guard"):
        assert label in html
    assert "Auto sync replaces SnapRecord" in html
    assert '<option value="snaprecord" selected>' in html
    assert 'value="365"' in html
    assert "Contacts to sync" not in html  # a contacts setting


def test_tabs_switch_kind_and_htmx_gets_only_the_section(bob, client_for):
    r = client_for(bob).get("/o/acme/policy/contacts/", **HTMX)
    html = r.content.decode()
    assert "Contacts to sync" in html and "<html" not in html
    assert 'id="policy-section"' in html
    assert client_for(bob).get("/o/acme/policy/bogus/").status_code == 404


def test_changing_a_value_swaps_the_section_and_saves(bob, client_for):
    r = client_for(bob).post("/o/acme/policy/calendar/set/days_back/", {"value": "60"}, **HTMX)
    assert r.status_code == 200
    assert 'value="60"' in r.content.decode()
    assert OrgPolicy.objects.get(kind="calendar").days_back == 60


def test_out_of_bounds_value_shows_the_message_and_saves_nothing(bob, client_for):
    r = client_for(bob).post(
        "/o/acme/policy/calendar/set/frequency_minutes/", {"value": "1"}, **HTMX
    )
    assert "Auto sync every must be between 5 and 1440 minutes." in r.content.decode()
    assert not OrgPolicy.objects.exists()


def test_one_way_direction_marks_winner_as_not_used(bob, client_for):
    client = client_for(bob)
    client.post("/o/acme/policy/contacts/set/conflict_winner/", {"value": "salesforce"}, **HTMX)
    r = client.post(
        "/o/acme/policy/contacts/set/direction/", {"value": "outlook_to_salesforce"}, **HTMX
    )
    html = r.content.decode()
    assert "Conflict winner set to Outlook" in html
    assert "Not used for one-way sync: Outlook always wins." in html
    assert OrgPolicy.objects.get(kind="contacts").conflict_winner == "outlook"


def test_lock_toggle_clears_overrides_and_shows_count(bob, carol, client_for):
    UserPolicy.objects.create(
        membership=Membership.objects.get(user=carol), kind="calendar", days_back=5
    )
    client = client_for(bob)
    assert "1 member" in client.get("/o/acme/policy/").content.decode()

    r = client.post("/o/acme/policy/calendar/lock/days_back/", {"locked": "1"}, **HTMX)
    html = r.content.decode()
    assert 'aria-label="Unlock Past days"' in html
    assert OrgPolicy.objects.get(kind="calendar").locked_fields == ["days_back"]
    assert UserPolicy.objects.get().days_back is None
    assert PolicyNotice.objects.get().membership.user == carol

    client.post("/o/acme/policy/calendar/lock/days_back/", {"locked": "0"}, **HTMX)
    assert OrgPolicy.objects.get(kind="calendar").locked_fields == []


def test_staff_edit_as_professional_services(pat, org_a, client_for):
    r = client_for(pat).post("/o/acme/policy/tasks/set/mode/", {"value": "auto"}, **HTMX)
    assert r.status_code == 200
    entry = AuditEntry.objects.get(action="policy.org_update")
    assert entry.acting_as_staff and entry.actor == pat


def test_member_gets_403_and_cannot_post(carol, client_for):
    client = client_for(carol)
    assert client.get("/o/acme/policy/").status_code == 403
    assert client.post("/o/acme/policy/calendar/lock/mode/", {"locked": "1"}).status_code == 403
    assert client.post("/o/acme/policy/calendar/set/mode/", {"value": "off"}).status_code == 403
    assert not OrgPolicy.objects.exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/o/acme/policy/"),
        ("get", "/o/acme/policy/tasks/"),
        ("post", "/o/acme/policy/calendar/set/mode/"),
        ("post", "/o/acme/policy/calendar/lock/mode/"),
    ],
)
def test_outsider_gets_404(alice, charlie, client_for, method, url):
    r = getattr(client_for(charlie), method)(url, {"value": "off", "locked": "1"})
    assert r.status_code == 404
    assert not OrgPolicy.objects.exists()


def test_query_count_does_not_grow_with_members(bob, org_a, make_user, client_for):
    client = client_for(bob)
    client.get("/o/acme/policy/")  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one_member:
        client.get("/o/acme/policy/")

    for i in range(24):
        m = Membership.objects.create(organization=org_a, user=make_user(f"u{i}@acme.test"))
        UserPolicy.objects.create(membership=m, kind="calendar", days_back=i, mode="auto")
    with CaptureQueriesContext(connection) as many_members:
        r = client.get("/o/acme/policy/")
    assert "24 members" in r.content.decode()
    assert len(many_members) == len(one_member)


def test_other_modes_wait_in_their_own_group_unless_the_mode_is_locked(bob, client_for):
    client = client_for(bob)
    html = client.get("/o/acme/policy/").content.decode()
    main, _, others = html.partition("Defaults for members who choose another mode")
    assert 'id="field-days_back"' in main and 'id="field-frequency_minutes"' not in main
    assert 'id="field-frequency_minutes"' in others and 'id="field-direction"' in others

    r = client.post("/o/acme/policy/calendar/lock/mode/", {"locked": "1"}, **HTMX)
    html = r.content.decode()
    assert "Locked: every member now uses SnapRecord." in row_html(html, "mode")
    assert 'id="field-frequency_minutes"' not in html
    assert "Sync mode is locked, so 7 settings only other modes use are hidden." in html


def test_a_save_in_the_other_modes_group_keeps_it_open_and_says_saved(bob, client_for):
    r = client_for(bob).post(
        "/o/acme/policy/calendar/set/frequency_minutes/", {"value": "15"}, **HTMX
    )
    html = r.content.decode()
    assert '<details class="other-modes" open>' in html
    assert "Saved: 15 minutes." in row_html(html, "frequency_minutes")


def test_org_advice_is_shown_after_the_save(bob, client_for):
    from policy import extensions

    def advisor(*, org, membership, kind, field, value):
        return [extensions.Advice("Members review first.", blocking=True)]

    with extensions.advisors_replaced(advisor):
        r = client_for(bob).post("/o/acme/policy/tasks/set/mode/", {"value": "auto"}, **HTMX)
    row = row_html(r.content.decode(), "mode")
    assert "Members review first." in row and "Saved: Auto sync." in row
    assert "anyway" not in row
    assert OrgPolicy.objects.get(kind="tasks").mode == "auto"


def row_html(html: str, field: str) -> str:
    start = html.index(f'id="field-{field}"')
    return html[start : html.index("</tr>", start)]
