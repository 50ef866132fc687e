"""The demo console over the dev server: staff see an org's items and can edit or delete one."""

import pytest

from sandbox.salesforce.services import sf_record_create, sf_records, sf_user_ensure

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def rep():
    return sf_user_ensure(email="nina@dunder.test")


@pytest.fixture
def seeded(rep):
    event = sf_record_create(user=rep, sobject="Event", fields={
        "Subject": "Quarterly review", "StartDateTime": "2030-02-01T09:00:00Z", "DurationInMinutes": 60})
    contact = sf_record_create(user=rep, sobject="Contact", fields={"LastName": "Scott", "FirstName": "Michael"})
    task = sf_record_create(user=rep, sobject="Task", fields={"Subject": "Order paper"})
    return {"event": event, "contact": contact, "task": task}


def test_staff_see_the_orgs_items_by_user_email_or_org_id(client_for, pat, rep, seeded):
    client = client_for(pat)
    for key in (rep.username, rep.org.org_id):
        page = client.get(f"/sandbox/console/salesforce/{key}/")
        assert page.status_code == 200
        assert b"Quarterly review" in page.content and b"Michael Scott" in page.content
        assert b"Order paper" in page.content


def test_editing_a_record_goes_through_validation_and_bumps_modstamp(client_for, pat, rep, seeded):
    client = client_for(pat)
    base = f"/sandbox/console/salesforce/{rep.username}/"
    contact = seeded["contact"]
    form = client.get(base + f"?edit={contact['Id']}")
    assert b'name="LastName"' in form.content
    bad = client.post(base + f"records/{contact['Id']}/save", {"FirstName": "Michael", "LastName": ""})
    assert bad.status_code == 400
    assert b"REQUIRED_FIELD_MISSING" in bad.content
    ok = client.post(base + f"records/{contact['Id']}/save", {"FirstName": "Michael", "LastName": "Scarn",
                                                              "Title": "Agent"})
    assert ok.status_code == 302
    (row,) = sf_records(org=rep.org, sobject="Contact")
    assert (row["Name"], row["Title"]) == ("Michael Scarn", "Agent")
    assert row["SystemModstamp"] > contact["SystemModstamp"]
    assert row["LastModifiedById"] == rep.user_id


def test_deleting_over_htmx_moves_the_record_to_the_recycle_bin(client_for, pat, rep, seeded):
    client = client_for(pat)
    task = seeded["task"]
    answer = client.post(f"/sandbox/console/salesforce/{rep.username}/records/{task['Id']}/delete",
                         HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert b'id="records"' in answer.content and b"<html" not in answer.content
    assert b"Order paper" not in answer.content
    assert sf_records(org=rep.org, sobject="Task") == []
    assert sf_records(org=rep.org, sobject="Task", include_deleted=True)[0]["IsDeleted"] is True


def test_outsiders_get_nothing(client, client_for, charlie, rep, seeded):
    url = f"/sandbox/console/salesforce/{rep.username}/"
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    member = client_for(charlie)
    assert member.get(url).status_code == 404
    assert member.post(url + f"records/{seeded['task']['Id']}/delete").status_code == 404
    assert sf_records(org=rep.org, sobject="Task")  # still there


def test_unknown_org_is_404_for_staff(client_for, pat):
    assert client_for(pat).get("/sandbox/console/salesforce/nobody@nowhere.test/").status_code == 404


def test_an_event_series_shows_each_occurrence_in_its_series_and_edits_one_or_the_rest(client_for, pat, rep):
    first = sf_record_create(user=rep, sobject="Event", fields={
        "Subject": "Standup", "StartDateTime": "2030-02-04T09:00:00Z", "DurationInMinutes": 15,
        "IsRecurrence2": True, "Recurrence2PatternText": "FREQ=DAILY;COUNT=3", "Recurrence2PatternTimeZone": "UTC"})
    client = client_for(pat)
    base = f"/sandbox/console/salesforce/{rep.username}/"
    page = client.get(base).content.decode()
    for n in (1, 2, 3):
        assert f"{n} of 3 · FREQ=DAILY;INTERVAL=1;COUNT=3 · UTC" in page
    rows = sorted(sf_records(org=rep.org, sobject="Event"), key=lambda r: r["StartDateTime"])
    assert rows[0]["Id"] == first["Id"]
    assert 'name="scope"' in client.get(base + f"?edit={rows[1]['Id']}").content.decode()
    fields = {"Subject": "Standup (moved)", "StartDateTime": rows[1]["StartDateTime"],
              "EndDateTime": rows[1]["EndDateTime"], "ShowAs": "Busy"}
    client.post(base + f"records/{rows[1]['Id']}/save", {**fields, "scope": "one"})
    after = sorted(sf_records(org=rep.org, sobject="Event"), key=lambda r: r["StartDateTime"])
    assert [r["Subject"] for r in after] == ["Standup", "Standup (moved)", "Standup"]
    assert "2 of 3 · FREQ=DAILY;INTERVAL=1;COUNT=3 · UTC · changed alone" in client.get(base).content.decode()
    client.post(base + f"records/{rows[1]['Id']}/delete", {"onwards": "1"})
    assert [r["Id"] for r in sf_records(org=rep.org, sobject="Event")] == [first["Id"]]
