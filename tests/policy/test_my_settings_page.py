"""My sync settings: effective values with their source, overrides, resets, locks, notices."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.access import resolve_org_context
from orgs.models import AuditEntry, Membership
from policy.models import PolicyNotice, UserPolicy
from policy.services import org_policy_update

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def row_html(html: str, field: str) -> str:
    start = html.index(f'id="field-{field}"')
    return html[start : html.index("</tr>", start)]


def test_member_sees_effective_values_and_their_source(carol, client_for):
    html = client_for(carol).get("/o/acme/policy/me/").content.decode()
    row = row_html(html, "mode")
    assert '<option value="snaprecord" selected>' in row
    assert "Organization default" in row
    assert "Auto sync replaces SnapRecord" in row
    assert "Reset to org default" not in row


def test_override_then_reset_to_org_default(carol, client_for):
    client = client_for(carol)
    r = client.post("/o/acme/policy/me/calendar/set/mode/", {"value": "auto"}, **HTMX)
    html = r.content.decode()
    assert "<html" not in html
    assert "Auto sync replaces SnapRecord: SnapRecord is now off for the calendar." in html
    row = row_html(html, "mode")
    assert '<option value="auto" selected>' in row and "Your setting" in row
    assert "Reset to org default" in row

    r = client.post("/o/acme/policy/me/calendar/reset/mode/", **HTMX)
    row = row_html(r.content.decode(), "mode")
    assert '<option value="snaprecord" selected>' in row and "Organization default" in row
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["policy.user_set"] * 2


def test_checkbox_turns_on_and_off(carol, client_for):
    client = client_for(carol)
    client.post("/o/acme/policy/me/calendar/set/include_private/", {"value": ["off", "on"]}, **HTMX)
    assert UserPolicy.objects.get().include_private is True
    client.post("/o/acme/policy/me/calendar/set/include_private/", {"value": ["off"]}, **HTMX)
    assert UserPolicy.objects.get().include_private is False


def test_locked_field_is_read_only_and_a_forged_post_is_refused(alice, carol, client_for):
    org_policy_update(
        ctx=resolve_org_context(alice, "acme"),
        kind="calendar",
        values={"direction": "both", "mode": "manual"},
        locks=["direction"],
    )
    client = client_for(carol)
    row = row_html(client.get("/o/acme/policy/me/").content.decode(), "direction")
    assert "Locked by your organization" in row
    assert "<select" not in row and "Both ways" in row

    r = client.post(
        "/o/acme/policy/me/calendar/set/direction/", {"value": "outlook_to_salesforce"}, **HTMX
    )
    assert "Direction is locked by your organization." in r.content.decode()
    assert not UserPolicy.objects.filter(direction__isnull=False).exists()


def test_notice_after_lock_is_shown_and_dismissable(alice, carol, client_for):
    client = client_for(carol)
    client.post("/o/acme/policy/me/calendar/set/days_back/", {"value": "3"}, **HTMX)
    org_policy_update(ctx=resolve_org_context(alice, "acme"), kind="calendar", locks=["days_back"])

    html = client.get("/o/acme/policy/me/").content.decode()
    assert (
        "Your organization locked calendar settings you had changed: Past days is now 30 days (you had 3 days)."
        in html
    )
    notice = PolicyNotice.objects.get()
    r = client.post(f"/o/acme/policy/me/notices/{notice.public_id}/dismiss/", **HTMX)
    assert "Past days is now" not in r.content.decode()
    assert "Past days is now" not in client.get("/o/acme/policy/me/").content.decode()


def test_someone_elses_notice_is_404(bob, carol, client_for):
    notice = PolicyNotice.objects.create(
        membership=Membership.objects.get(user=carol), kind="calendar", message="x"
    )
    r = client_for(bob).post(f"/o/acme/policy/me/notices/{notice.public_id}/dismiss/")
    assert r.status_code == 404
    notice.refresh_from_db()
    assert notice.dismissed_at is None


def test_validation_messages_on_the_page(carol, client_for):
    client = client_for(carol)
    r = client.post("/o/acme/policy/me/calendar/set/days_ahead/", {"value": "0"}, **HTMX)
    assert "Future days must be between 1 and 730 days." in r.content.decode()
    r = client.post("/o/acme/policy/me/time-zone/", {"time_zone": "Atlantis/Capital"}, **HTMX)
    assert "Unknown time zone “Atlantis/Capital”" in r.content.decode()
    r = client.post("/o/acme/policy/me/time-zone/", {"time_zone": "Asia/Tokyo"}, **HTMX)
    assert 'value="Asia/Tokyo"' in r.content.decode()
    carol.refresh_from_db()
    assert carol.time_zone == "Asia/Tokyo"


def test_staff_without_membership_is_sent_to_the_org_policy(pat, org_a, client_for):
    r = client_for(pat).get("/o/acme/policy/me/")
    assert r.status_code == 302 and r["Location"] == "/o/acme/policy/"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/o/acme/policy/me/"),
        ("get", "/o/acme/policy/me/tasks/"),
        ("post", "/o/acme/policy/me/calendar/set/mode/"),
        ("post", "/o/acme/policy/me/calendar/reset/mode/"),
        ("post", "/o/acme/policy/me/time-zone/"),
        ("post", "/o/acme/policy/me/notices/00000000-0000-0000-0000-000000000000/dismiss/"),
    ],
)
def test_outsider_gets_404(carol, charlie, client_for, method, url):
    r = getattr(client_for(charlie), method)(url, {"value": "off", "time_zone": "UTC"})
    assert r.status_code == 404
    assert not UserPolicy.objects.exists()


def test_query_count_does_not_grow_with_members(carol, org_a, make_user, client_for):
    client = client_for(carol)
    client.get("/o/acme/policy/me/")
    with CaptureQueriesContext(connection) as one_member:
        client.get("/o/acme/policy/me/")

    for i in range(24):
        m = Membership.objects.create(organization=org_a, user=make_user(f"u{i}@acme.test"))
        UserPolicy.objects.create(membership=m, kind="calendar", days_back=i)
        PolicyNotice.objects.create(membership=m, kind="calendar", message="x")
    with CaptureQueriesContext(connection) as many_members:
        r = client.get("/o/acme/policy/me/")
    assert r.status_code == 200 and "Organization default" in r.content.decode()
    assert len(many_members) == len(one_member)


def row_ids(html: str) -> list[str]:
    import re

    return re.findall(r'<tr id="field-([a-z_]+)"', html)


@pytest.mark.parametrize(
    ("kind", "mode", "shown", "hidden"),
    [
        ("calendar", "snaprecord", {"days_back", "outlook_category_filter"},
         {"window_start", "frequency_minutes", "direction", "conflict_winner"}),
        ("calendar", "manual", {"direction", "conflict_winner", "days_ahead"},
         {"window_enabled", "window_start", "window_end", "frequency_minutes"}),
        ("tasks", "auto", {"frequency_minutes", "window_start", "completed_within_days"}, set()),
        ("contacts", "off", {"mode"}, {"direction", "contact_scope", "frequency_minutes"}),
    ],
)
def test_rows_follow_the_chosen_mode(carol, client_for, kind, mode, shown, hidden):
    client = client_for(carol)
    html = client.post(f"/o/acme/policy/me/{kind}/set/mode/", {"value": mode}, **HTMX).content.decode()
    ids = set(row_ids(html))
    assert shown <= ids and not (hidden & ids)
    if mode == "off":
        assert ids == {"mode"} and "sync is off: nothing is synced" in html


def test_every_save_is_confirmed_in_its_row(carol, client_for):
    client = client_for(carol)
    client.post("/o/acme/policy/me/tasks/set/mode/", {"value": "auto"}, **HTMX)
    for field, value, message in (
        ("frequency_minutes", "45", "Saved: 45 minutes."),
        ("window_enabled", ["off", "on"], "Saved: On."),
        ("window_start", "07:15", "Saved: 07:15."),
        ("outlook_category_filter", "  Sales  ", "Saved: Sales."),
    ):
        html = client.post(f"/o/acme/policy/me/tasks/set/{field}/", {"value": value}, **HTMX)
        html = html.content.decode()
        assert message in row_html(html, field)
        assert html.count('class="row-saved"') == 1
    html = client.post("/o/acme/policy/me/tasks/reset/frequency_minutes/", **HTMX).content.decode()
    assert "Saved: back to the organization&#x27;s value (30 minutes)." in row_html(
        html, "frequency_minutes"
    )


def test_preview_buttons_post_to_the_dry_run(carol, client_for):
    from policy.pages import settings_preview_url

    url = settings_preview_url("acme")
    if not url:
        pytest.skip("the My sync pages (syncengine:settings-preview) are not installed")
    client = client_for(carol)
    client.post("/o/acme/policy/me/calendar/set/mode/", {"value": "manual"}, **HTMX)
    html = client.get("/o/acme/policy/me/").content.decode()
    for field in ("direction", "days_back", "conflict_winner", "delete_salesforce_to_outlook",
                  "outlook_category_filter"):
        row = row_html(html, field)
        assert f'formaction="{url}"' in row and "Preview this change" in row
        assert f'name="field" value="{field}"' in row and 'name="kind" value="calendar"' in row
    for field in ("mode", "mass_delete_min_items"):
        assert "Preview this change" not in row_html(html, field)


def test_blocking_advice_without_javascript(carol, client_for):
    from policy import extensions

    def advisor(*, org, membership, kind, field, value):
        return [extensions.Advice("Look first.", "/somewhere/", "Preview first", blocking=True)]

    client = client_for(carol)
    with extensions.advisors_replaced(advisor):
        r = client.post("/o/acme/policy/me/tasks/set/include_private/", {"value": ["off", "on"]})
        assert r.status_code == 200
        row = row_html(r.content.decode(), "include_private")
        assert "Look first." in row and 'href="/somewhere/"' in row and "Save anyway" in row
        assert 'name="confirm" value="1"' in row and 'name="value" value="on"' in row
        assert not UserPolicy.objects.filter(include_private__isnull=False).exists()

        r = client.post(
            "/o/acme/policy/me/tasks/set/include_private/", {"value": "on", "confirm": "1"}
        )
        assert r.status_code == 302
        assert UserPolicy.objects.get().include_private is True


def test_no_preview_under_snaprecord_or_off(carol, client_for):
    client = client_for(carol)
    html = client.get("/o/acme/policy/me/").content.decode()  # calendar: SnapRecord
    assert "Preview this change" not in html
    # Without a dry run the row saves on change again.
    assert 'hx-trigger="change, submit"' in row_html(html, "days_back")


def test_a_post_to_a_row_the_mode_hides_still_gets_its_answer(carol, client_for):
    client = client_for(carol)  # calendar in SnapRecord: the auto schedule is hidden
    r = client.post("/o/acme/policy/me/calendar/set/frequency_minutes/", {"value": "45"}, **HTMX)
    html = r.content.decode()
    assert 'id="field-frequency_minutes"' not in html
    assert "Auto sync every: Saved: 45 minutes. It applies in Auto sync." in html
    r = client.post("/o/acme/policy/me/calendar/set/frequency_minutes/", {"value": "2"}, **HTMX)
    assert "Auto sync every must be between 5 and 1440 minutes." in r.content.decode()
    assert UserPolicy.objects.get().frequency_minutes == 45
