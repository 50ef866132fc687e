"""SOQL query / queryAll through simple-salesforce: paging, the subset's semantics, errors."""

import time

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.salesforce.services import sf_records_create, sf_user_ensure
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def rep():
    return sf_user_ensure(email="quinn@umbrella.test")


@pytest.fixture
def sf(rep):
    return sf_client(rep)


def _contacts(rep, n, **extra):
    results = sf_records_create(user=rep, records=[
        ("Contact", {"LastName": f"Person {i:05d}", "LinkPoint_Key__c": f"key-{i:05d}", **extra}) for i in range(n)])
    assert all(r.success for r in results)
    return [r.id for r in results]


def test_query_pages_5000_rows_in_three_pages_with_relative_next_urls(sf, rep):
    ids = _contacts(rep, 5000)
    api_counts_reset()
    first = sf.query("SELECT Id, LastName FROM Contact")
    assert first["totalSize"] == 5000 and first["done"] is False and len(first["records"]) == 2000
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["nextRecordsUrl"].endswith("-4000") and len(second["records"]) == 2000
    third = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert third["done"] is True and "nextRecordsUrl" not in third and len(third["records"]) == 1000
    got = [r["Id"] for page in (first, second, third) for r in page["records"]]
    assert got == ids
    assert api_counts(side="salesforce", family="sf-query") == 3

    api_counts_reset()
    everything = sf.query_all("SELECT Id FROM Contact")
    assert everything["totalSize"] == 5000 and len(everything["records"]) == 5000
    assert api_counts(side="salesforce", family="sf-query") == 3
    assert sum(1 for _ in sf.query_all_iter("SELECT Id FROM Contact WHERE LastName LIKE 'Person 04%'")) == 1000


def test_batch_size_header_is_honoured_within_200_to_2000(sf, rep):
    _contacts(rep, 450)
    sf.headers["Sforce-Query-Options"] = "batchSize=200"
    page = sf.query("SELECT Id FROM Contact")
    assert len(page["records"]) == 200 and page["nextRecordsUrl"].endswith("-200")
    sf.headers["Sforce-Query-Options"] = "batchSize=50"  # below the minimum: 200
    assert len(sf.query("SELECT Id FROM Contact")["records"]) == 200


def test_query_all_shows_deleted_rows_and_query_never_does(sf, rep):
    keep, drop = _contacts(rep, 2)
    sf.Contact.delete(drop)
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [keep]
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact WHERE IsDeleted = true")["records"]] == []
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact ORDER BY Id", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(keep, False), (drop, True)]


def test_where_order_limit_and_literals(sf, rep):
    sf.Contact.create({"FirstName": "Ann", "LastName": "Alpha", "Email": "ann@x.test", "Title": "CEO"})
    sf.Contact.create({"FirstName": "bob", "LastName": "beta", "Title": "CTO"})
    sf.Contact.create({"FirstName": "Cy", "LastName": "Gamma", "Email": "cy@x.test"})
    q = lambda soql: [r["LastName"] for r in sf.query(soql)["records"]]  # noqa: E731
    assert q("SELECT LastName FROM Contact WHERE Email = null") == ["beta"]
    assert q("SELECT LastName FROM Contact WHERE Email != null ORDER BY LastName DESC") == ["Gamma", "Alpha"]
    assert q("SELECT LastName FROM Contact WHERE lastname = 'ALPHA'") == ["Alpha"]  # case-insensitive
    assert q("SELECT LastName FROM Contact WHERE Title IN ('CEO', 'cto') ORDER BY LastName") == ["Alpha", "beta"]
    assert q("SELECT LastName FROM Contact WHERE Title NOT IN ('CEO') ORDER BY LastName") == ["beta", "Gamma"]
    assert q("SELECT LastName FROM Contact WHERE NOT (Title = 'CEO' OR Title = 'CTO')") == ["Gamma"]
    assert q("SELECT LastName FROM Contact WHERE LastName LIKE '_eta'") == ["beta"]
    assert q("SELECT LastName FROM Contact ORDER BY Title NULLS LAST, LastName LIMIT 2") == ["Alpha", "beta"]
    assert q("SELECT LastName FROM Contact ORDER BY Title LIMIT 1") == ["Gamma"]  # nulls first by default
    assert q("SELECT LastName FROM Contact ORDER BY LastName LIMIT 1 OFFSET 1") == ["beta"]
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email LIKE '%@x.test'")["totalSize"] == 2


def test_datetime_and_date_filters(sf):
    for day in ("01", "02", "03"):
        sf.Event.create({"Subject": day, "StartDateTime": f"2030-05-{day}T10:00:00Z", "DurationInMinutes": 60})
    sf.Task.create({"Subject": "due", "ActivityDate": "2030-05-02"})
    q = lambda soql: [r["Subject"] for r in sf.query(soql)["records"]]  # noqa: E731
    assert q("SELECT Subject FROM Event WHERE StartDateTime > 2030-05-01T10:00:00Z ORDER BY Subject") == ["02", "03"]
    assert q("SELECT Subject FROM Event WHERE StartDateTime >= 2030-05-02T11:00:00+01:00 ORDER BY Subject") == [
        "02", "03"]
    assert q("SELECT Subject FROM Event WHERE StartDateTime < 2030-05-02T10:00:00.000+0000") == ["01"]
    assert q("SELECT Subject FROM Event WHERE ActivityDate = 2030-05-03") == ["03"]
    assert q("SELECT Subject FROM Task WHERE ActivityDate <= 2030-05-02") == ["due"]
    modstamp = sf.query("SELECT SystemModstamp FROM Event ORDER BY SystemModstamp LIMIT 1")["records"][0]
    later = q(f"SELECT Subject FROM Event WHERE SystemModstamp > {modstamp['SystemModstamp']} ORDER BY Subject")
    assert later == ["02", "03"]


def test_relationship_fields_read_as_nested_objects(sf, rep):
    contact = sf.Contact.create({"LastName": "Who", "Email": "who@x.test"})["id"]
    sf.Event.create({"Subject": "With", "StartDateTime": "2030-01-01T10:00:00Z", "DurationInMinutes": 30,
                     "WhoId": contact})
    sf.Event.create({"Subject": "Without", "StartDateTime": "2030-01-01T11:00:00Z", "DurationInMinutes": 30})
    rows = sf.query("SELECT Subject, Who.Email, Owner.Username FROM Event ORDER BY Subject")["records"]
    assert rows[0]["Who"]["Email"] == "who@x.test"
    assert rows[0]["Who"]["attributes"]["type"] == "Contact"
    assert rows[0]["Owner"]["Username"] == rep.username
    assert rows[1]["Who"] is None
    assert [r["Subject"] for r in sf.query("SELECT Subject FROM Event WHERE Who.Email = 'who@x.test'")["records"]] == [
        "With"]


@pytest.mark.parametrize(("soql", "code", "fragment"), [
    ("SELECT Id, Nope FROM Contact", "INVALID_FIELD", "No such column 'Nope' on entity 'Contact'"),
    ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Title = 'c'", "MALFORMED_QUERY",
     "unexpected token: 'OR'"),
    ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported"),
    ("SELECT Id FROM Event WHERE StartDateTime > '2030-01-01'", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Event WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
    ("SELECT Id FROM Contact LIMIT", "MALFORMED_QUERY", "ERROR at Row:1:Column:"),
])
def test_bad_soql_maps_to_malformed_request(sf, soql, code, fragment):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert caught.value.content[0]["errorCode"] == code
    assert fragment in caught.value.content[0]["message"]


def test_ten_thousand_rows_write_and_query_in_seconds(sf, rep):
    began = time.monotonic()
    for chunk in range(50):
        body = {"allOrNone": True, "records": [
            {"attributes": {"type": "Event"}, "Subject": f"E{chunk}-{i}", "LinkPoint_Key__c": f"e-{chunk}-{i}",
             "StartDateTime": "2030-01-01T10:00:00Z", "DurationInMinutes": 30} for i in range(200)]}
        assert all(r["success"] for r in sf.restful("composite/sobjects", method="POST", json=body))
    wrote = time.monotonic() - began
    began = time.monotonic()
    result = sf.query_all("SELECT Id, Subject, LinkPoint_Key__c FROM Event")
    hit = sf.query("SELECT Id FROM Event WHERE LinkPoint_Key__c = 'e-42-7'")
    read = time.monotonic() - began
    assert result["totalSize"] == 10000 and hit["totalSize"] == 1
    assert wrote < 30 and read < 10, (wrote, read)
