"""What `manage.py seed_demo` prints is what a person reads after `make run`: no blank lines."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.template import Template
from django.test.utils import _TestState

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def templates_rendered_as_outside_tests(monkeypatch):
    """Undo the test runner's template instrumentation for one test.

    Under pytest, Django's test client records each response's template context;
    a real `manage.py seed_demo` run has no such record. Output built from it
    looks fine in tests and is empty in real life, so render as real life does.
    """
    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)


def _lines(**kwargs) -> list[str]:
    out = StringIO()
    call_command("seed_demo", stdout=out, **kwargs)
    return out.getvalue().splitlines()


def _blank(lines: list[str]) -> list[str]:
    """Lines that say nothing: empty, or a label with nothing after it ("member@acme.test: ")."""
    return [line for line in lines if not line.strip() or line.rstrip().endswith(":")]


def test_seed_demo_prints_no_empty_lines_and_says_what_it_connected(
    templates_rendered_as_outside_tests,
):
    first = _lines()
    assert first and not _blank(first), first
    # Each journey reports what the product's page told the member.
    assert "member@acme.test: Outlook is connected as member@acme.test." in first
    assert "member@acme.test: Salesforce is connected as member@acme.test." in first

    again = _lines()
    assert not _blank(again), again
    assert "member@acme.test: microsoft already connected" in again
