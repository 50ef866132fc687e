"""Content-Security-Policy and Permissions-Policy on the product's responses.

tests/browser/test_content_security_policy.py shows the pages working under the
policy in chromium; these check the headers themselves and keep inline code out
of the templates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_every_page_forbids_inline_code_framing_and_plugins(client):
    csp = _directives(client.get("/accounts/login/"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'" and csp["object-src"] == "'none'"
    assert "unsafe-inline" not in str(csp) and "unsafe-eval" not in str(csp)


def test_forms_may_go_to_us_and_on_to_the_production_sign_in(client, settings):
    settings.SANDBOX_ENABLED = False
    settings.MICROSOFT_AUTHORITY_HOST = "https://login.microsoftonline.com"
    settings.SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
    form_action = _directives(client.get("/accounts/login/"))["form-action"].split()
    assert form_action[0] == "'self'"
    assert "https://login.microsoftonline.com" in form_action
    assert "https://login.salesforce.com" in form_action
    assert (
        "https://*.my.salesforce.com" in form_action
    )  # login.salesforce.com sends people on there


def test_permissions_policy_denies_device_and_payment_features(client):
    policy = client.get("/accounts/login/")["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_org_pages_and_htmx_fragments_carry_the_policy(client_for, alice):
    client = client_for(alice)
    assert "Content-Security-Policy" in client.get("/o/acme/")
    fragment = client.get("/o/acme/policy/me/contacts/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "Content-Security-Policy" in fragment


def test_the_sandbox_stands_in_for_other_companies_servers_and_keeps_its_own_pages(client):
    # Its consent pages are Microsoft's and Salesforce's, not ours (and never run in production).
    response = client.get("/sandbox/login/common/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200 and "Content-Security-Policy" not in response


def test_debug_error_pages_keep_their_inline_css_but_pages_keep_the_policy(client, settings):
    settings.DEBUG = True
    assert "Content-Security-Policy" in client.get("/accounts/login/")
    technical_404 = client.get("/no-such-page/")
    assert technical_404.status_code == 404 and "Content-Security-Policy" not in technical_404


def test_the_favicon_is_served_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("img/favicon.svg")


INLINE_CODE = [
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (
        re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
        "inline <script>",
    ),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on…= handler"),
    (re.compile(r"\shx-on", re.I), "hx-on (evaluated code)"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_product_templates_have_no_inline_code_or_styles():
    """The policy refuses all of these; put styles in static/css/ and scripts in static/js/."""
    found = []
    for path in TEMPLATES.rglob("*.html"):
        if path.relative_to(TEMPLATES).parts[0] == "sandbox":
            continue  # the emulated Microsoft/Salesforce pages are served without our policy
        text = path.read_text()
        for pattern, what in INLINE_CODE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: {what}")
    assert found == []
