"""Tenant sweep: every org-scoped URL of the project, requested by an outsider, is a 404.

The URL list is not written down here: it is walked from the resolver, so URLs
that later apps add (policy, connections, sync, ...) are swept automatically.
A route is in scope when it takes an org slug or an object reference (an id,
uuid, token or public id). Each parameter is filled with a real org-A object
where one exists, so the test proves that org A's data is out of reach, not
merely that random ids are missing.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from orgs.models import Invitation, Membership

# The only routes outside the sweep, each with the reason. Nothing else may be added
# without a reason a reviewer accepts.
NON_TENANT_PREFIXES = {
    "admin/": "Django admin: staff-only, guarded by is_staff, not tenant pages",
    "accounts/": "allauth identity pages: per user, no org data",
    "sandbox/": "emulated Microsoft/Salesforce servers: another company's API, not ours",
}

# Realistic values for plain (non-object) parameters, so an undecorated view reaches its
# real lookup instead of failing early on a nonsense value.
PLAIN_VALUES = {"kind": "calendar", "field": "mode", "side": "outlook", "provider": "microsoft"}
OBJECT_PARAM = re.compile(r"(^|_)(id|pk|uuid|token|public_id|key|code)$")
ROUTE_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


def walk(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def swept_patterns() -> list[tuple[str, URLPattern]]:
    found = []
    for route, entry in walk(get_resolver().url_patterns):
        if any(route.startswith(p) for p in NON_TENANT_PREFIXES):
            continue
        params = [m.group("name") for m in ROUTE_PARAM.finditer(route)]
        if "org_slug" in params or any(OBJECT_PARAM.search(p) for p in params):
            found.append((route, entry))
    return found


def build_path(route: str, org_slug: str, objects: dict) -> str:
    """Fill each route parameter with an org-A value of the right kind."""
    if route.startswith("^") or "(?P<" in route:
        pytest.fail(f"regex route {route!r}: give it path() converters so the sweep can fill it")

    def fill(match):
        converter, name = match.group("converter") or "str", match.group("name")
        if name == "org_slug":
            return org_slug
        if "token" in name:
            return objects["invitation"].token
        if converter == "int":
            return str(objects["int_for"](name))
        if name in PLAIN_VALUES:
            return PLAIN_VALUES[name]
        # uuid and str parameters: public ids are uuids
        return str(objects["uuid_for"](name))

    return ROUTE_PARAM.sub(fill, route)


@pytest.fixture
def org_a_objects(alice, bob, carol, org_a):
    invitation = Invitation.objects.create(organization=org_a, email="dave@example.com", invited_by=alice)
    carol_membership = Membership.objects.get(user=carol, organization=org_a)

    def uuid_for(name: str):
        # A real org-A object of the kind the name suggests; a random uuid for kinds we do not know yet.
        if "invitation" in name:
            return invitation.public_id
        if "member" in name:
            return carol_membership.public_id
        return _first_public_id_of_org_a(name, org_a) or uuid.uuid4()

    plan, change = _org_a_plan(carol_membership)
    from syncengine.models import SyncLink

    link = SyncLink.objects.create(membership=carol_membership, kind="calendar", outlook_id="AAMk-carol-1",
                                   sf_id="00U000000000001AAA", one_way_from="outlook")

    def int_for(name: str):
        # Sync runs and planned items of an org-A member: the outsider must not reach them.
        if "run" in name:
            return plan.pk
        if "change" in name:
            return change.pk
        if "link" in name:  # a recorded calendar event of an org-A member (issue 16)
            return link.pk
        return carol_membership.pk if "member" in name else invitation.pk

    return {"invitation": invitation, "uuid_for": uuid_for, "int_for": int_for}


def _org_a_plan(membership):
    import datetime as dt

    from django.utils import timezone

    from syncengine.models import PlannedChange, SyncRun

    t = timezone.now()
    plan = SyncRun.objects.create(
        membership=membership, kind="contacts", trigger="manual", purpose="preview", status="planned",
        dry_run=True, started_at=t, plan_expires_at=t + dt.timedelta(hours=1),
    )
    change = PlannedChange.objects.create(run=plan, seq=1, action="create", side="salesforce:create",
                                          title="Ada Lovelace")
    return plan, change


def _first_public_id_of_org_a(name: str, org):
    """For another app's `<uuid:connection_id>` etc., find an org-A row of a model with that name."""
    from django.apps import apps

    stem = name.removesuffix("_id").removesuffix("_uuid").replace("_", "")
    for model in apps.get_models():
        if not model.__name__.lower().endswith(stem) or not hasattr(model, "public_id"):
            continue
        fields = {f.name for f in model._meta.get_fields()}
        if "organization" in fields:
            row = model.objects.filter(organization=org).first()
        elif "membership" in fields:
            row = model.objects.filter(membership__organization=org).first()
        else:
            row = None
        if row is not None:
            return row.public_id
    return None


def test_the_sweep_sees_the_org_pages():
    routes = [route for route, _ in swept_patterns()]
    assert "o/<slug:org_slug>/" in routes
    assert "o/<slug:org_slug>/members/<uuid:membership_id>/role/" in routes
    assert "invite/<str:token>/" in routes
    for support in ("history/", "history/<int:run_id>/", "logs/", "logs/export.csv", "trace/",
                    "bundle/"):
        assert "o/<slug:org_slug>/sync/" + support in routes
    for dashboard in ("health/", "health/export.csv", "health/settings/"):  # issue 14
        assert "o/<slug:org_slug>/sync/" + dashboard in routes
    assert "o/<slug:org_slug>/staff-enter/" in routes
    for calendar in ("calendar/", "calendar/record/", "calendar/fields/", "calendar/events/<int:link_id>/relate/",
                     "calendar/events/<int:link_id>/relate/search/", "calendar/events/<int:link_id>/relate/save/",
                     "calendar/events/<int:link_id>/unrecord/"):  # issue 16
        assert "o/<slug:org_slug>/sync/" + calendar in routes


@pytest.mark.django_db
def test_outsider_gets_404_on_every_org_scoped_url(client_for, charlie, org_a, org_a_objects):
    client = client_for(charlie)
    failures = []
    for route, _entry in swept_patterns():
        path = "/" + build_path(route, org_a.slug, org_a_objects)
        for method in ("get", "post"):
            response = getattr(client, method)(path, headers={"HX-Request": "true"} if method == "post" else {})
            if response.status_code != 404:
                failures.append(f"{method.upper()} {path} -> {response.status_code}")
    assert not failures, "org A is reachable by an outsider:\n" + "\n".join(failures)
    assert Membership.objects.filter(organization=org_a).count() == 3  # alice, bob, carol, untouched
    assert Invitation.objects.get(pk=org_a_objects["invitation"].pk).is_open
    _assert_org_a_plan_untouched()


def _assert_org_a_plan_untouched():
    from syncengine.models import PlannedChange, SyncRun

    assert SyncRun.objects.count() == 1  # nothing started, applied or previewed
    assert PlannedChange.objects.get().included and PlannedChange.objects.get().winner == ""


def test_every_org_scoped_view_goes_through_org_view():
    missing = [
        route for route, entry in swept_patterns()
        if "org_slug" in route and not hasattr(entry.callback, "org_min_role")
    ]
    assert not missing, "views without @org_view (tenancy unchecked): " + ", ".join(missing)
