"""Contacts: Outlook personal contact (Graph ``contact``) ⇄ Salesforce ``Contact``.

Field map
---------
=====================  =============================  ==============================
canonical              Graph contact                  Salesforce Contact
=====================  =============================  ==============================
first_name (≤40)       givenName                      FirstName
middle_name (≤40)      middleName                     MiddleName (org setting "middle names")
last_name (≤80)        surname (see fallback)         LastName (required)
emails (≤3, ≤80 each)  emailAddresses[].address       Email, LinkPoint_Email2__c, LinkPoint_Email3__c
business_phone         businessPhones[0]              Phone
business_phone_2       businessPhones[1]              OtherPhone
mobile_phone           mobilePhone                    MobilePhone
home_phone             homePhones[0]                  HomePhone
job_title (≤128)       jobTitle                       Title
department (≤80)       department                     Department
company (≤255)         companyName                    Account.Name (the engine resolves AccountId)
street (≤255)          businessAddress.street         MailingStreet
city (≤40)             businessAddress.city           MailingCity
state (≤80)            businessAddress.state          MailingState
postal_code (≤20)      businessAddress.postalCode     MailingPostalCode
country (≤80)          businessAddress.countryOrRegion MailingCountry
=====================  =============================  ==============================

E-mails: the standard Contact has a single ``Email`` field, so the second and
third addresses live in two custom e-mail fields, ``LinkPoint_Email2__c`` and
``LinkPoint_Email3__c`` (80 characters, type Email), installed with our
package. Addresses are lower-cased and de-duplicated, their order is kept (the
first is the primary ``Email``) but a reordering alone is not a change.
Addresses Salesforce would reject (not shaped like an e-mail, or longer than
80) are left out with a warning and kept untouched in Outlook.

Surname fallback: Salesforce requires ``LastName``; Outlook does not. A contact
without a surname gets, in this order: its display name (when it says more
than the given + middle name), else its company, else the local part of its
first e-mail address, else ``"(no name)"``. The fallback is the canonical
``last_name`` (so both sides hash the same), and writing back to Outlook leaves
the surname empty while it still equals the fallback.

Lengths: every text field is cut to its Salesforce length when the canonical
record is built, with a note in ``warnings`` — a friendlier outcome than a
failed item, and both sides then agree on the stored value.

Lossy parts kept in Outlook: e-mail display names, a second home phone and
rejected addresses stay as they are when the engine passes ``existing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import (
    Canonical,
    MappingError,
    dedupe,
    info,
    norm_email,
    norm_text,
    read_list,
    read_object,
    read_text,
    shape,
    show,
    truncate,
    unordered,
    valid_email,
)

SF_EMAIL_FIELDS = ("Email", "LinkPoint_Email2__c", "LinkPoint_Email3__c")
NO_NAME = "(no name)"

LIMITS = {
    "first_name": 40,
    "middle_name": 40,
    "last_name": 80,
    "business_phone": 40,
    "business_phone_2": 40,
    "mobile_phone": 40,
    "home_phone": 40,
    "job_title": 128,
    "department": 80,
    "company": 255,
    "street": 255,
    "city": 40,
    "state": 80,
    "postal_code": 20,
    "country": 80,
}
EMAIL_MAX = 80
MAX_EMAILS = 3

# canonical field → Salesforce field (company is resolved by the engine)
SF_FIELDS = {
    "first_name": "FirstName",
    "middle_name": "MiddleName",
    "last_name": "LastName",
    "business_phone": "Phone",
    "business_phone_2": "OtherPhone",
    "mobile_phone": "MobilePhone",
    "home_phone": "HomePhone",
    "job_title": "Title",
    "department": "Department",
    "street": "MailingStreet",
    "city": "MailingCity",
    "state": "MailingState",
    "postal_code": "MailingPostalCode",
    "country": "MailingCountry",
}
_GRAPH_ADDRESS = {
    "street": "street",
    "city": "city",
    "state": "state",
    "postal_code": "postalCode",
    "country": "countryOrRegion",
}


@dataclass(frozen=True, eq=False)
class CanonicalContact(Canonical):
    KIND = "contacts"

    first_name: str = ""
    middle_name: str = ""
    last_name: str = NO_NAME
    emails: tuple[str, ...] = unordered(())
    business_phone: str = ""
    business_phone_2: str = ""
    mobile_phone: str = ""
    home_phone: str = ""
    job_title: str = ""
    department: str = ""
    company: str = ""
    street: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    warnings: tuple[str, ...] = info(())


def _clean_emails(raw: list[str], warnings: list[str]) -> tuple[str, ...]:
    kept: list[str] = []
    for address in dedupe(norm_email(a) for a in raw):
        if len(address) > EMAIL_MAX:
            warnings.append(
                f"emails: {show(address)} is longer than {EMAIL_MAX} characters; not synced"
            )
        elif not valid_email(address):
            warnings.append(f"emails: {show(address)} is not a valid e-mail address; not synced")
        else:
            kept.append(address)
    if len(kept) > MAX_EMAILS:
        warnings.append(f"emails: only the first {MAX_EMAILS} addresses are synced")
        kept = kept[:MAX_EMAILS]
    return tuple(kept)


def fallback_last_name(
    *, display_name: str, first_name: str, middle_name: str, company: str, emails: tuple[str, ...]
) -> str:
    """Salesforce needs a surname; see the module docstring for the order."""
    # Compared with whitespace collapsed, as the display name is: a name holding a
    # rarer space (U+1680, U+3000) must not read as a different display name.
    given = " ".join(" ".join(p for p in (first_name, middle_name) if p).split())
    if display_name and display_name.casefold() != given.casefold():
        return display_name
    if company:
        return company
    if emails:
        return emails[0].split("@", 1)[0]
    return NO_NAME


def _build(values: dict[str, Any], emails: list[str], display_name: str) -> CanonicalContact:
    warnings: list[str] = []
    clean = {k: norm_text(v) for k, v in values.items()}
    # Names and phones are single-line values on both sides.
    for k in clean:
        if k != "street" and "\n" in clean[k]:
            clean[k] = " ".join(clean[k].split())
    email_tuple = _clean_emails(emails, warnings)
    if not clean.get("last_name"):
        clean["last_name"] = fallback_last_name(
            display_name=" ".join(norm_text(display_name).split()),
            first_name=clean.get("first_name", ""),
            middle_name=clean.get("middle_name", ""),
            company=clean.get("company", ""),
            emails=email_tuple,
        )
    for k, limit in LIMITS.items():
        clean[k] = truncate(clean.get(k, ""), limit, k, warnings)
    return CanonicalContact(emails=email_tuple, warnings=tuple(warnings), **clean)


# ---------------------------------------------------------------- Graph


def _graph_emails(payload: dict[str, Any]) -> list[str]:
    out = []
    for i, entry in enumerate(read_list(payload, "emailAddresses")):
        if isinstance(entry, dict):
            out.append(read_text(entry, "address", f"emailAddresses[{i}].address") or "")
        elif isinstance(entry, str):
            out.append(entry)
        elif entry is not None:
            raise MappingError(
                f"emailAddresses[{i}]", f"is not an e-mail address object (it is {shape(entry)})"
            )
    return out


def _phones(payload: dict[str, Any], key: str) -> list[str]:
    """A phone list's non-empty entries; an entry that is not text is an item error."""
    out = []
    for i, value in enumerate(read_list(payload, key)):
        if value is not None and not isinstance(value, str):
            raise MappingError(f"{key}[{i}]", f"is not text (it is {shape(value)})")
        if norm_text(value):
            out.append(norm_text(value))
    return out


def _non_empty(values: Any) -> list[str]:
    """Phones from a payload :func:`from_graph` accepted (so a list of text)."""
    if not isinstance(values, list):
        return []
    return [norm_text(v) for v in values if isinstance(v, str) and norm_text(v)]


def from_graph(payload: dict[str, Any]) -> CanonicalContact:
    if not isinstance(payload, dict):
        raise MappingError("payload", "not a Graph contact object")
    business = _phones(payload, "businessPhones")
    home = _phones(payload, "homePhones")
    warnings_extra = []
    if len(business) > 2:
        warnings_extra.append("business_phone: only two business phones are synced")
    if len(home) > 1:
        warnings_extra.append("home_phone: only the first home phone is synced")
    address = read_object(payload, "businessAddress", "an address object") or {}
    values = {
        "first_name": read_text(payload, "givenName"),
        "middle_name": read_text(payload, "middleName"),
        "last_name": read_text(payload, "surname"),
        "business_phone": business[0] if business else "",
        "business_phone_2": business[1] if len(business) > 1 else "",
        "mobile_phone": read_text(payload, "mobilePhone"),
        "home_phone": home[0] if home else "",
        "job_title": read_text(payload, "jobTitle"),
        "department": read_text(payload, "department"),
        "company": read_text(payload, "companyName"),
        **{
            k: read_text(address, g, f"businessAddress.{g}")
            for k, g in _GRAPH_ADDRESS.items()
        },
    }
    c = _build(values, _graph_emails(payload), read_text(payload, "displayName") or "")
    if warnings_extra:
        c = _with_warnings(c, warnings_extra)
    return c


def _with_warnings(c: CanonicalContact, extra: list[str]) -> CanonicalContact:
    from dataclasses import replace

    return replace(c, warnings=c.warnings + tuple(extra))


def _display_name(c: CanonicalContact) -> str:
    return " ".join(p for p in (c.first_name, c.middle_name, c.last_name) if p)


def to_graph(c: CanonicalContact, *, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """Graph request body (create or absolute update) for the contact.

    With ``existing`` (the current Graph payload) what the canonical record
    cannot carry is preserved: e-mail display names, addresses we did not sync,
    a second home phone, an empty surname standing in for the fallback, and a
    display name the user chose.
    """
    had_existing = existing is not None
    existing = existing or {}
    old_entries = [e for e in existing.get("emailAddresses") or [] if isinstance(e, dict)]
    # Display names are not synced: one that is not text is simply not kept.
    names = {
        norm_email(e.get("address")): e.get("name")
        for e in old_entries
        if isinstance(e.get("name"), str)
    }
    emails = [{"address": a, "name": names.get(a) or a} for a in c.emails]
    kept_addresses = set(c.emails)
    for entry in old_entries:
        address = norm_email(entry.get("address"))
        if address and address not in kept_addresses and not _syncable_email(address):
            name = entry.get("name")
            emails.append(
                {"address": entry.get("address"), "name": name if isinstance(name, str) else None}
            )
    emails = emails[:MAX_EMAILS]

    surname = c.last_name
    if had_existing and not norm_text(existing.get("surname")):
        try:
            if from_graph(existing).last_name == c.last_name:
                surname = ""
        except MappingError:
            pass

    home = [c.home_phone] if c.home_phone else []
    home += _non_empty(existing.get("homePhones"))[1:2]
    body: dict[str, Any] = {
        "givenName": c.first_name or None,
        "middleName": c.middle_name or None,
        "surname": surname or None,
        "emailAddresses": emails,
        "businessPhones": [p for p in (c.business_phone, c.business_phone_2) if p],
        "mobilePhone": c.mobile_phone or None,
        "homePhones": home,
        "jobTitle": c.job_title or None,
        "department": c.department or None,
        "companyName": c.company or None,
        "businessAddress": {g: getattr(c, k) or None for k, g in _GRAPH_ADDRESS.items()},
    }
    old_display = norm_text(existing.get("displayName"))
    if not had_existing or not old_display or old_display == _composed_display(existing):
        body["displayName"] = " ".join(
            p for p in (c.first_name, c.middle_name, surname) if p
        ) or _display_name(c)
    return body


def _composed_display(payload: dict[str, Any]) -> str:
    return " ".join(
        norm_text(payload.get(k))
        for k in ("givenName", "middleName", "surname")
        if norm_text(payload.get(k))
    )


def _syncable_email(address: str) -> bool:
    return len(address) <= EMAIL_MAX and valid_email(address)


# ---------------------------------------------------------------- Salesforce


def from_salesforce(
    record: dict[str, Any], *, unrelated_company: str | None = None
) -> CanonicalContact:
    """Salesforce Contact record → canonical.

    ``company`` comes from ``Account.Name`` (query it as a relationship field).
    A contact with no Account says nothing about the company — the engine
    leaves contacts unrelated when no Account matches — so the engine passes
    the last synced company as ``unrelated_company`` and an unrelated contact
    does not look like a company deletion.
    """
    if not isinstance(record, dict):
        raise MappingError("record", "not a Salesforce Contact record")
    account = read_object(record, "Account", "an Account object")
    if account is not None:
        company = read_text(account, "Name", "Account.Name")
    elif read_text(record, "AccountId"):
        company = unrelated_company
        if company is None:
            raise MappingError("company", "query Account.Name with the contact")
    else:
        company = unrelated_company or ""
    values = {k: read_text(record, sf) for k, sf in SF_FIELDS.items()}
    values["company"] = company
    emails = [read_text(record, f) or "" for f in SF_EMAIL_FIELDS]
    return _build(values, emails, "")


def to_salesforce(c: CanonicalContact) -> dict[str, Any]:
    """sObject body. ``AccountId`` is left to the engine (it matches by name)."""
    body: dict[str, Any] = {sf: (getattr(c, k) or None) for k, sf in SF_FIELDS.items()}
    body["LastName"] = c.last_name or NO_NAME
    for i, sf in enumerate(SF_EMAIL_FIELDS):
        body[sf] = c.emails[i] if i < len(c.emails) else None
    return body


__all__ = [
    "CanonicalContact",
    "SF_EMAIL_FIELDS",
    "fallback_last_name",
    "from_graph",
    "from_salesforce",
    "to_graph",
    "to_salesforce",
]
