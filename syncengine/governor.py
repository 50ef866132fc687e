"""The Salesforce API budget governor (issue 14).

Salesforce counts every API request of an org against one daily allocation shared with
every other integration the customer runs. The org sets the share LinkPoint may use
(`OrgSyncSettings.api_share_percent`, 20% by default). LinkPoint's own use is what its
runs counted (`SyncRun.api_salesforce`, started since 00:00 UTC); the limit is the one
the last `Sforce-Limit-Info` header reported.

- Below STRETCH_FROM of the budget nothing changes.
- From there to the cap, auto frequencies stretch linearly up to MAX_STRETCH times.
- At the cap, auto (and SnapRecord follow-up) runs wait until the next UTC day; a run a
  member starts still runs, with a warning.
The dispatcher, the tasks and the pages ask; the only write is `requests_add`, each
finished run's count into its org's row of the day (`SalesforceRequestsDay`), so a budget is
one row to read instead of a sum over the day's runs (which grew with members and the day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db.models import F, Max
from django.utils import timezone

DEFAULT_SHARE = 20
STRETCH_FROM = 0.75
MAX_STRETCH = 4.0


def day_start(moment: datetime | None = None) -> datetime:
    moment = (moment or timezone.now()).astimezone(UTC)
    return datetime.combine(moment.date(), time(0), tzinfo=UTC)


@dataclass(frozen=True)
class Budget:
    share: int
    limit: int  # the Salesforce org's daily limit (0: not reported yet)
    used: int  # LinkPoint's requests today
    org_used: int  # every integration's requests, as Salesforce last reported them
    now: datetime

    @property
    def known(self) -> bool:
        return self.limit > 0

    @property
    def cap(self) -> int:
        return max(1, self.limit * self.share // 100) if self.known else 0

    @property
    def ratio(self) -> float:
        return self.used / self.cap if self.known else 0.0

    @property
    def percent_of_cap(self) -> int:
        return round(100 * self.ratio)

    @property
    def held(self) -> bool:
        return self.known and self.used >= self.cap

    @property
    def stretch(self) -> float:
        """How many times longer auto intervals are right now (1.0: not stretched)."""
        if not self.known or self.ratio < STRETCH_FROM:
            return 1.0
        if self.held:
            return MAX_STRETCH
        span = (self.ratio - STRETCH_FROM) / (1 - STRETCH_FROM)
        return round(1 + (MAX_STRETCH - 1) * span, 1)

    @property
    def resets_at(self) -> datetime:
        return day_start(self.now) + timedelta(days=1)

    @property
    def forecast(self) -> int:
        """Today's requests at the pace so far (whole-day extrapolation)."""
        elapsed = (self.now - day_start(self.now)).total_seconds()
        if elapsed < 600:
            return self.used
        return round(self.used * 86400 / elapsed)

    @property
    def state(self) -> str:
        if self.held:
            return "held"
        return "stretched" if self.stretch > 1 else "ok"

    @property
    def message(self) -> str:
        """What the dashboard and My sync say; "" while the budget is far from its cap."""
        if not self.known:
            return ""
        used = f"LinkPoint used {self.used:,} of its {self.cap:,} Salesforce API requests today"
        share = f"({self.share}% of the daily limit of {self.limit:,})"
        if self.held:
            return (f"{used} {share}. Auto sync waits until {self.resets_at:%H:%M} UTC, when the "
                    "daily budget resets. A sync you start yourself still runs but uses requests "
                    "beyond the budget.")
        if self.stretch > 1:
            return (f"{used} {share}. To stay within it, Auto sync runs {self.stretch:g}× less "
                    "often until the budget resets at 00:00 UTC.")
        return ""

    @property
    def manual_warning(self) -> str:
        if not self.held:
            return ""
        return ("Your organization's Salesforce API budget for today is used up: this sync runs "
                "anyway and uses requests beyond it.")


def budgets_for(org_ids, *, now: datetime | None = None) -> dict[int, Budget]:
    """The budget of each org: three queries, whatever the number of orgs."""
    from connections.models import SalesforceRequestsDay, SalesforceUsage

    from .models import OrgSyncSettings

    now = now or timezone.now()
    org_ids = list(set(org_ids))
    shares = dict(OrgSyncSettings.objects.filter(organization_id__in=org_ids)
                  .values_list("organization_id", "api_share_percent"))
    reported = {
        row["organization_id"]: row
        for row in SalesforceUsage.objects.filter(organization_id__in=org_ids)
        .values("organization_id").annotate(limit=Max("limit"), used=Max("used"), at=Max("recorded_at"))
    }
    used = dict(SalesforceRequestsDay.objects.filter(organization_id__in=org_ids, day=day_start(now).date())
                .values_list("organization_id", "requests"))
    out = {}
    for oid in org_ids:
        rep = reported.get(oid) or {}
        # A report from an earlier day says nothing about today's usage (the limit still holds).
        fresh = rep.get("at") is not None and rep["at"] >= day_start(now)
        out[oid] = Budget(share=shares.get(oid, DEFAULT_SHARE), limit=rep.get("limit") or 0,
                          used=used.get(oid) or 0, org_used=(rep.get("used") or 0) if fresh else 0,
                          now=now)
    return out


def budget_for(org_id: int, *, now: datetime | None = None) -> Budget:
    return budgets_for([org_id], now=now)[org_id]


def requests_add(organization_id: int, started_at: datetime | None, n: int) -> None:
    """Count a finished run's Salesforce requests into its org's day (the day it started,
    as the budget has always counted runs); one UPDATE, an INSERT the first time of a day."""
    from django.db import IntegrityError, transaction

    from connections.models import SalesforceRequestsDay

    if n <= 0:
        return
    day = day_start(started_at).date()
    rows = SalesforceRequestsDay.objects.filter(organization_id=organization_id, day=day)
    if rows.update(requests=F("requests") + n):
        return
    try:
        with transaction.atomic():
            SalesforceRequestsDay.objects.create(organization_id=organization_id, day=day, requests=n)
    except IntegrityError:  # another run of the org created the day's row meanwhile
        rows.update(requests=F("requests") + n)
