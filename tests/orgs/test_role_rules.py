"""The rules every membership write obeys, at the service level (each branch)."""

import pytest

from orgs import services
from orgs.access import resolve_org_context
from orgs.exceptions import OrgRuleError
from orgs.models import AuditEntry, Invitation, Membership


def ctx_of(user, org):
    return resolve_org_context(user, org.slug)


def membership(user, org):
    return Membership.objects.select_related("user").get(user=user, organization=org)


@pytest.fixture
def owner2(make_user, org_a):
    user = make_user("owner2@acme.test")
    Membership.objects.create(organization=org_a, user=user, role="owner")
    return user


@pytest.mark.django_db
class TestChangeRole:
    def test_owner_promotes_member_to_admin_and_it_is_audited(self, alice, carol, org_a):
        services.membership_change_role(ctx=ctx_of(alice, org_a), membership=membership(carol, org_a), role="admin")
        assert membership(carol, org_a).role == "admin"
        entry = AuditEntry.objects.get(action="membership.change_role")
        assert (entry.actor_email, entry.target, entry.before, entry.after) == (
            "alice@acme.test", "carol@acme.test", {"role": "member"}, {"role": "admin"})

    def test_admin_cannot_promote_anyone_to_owner(self, bob, carol, org_a):
        with pytest.raises(OrgRuleError, match="above your own role"):
            services.membership_change_role(ctx=ctx_of(bob, org_a), membership=membership(carol, org_a), role="owner")
        assert membership(carol, org_a).role == "member"

    def test_admin_cannot_promote_themselves_to_owner(self, bob, org_a):
        with pytest.raises(OrgRuleError):
            services.membership_change_role(ctx=ctx_of(bob, org_a), membership=membership(bob, org_a), role="owner")
        assert membership(bob, org_a).role == "admin"

    def test_admin_cannot_demote_an_owner(self, alice, bob, owner2, org_a):
        with pytest.raises(OrgRuleError, match="higher role"):
            services.membership_change_role(ctx=ctx_of(bob, org_a), membership=membership(alice, org_a), role="member")
        assert membership(alice, org_a).role == "owner"

    def test_member_cannot_change_roles(self, carol, bob, org_a):
        with pytest.raises(OrgRuleError, match="Only owners and admins"):
            services.membership_change_role(ctx=ctx_of(carol, org_a), membership=membership(carol, org_a), role="member")

    def test_last_owner_cannot_be_demoted(self, alice, org_a):
        with pytest.raises(OrgRuleError, match="last active owner"):
            services.membership_change_role(ctx=ctx_of(alice, org_a), membership=membership(alice, org_a), role="admin")
        assert membership(alice, org_a).role == "owner"
        assert not AuditEntry.objects.exists()

    def test_an_owner_may_step_down_when_another_owner_remains(self, alice, owner2, org_a):
        services.membership_change_role(ctx=ctx_of(alice, org_a), membership=membership(alice, org_a), role="admin")
        assert membership(alice, org_a).role == "admin"

    def test_deactivated_owner_does_not_count_as_remaining_owner(self, alice, owner2, org_a):
        Membership.objects.filter(user=owner2).update(is_active=False)
        with pytest.raises(OrgRuleError, match="last active owner"):
            services.membership_change_role(ctx=ctx_of(alice, org_a), membership=membership(alice, org_a), role="member")

    def test_unknown_role_is_refused(self, alice, carol, org_a):
        with pytest.raises(OrgRuleError, match="not a role"):
            services.membership_change_role(ctx=ctx_of(alice, org_a), membership=membership(carol, org_a), role="emperor")


@pytest.mark.django_db
class TestDeactivateRemove:
    def test_admin_deactivates_and_reactivates_a_member(self, bob, carol, org_a):
        ctx = ctx_of(bob, org_a)
        services.membership_deactivate(ctx=ctx, membership=membership(carol, org_a))
        assert membership(carol, org_a).is_active is False
        services.membership_reactivate(ctx=ctx, membership=membership(carol, org_a))
        assert membership(carol, org_a).is_active is True
        assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == [
            "membership.deactivate", "membership.reactivate"]

    def test_last_owner_cannot_be_deactivated_or_removed(self, alice, org_a):
        ctx = ctx_of(alice, org_a)
        with pytest.raises(OrgRuleError, match="last active owner"):
            services.membership_deactivate(ctx=ctx, membership=membership(alice, org_a))
        with pytest.raises(OrgRuleError, match="last active owner"):
            services.membership_remove(ctx=ctx, membership=membership(alice, org_a))
        assert membership(alice, org_a).is_active

    def test_admin_cannot_deactivate_or_remove_an_owner(self, alice, bob, owner2, org_a):
        ctx = ctx_of(bob, org_a)
        with pytest.raises(OrgRuleError, match="higher role"):
            services.membership_deactivate(ctx=ctx, membership=membership(alice, org_a))
        with pytest.raises(OrgRuleError, match="higher role"):
            services.membership_remove(ctx=ctx, membership=membership(alice, org_a))

    def test_member_cannot_deactivate_or_remove(self, carol, bob, org_a):
        ctx = ctx_of(carol, org_a)
        for action in (services.membership_deactivate, services.membership_remove, services.membership_reactivate):
            with pytest.raises(OrgRuleError):
                action(ctx=ctx, membership=membership(bob, org_a))
        assert membership(bob, org_a).is_active

    def test_owner_removes_a_member(self, alice, carol, org_a):
        services.membership_remove(ctx=ctx_of(alice, org_a), membership=membership(carol, org_a))
        assert not Membership.objects.filter(user=carol).exists()
        assert AuditEntry.objects.get(action="membership.remove").before["email"] == "carol@acme.test"


@pytest.mark.django_db
class TestInviteRules:
    def test_admin_cannot_invite_an_owner(self, bob, org_a):
        with pytest.raises(OrgRuleError, match="above your own role"):
            services.invitation_create(ctx=ctx_of(bob, org_a), email="new@acme.test", role="owner")
        assert not Invitation.objects.exists()

    def test_member_cannot_invite(self, carol, org_a):
        with pytest.raises(OrgRuleError, match="Only owners and admins"):
            services.invitation_create(ctx=ctx_of(carol, org_a), email="new@acme.test", role="member")

    def test_owner_can_invite_an_owner(self, alice, org_a):
        invitation = services.invitation_create(ctx=ctx_of(alice, org_a), email="New@Acme.test", role="owner")
        assert (invitation.email, invitation.role) == ("new@acme.test", "owner")


@pytest.mark.django_db
class TestOrganizationUpdate:
    def test_admin_turns_on_required_mfa_and_it_is_audited(self, bob, org_a):
        services.organization_update(ctx=ctx_of(bob, org_a), require_mfa_for_admins=True)
        org_a.refresh_from_db()
        assert org_a.require_mfa_for_admins
        entry = AuditEntry.objects.get(action="organization.update")
        assert entry.before == {"require_mfa_for_admins": False}
        assert entry.after == {"require_mfa_for_admins": True}

    def test_member_cannot_update_the_org(self, carol, org_a):
        with pytest.raises(OrgRuleError):
            services.organization_update(ctx=ctx_of(carol, org_a), name="Hacked")
        org_a.refresh_from_db()
        assert org_a.name == "Acme"

    def test_blank_name_is_refused(self, alice, org_a):
        with pytest.raises(OrgRuleError, match="needs a name"):
            services.organization_update(ctx=ctx_of(alice, org_a), name="  ")
