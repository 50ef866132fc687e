"""An ordinary 403 or 404 is one warning line for support; a 500 keeps its traceback."""

from __future__ import annotations

import io
import logging

import pytest

pytestmark = pytest.mark.django_db


def _request_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_forbidden_page_is_a_warning_without_traceback(client_for, carol, caplog):
    caplog.set_level(logging.INFO)
    response = client_for(carol).get("/o/acme/members/")  # members are not admins
    assert response.status_code == 403
    [record] = _request_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.exc_info is None and "Traceback" not in caplog.text
    # Support still sees which page and why.
    assert "/o/acme/members/" in record.getMessage()
    assert "does not allow this" in record.getMessage()


def test_another_orgs_page_is_a_warning_without_traceback(client_for, charlie, alice, caplog):
    caplog.set_level(logging.INFO)
    assert client_for(charlie).get("/o/acme/").status_code == 404
    [record] = _request_records(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "Traceback" not in caplog.text


@pytest.mark.urls("tests.project.urls_boom")
def test_a_crash_is_still_an_error_with_its_traceback(client, caplog):
    client.raise_request_exception = False
    caplog.set_level(logging.INFO)
    assert client.get("/boom/").status_code == 500
    [record] = _request_records(caplog)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "RuntimeError: the view crashed" in caplog.text


@pytest.fixture
def console_output():
    """What the configured console handlers print (pytest's own capture handlers left out)."""
    out = io.StringIO()
    handlers = {
        h
        for logger in (
            logging.getLogger(),
            logging.getLogger("django"),
            logging.getLogger("django.request"),
        )
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not type(h).__module__.startswith("_pytest")
    }
    previous = {h: h.setStream(out) for h in handlers}
    yield out
    for handler, stream in previous.items():
        handler.setStream(stream)


def test_the_dev_server_prints_each_request_problem_once(client, settings, console_output):
    """With DEBUG on, Django's default console handler and ours both printed every line."""
    settings.DEBUG = True
    assert client.get("/no-such-page/").status_code == 404
    assert console_output.getvalue().count("Not Found: /no-such-page/") == 1, (
        console_output.getvalue()
    )
