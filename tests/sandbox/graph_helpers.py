"""Shared set-up for the Graph tests: a mailbox and a requests Session that speaks to the sandbox."""

import pytest

from sandbox.microsoft.services import access_token_issue, mailbox_ensure
from sandbox.transport import sandbox_session

GRAPH = "https://graph.sandbox.test/v1.0"


@pytest.fixture
def mailbox():
    return mailbox_ensure("fox@contoso.test", "Fox Mulder")


@pytest.fixture
def token(mailbox):
    return access_token_issue(mailbox)


@pytest.fixture
def graph(token):
    session = sandbox_session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def event_body(subject="Pipeline review", start="2030-03-04T09:00:00", end="2030-03-04T10:00:00",
               tz="W. Europe Standard Time", **extra):
    return {"subject": subject, "start": {"dateTime": start, "timeZone": tz},
            "end": {"dateTime": end, "timeZone": tz}, **extra}
