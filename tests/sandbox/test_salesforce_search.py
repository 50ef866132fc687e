"""SOSL search, Lead/Opportunity/Case, per-org Event describe and EventRelation in the emulated org."""

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.services import (
    sf_custom_field_change,
    sf_custom_field_ensure,
    sf_record_create,
    sf_user_ensure,
)
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def rep():
    return sf_user_ensure(email="rita.rep@initech.test")


@pytest.fixture
def sf(rep):
    return sf_client(rep)


def _event(**extra):
    return {"Subject": "Kick-off", "StartDateTime": "2030-03-04T15:00:00Z",
            "EndDateTime": "2030-03-04T16:30:00Z", **extra}


def test_sosl_finds_records_by_name_with_wildcards_in_returning_order(sf, rep):
    acc = sf_record_create(user=rep, sobject="Account", fields={"Name": "O'Brien & Sons (UK)"})["Id"]
    sf_record_create(user=rep, sobject="Contact", fields={"FirstName": "Ada", "LastName": "O'Brien",
                                                         "Email": "ada@obrien.test"})
    sf_record_create(user=rep, sobject="Lead", fields={"LastName": "Brier", "Company": "Brierly"})
    opp = sf_record_create(user=rep, sobject="Opportunity", fields={
        "Name": "Obrien expansion", "AccountId": acc, "StageName": "Prospecting", "CloseDate": "2031-01-01"})
    out = sf.search("FIND {O\\'Brien*} IN NAME FIELDS RETURNING Contact(Id, Name, Email), "
                    "Account(Id, Name)")
    assert [(r["attributes"]["type"], r["Name"]) for r in out["searchRecords"]] == [
        ("Contact", "Ada O'Brien"), ("Account", "O'Brien & Sons (UK)")]
    assert set(out["searchRecords"][0]) == {"attributes", "Id", "Name", "Email"}
    found = sf.search("FIND {obrien*} RETURNING Opportunity(Id, Name, StageName)")["searchRecords"]
    assert [r["Id"] for r in found] == [opp["Id"]]
    assert sf.search("FIND {bri*} IN NAME FIELDS RETURNING Lead(Id, Company)")["searchRecords"][0][
        "Company"] == "Brierly"


@pytest.mark.parametrize("term", ["O'Brien", "a & b", "(UK)", "a-b", "x:y", "tilde~", "bad\\q"])
def test_sosl_refuses_unescaped_reserved_characters_as_salesforce_does(sf, term):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.search(f"FIND {{{term}}} RETURNING Contact(Id)")
    assert info.value.content[0]["errorCode"] == "MALFORMED_SEARCH"


def test_sosl_needs_two_characters_and_known_objects_and_fields(sf):
    with pytest.raises(SalesforceMalformedRequest) as short:
        sf.search("FIND {a*} RETURNING Contact(Id)")
    assert short.value.content[0]["errorCode"] == "INVALID_SEARCH"
    with pytest.raises(SalesforceMalformedRequest) as bad_type:
        sf.search("FIND {ada} RETURNING Widget(Id)")
    assert bad_type.value.content[0]["errorCode"] == "INVALID_TYPE"
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.search("FIND {ada} RETURNING Contact(Nope)")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_event_describe_carries_the_orgs_custom_picklist_and_validates_it(sf, rep):
    sf_custom_field_ensure(org=rep.org, sobject="Event", name="Meeting_Type__c", label="Meeting type",
                           type="picklist", required=True, picklist=["Discovery", "Demo"])
    fields = {f["name"]: f for f in sf.Event.describe()["fields"]}
    mt = fields["Meeting_Type__c"]
    assert (mt["custom"], mt["type"], mt["nillable"], mt["restrictedPicklist"]) == (True, "picklist", False, True)
    assert [v["value"] for v in mt["picklistValues"]] == ["Discovery", "Demo"]
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Event.create(_event())
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Event.create(_event(Meeting_Type__c="Party"))
    assert bad.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    eid = sf.Event.create(_event(Meeting_Type__c="Demo"))["id"]
    assert sf.Event.get(eid)["Meeting_Type__c"] == "Demo"
    sf_custom_field_change(org=rep.org, sobject="Event", name="Meeting_Type__c", retire=("Demo",))
    fields = {f["name"]: f for f in sf.Event.describe()["fields"]}
    assert [v["value"] for v in fields["Meeting_Type__c"]["picklistValues"]] == ["Discovery"]
    other = sf_user_ensure(email="sam@globex-corp.test")
    assert "Meeting_Type__c" not in {f["name"] for f in sf_client(other).Event.describe()["fields"]}


def test_who_and_what_take_the_right_types_only_from_the_same_org(sf, rep):
    lead = sf_record_create(user=rep, sobject="Lead", fields={"LastName": "Lane", "Company": "Lane Ltd"})["Id"]
    case = sf_record_create(user=rep, sobject="Case", fields={"Subject": "Broken"})
    assert case["CaseNumber"]
    eid = sf.Event.create(_event(WhoId=lead, WhatId=case["Id"]))["id"]
    assert sf.Event.get(eid)["WhoId"] == lead
    with pytest.raises(SalesforceMalformedRequest) as wrong:
        sf.Event.update(eid, {"WhoId": case["Id"]})
    assert wrong.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    stranger = sf_user_ensure(email="sam@globex-corp.test")
    theirs = sf_record_create(user=stranger, sobject="Contact", fields={"LastName": "Theirs"})["Id"]
    with pytest.raises(SalesforceMalformedRequest) as cross:
        sf.Event.update(eid, {"WhoId": theirs})
    assert cross.value.content[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_event_relation_is_parent_only_with_shared_activities(sf, rep):
    cid = sf_record_create(user=rep, sobject="Contact", fields={"LastName": "Parent"})["Id"]
    eid = sf.Event.create(_event())["id"]
    rel = sf.EventRelation.create({"EventId": eid, "RelationId": cid, "IsParent": True, "IsInvitee": False})
    assert rel["success"]
    rows = sf.query(f"SELECT RelationId, IsParent FROM EventRelation WHERE EventId = '{eid}'")["records"]
    assert [(r["RelationId"], r["IsParent"]) for r in rows] == [(cid, True)]
    rep.org.shared_activities = False
    rep.org.save(update_fields=["shared_activities"])
    assert "IsParent" not in {f["name"] for f in sf.EventRelation.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as off:
        sf.EventRelation.create({"EventId": eid, "RelationId": cid, "IsParent": True})
    assert off.value.content[0]["errorCode"] == "INVALID_FIELD"
