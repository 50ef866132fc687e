"""Lightning event series (IsRecurrence2) in the emulated org, through simple-salesforce.

Salesforce stores a series as one Event per occurrence (sandbox/salesforce/series.py has the sources);
the occurrence instants are checked against python-dateutil, an RRULE implementation the emulator does
not use, in the series' own zone.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox.salesforce.services import sf_series_repattern, sf_user_ensure
from sandbox.salesforce.testing import sf_client

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

FIELDS = ("Id, Subject, Location, StartDateTime, EndDateTime, DurationInMinutes, ActivityDate, IsAllDayEvent, "
          "IsRecurrence2, IsRecurrence2Exception, IsRecurrence2Exclusion, Recurrence2PatternText, "
          "Recurrence2PatternStartDate, Recurrence2PatternTimeZone, GroupEventType, LinkPoint_Key__c, IsDeleted")


@pytest.fixture
def rep():
    return sf_user_ensure(email="sam.series@initech.test")


@pytest.fixture
def sf(rep):
    return sf_client(rep)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(dt.UTC)


def _wire(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _occurrences(sf, *, deleted: bool = False) -> list[dict]:
    soql = f"SELECT {FIELDS} FROM Event WHERE IsRecurrence2 = true ORDER BY StartDateTime"
    return sf.query_all(soql, include_deleted=deleted)["records"]


def _expected(rule: str, local_start: dt.datetime, limit: int = 999) -> list[dt.datetime]:
    """dateutil's occurrences of `rule` from an aware wall-clock DTSTART, in UTC."""
    out = []
    for n, when in enumerate(rrulestr(rule, dtstart=local_start)):
        if n >= limit:
            break
        out.append(when.astimezone(dt.UTC))
    return out


def _local(wall: dt.datetime, zone: str) -> dt.datetime:
    """`wall` in `zone` as the instant the API carries reads back there (a time in a spring-forward gap
    becomes the hour after it)."""
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC).astimezone(ZoneInfo(zone))


def _series(sf, rule, local_start, minutes=45, **extra):
    return sf.Event.create({
        "Subject": "Pipeline review", "Location": "Room 4", "StartDateTime": _wire(local_start),
        "DurationInMinutes": minutes, "IsRecurrence2": True, "Recurrence2PatternText": rule,
        "Recurrence2PatternTimeZone": local_start.tzinfo.key, **extra,
    })["id"]


# --- create ----------------------------------------------------------------------------------------------


def test_a_series_is_one_record_per_occurrence_at_local_time_across_dst(sf, rep):
    start = dt.datetime(2030, 3, 4, 9, 0, tzinfo=ZoneInfo("America/New_York"))  # DST starts 10 March
    first = _series(sf, "FREQ=WEEKLY;BYDAY=MO;COUNT=4", start, LinkPoint_Key__c="lp-1")
    rows = _occurrences(sf)
    assert [_utc(r["StartDateTime"]) for r in rows] == _expected("FREQ=WEEKLY;BYDAY=MO;COUNT=4", start)
    assert [r["StartDateTime"][11:16] for r in rows] == ["14:00", "13:00", "13:00", "13:00"]  # 09:00 local
    assert rows[0]["Id"] == first
    assert [r["LinkPoint_Key__c"] for r in rows] == ["lp-1", None, None, None]  # a unique key is on one record
    for r in rows:
        assert (r["Subject"], r["Location"], r["DurationInMinutes"]) == ("Pipeline review", "Room 4", 45)
        assert _utc(r["EndDateTime"]) - _utc(r["StartDateTime"]) == dt.timedelta(minutes=45)
        assert r["Recurrence2PatternText"] == "RRULE:FREQ=WEEKLY;BYDAY=MO;INTERVAL=1;COUNT=4"
        assert r["Recurrence2PatternStartDate"] == rows[0]["StartDateTime"]
        assert r["Recurrence2PatternTimeZone"] == "America/New_York"
        assert (r["GroupEventType"], r["IsRecurrence2Exception"], r["IsRecurrence2Exclusion"]) == ("0", False, False)
    assert sf.Event.get_by_custom_id("LinkPoint_Key__c", "lp-1")["Id"] == first


SCRIPTED = [
    ("FREQ=DAILY;INTERVAL=3;COUNT=12", dt.datetime(2030, 3, 27, 8, 30), "Europe/Berlin"),  # DST 31 March
    ("FREQ=MONTHLY;BYDAY=SU;BYSETPOS=1;COUNT=8", dt.datetime(2030, 2, 3, 10, 0), "Australia/Adelaide"),  # +9:30
    ("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=6", dt.datetime(2030, 1, 31, 17, 0), "Asia/Kathmandu"),  # +5:45
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3", dt.datetime(2028, 2, 29, 7, 0), "Pacific/Kiritimati"),  # +14
    ("FREQ=WEEKLY;BYDAY=TU,TH;WKST=SU;INTERVAL=2;UNTIL=20301201T000000Z", dt.datetime(2030, 10, 1, 23, 30),
     "Pacific/Pago_Pago"),  # -11
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=1SU;COUNT=3", dt.datetime(2030, 11, 3, 1, 30), "America/Chicago"),  # the
    # repeated hour of the fall-back day
    ("FREQ=MONTHLY;INTERVAL=2;BYDAY=-1FR;COUNT=5", dt.datetime(2030, 3, 29, 18, 0), "America/Santiago"),
]


@pytest.mark.parametrize(("rule", "wall", "zone"), SCRIPTED)
def test_occurrences_match_an_independent_rrule_expansion(sf, rule, wall, zone):
    start = _local(wall, zone)
    _series(sf, rule, start)
    assert [_utc(r["StartDateTime"]) for r in _occurrences(sf)] == _expected(rule, start)


def test_an_all_day_series_is_one_all_day_event_per_date(sf):
    sf.Event.create({"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": "2030-10-26",
                     "IsRecurrence2": True, "Recurrence2PatternText": "FREQ=DAILY;COUNT=3",
                     "Recurrence2PatternTimeZone": "Europe/London"})
    rows = _occurrences(sf)
    assert [(r["ActivityDate"], r["StartDateTime"], r["IsAllDayEvent"]) for r in rows] == [
        (d, f"{d}T00:00:00.000+0000", True) for d in ("2030-10-26", "2030-10-27", "2030-10-28")]


ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata",
         "Asia/Kathmandu", "Pacific/Chatham", "Pacific/Kiritimati", "Pacific/Niue", "America/Sao_Paulo", "UTC"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def series_rules(draw):
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}"]
    if freq == "WEEKLY":
        parts.append("BYDAY=" + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))))
        parts.append("WKST=" + draw(st.sampled_from(DAYS)))
    elif freq in ("MONTHLY", "YEARLY"):
        kind = draw(st.sampled_from(["monthday", "nth", "setpos", "none"]))
        if freq == "YEARLY":
            parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
        if kind == "monthday":
            parts.append(f"BYMONTHDAY={draw(st.sampled_from([1, 15, 28, 29, 30, 31, -1, -2]))}")
        elif kind == "nth":
            parts.append(f"BYDAY={draw(st.sampled_from([-1, 1, 2, 3, 4]))}{draw(st.sampled_from(DAYS))}")
        elif kind == "setpos":
            parts.append("BYDAY=" + ",".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=5, unique=True))))
            parts.append(f"BYSETPOS={draw(st.sampled_from([-1, 1, 2, 3, 4]))}")
    top = {"DAILY": 30, "WEEKLY": 8, "MONTHLY": 14, "YEARLY": 1}[freq]
    parts.append(f"INTERVAL={draw(st.integers(1, top))}")
    parts.append(f"COUNT={draw(st.integers(1, 12))}")
    return ";".join(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rule=series_rules(), zone=st.sampled_from(ZONES), all_day=st.booleans(),
       wall=st.datetimes(min_value=dt.datetime(2029, 1, 1), max_value=dt.datetime(2031, 12, 31)))
def test_property_series_instants_equal_dateutil_in_the_pattern_zone(sf, rule, zone, all_day, wall):
    start = _local(wall.replace(second=0, microsecond=0), zone)
    if all_day:  # dates: each occurrence is all day on its date, whatever the zone
        start = _local(wall.replace(hour=0, minute=0, second=0, microsecond=0), "UTC")
    expected = _expected(rule, start)
    try:
        if all_day:
            sf.Event.create({"Subject": "Offsite", "IsAllDayEvent": True, "ActivityDate": start.date().isoformat(),
                             "IsRecurrence2": True, "Recurrence2PatternText": rule,
                             "Recurrence2PatternTimeZone": zone})
        else:
            _series(sf, rule, start)
    except SalesforceMalformedRequest as refused:  # only a rule without any occurrence is refused here
        assert expected == [] and refused.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
        return
    try:
        assert [_utc(r["StartDateTime"]) for r in _occurrences(sf)] == expected
    finally:
        sf.restful("composite/sobjects", method="DELETE",
                   params={"ids": ",".join(r["Id"] for r in _occurrences(sf))})


# --- update ---------------------------------------------------------------------------------------------


def _daily_around_now(sf, **extra):
    """A daily series of 6: three occurrences in the past, three ahead (at 10:00 in Madrid)."""
    zone = ZoneInfo("Europe/Madrid")
    today = timezone.now().astimezone(zone).date()
    start = dt.datetime.combine(today - dt.timedelta(days=3), dt.time(10, 0), tzinfo=zone)
    if dt.datetime.combine(today, dt.time(10, 0), tzinfo=zone) < timezone.now():
        start += dt.timedelta(days=1)  # keep three occurrences ahead of now
    _series(sf, "FREQ=DAILY;COUNT=6", start, **extra)
    rows = _occurrences(sf)
    now = timezone.now()
    assert [_utc(r["StartDateTime"]) < now for r in rows] == [True] * 3 + [False] * 3
    return rows


def test_v62_changing_a_future_occurrence_changes_the_series_from_there_on(sf):
    rows = _daily_around_now(sf)
    assert sf.Event.update(rows[4]["Id"], {"Subject": "Forecast call"}) == 204
    after = _occurrences(sf)
    assert [r["Subject"] for r in after] == ["Pipeline review"] * 3 + ["Forecast call"] * 3
    assert not any(r["IsRecurrence2Exception"] for r in after)
    assert [r["Id"] for r in after] == [r["Id"] for r in rows]


def test_v62_moving_a_future_occurrence_moves_every_future_one_in_local_time(sf):
    rows = _daily_around_now(sf)
    start = _utc(rows[3]["StartDateTime"])
    sf.Event.update(rows[3]["Id"], {"StartDateTime": _wire(start + dt.timedelta(hours=1)), "DurationInMinutes": 30})
    after = _occurrences(sf)
    madrid = ZoneInfo("Europe/Madrid")
    assert [_utc(r["StartDateTime"]).astimezone(madrid).hour for r in after] == [10] * 3 + [11] * 3
    assert [r["DurationInMinutes"] for r in after] == [45] * 3 + [30] * 3


def test_v62_changing_a_past_occurrence_makes_it_an_exception_alone(sf):
    rows = _daily_around_now(sf)
    sf.Event.update(rows[1]["Id"], {"Location": "Phone"})
    after = _occurrences(sf)
    assert [r["Location"] for r in after] == ["Room 4", "Phone", "Room 4", "Room 4", "Room 4", "Room 4"]
    assert [r["IsRecurrence2Exception"] for r in after] == [False, True, False, False, False, False]


def test_before_v58_changing_a_future_occurrence_changes_it_alone(sf, rep):
    rows = _daily_around_now(sf)
    old = sf_client(rep, version="57.0")
    assert old.Event.update(rows[4]["Id"], {"Subject": "Moved to Friday"}) == 204
    after = _occurrences(sf)
    assert [r["Subject"] for r in after][3:] == ["Pipeline review", "Moved to Friday", "Pipeline review"]
    assert [r["IsRecurrence2Exception"] for r in after] == [False] * 4 + [True, False]
    # ...and a later v62 series change leaves that exception as it is.
    sf.Event.update(rows[3]["Id"], {"Subject": "Renamed"})
    assert [r["Subject"] for r in _occurrences(sf)][3:] == ["Renamed", "Moved to Friday", "Renamed"]


def test_the_pattern_is_fixed_once_created(sf):
    rows = _daily_around_now(sf)
    for field, value in [("Recurrence2PatternText", "FREQ=DAILY;COUNT=2"), ("IsRecurrence2", False),
                         ("Recurrence2PatternTimeZone", "UTC")]:
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.Event.update(rows[4]["Id"], {field: value})
        assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert len(_occurrences(sf)) == 6


def test_siblings_are_found_by_their_shared_pattern_fields(sf, rep):
    rows = _daily_around_now(sf)
    sf.Event.create({"Subject": "Single", "StartDateTime": rows[0]["StartDateTime"], "DurationInMinutes": 10})
    first = rows[0]
    soql = (f"SELECT Id FROM Event WHERE IsRecurrence2 = true AND OwnerId = '{rep.user_id}' "
            f"AND Recurrence2PatternStartDate = {first['Recurrence2PatternStartDate'].replace('.000+0000', 'Z')} "
            f"AND Recurrence2PatternText = '{first['Recurrence2PatternText']}' "
            f"AND Recurrence2PatternTimeZone = 'Europe/Madrid'")
    assert sorted(r["Id"] for r in sf.query(soql)["records"]) == sorted(r["Id"] for r in rows)


# --- delete ---------------------------------------------------------------------------------------------


def test_deleting_one_occurrence_removes_it_alone(sf):
    rows = _daily_around_now(sf, LinkPoint_Key__c="lp-del")
    assert sf.Event.delete(rows[4]["Id"]) == 204
    assert [r["Id"] for r in _occurrences(sf)] == [r["Id"] for i, r in enumerate(rows) if i != 4]
    gone = [r for r in _occurrences(sf, deleted=True) if r["IsDeleted"]]
    assert [r["Id"] for r in gone] == [rows[4]["Id"]]


def test_from_this_event_onwards_deletes_the_rest_of_the_series(sf):
    rows = _daily_around_now(sf)
    answer = sf.restful(f"sobjects/Event/{rows[3]['Id']}/fromThisEventOnwards", method="DELETE")
    assert answer["success"].startswith("We’re deleting the selected events from the series")
    assert [r["Id"] for r in _occurrences(sf)] == [r["Id"] for r in rows[:3]]


def test_a_pattern_change_in_the_ui_keeps_past_occurrences_as_history(sf, rep):
    rows = _daily_around_now(sf, LinkPoint_Key__c="lp-ui")
    new_first = sf_series_repattern(user=rep, occurrence_id=rows[3]["Id"], rrule="FREQ=DAILY;INTERVAL=2;COUNT=2")
    after = _occurrences(sf)
    assert [r["Id"] for r in after[:3]] == [r["Id"] for r in rows[:3]]
    assert all(r["IsRecurrence2Exclusion"] for r in after[:3])
    assert after[3]["Id"] == new_first["Id"]
    assert [r["LinkPoint_Key__c"] for r in after] == ["lp-ui", None, None, None, None]  # the key stays in history
    assert [_utc(r["StartDateTime"]) for r in after[3:]] == [_utc(rows[3]["StartDateTime"]),
                                                              _utc(rows[5]["StartDateTime"])]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful(f"sobjects/Event/{after[0]['Id']}/fromThisEventOnwards", method="DELETE")
    assert refused.value.content[0]["errorCode"] == "INVALID_OPERATION"


# --- which rules Salesforce accepts ----------------------------------------------------------------------

ORDER = ("FREQ", "BYMONTH", "BYMONTHDAY", "BYDAY", "WKST", "BYSETPOS", "INTERVAL", "UNTIL", "COUNT", "BYWEEKNO",
         "BYYEARDAY")


def _documented(parts: list[tuple[str, str]]) -> str | None:
    """The saved rule when Salesforce's documented subset accepts `parts`, else None (written from the docs,
    not from the emulator)."""
    keys = [k for k, _ in parts]
    if len(set(keys)) != len(keys) or any(k not in ORDER or v == "" for k, v in parts):
        return None
    p = dict(parts)
    freq = p.get("FREQ")
    if freq not in ("DAILY", "WEEKLY", "MONTHLY", "YEARLY"):
        return None
    interval = p.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= {"DAILY": 999, "WEEKLY": 99, "MONTHLY": 99,
                                                             "YEARLY": 1}[freq]:
        return None
    if "UNTIL" in p and "COUNT" in p:
        return None
    if "COUNT" in p and not (p["COUNT"].isdigit() and 1 <= int(p["COUNT"]) <= 999):
        return None
    if "UNTIL" in p:
        try:
            dt.datetime.strptime(p["UNTIL"], "%Y%m%dT%H%M%SZ")
        except ValueError:
            return None
    days = p.get("BYDAY", "").split(",") if "BYDAY" in p else []
    prefixes = set()
    for d in days:
        m = re.fullmatch(r"(-?\d+)?(MO|TU|WE|TH|FR|SA|SU)", d)
        if not m or (m.group(1) and int(m.group(1)) not in (-1, 1, 2, 3, 4)):
            return None
        prefixes.add(m.group(1))
    if len(prefixes) > 1 or (freq in ("DAILY", "WEEKLY") and prefixes - {None}):
        return None
    if freq == "WEEKLY" and not days:
        return None

    def numbers(key, top):
        return all(re.fullmatch(r"-?\d+", v) and 1 <= abs(int(v)) <= top for v in p[key].split(","))

    if "BYMONTHDAY" in p and (freq == "WEEKLY" or not numbers("BYMONTHDAY", 31)):
        return None
    if "BYMONTH" in p and not all(v.isdigit() and 1 <= int(v) <= 12 for v in p["BYMONTH"].split(",")):
        return None
    if "BYSETPOS" in p and (not numbers("BYSETPOS", 366) or not {"BYDAY", "BYMONTHDAY", "BYMONTH"} & set(p)):
        return None
    if "WKST" in p and p["WKST"] not in ("MO", "TU", "WE", "TH", "FR", "SA", "SU"):
        return None
    p["INTERVAL"] = interval
    return "RRULE:" + ";".join(f"{k}={p[k]}" for k in ORDER if k in p)


PART_VALUES = {
    "FREQ": ["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "SECONDLY", ""],
    "INTERVAL": ["1", "2", "99", "100", "999", "1000", "0", "-1", "x"],
    "BYDAY": ["MO", "MO,WE", "1MO", "-1FR", "4SU", "5MO", "-2TU", "0MO", "1MO,2TU", "1MO,TU", "XX", "MO,,TU"],
    "BYMONTHDAY": ["1", "15", "31", "-1", "-31", "32", "0", "-32", "1,15"],
    "BYMONTH": ["1", "6", "12", "13", "0", "2,8"],
    "BYSETPOS": ["1", "-1", "2", "4", "0", "367"],
    "WKST": ["SU", "MO", "XX"],
    "UNTIL": ["20300620T000000Z", "20300620", "2030-06-20T00:00:00Z", "20300620T000000", "20300230T000000Z"],
    "COUNT": ["1", "3", "999", "1000", "0", "-3"],
    "BYHOUR": ["9"], "BYMINUTE": ["30"], "EXDATE": ["20300101T000000Z"], "X-NAME": ["1"],
}


@st.composite
def rule_parts(draw):
    keys = draw(st.lists(st.sampled_from(sorted(PART_VALUES)), min_size=0, max_size=6))
    if draw(st.booleans()):
        keys = ["FREQ", *keys]
    parts = [(k, draw(st.sampled_from(PART_VALUES[k]))) for k in keys]
    if not any(k in ("COUNT", "UNTIL") for k in keys) and draw(st.integers(0, 19)):  # keep most series short
        parts.append(("COUNT", "2"))
    return parts


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=rule_parts(), lower=st.booleans(), prefix=st.booleans())
def test_property_the_emulator_accepts_exactly_the_documented_rules(sf, parts, lower, prefix):
    text = ("RRULE:" if prefix else "") + ";".join(f"{k}={v}" for k, v in parts)
    start = dt.datetime(2030, 6, 3, 9, 0, tzinfo=ZoneInfo("America/Denver"))
    saved = _documented(parts)
    if saved and not _expected(saved[6:], start, limit=1):
        saved = None  # a rule with no occurrence at all is refused as well
    sent = text.lower() if lower else text
    try:
        eid = _series(sf, sent, start)
    except SalesforceMalformedRequest as refused:
        assert saved is None, f"{text} refused: {refused.content}"
        error = refused.content[0]
        if not text:  # an empty string is null: IsRecurrence2 without a pattern
            assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
            return
        assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION" and error["fields"] == ["Recurrence2PatternText"]
        assert error["message"].startswith("Recurrence2PatternText: ")
        return
    assert saved is not None, f"{text} accepted"
    assert sf.Event.get(eid)["Recurrence2PatternText"] == saved
    sf.restful(f"sobjects/Event/{eid}/fromThisEventOnwards", method="DELETE")


def test_a_rule_whose_saved_form_passes_512_characters_is_too_long(sf):
    start = dt.datetime(2030, 6, 3, 9, 0, tzinfo=ZoneInfo("UTC"))
    sent = "FREQ=MONTHLY;COUNT=2;BYMONTHDAY=" + ",".join(["1"] * 239)
    assert len(sent) == 509  # "RRULE:" and ";INTERVAL=1" make it 526
    with pytest.raises(SalesforceMalformedRequest) as refused:
        _series(sf, sent, start)
    assert refused.value.content[0]["errorCode"] == "STRING_TOO_LONG"
