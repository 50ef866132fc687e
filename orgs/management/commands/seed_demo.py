"""Create the demo organizations and people. Idempotent: a second run leaves the same state."""

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from orgs.models import Membership, Organization, Role

PASSWORD = "linkpoint-demo"  # also written in README.md

ORGS = [("acme", "Acme Corp"), ("globex", "Globex")]
PEOPLE = [
    # email, full name, org slug (None: no membership), role, is_staff
    ("owner@acme.test", "Olivia Owner", "acme", Role.OWNER, False),
    ("admin@acme.test", "Adam Admin", "acme", Role.ADMIN, False),
    ("member@acme.test", "Mia Member", "acme", Role.MEMBER, False),
    ("member2@acme.test", "Max Member", "acme", Role.MEMBER, False),
    ("owner@globex.test", "Grace Globex", "globex", Role.OWNER, False),
    ("staff@linkpoint.test", "Sam Services", None, None, True),
]


class Command(BaseCommand):
    help = "Seed the demo organizations acme and globex with their people (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        orgs = {}
        for slug, name in ORGS:
            orgs[slug], _ = Organization.objects.update_or_create(slug=slug, defaults={"name": name})
        for email, full_name, slug, role, is_staff in PEOPLE:
            user, _ = User.objects.get_or_create(email=email)
            user.full_name = full_name
            user.is_staff = is_staff
            user.is_active = True
            if not user.check_password(PASSWORD):
                user.set_password(PASSWORD)
            user.save()
            # Verified, so the demo logs in even with mandatory e-mail verification.
            EmailAddress.objects.update_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
            if slug is not None:
                Membership.objects.update_or_create(
                    organization=orgs[slug], user=user, defaults={"role": role, "is_active": True}
                )
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/"))
        self.stdout.write(f"Password for every demo account: {PASSWORD}")
        for email, _name, slug, role, _staff in PEOPLE:
            where = f"{role} of {slug}" if slug else "platform staff (Professional Services)"
            self.stdout.write(f"  {email:<24} {where}")
        self.after_seed()

    def after_seed(self):
        """Hook for later demo steps (e.g. connecting member@acme.test to the sandbox)."""
        from django.conf import settings

        if not settings.SANDBOX_ENABLED:
            self.stdout.write("Sandbox off: member@acme.test is not connected (SANDBOX_ENABLED=1 to do so).")
            return
        from connections.demo import demo_connect

        # Through the real OAuth journeys (our views + the sandbox consent pages), not by writing rows.
        demo_connect(email="member@acme.test", org_slug="acme", out=self.stdout.write,
                     seed={"events": 40, "contacts": 30, "tasks": 20, "overlap": 0.3})
