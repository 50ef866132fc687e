"""Helpers for tests and benchmarks that talk to the sandbox org through simple-salesforce."""

from __future__ import annotations

from django.conf import settings
from simple_salesforce import Salesforce

from ..transport import sandbox_session
from .models import SfUser
from .services import sf_session_issue


def sf_client(user: SfUser, token: str | None = None, version: str | None = None) -> Salesforce:
    """A simple-salesforce client on the sandbox transport, signed in as `user` (at the pinned API version
    unless `version` names another, e.g. "57.0" for the event-series rules before 58.0)."""
    token = token or sf_session_issue(user=user)
    return Salesforce(instance_url=user.org.instance_url, session_id=token, session=sandbox_session(),
                      version=version or settings.SALESFORCE_API_VERSION)
