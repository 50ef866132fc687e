"""sObject Collections and composite through `sf.restful`, as the product calls them."""

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.accounting import api_counts, api_counts_reset
from sandbox.salesforce.services import sf_user_ensure
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def sf():
    return sf_client(sf_user_ensure(email="cora@hooli.test"))


def _contact(last, **extra):
    return {"attributes": {"type": "Contact"}, "LastName": last, **extra}


def test_collection_create_reports_per_record_errors(sf):
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        _contact("Good"), {"attributes": {"type": "Contact"}, "FirstName": "NoLast"},
        {"attributes": {"type": "Task"}, "Subject": "Mixed types are fine"}]})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["id"].startswith("003") and results[2]["id"].startswith("00T")
    assert results[1] == {"id": None, "success": False, "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
         "fields": ["LastName"]}]}
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 1


def test_all_or_none_rolls_back_the_lot(sf):
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        _contact("One"), _contact("Two", Email="broken"), _contact("Three")]})
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 0


def test_collection_update_delete_and_retrieve(sf):
    ids = [r["id"] for r in sf.restful("composite/sobjects", method="POST", json={"records": [
        _contact("A"), _contact("B"), _contact("C")]})]
    fetched = sf.restful(f"composite/sobjects/Contact?ids={','.join(ids)}&fields=Id,LastName,Title")
    assert [row["LastName"] for row in fetched] == ["A", "B", "C"]
    deleted = sf.restful(f"composite/sobjects?ids={ids[2]},{ids[2]}&allOrNone=false", method="DELETE")
    assert deleted[0]["success"] is True
    assert deleted[1]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    again = sf.restful(f"composite/sobjects?ids={ids[2]},{ids[1]}&allOrNone=true", method="DELETE")
    assert again[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert again[1]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["totalSize"] == 1


def test_collection_update_of_one_field(sf):
    ids = [r["id"] for r in sf.restful("composite/sobjects", method="POST", json={"records": [
        _contact("A"), _contact("B")]})]
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "Id": ids[0], "Title": "Boss"},
        {"attributes": {"type": "Contact"}, "Id": ids[1], "LastName": ""}]})
    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Contact.get(ids[0])["Title"] == "Boss"


def test_collection_upsert_by_linkpoint_key(sf):
    sf.Contact.create({"LastName": "Old", "LinkPoint_Key__c": "k1"})
    results = sf.restful("composite/sobjects/Contact/LinkPoint_Key__c", method="PATCH", json={
        "allOrNone": False, "records": [_contact("Renamed", LinkPoint_Key__c="k1"), _contact("New", LinkPoint_Key__c="k2")]})
    assert [(r["success"], r["created"]) for r in results] == [(True, False), (True, True)]
    names = [r["LastName"] for r in sf.query("SELECT LastName FROM Contact ORDER BY LastName")["records"]]
    assert names == ["New", "Renamed"]


def test_more_than_200_records_is_refused(sf):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": [_contact(str(i)) for i in range(201)]})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_composite_references_and_counts_as_one_call(sf):
    api_counts_reset()
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Hooli"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "person",
         "body": {"LastName": "Belson", "AccountId": "@{acct.id}"}},
        {"method": "GET", "url": "/services/data/v62.0/sobjects/Contact/@{person.id}?fields=AccountId",
         "referenceId": "check"},
        {"method": "GET", "url": "/services/data/v62.0/query?q=SELECT+Id+FROM+Account", "referenceId": "q"},
    ]}
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 201, 200, 200]
    assert out[2]["body"]["AccountId"] == out[0]["body"]["id"]
    assert out[0]["httpHeaders"]["Location"].startswith("/services/data/v62.0/sobjects/Account/001")
    assert out[3]["body"]["totalSize"] == 1
    assert api_counts(side="salesforce") == 1
    assert sf.api_usage["api-usage"].used == 1


def test_composite_all_or_none_halts_and_rolls_back(sf):
    body = {"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Pied Piper"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "bad",
         "body": {"FirstName": "NoLast"}},
        {"method": "POST", "url": "/services/data/v62.0/sobjects/Contact", "referenceId": "after",
         "body": {"LastName": "Hendricks"}},
    ]}
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [400, 400, 400]
    assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert out[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_composite_allows_at_most_25_subrequests(sf):
    subs = [{"method": "GET", "url": "/services/data/v62.0/limits", "referenceId": f"r{i}"} for i in range(26)]
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": subs})
