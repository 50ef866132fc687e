import pytest

from orgs.access import resolve_org_context


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
