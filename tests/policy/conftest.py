import pytest

from orgs.access import resolve_org_context

# The browser harness lives in tests/browser/conftest.py; its fixtures (and the
# screenshot-on-failure hook) are made available to tests/policy by importing them.
from tests.browser.conftest import (  # noqa: F401
    _playwright_browser,
    browser_login,
    browser_page,
    pytest_runtest_makereport,
)


@pytest.fixture
def ctx_for():
    """The OrgContext a view would see for `user` in org `slug` (staff act as Professional Services)."""

    def make(user, slug="acme"):
        return resolve_org_context(user, slug)

    return make


@pytest.fixture
def membership_of():
    from orgs.models import Membership

    def get(user, slug="acme"):
        return Membership.objects.select_related("user").get(user=user, organization__slug=slug)

    return get


@pytest.fixture(autouse=True)
def _no_foreign_advisors():
    """Policy tests see only the advisors they register (syncengine registers its own)."""
    from policy import extensions

    with extensions.advisors_replaced():
        yield
