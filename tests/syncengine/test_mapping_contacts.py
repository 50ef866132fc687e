"""Contact mapping: round trips, the surname fallback, e-mails, lengths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncengine.engine.mapping import MappingError, canonical_hash, contacts, diff_fields

words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=60)
phones = st.from_regex(r"\+?[0-9 ()-]{0,30}", fullmatch=True)
emails = st.emails().filter(lambda e: len(e) <= 80)


@st.composite
def graph_contacts(draw):
    payload = {
        "id": "AAMkContact=",
        "changeKey": draw(st.text(max_size=8)),
        "givenName": draw(words),
        "middleName": draw(words),
        "surname": draw(st.one_of(st.just(""), st.none(), words)),
        "displayName": draw(words),
        "emailAddresses": [
            {"address": a, "name": draw(words)} for a in draw(st.lists(emails, max_size=3))
        ],
        "businessPhones": draw(st.lists(phones, max_size=2)),
        "mobilePhone": draw(st.one_of(st.none(), phones)),
        "homePhones": draw(st.lists(phones, max_size=2)),
        "jobTitle": draw(st.text(max_size=200)),
        "department": draw(words),
        "companyName": draw(st.one_of(st.none(), words)),
        "businessAddress": {
            "street": draw(st.text(max_size=300)),
            "city": draw(words),
            "state": draw(words),
            "postalCode": draw(st.text(max_size=25)),
            "countryOrRegion": draw(words),
        },
    }
    return payload


def sf_record(body: dict, company: str) -> dict:
    """A Salesforce read of what we wrote; the engine related the Account."""
    return {**body, "Id": "003000000000001", "Account": {"Name": company} if company else None}


@settings(max_examples=300)
@given(payload=graph_contacts())
def test_graph_to_salesforce_to_canonical(payload):
    c = contacts.from_graph(payload)
    body = contacts.to_salesforce(c)
    assert body["LastName"] and len(body["LastName"]) <= 80
    assert contacts.from_salesforce(sf_record(body, c.company)) == c
    # and back into Outlook over the same contact (a PATCH: unsent keys stay)
    written = contacts.to_graph(c, existing=payload)
    assert contacts.from_graph({**payload, **written}) == c
    assert len(written["emailAddresses"]) <= 3 and len(written["businessPhones"]) <= 2


def test_a_name_with_a_rare_space_keeps_its_surname_fallback_through_outlook():
    # Hypothesis found it: U+1680 (Ogham space) splits like a space in the composed
    # display name, so the written-back contact read as having a new display name.
    payload = {"givenName": "", "middleName": "0\u16800", "surname": "", "displayName": ""}
    c = contacts.from_graph(payload)
    assert c.last_name == "(no name)"
    written = contacts.to_graph(c, existing=payload)
    assert contacts.from_graph({**payload, **written}) == c


@settings(max_examples=300)
@given(
    first=words,
    last=words.filter(lambda s: s.strip()),
    mails=st.lists(emails, max_size=3),
    phone=phones,
    title=st.text(max_size=200),
    company=words,
)
def test_salesforce_to_graph_to_canonical(first, last, mails, phone, title, company):
    record = {
        "Id": "003000000000001",
        "FirstName": first,
        "LastName": last,
        "Email": mails[0] if mails else None,
        "LinkPoint_Email2__c": mails[1] if len(mails) > 1 else None,
        "LinkPoint_Email3__c": mails[2] if len(mails) > 2 else None,
        "Phone": phone,
        "Title": title,
        "Account": {"Name": company},
    }
    c = contacts.from_salesforce(record)
    assert contacts.from_graph(contacts.to_graph(c)) == c


def test_fields_and_custom_email_fields():
    c = contacts.from_graph(
        {
            "givenName": "Ada",
            "surname": "Lovelace",
            "emailAddresses": [
                {"address": "ADA@Example.com", "name": "Ada"},
                {"address": "ada@home.example"},
                {"address": "countess@example.org"},
            ],
            "businessPhones": ["+44 20 1234", "+44 20 5678"],
            "mobilePhone": "07700 900000",
            "homePhones": ["01632 960000"],
            "jobTitle": "Analyst",
            "department": "Engines",
            "companyName": "Babbage & Co",
            "businessAddress": {
                "street": "12 St James's Sq\r\nFloor 2",
                "city": "London",
                "postalCode": "SW1Y",
                "countryOrRegion": "UK",
            },
        }
    )
    assert contacts.to_salesforce(c) == {
        "FirstName": "Ada",
        "MiddleName": None,
        "LastName": "Lovelace",
        "Email": "ada@example.com",
        "LinkPoint_Email2__c": "ada@home.example",
        "LinkPoint_Email3__c": "countess@example.org",
        "Phone": "+44 20 1234",
        "OtherPhone": "+44 20 5678",
        "MobilePhone": "07700 900000",
        "HomePhone": "01632 960000",
        "Title": "Analyst",
        "Department": "Engines",
        "MailingStreet": "12 St James's Sq\nFloor 2",
        "MailingCity": "London",
        "MailingState": None,
        "MailingPostalCode": "SW1Y",
        "MailingCountry": "UK",
    }
    assert c.company == "Babbage & Co"  # AccountId is the engine's to resolve


@pytest.mark.parametrize(
    ("payload", "last_name"),
    [
        ({"givenName": "Cher", "displayName": "Cher"}, "(no name)"),
        ({"givenName": "Cher", "displayName": "Cher", "companyName": "Acme"}, "Acme"),
        ({"displayName": "Front desk", "companyName": "Acme"}, "Front desk"),
        ({"emailAddresses": [{"address": "help.desk@acme.example"}]}, "help.desk"),
        ({}, "(no name)"),
        ({"surname": "  ", "displayName": "  "}, "(no name)"),
    ],
)
def test_surname_fallback(payload, last_name):
    c = contacts.from_graph(payload)
    assert c.last_name == last_name
    assert contacts.to_salesforce(c)["LastName"] == last_name
    # Writing back to Outlook leaves the surname empty: it was never there.
    assert contacts.to_graph(c, existing=payload)["surname"] is None


def test_email_order_is_kept_but_a_reorder_is_no_change():
    a = contacts.from_graph(
        {"surname": "X", "emailAddresses": [{"address": "a@x.example"}, {"address": "b@x.example"}]}
    )
    b = contacts.from_graph(
        {"surname": "X", "emailAddresses": [{"address": "B@x.example"}, {"address": "a@x.example"}]}
    )
    assert a.emails == ("a@x.example", "b@x.example") and b.emails == ("b@x.example", "a@x.example")
    assert a == b and canonical_hash(a) == canonical_hash(b) and not diff_fields(a, b)


def test_unsyncable_addresses_are_reported_and_kept_in_outlook():
    payload = {
        "surname": "X",
        "emailAddresses": [
            {"address": "not an address", "name": "odd"},
            {"address": "ok@x.example"},
        ],
    }
    c = contacts.from_graph(payload)
    assert c.emails == ("ok@x.example",)
    assert any("not a valid e-mail" in w for w in c.warnings)
    written = contacts.to_graph(c, existing=payload)
    assert {"address": "not an address", "name": "odd"} in written["emailAddresses"]


def test_too_long_values_are_truncated_with_warnings():
    c = contacts.from_graph({"surname": "L" * 100, "jobTitle": "T" * 200, "department": "D" * 90})
    assert (len(c.last_name), len(c.job_title), len(c.department)) == (80, 128, 80)
    assert {w.split(":")[0] for w in c.warnings} == {"last_name", "job_title", "department"}
    assert contacts.from_salesforce(sf_record(contacts.to_salesforce(c), c.company)) == c


def test_second_home_phone_and_email_names_survive_an_update():
    payload = {
        "surname": "X",
        "homePhones": ["111", "222"],
        "emailAddresses": [{"address": "x@y.example", "name": "Mr X"}],
    }
    c = contacts.from_graph(payload)
    written = contacts.to_graph(c, existing=payload)
    assert written["homePhones"] == ["111", "222"]
    assert written["emailAddresses"] == [{"address": "x@y.example", "name": "Mr X"}]


def test_unrelated_salesforce_contact_keeps_the_synced_company():
    record = {"LastName": "X", "AccountId": None}
    assert contacts.from_salesforce(record).company == ""
    assert contacts.from_salesforce(record, unrelated_company="Acme").company == "Acme"
    with pytest.raises(MappingError):
        contacts.from_salesforce({"LastName": "X", "AccountId": "001000000000001"})


def test_hash_ignores_order_whitespace_and_server_fields():
    a = {"givenName": "Ann", "surname": "Lee", "jobTitle": "CTO", "changeKey": "1"}
    b = {
        "changeKey": "2",
        "jobTitle": " CTO\r\n",
        "surname": "Lee ",
        "givenName": "Ann",
        "lastModifiedDateTime": "x",
    }
    assert canonical_hash(contacts.from_graph(a)) == canonical_hash(contacts.from_graph(b))
    assert canonical_hash(contacts.from_graph(a)) != canonical_hash(
        contacts.from_graph({**a, "jobTitle": "CEO"})
    )


def test_non_object_payload_is_an_item_error():
    with pytest.raises(MappingError):
        contacts.from_graph(["not", "a", "contact"])
