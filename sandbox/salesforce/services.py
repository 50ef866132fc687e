"""Writes to the emulated Salesforce: orgs and users, OAuth grants, records.

The seeder, the console page and the REST views all write through these, so
a record made by any of them looks exactly like one made through the API.
Record writes are batched (one org lock, one id block, one SystemModstamp,
one bulk insert/update per call) so that 10,000 rows take seconds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F

from . import clock, series
from .ids import base62, make_id, to18
from .models import SfAccessToken, SfAuthCode, SfOrg, SfRecord, SfRefreshToken, SfUser
from .schema import KEY_PREFIX, LINK_KEY, OBJECTS, PREFIX_TYPE, WRITABLE, schema_for
from .validation import SfError, prepare

DB = "sandbox"
ROLLED_BACK = SfError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById",
                 "SystemModstamp")


class SfWriteError(Exception):
    """A single-record write was refused; `errors` as the API would list them."""

    def __init__(self, errors: list[SfError]):
        super().__init__("; ".join(f"{e.code}: {e.message}" for e in errors))
        self.errors = errors


@dataclass
class WriteResult:
    id: str | None
    success: bool
    errors: list[SfError] = field(default_factory=list)
    created: bool | None = None
    record: SfRecord | None = None


# --- orgs and users -------------------------------------------------------------------------


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "org"


def _org_ensure(domain: str, org_name: str | None) -> SfOrg:
    org = SfOrg.objects.filter(domain=domain).first()
    if org:
        return org
    base = _slugify(domain.split(".")[0])
    slug, n = base, 1
    while SfOrg.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}{n}"
    org = SfOrg.objects.create(org_id="tmp-" + secrets.token_hex(6), name=org_name or domain.split(".")[0].title(),
                               slug=slug, domain=domain)
    org.org_id = make_id("00D", org.pk, 0)
    org.save(update_fields=["org_id"])
    return org


def _serials(org: SfOrg, count: int) -> range:
    """Reserve `count` id serials in the org (the caller holds the org row lock)."""
    SfOrg.objects.filter(pk=org.pk).update(id_serial=F("id_serial") + count)
    org.refresh_from_db(fields=["id_serial"])
    return range(org.id_serial - count + 1, org.id_serial + 1)


def _next_modstamp(org: SfOrg) -> dt.datetime:
    """A stamp strictly after every earlier write in the org, even within one millisecond."""
    stamp = clock.to_ms(clock.now())
    if org.last_modstamp and stamp <= org.last_modstamp:
        stamp = org.last_modstamp + dt.timedelta(milliseconds=1)
    org.last_modstamp = stamp
    SfOrg.objects.filter(pk=org.pk).update(last_modstamp=stamp)
    return stamp


def _lock_org(org_pk: int) -> SfOrg:
    return SfOrg.objects.select_for_update().get(pk=org_pk)


@transaction.atomic(using=DB)
def sf_user_ensure(*, email: str, org_name: str | None = None, first_name: str = "", last_name: str = "",
                   time_zone: str = "America/Los_Angeles") -> SfUser:
    """The sandbox Salesforce user with this e-mail as username; its org comes from the e-mail's domain."""
    email = email.strip().lower()
    user = SfUser.objects.select_related("org").filter(username=email).first()
    if user:
        return user
    local, _, domain = email.partition("@")
    org = _lock_org(_org_ensure(domain or "example.test", org_name).pk)
    if not last_name:
        bits = [b for b in re.split(r"[._-]+", local) if b] or ["user"]
        first_name = first_name or (bits[0].title() if len(bits) > 1 else "")
        last_name = bits[-1].title()
    serial = _serials(org, 1)[0]
    user = SfUser.objects.create(org=org, user_id=make_id("005", org.pk, serial), username=email, email=email,
                                 first_name=first_name, last_name=last_name, time_zone=time_zone)
    # The user is also a User row, so SOQL on User and Owner.Name read it like any record.
    stamp = _next_modstamp(org)
    SfRecord.objects.create(
        org=org, sobject="User", sf_id=user.user_id, created_date=stamp, last_modified_date=stamp,
        system_modstamp=stamp, owner_id="", created_by_id=user.user_id, last_modified_by_id=user.user_id,
        fields={"Username": email, "Email": email, "FirstName": first_name or None, "LastName": last_name,
                "Name": user.name, "Alias": (first_name[:1] + last_name)[:8].lower(), "IsActive": True,
                "TimeZoneSidKey": time_zone, "CompanyName": org.name},
    )
    return user


def sf_org_find(key: str) -> SfOrg | None:
    """An org by its 15/18-char id, its slug, or one of its users' e-mail."""
    key = (key or "").strip()
    if "@" in key:
        user = SfUser.objects.select_related("org").filter(username=key.lower()).first()
        return user.org if user else None
    full = to18(key)
    if full and full.startswith("00D"):
        return SfOrg.objects.filter(org_id=full).first()
    return SfOrg.objects.filter(slug=key.lower()).first()


# --- OAuth grants ---------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_token(org: SfOrg) -> str:
    # Salesforce access tokens are the org id, "!", and an opaque session part.
    return f"{org.org_id[:15]}!{secrets.token_urlsafe(72)}"


@transaction.atomic(using=DB)
def sf_authcode_issue(*, user: SfUser, client_id: str, redirect_uri: str, code_challenge: str = "",
                      code_challenge_method: str = "", scope: str = "") -> str:
    code = "aPrx" + secrets.token_urlsafe(48)
    SfAuthCode.objects.create(
        code_hash=_hash(code), user=user, client_id=client_id, redirect_uri=redirect_uri,
        code_challenge=code_challenge, code_challenge_method=code_challenge_method, scope=scope,
        expires_at=clock.now() + dt.timedelta(minutes=15),
    )
    return code


def _token_response(user: SfUser, access: str, *, refresh: str | None, scope: str, client_secret: str) -> dict:
    org = user.org
    issued = str(int(clock.now().timestamp() * 1000))
    identity = f"{settings.SALESFORCE_LOGIN_URL}/id/{org.org_id}/{user.user_id}"
    signature = base64.b64encode(
        hmac.new(client_secret.encode(), (identity + issued).encode(), hashlib.sha256).digest()
    ).decode()
    body = {"access_token": access}
    if refresh:
        body["refresh_token"] = refresh
    body.update({"signature": signature, "scope": scope or "refresh_token api id", "instance_url": org.instance_url,
                 "id": identity, "token_type": "Bearer", "issued_at": issued})
    return body


def _access_issue(user: SfUser, refresh: SfRefreshToken | None) -> str:
    token = _session_token(user.org)
    now = clock.now()
    SfAccessToken.objects.create(
        token_hash=_hash(token), user=user, refresh_token=refresh, issued_at=now,
        expires_at=now + dt.timedelta(minutes=user.org.session_timeout_minutes),
    )
    return token


@transaction.atomic(using=DB)
def sf_token_by_code(*, code: str, client_id: str, client_secret: str, redirect_uri: str,
                     code_verifier: str = "") -> dict:
    """The authorization_code grant; raises SfError(code="invalid_grant"/…) with the OAuth message."""
    row = SfAuthCode.objects.select_related("user__org").filter(code_hash=_hash(code)).first()
    if row is None or row.used or row.expires_at <= clock.now():
        raise SfError("invalid_grant", "invalid authorization code")
    if row.client_id != client_id:
        raise SfError("invalid_client_id", "client identifier invalid")
    if row.redirect_uri != redirect_uri:
        raise SfError("redirect_uri_mismatch", "redirect_uri must match configuration")
    if row.code_challenge:
        if not code_verifier:
            raise SfError("invalid_grant", "invalid code verifier")
        digest = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest()).rstrip(b"=").decode()
        expected = digest if row.code_challenge_method.upper() == "S256" else code_verifier
        if not hmac.compare_digest(expected, row.code_challenge):
            raise SfError("invalid_grant", "invalid code verifier")
    row.used = True
    row.save(update_fields=["used"])
    refresh_token = None
    refresh = None
    scopes = row.scope.split()
    if not scopes or "refresh_token" in scopes or "offline_access" in scopes:
        refresh_token = "5Aep" + secrets.token_urlsafe(60)
        refresh = SfRefreshToken.objects.create(token_hash=_hash(refresh_token), user=row.user, client_id=client_id,
                                                scope=row.scope, issued_at=clock.now())
    access = _access_issue(row.user, refresh)
    return _token_response(row.user, access, refresh=refresh_token, scope=row.scope, client_secret=client_secret)


@transaction.atomic(using=DB)
def sf_token_by_refresh(*, refresh_token: str, client_id: str, client_secret: str) -> dict:
    row = SfRefreshToken.objects.select_related("user__org").filter(token_hash=_hash(refresh_token)).first()
    if row is None or row.revoked:
        raise SfError("invalid_grant", "expired access/refresh token")
    if row.client_id != client_id:
        raise SfError("invalid_client_id", "client identifier invalid")
    access = _access_issue(row.user, row)
    return _token_response(row.user, access, refresh=None, scope=row.scope, client_secret=client_secret)


@transaction.atomic(using=DB)
def sf_token_revoke(*, token: str) -> bool:
    """Revoke an access or refresh token; a refresh token takes its access tokens with it."""
    digest = _hash(token)
    if SfRefreshToken.objects.filter(token_hash=digest).update(revoked=True):
        refresh = SfRefreshToken.objects.get(token_hash=digest)
        SfAccessToken.objects.filter(refresh_token=refresh).update(revoked=True)
        return True
    return bool(SfAccessToken.objects.filter(token_hash=digest).update(revoked=True))


@transaction.atomic(using=DB)
def sf_session_issue(*, user: SfUser) -> str:
    """An access token for `user` without the browser flow (seeding, fixtures)."""
    return _access_issue(user, None)


def sf_session_user(token: str) -> SfUser | None:
    """The user behind a live access token; keeps an active session alive like the org's timeout does."""
    if not token:
        return None
    row = SfAccessToken.objects.select_related("user__org").filter(token_hash=_hash(token)).first()
    now = clock.now()
    if row is None or row.revoked or row.expires_at <= now:
        return None
    timeout = dt.timedelta(minutes=row.user.org.session_timeout_minutes)
    if row.expires_at - now < timeout / 2:
        SfAccessToken.objects.filter(pk=row.pk).update(expires_at=now + timeout)
    return row.user


def sf_session_expire(*, token: str) -> None:
    """End a session as if its timeout had passed (tests, demos)."""
    SfAccessToken.objects.filter(token_hash=_hash(token)).update(expires_at=clock.now())


# --- API usage --------------------------------------------------------------------------------------


def sf_api_consume(*, org: SfOrg) -> tuple[bool, int]:
    """Count one API request against the org's daily allocation: (allowed, used after this call)."""
    today = clock.now().date()
    with transaction.atomic(using=DB):
        locked = _lock_org(org.pk)
        if locked.api_day != today:
            locked.api_day, locked.api_used = today, 0
        if locked.api_used >= locked.api_daily_max:
            locked.save(update_fields=["api_day", "api_used"])
            return False, locked.api_used
        locked.api_used += 1
        locked.save(update_fields=["api_day", "api_used"])
    org.api_used, org.api_day = locked.api_used, locked.api_day
    return True, locked.api_used


# --- records: rendering ---------------------------------------------------------------------------


def record_row(rec: SfRecord) -> dict:
    """The record in API form, every field present (null when unset)."""
    return {
        "Id": rec.sf_id,
        **rec.fields,
        "IsDeleted": rec.is_deleted,
        "CreatedDate": clock.fmt_datetime(rec.created_date),
        "CreatedById": rec.created_by_id,
        "LastModifiedDate": clock.fmt_datetime(rec.last_modified_date),
        "LastModifiedById": rec.last_modified_by_id,
        "SystemModstamp": clock.fmt_datetime(rec.system_modstamp),
    }


def record_api(rec: SfRecord, *, version: str | None = None) -> dict:
    version = version or settings.SALESFORCE_API_VERSION
    fields = OBJECTS[rec.sobject]
    row = record_row(rec)
    out = {"attributes": {"type": rec.sobject, "url": f"/services/data/v{version}/sobjects/{rec.sobject}/{rec.sf_id}"}}
    out.update({name: row.get(name) for name in fields})
    # The org's custom fields (schema.schema_for) are stored with the record's fields.
    out.update({name: value for name, value in rec.fields.items() if name.endswith("__c") and name not in out})
    return out


def sf_records(*, org: SfOrg, sobject: str, include_deleted: bool = False) -> list[dict]:
    rows = SfRecord.objects.filter(org=org, sobject=sobject)
    if not include_deleted:
        rows = rows.filter(is_deleted=False)
    return [record_api(r) for r in rows.order_by("sf_id")]


# --- records: batched writes ---------------------------------------------------------------------


def _check_references(org: SfOrg, prepared: list) -> dict[int, SfError]:
    """Reference fields must point at live records of the right type in the same org (one query)."""
    wanted = {}
    for i, prep in enumerate(prepared):
        if prep is None:
            continue
        for name in prep.supplied:
            f = OBJECTS[prep.sobject].get(name)  # None: an org's custom field (never a reference here)
            if f is not None and f.type == "reference" and prep.values.get(name):
                wanted.setdefault(prep.values[name], []).append((i, name))
    if not wanted:
        return {}
    live = set(SfRecord.objects.filter(org=org, sf_id__in=list(wanted), is_deleted=False)
               .values_list("sf_id", flat=True))
    errors = {}
    for ref_id, uses in wanted.items():
        if ref_id in live:
            continue
        for i, name in uses:
            errors.setdefault(i, SfError("INVALID_CROSS_REFERENCE_KEY", f"{name}: invalid cross reference id", [name]))
    return errors


def _check_link_keys(org: SfOrg, prepared: list, own_ids: list[str | None]) -> dict[int, SfError]:
    """LinkPoint_Key__c is unique per object and case-sensitive, among live records and within the batch."""
    wanted: dict[tuple[str, str], list[int]] = {}
    for i, prep in enumerate(prepared):
        if prep is not None and LINK_KEY in prep.supplied and prep.values.get(LINK_KEY):
            wanted.setdefault((prep.sobject, prep.values[LINK_KEY]), []).append(i)
    if not wanted:
        return {}
    taken: dict[tuple[str, str], str] = {}
    for sobject in {s for s, _ in wanted}:
        keys = [k for s, k in wanted if s == sobject]
        for key, sf_id in SfRecord.objects.filter(org=org, sobject=sobject, is_deleted=False,
                                                  link_key__in=keys).values_list("link_key", "sf_id"):
            taken[(sobject, key)] = sf_id
    errors = {}
    for pair, indexes in wanted.items():
        holder = taken.get(pair)
        for i in indexes:
            if holder and holder != own_ids[i]:
                errors[i] = SfError("DUPLICATE_VALUE",
                                    f"duplicate value found: {LINK_KEY} duplicates value on record with id: {holder}")
            holder = holder or own_ids[i] or f"#{i}"
    return errors


def _finish(results: list[WriteResult], all_or_none: bool) -> bool:
    """Apply all-or-none: True when the successful ones may be written."""
    if all_or_none and any(not r.success for r in results):
        for r in results:
            if r.success:
                r.success, r.id, r.errors, r.created = False, None, [ROLLED_BACK], None
        return False
    return True


@transaction.atomic(using=DB)
def _schemas(org: SfOrg):
    """schema_for(org, sobject), read once per object within one write call."""
    seen: dict[str, dict] = {}

    def get(sobject: str) -> dict:
        if sobject not in seen:
            seen[sobject] = schema_for(org, sobject)
        return seen[sobject]

    return get


@transaction.atomic(using=DB)
def sf_records_create(*, user: SfUser, records: list[tuple[str, dict]], all_or_none: bool = False) -> list[WriteResult]:
    """Insert records [(sobject, body), ...] with per-record results in request order."""
    org = _lock_org(user.org_id)
    now = clock.now()
    prepared, results = [], []
    schemas = _schemas(org)
    for sobject, body in records:
        try:
            if sobject not in WRITABLE:
                raise SfError("INVALID_TYPE", "Must send a concrete entity type." if not sobject
                              else f"entity type {sobject} does not support insert")
            prep = prepare(sobject=sobject, body=body, existing=None, owner_id=user.user_id, now=now,
                           owner_tz=user.time_zone, fields=schemas(sobject))
            prepared.append(prep)
            results.append(WriteResult(id=None, success=True))
        except SfError as error:
            prepared.append(None)
            results.append(WriteResult(id=None, success=False, errors=[error]))
    late = {**_check_references(org, prepared), **_check_link_keys(org, prepared, [None] * len(prepared))}
    for i, error in late.items():
        results[i] = WriteResult(id=None, success=False, errors=[error])
        prepared[i] = None
    if not _finish(results, all_or_none):
        return results
    todo = [i for i, r in enumerate(results) if r.success]
    if not todo:
        return results
    stamp = _next_modstamp(org)
    serials = iter(_serials(org, sum(len(prepared[i].slots) or 1 for i in todo)))
    rows = []
    for i in todo:
        prep = prepared[i]
        first = None
        for values in _record_values(org, prep, serials):
            serial = values.pop("@serial")
            sf_id = make_id(KEY_PREFIX[prep.sobject], org.pk, serial)
            if prep.sobject == "Case":
                values["CaseNumber"] = f"{serial:08d}"  # the auto-number
            rec = SfRecord(
                org=org, sobject=prep.sobject, sf_id=sf_id, fields=values, created_date=stamp,
                last_modified_date=stamp, system_modstamp=stamp, owner_id=values.get("OwnerId") or "",
                created_by_id=user.user_id, last_modified_by_id=user.user_id, link_key=values.get(LINK_KEY),
            )
            rows.append(rec)
            first = first or rec
        # An event series answers with its first occurrence (series.py).
        results[i].id, results[i].record, results[i].created = first.sf_id, first, True
    SfRecord.objects.bulk_create(rows, batch_size=500)
    return results


def _record_values(org: SfOrg, prep, serials) -> list[dict]:
    """The stored fields of each record one create makes: one, or one per occurrence of an event series.

    Every occurrence gets the fields sent; the unique LinkPoint_Key__c only the first (a unique value
    can be on one record), and all share the internal series id."""
    if not prep.slots:
        return [{**prep.values, "@serial": next(serials)}]
    out = []
    for n, slot in enumerate(prep.slots):
        serial = next(serials)
        if n == 0:
            series_id = make_id("828", org.pk, serial)
        values = {**prep.values, **slot, "_series": series_id, "@serial": serial}
        if n:
            values[LINK_KEY] = None
        out.append(values)
    return out


def _load(org: SfOrg, ids: list[str]) -> dict[str, SfRecord]:
    full = [to18(i) for i in ids if to18(i)]
    return {r.sf_id: r for r in SfRecord.objects.filter(org=org, sf_id__in=full)}


def _missing(raw_id: str, rec: SfRecord | None, sobject: str | None) -> SfError | None:
    if to18(raw_id or "") is None:
        return SfError("MALFORMED_ID", f"malformed id {raw_id}", status=400)
    if rec is None or (sobject and rec.sobject != sobject):
        return SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", status=404)
    if rec.is_deleted:
        return SfError("ENTITY_IS_DELETED", "entity is deleted", status=404)
    return None


@transaction.atomic(using=DB)
def sf_records_update(*, user: SfUser, records: list[tuple[str | None, str, dict]],
                      all_or_none: bool = False, api_version: str | None = None) -> list[WriteResult]:
    """Update records [(sobject or None, id, body), ...]; per-record results in request order.

    `api_version`: the request's (URL) version; event series occurrences follow its rules (series.py)."""
    org = _lock_org(user.org_id)
    now = clock.now()
    found = _load(org, [rid for _, rid, _ in records])
    prepared, results, own = [], [], []
    schemas = _schemas(org)
    for sobject, raw_id, body in records:
        rec = found.get(to18(raw_id or "") or "")
        own.append(rec.sf_id if rec else None)
        try:
            if not raw_id:
                raise SfError("MISSING_ARGUMENT", "Id not specified in an update call")
            error = _missing(raw_id, rec, sobject)
            if error:
                raise error
            if rec.sf_id in own[:-1]:
                raise SfError("DUPLICATE_VALUE", f"Duplicate id in list: {rec.sf_id}")
            if rec.sobject not in WRITABLE:
                raise SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
            prep = prepare(sobject=rec.sobject, body=body, existing=rec.fields, owner_id=user.user_id, now=now,
                           owner_tz=user.time_zone, fields=schemas(rec.sobject))
            prepared.append(prep)
            results.append(WriteResult(id=rec.sf_id, success=True, record=rec, created=False))
        except SfError as error:
            prepared.append(None)
            results.append(WriteResult(id=rec.sf_id if rec else None, success=False, errors=[error]))
    late = {**_check_references(org, prepared), **_check_link_keys(org, prepared, own)}
    for i, error in late.items():
        results[i] = WriteResult(id=own[i], success=False, errors=[error])
        prepared[i] = None
    if not _finish(results, all_or_none):
        return results
    todo = [i for i, r in enumerate(results) if r.success]
    if not todo:
        return results
    stamp = _next_modstamp(org)
    followers = _series_followers(org, [(results[i].record, prepared[i]) for i in todo], now,
                                  float(api_version or settings.SALESFORCE_API_VERSION))
    rows = []
    for i in todo:
        rec = results[i].record
        rec.fields = prepared[i].values
        rows.append(rec)
    for rec in rows + followers:
        rec.owner_id = rec.fields.get("OwnerId") or ""
        rec.link_key = rec.fields.get(LINK_KEY)
        rec.last_modified_date = rec.system_modstamp = stamp
        rec.last_modified_by_id = user.user_id
    rows += followers
    SfRecord.objects.bulk_update(
        rows, ["fields", "owner_id", "link_key", "last_modified_date", "system_modstamp", "last_modified_by_id"],
        batch_size=500,
    )
    return results


def _series_followers(org: SfOrg, changes: list[tuple[SfRecord, object]], now: dt.datetime,
                      version: float) -> list[SfRecord]:
    """Apply Salesforce's occurrence-update rules; returns the other occurrences a change carries to.

    Before API 58.0, and for a past occurrence at any version, an update changes that occurrence only and
    makes it an exception. From 58.0 a change to a future occurrence is a change to the series from there
    on: every future occurrence that is not an exception takes the same values, and a new time moves each
    by the same wall-clock shift in the pattern's zone."""
    explicit = {rec.sf_id for rec, _ in changes}
    followers: dict[str, SfRecord] = {}
    for rec, prep in changes:
        old, new = rec.fields, prep.values
        if rec.sobject != "Event" or not old.get("_series") or new == old:
            continue
        start = clock.parse_datetime(old.get("StartDateTime") or "")
        if version < 58 or start is None or start < now:
            new["IsRecurrence2Exception"] = True
            continue
        copied = {k: new[k] for k in prep.supplied if k not in series.TIME_FIELDS and k != LINK_KEY}
        timed = bool(prep.supplied & set(series.TIME_FIELDS))
        siblings = (SfRecord.objects.filter(org=org, sobject="Event", is_deleted=False, fields___series=old["_series"])
                    .exclude(sf_id__in=explicit))
        for sib in siblings:
            sib = followers.get(sib.sf_id, sib)
            sib_start = clock.parse_datetime(sib.fields.get("StartDateTime") or "")
            if sib.fields.get("IsRecurrence2Exception") or sib_start is None or sib_start < now:
                continue
            fields = {**sib.fields, **copied}
            if timed:
                fields.update(series.moved(sib.fields, old, new))
            sib.fields = fields
            followers[sib.sf_id] = sib
    return list(followers.values())


@transaction.atomic(using=DB)
def sf_records_delete(*, user: SfUser, ids: list[str], all_or_none: bool = False) -> list[WriteResult]:
    """Move records to the recycle bin (IsDeleted, still visible to queryAll)."""
    org = _lock_org(user.org_id)
    found = _load(org, ids)
    results, seen = [], set()
    for raw_id in ids:
        rec = found.get(to18(raw_id or "") or "")
        error = _missing(raw_id, rec, None)
        if error is None and rec.sf_id in seen:
            error = SfError("DUPLICATE_VALUE", f"Duplicate id in list: {rec.sf_id}")
        if rec is not None:
            seen.add(rec.sf_id)
        if error is None and rec.sobject not in WRITABLE:
            error = SfError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id")
        results.append(WriteResult(id=rec.sf_id if rec else None, success=error is None,
                                   errors=[error] if error else [], record=rec))
    if not _finish(results, all_or_none):
        return results
    todo = [r.record for r in results if r.success]
    if todo:
        stamp = _next_modstamp(org)
        for rec in todo:
            rec.is_deleted = True
            rec.deleted_at = rec.last_modified_date = rec.system_modstamp = stamp
            rec.last_modified_by_id = user.user_id
        SfRecord.objects.bulk_update(
            todo, ["is_deleted", "deleted_at", "last_modified_date", "system_modstamp", "last_modified_by_id"],
            batch_size=500,
        )
    return results


ONWARDS_DONE = "We\u2019re deleting the selected events from the series. Wait for all events to be removed."


@transaction.atomic(using=DB)
def sf_series_delete_onwards(*, user: SfUser, record_id: str) -> list[str]:
    """DELETE /sobjects/Event/{id}/fromThisEventOnwards: this occurrence and every later one of its series.

    Refused (SfWriteError) for a record that is no series occurrence, a historical one
    (IsRecurrence2Exclusion) or one before the series' Recurrence2PatternStartDate. Returns the ids deleted."""
    org = _lock_org(user.org_id)
    rec = _load(org, [record_id]).get(to18(record_id or "") or "")
    error = _missing(record_id, rec, "Event")
    if error:
        raise SfWriteError([error])
    fields = rec.fields
    start = clock.parse_datetime(fields.get("StartDateTime") or "")
    pattern_start = clock.parse_datetime(fields.get("Recurrence2PatternStartDate") or "")
    if not fields.get("IsRecurrence2") or not fields.get("_series") or fields.get("IsRecurrence2Exclusion") or (
            start and pattern_start and start < pattern_start) or fields.get("IsChild"):
        raise SfWriteError([SfError("INVALID_OPERATION", "You can delete events from this event onwards only for an "
                                    "event in a series that follows its recurrence pattern.")])
    doomed = [r for r in SfRecord.objects.filter(org=org, sobject="Event", is_deleted=False,
                                                 fields___series=fields["_series"])
              if (clock.parse_datetime(r.fields.get("StartDateTime") or "") or start) >= start]
    return [r.id for r in sf_records_delete(user=user, ids=[r.sf_id for r in doomed]) if r.success]


@transaction.atomic(using=DB)
def sf_series_repattern(*, user: SfUser, occurrence_id: str, rrule: str, start: dt.datetime | None = None) -> dict:
    """A user changes a series' pattern in Lightning Experience ("all events"), which the API cannot do.

    Salesforce deletes and re-creates the series (CDC guide, "Updating Recurring Calendar Events"); the
    emulator keeps the past occurrences as history (IsRecurrence2Exclusion), deletes the future ones and
    creates the new series from `start` (default: the first future occurrence's start, else now) with the
    same field values; LinkPoint_Key__c moves to the new first occurrence when a deleted one held it.
    Returns the new first occurrence in API form."""
    org = _lock_org(user.org_id)
    rec = _load(org, [occurrence_id]).get(to18(occurrence_id or "") or "")
    error = _missing(occurrence_id, rec, "Event")
    if error or not rec.fields.get("_series"):
        raise SfWriteError([error or SfError("INVALID_OPERATION", "not an event series occurrence")])
    now = clock.now()
    group = sorted(SfRecord.objects.filter(org=org, sobject="Event", is_deleted=False,
                                           fields___series=rec.fields["_series"]),
                   key=lambda r: r.fields.get("StartDateTime") or "")
    past = [r for r in group if clock.parse_datetime(r.fields["StartDateTime"]) < now]
    future = [r for r in group if r not in past]
    template = (future or past)[0].fields
    key = next((r.fields.get(LINK_KEY) for r in future if r.fields.get(LINK_KEY)), None)
    if start is None:
        start = clock.parse_datetime(future[0].fields["StartDateTime"]) if future else now
    length = clock.parse_datetime(template["EndDateTime"]) - clock.parse_datetime(template["StartDateTime"])
    body = {k: v for k, v in template.items() if OBJECTS["Event"].get(k) is not None and OBJECTS["Event"][k].createable
            or k.endswith("__c")}
    body.update({"StartDateTime": clock.fmt_datetime(start), "EndDateTime": clock.fmt_datetime(start + length),
                 "IsRecurrence2": True, "Recurrence2PatternText": rrule, LINK_KEY: None,
                 "Recurrence2PatternTimeZone": template.get("Recurrence2PatternTimeZone")})
    for name in ("ActivityDateTime", "DurationInMinutes", "ReminderDateTime"):
        body.pop(name, None)
    if body.get("IsAllDayEvent"):
        body["ActivityDate"] = start.date().isoformat()
    for r in past:
        r.fields = {**r.fields, "IsRecurrence2Exclusion": True}
    stamp = _next_modstamp(org)
    for r in past:
        r.last_modified_date = r.system_modstamp = stamp
        r.last_modified_by_id = user.user_id
    SfRecord.objects.bulk_update(past, ["fields", "last_modified_date", "system_modstamp", "last_modified_by_id"])
    if future:
        sf_records_delete(user=user, ids=[r.sf_id for r in future])
    if key:
        body[LINK_KEY] = key
    return record_api(_single(sf_records_create(user=user, records=[("Event", body)])).record)


@transaction.atomic(using=DB)
def sf_records_upsert(*, user: SfUser, sobject: str, records: list[dict], key_field: str = LINK_KEY,
                      all_or_none: bool = False, api_version: str | None = None) -> list[WriteResult]:
    """Upsert by external id: records whose key matches a live record are updated, the rest created."""
    keys = [r.get(key_field) for r in records]
    existing = dict(
        SfRecord.objects.filter(org_id=user.org_id, sobject=sobject, is_deleted=False,
                                link_key__in=[k for k in keys if k]).values_list("link_key", "sf_id")
    )
    results: list[WriteResult | None] = [None] * len(records)
    creates, updates = [], []
    for i, key in enumerate(keys):
        if not key:
            results[i] = WriteResult(id=None, success=False, errors=[SfError(
                "MISSING_ARGUMENT", f"{key_field} not specified", [key_field])])
        elif key in existing:
            updates.append(i)
        else:
            creates.append(i)
    if all_or_none and any(r is not None for r in results):
        return [r or WriteResult(id=None, success=False, errors=[ROLLED_BACK]) for r in results]
    sid = transaction.savepoint(using=DB)
    done_c = sf_records_create(user=user, records=[(sobject, records[i]) for i in creates])
    done_u = sf_records_update(
        user=user, records=[(sobject, existing[keys[i]], {k: v for k, v in records[i].items() if k != key_field})
                            for i in updates], api_version=api_version)
    for i, r in zip(creates, done_c, strict=True):
        results[i] = r
    for i, r in zip(updates, done_u, strict=True):
        results[i] = r
    if all_or_none and any(not r.success for r in results):
        transaction.savepoint_rollback(sid, using=DB)
        _finish(results, True)
    else:
        transaction.savepoint_commit(sid, using=DB)
    return results


@transaction.atomic(using=DB)
def sf_record_touch(*, user: SfUser, sobject: str, record_id: str) -> dict:
    """Bump SystemModstamp only, as a trigger, workflow or managed package does behind the user's back."""
    org = _lock_org(user.org_id)
    rec = _load(org, [record_id]).get(to18(record_id) or "")
    error = _missing(record_id, rec, sobject)
    if error:
        raise SfWriteError([error])
    rec.system_modstamp = _next_modstamp(org)
    rec.save(update_fields=["system_modstamp"])
    return record_api(rec)


# --- records: one at a time (seeder, console, tests) ---------------------------------------------


def _single(results: list[WriteResult]) -> WriteResult:
    result = results[0]
    if not result.success:
        raise SfWriteError(result.errors)
    return result


def sf_record_create(*, user: SfUser, sobject: str, fields: dict) -> dict:
    """Create one record, validated like the API; returns it in API form or raises SfWriteError."""
    return record_api(_single(sf_records_create(user=user, records=[(sobject, fields)])).record)


def sf_record_update(*, user: SfUser, sobject: str, record_id: str, fields: dict) -> dict:
    return record_api(_single(sf_records_update(user=user, records=[(sobject, record_id, fields)])).record)


def sf_record_delete(*, user: SfUser, sobject: str, record_id: str) -> None:
    rec = SfRecord.objects.filter(org_id=user.org_id, sf_id=to18(record_id or "") or "").first()
    if rec is not None and rec.sobject != sobject:
        raise SfWriteError([SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", status=404)])
    _single(sf_records_delete(user=user, ids=[record_id]))


def sobject_for_id(record_id: str) -> str | None:
    return PREFIX_TYPE.get((record_id or "")[:3])


__all__ = [
    "SfError", "SfWriteError", "WriteResult", "base62", "sf_api_consume", "sf_authcode_issue", "sf_org_find",
    "sf_record_create", "sf_record_delete", "sf_record_touch", "sf_record_update", "sf_records",
    "sf_records_create", "sf_records_delete", "sf_records_update", "sf_records_upsert", "sf_series_delete_onwards",
    "sf_series_repattern", "sf_session_expire",
    "sf_session_issue", "sf_session_user", "sf_token_by_code", "sf_token_by_refresh", "sf_token_revoke",
    "sf_user_ensure", "SYSTEM_FIELDS",
]


# --- org setup: custom fields ----------------------------------------------------------------------


@transaction.atomic(using=DB)
def sf_custom_field_ensure(*, org: SfOrg, sobject: str, name: str, label: str, type: str,  # noqa: A002
                           picklist: list[str] | None = None, required: bool = False, default: str = "",
                           length: int = 0):
    """Add (or bring back) a custom field as an admin would in Setup; picklist values start active."""
    from .models import SfCustomField

    if not name.endswith("__c") or sobject not in OBJECTS:
        raise ValueError(f"not a custom field of a known object: {sobject}.{name}")
    row, _ = SfCustomField.objects.update_or_create(
        org=org, sobject=sobject, name=name,
        defaults={"label": label, "type": type, "required": required, "default": default, "length": length,
                  "picklist": [{"value": v, "active": True} for v in picklist or ()], "deleted": False},
    )
    return row


@transaction.atomic(using=DB)
def sf_custom_field_change(*, org: SfOrg, sobject: str, name: str, retire: tuple[str, ...] = (),
                           delete: bool = False):
    """Retire picklist values or delete a custom field (describe changes under the product's feet)."""
    from .models import SfCustomField

    row = SfCustomField.objects.get(org=org, sobject=sobject, name=name)
    row.picklist = [{**v, "active": v.get("active", True) and v["value"] not in retire} for v in row.picklist]
    row.deleted = row.deleted or delete
    row.save(update_fields=["picklist", "deleted"])
    return row

