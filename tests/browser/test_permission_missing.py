"""'Permission missing: re-consent' on My connections and the dashboard, at 1280 and 390 px (issue 15)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from connections.models import Connection, Status
from orgs.models import Membership

from .conftest import ARTIFACTS

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])
MESSAGE = ("Outlook refused access: a permission LinkPoint needs (Calendars.ReadWrite) is not granted. "
           "Grant it again on the My connections page (Grant permissions).")


@pytest.fixture
def consent_missing(carol, org_a):
    membership = Membership.objects.get(user=carol, organization=org_a)
    now = timezone.now()
    Connection.objects.create(membership=membership, provider="microsoft", status=Status.NEEDS_CONSENT,
                              account_name=carol.email, last_error=MESSAGE, last_error_at=now, connected_at=now)
    Connection.objects.create(membership=membership, provider="salesforce", status=Status.CONNECTED,
                              account_name=carol.email, connected_at=now)


@pytest.mark.parametrize("width", [1280, 390])
def test_connection_page_and_dashboard_show_the_missing_permission(
    browser_page, browser_login, consent_missing, carol, alice, width
):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)
    browser_login(page, carol)
    page.goto("/o/acme/connections/")
    card = page.locator("#connection-microsoft")
    assert "Permission missing: re-consent" in card.inner_text()
    assert card.get_by_role("button", name="Grant permissions").is_visible()
    assert MESSAGE in card.inner_text()
    assert page.locator("#connection-salesforce").get_by_role("button", name="Reconnect").is_visible()
    page.screenshot(path=str(ARTIFACTS / f"permission_missing_connections_{width}.png"), full_page=True)

    page.context.clear_cookies()
    browser_login(page, alice)
    page.goto("/o/acme/")
    health = page.locator("#connection-health")
    assert "Permission missing: re-consent" in health.inner_text()
    health.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"permission_missing_dashboard_{width}.png"), full_page=True)
