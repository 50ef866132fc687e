"""sObject CRUD, upsert by LinkPoint_Key__c, validation and error mapping, through simple-salesforce."""

import datetime as dt
import re
from unittest import mock

import pytest
from django.utils import timezone
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce.ids import checksum, to18
from sandbox.salesforce.services import (
    SfWriteError,
    sf_record_create,
    sf_record_touch,
    sf_records,
    sf_user_ensure,
)
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

START = "2030-03-04T15:00:00.000+0000"


@pytest.fixture
def rep():
    return sf_user_ensure(email="rita.rep@initech.test")


@pytest.fixture
def sf(rep):
    return sf_client(rep)


def _event(**extra):
    return {"Subject": "Kick-off", "StartDateTime": "2030-03-04T15:00:00Z", "EndDateTime": "2030-03-04T16:30:00Z",
            **extra}


def test_create_read_update_delete_a_contact(sf, rep):
    created = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.test"})
    assert created["success"] is True and created["errors"] == []
    cid = created["id"]
    assert len(cid) == 18 and cid.startswith("003") and cid[15:] == checksum(cid[:15])
    row = sf.Contact.get(cid)
    assert row["attributes"] == {"type": "Contact", "url": f"/services/data/v62.0/sobjects/Contact/{cid}"}
    assert row["Name"] == "Ada Lovelace"
    assert row["OwnerId"] == rep.user_id and row["CreatedById"] == rep.user_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", row["CreatedDate"])
    assert sf.Contact.update(cid, {"Title": "Analyst"}) == 204
    again = sf.Contact.get(cid)
    assert again["Title"] == "Analyst"
    assert again["SystemModstamp"] > row["SystemModstamp"]
    assert sf.Contact.delete(cid) == 204
    with pytest.raises(SalesforceResourceNotFound) as gone:
        sf.Contact.get(cid)
    assert gone.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Contact.get("003" + cid[3:14] + ("A" if cid[14] != "A" else "B"))
    assert missing.value.content[0]["errorCode"] == "NOT_FOUND"


def test_event_times_are_derived_like_the_real_org(sf):
    eid = sf.Event.create(_event())["id"]
    assert eid.startswith("00U")
    row = sf.Event.get(eid)
    assert (row["StartDateTime"], row["EndDateTime"], row["DurationInMinutes"]) == (
        START, "2030-03-04T16:30:00.000+0000", 90)
    assert row["ActivityDateTime"] == START and row["ActivityDate"] == "2030-03-04"
    assert row["ShowAs"] == "Busy" and row["IsAllDayEvent"] is False
    sf.Event.update(eid, {"StartDateTime": "2030-03-05T09:00:00+01:00"})  # a moved event keeps its length
    moved = sf.Event.get(eid)
    assert (moved["StartDateTime"], moved["EndDateTime"]) == (
        "2030-03-05T08:00:00.000+0000", "2030-03-05T09:30:00.000+0000")
    by_duration = sf.Event.get(sf.Event.create(
        {"Subject": "Call", "ActivityDateTime": "2030-03-04T15:00:00.000+0000", "DurationInMinutes": 30})["id"])
    assert by_duration["EndDateTime"] == "2030-03-04T15:30:00.000+0000"
    all_day = sf.Event.get(sf.Event.create(
        {"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": "2030-03-10", "DurationInMinutes": 2880})["id"])
    assert all_day["StartDateTime"] == "2030-03-10T00:00:00.000+0000"
    assert all_day["EndDateTime"] == "2030-03-11T00:00:00.000+0000"
    assert all_day["ActivityDateTime"] is None


@pytest.mark.parametrize(("sobject", "body", "code", "fields"), [
    ("Contact", {"FirstName": "No"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ("Contact", {"LastName": ""}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ("Contact", {"LastName": "X", "Email": "not-an-address"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ("Contact", {"LastName": "X", "LinkPoint_Email2__c": "also@bad"}, "INVALID_EMAIL_ADDRESS",
     ["LinkPoint_Email2__c"]),
    ("Contact", {"LastName": "x" * 81}, "STRING_TOO_LONG", ["LastName"]),
    ("Contact", {"LastName": "X", "Bogus__c": 1}, "INVALID_FIELD", ["Bogus__c"]),
    ("Contact", {"LastName": "X", "SystemModstamp": START}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["SystemModstamp"]),
    ("Event", _event(Subject="s" * 256), "STRING_TOO_LONG", ["Subject"]),
    ("Event", _event(Description="d" * 32001), "STRING_TOO_LONG", ["Description"]),
    ("Event", _event(ShowAs="Tentative"), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["ShowAs"]),
    ("Event", _event(EndDateTime="2030-03-04T14:00:00Z"), "FIELD_INTEGRITY_EXCEPTION", ["EndDateTime"]),
    ("Event", _event(EndDateTime="2030-03-19T16:00:00Z"), "FIELD_INTEGRITY_EXCEPTION", ["DurationInMinutes"]),
    ("Event", {"Subject": "no time"}, "REQUIRED_FIELD_MISSING", ["ActivityDateTime"]),
    ("Task", {"Subject": "t", "Status": "Done"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
    ("Task", {"Subject": "t", "Priority": "Urgent"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Priority"]),
    ("Task", {"Subject": "t", "CompletedDateTime": START}, "INVALID_FIELD_FOR_INSERT_UPDATE",
     ["CompletedDateTime"]),
])
def test_validation_errors_are_the_apis(sf, sobject, body, code, fields):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        getattr(sf, sobject).create(body)
    error = caught.value.content[0]
    assert error["errorCode"] == code
    assert error["fields"] == fields


def test_error_messages_follow_salesforce_wording(sf):
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Event.create(_event(Subject="s" * 256))
    assert caught.value.content[0]["message"].endswith("(max length=255)")
    assert caught.value.content[0]["message"].startswith("Subject: data value too large: ")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"FirstName": "No"})
    assert caught.value.content[0]["message"] == "Required fields are missing: [LastName]"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Task.create({"Subject": "t", "Status": "Done"})
    assert caught.value.content[0]["message"] == "Status: bad value for restricted picklist field: Done"


def test_task_status_drives_closed_and_completed(sf):
    tid = sf.Task.create({"Subject": "Send deck", "ActivityDate": "2030-03-04"})["id"]
    task = sf.Task.get(tid)
    assert (task["Status"], task["Priority"], task["IsClosed"], task["CompletedDateTime"]) == (
        "Not Started", "Normal", False, None)
    sf.Task.update(tid, {"Status": "Completed", "Priority": "High"})
    done = sf.Task.get(tid)
    assert done["IsClosed"] is True and done["IsHighPriority"] is True and done["CompletedDateTime"]


def test_recurring_event_series_keeps_its_normalised_rule(sf, rep):
    eid = sf.Event.create(_event(IsRecurrence2=True, Recurrence2PatternText="FREQ=WEEKLY;BYDAY=MO;COUNT=13"))["id"]
    row = sf.Event.get(eid)
    assert row["IsRecurrence2"] is True
    assert row["Recurrence2PatternText"] == "RRULE:FREQ=WEEKLY;BYDAY=MO;INTERVAL=1;COUNT=13"
    assert row["Recurrence2PatternStartDate"] == START
    assert row["Recurrence2PatternTimeZone"] == rep.time_zone
    with pytest.raises(SalesforceMalformedRequest):
        sf.Event.create(_event(IsRecurrence2=True, Recurrence2PatternText="FREQ=WEEKLY;COUNT=3;UNTIL=20300101"))


def test_upsert_by_linkpoint_key_creates_then_updates(sf):
    assert sf.Contact.upsert("LinkPoint_Key__c/k-1", {"LastName": "First"}) == 201
    assert sf.Contact.upsert("LinkPoint_Key__c/k-1", {"LastName": "Second"}) == 200
    rows = sf.query("SELECT Id, LastName FROM Contact WHERE LinkPoint_Key__c = 'k-1'")["records"]
    assert [r["LastName"] for r in rows] == ["Second"]
    assert sf.Contact.get_by_custom_id("LinkPoint_Key__c", "k-1")["LastName"] == "Second"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.upsert("Email/k-1", {"LastName": "X"})


def test_linkpoint_key_is_unique_and_case_sensitive(sf):
    sf.Task.create({"Subject": "a", "LinkPoint_Key__c": "Key-A"})
    sf.Task.create({"Subject": "b", "LinkPoint_Key__c": "key-a"})  # differs only in case: allowed
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Task.create({"Subject": "c", "LinkPoint_Key__c": "Key-A"})
    assert caught.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_systemmodstamp_strictly_increases_within_one_millisecond(rep):
    frozen = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=frozen):
        first = sf_record_create(user=rep, sobject="Contact", fields={"LastName": "One"})
        second = sf_record_create(user=rep, sobject="Contact", fields={"LastName": "Two"})
        touched = sf_record_touch(user=rep, sobject="Contact", record_id=first["Id"])
    assert first["SystemModstamp"] < second["SystemModstamp"] < touched["SystemModstamp"]
    assert touched["LastModifiedDate"] == first["LastModifiedDate"]  # a touch moves only SystemModstamp


def test_services_validate_like_the_api(rep):
    with pytest.raises(SfWriteError) as caught:
        sf_record_create(user=rep, sobject="Contact", fields={"FirstName": "No"})
    assert caught.value.errors[0].code == "REQUIRED_FIELD_MISSING"
    sf_record_create(user=rep, sobject="Contact", fields={"LastName": "Yes"})
    assert [c["LastName"] for c in sf_records(org=rep.org, sobject="Contact")] == ["Yes"]


def test_ids_are_case_safe_and_accept_15_chars(sf):
    cid = sf.Contact.create({"LastName": "Short"})["id"]
    assert to18(cid[:15]) == cid
    assert sf.Contact.get(cid[:15])["Id"] == cid


def test_reference_fields_must_point_at_live_records(sf):
    account = sf.Account.create({"Name": "Initech"})["id"]
    cid = sf.Contact.create({"LastName": "Bolton", "AccountId": account})["id"]
    row = sf.query(f"SELECT Id, Account.Name FROM Contact WHERE Id = '{cid}'")["records"][0]
    assert row["Account"]["Name"] == "Initech"
    sf.Account.delete(account)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.create({"LastName": "Waddams", "AccountId": account})
    assert caught.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_updated_and_deleted_windows(sf):
    now = timezone.now()
    start = now - dt.timedelta(minutes=5)
    end = now + dt.timedelta(minutes=5)
    keep = sf.Contact.create({"LastName": "Keep"})["id"]
    drop = sf.Contact.create({"LastName": "Drop"})["id"]
    sf.Contact.delete(drop)
    with mock.patch("django.utils.timezone.now", return_value=now + dt.timedelta(minutes=10)):
        updated = sf.Contact.updated(start, end)
        deleted = sf.Contact.deleted(start, end)
        with pytest.raises(SalesforceMalformedRequest) as too_old:
            sf.Contact.updated(now - dt.timedelta(days=31), end)
    assert updated["ids"] == [keep]
    assert [d["id"] for d in deleted["deletedRecords"]] == [drop]
    assert too_old.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_describe_lists_custom_fields_and_picklists(sf):
    fields = {f["name"]: f for f in sf.Event.describe()["fields"]}
    assert fields["LinkPoint_Key__c"]["externalId"] is True and fields["LinkPoint_Key__c"]["length"] == 36
    assert [p["value"] for p in fields["ShowAs"]["picklistValues"]] == ["Busy", "OutOfOffice", "Free"]
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Event", "Task", "Contact", "Account", "User"} <= names


def test_known_case_safe_checksum():
    assert checksum("a0D30000001n7Pi") == "EAI"


def test_orgs_never_see_each_others_records(sf):
    mine = sf.Contact.create({"LastName": "Mine", "LinkPoint_Key__c": "shared-key"})["id"]
    theirs = sf_client(sf_user_ensure(email="eve@othercorp.test"))
    assert theirs.query("SELECT Id FROM Contact")["totalSize"] == 0
    with pytest.raises(SalesforceResourceNotFound):
        theirs.Contact.get(mine)
    with pytest.raises(SalesforceResourceNotFound):
        theirs.Contact.update(mine, {"LastName": "Stolen"})
    results = theirs.restful(f"composite/sobjects?ids={mine}", method="DELETE")
    assert results[0]["success"] is False
    assert theirs.Contact.upsert("LinkPoint_Key__c/shared-key", {"LastName": "Theirs"}) == 201  # keys are per org
    assert sf.Contact.get(mine)["LastName"] == "Mine"
