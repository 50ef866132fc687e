"""The item trace's series card: a linked calendar series on both sides, and the occurrences
that do not simply follow its pattern (issue 12).

Read from what the engine stored, never from Outlook or Salesforce during the page
request: the link's snapshot (the series as both sides last agreed: pattern, first
start, subject) and its SyncOccurrence rows (one per occurrence changed or cancelled
on its own, or not yet the same on both sides). Occurrences without a row follow the
pattern on both sides. Four queries at most, however long the series.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import SyncLink
from .selectors import _instance_urls, outlook_web_url, salesforce_record_url

ROWS_SHOWN = 100
ORDINAL = {"first": "first", "second": "second", "third": "third", "fourth": "fourth", "last": "last"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


@dataclass(frozen=True)
class OccurrenceRow:
    when: str  # the original start, as the member reads it
    outlook: str  # what Outlook holds there
    salesforce: str  # what Salesforce holds there
    differs: bool  # the two sides do not hold the same thing (yet)
    both: str = ""  # what both sides hold, when they agree (shown once)
    outlook_url: str = ""
    salesforce_url: str = ""


@dataclass(frozen=True)
class SeriesCard:
    pattern: str
    first: str
    outlook_url: str
    salesforce_url: str
    rows: tuple[OccurrenceRow, ...]
    more: int  # rows not shown
    differing: int  # rows where the sides disagree (of those shown)


def _when(key: str) -> str:
    """An original start key ("YYYY-MM-DDTHH:MM" UTC, or a date for all-day series)."""
    return key.replace("T", " ") + " UTC" if "T" in key else key


def _and(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def pattern_words(r: dict) -> str:
    """`{"pattern": "weekly", "interval": 2, "days_of_week": ["monday"], …}` → "Every 2 weeks on Monday"."""
    n = int(r.get("interval") or 1)
    days = _and([d.capitalize() for d in r.get("days_of_week") or []])
    index = ORDINAL.get(r.get("index") or "", r.get("index") or "")
    month = MONTHS[int(r["month"]) - 1] if r.get("month") else ""
    unit = {"daily": "day", "weekly": "week"}.get(r.get("pattern"), "month" if "Monthly" in (r.get("pattern") or "")
                                                   else "year")
    every = f"Every {unit}" if n == 1 else f"Every {n} {unit}s"
    kind = r.get("pattern")
    if kind == "weekly":
        every += f" on {days}"
    elif kind == "absoluteMonthly":
        every += f" on day {r.get('day_of_month')}"
    elif kind == "relativeMonthly":
        every += f" on the {index} {days}"
    elif kind == "absoluteYearly":
        every += f" on {r.get('day_of_month')} {month}"
    elif kind == "relativeYearly":
        every += f" on the {index} {days} of {month}"
    if r.get("end_date"):
        return f"{every}, until {r['end_date']}"
    if r.get("count"):
        return f"{every}, {r['count']} times"
    return f"{every}, no end date"


def _content_words(content: dict) -> str:
    parts = []
    for name in ("start", "end"):
        if content.get(name):
            parts.append(f"{name} {_when(content[name])}")
    for name in ("subject", "location"):
        if name in content:
            parts.append(f"{name} “{(content[name] or '')[:80]}”")
    return "changed: " + ", ".join(parts) if parts else "changed"


def _sides(state: str, content: dict) -> tuple[str, str, str]:
    """(Outlook, Salesforce, both) for one stored occurrence state; `both` when the sides agree."""
    if state == "changed":
        words = _content_words(content)
        return words, words, words
    if state == "cancelled":
        return "cancelled", "deleted", "cancelled (deleted in Salesforce)"
    if state == "kept":
        return "cancelled", "kept (Salesforce names the series by this occurrence)", ""
    if state == "pending":
        return "being written: the next sync reads both sides again", "being written", ""
    return state, state, ""


def series_card(*, org, membership, link_key: str, kind: str) -> SeriesCard | None:
    """The card for a linked calendar series, or None for anything else."""
    if kind != "calendar" or not link_key:
        return None
    links = SyncLink.objects.filter(link_key=link_key, membership__organization=org)
    if membership is not None:
        links = links.filter(membership=membership)
    link = links.first()
    snapshot = (link.snapshot or {}) if link else {}
    recurrence = snapshot.get("recurrence")
    if not recurrence:
        return None
    stored = list(link.occurrences.order_by("original_start")[: ROWS_SHOWN + 1])
    more = link.occurrences.count() - ROWS_SHOWN if len(stored) > ROWS_SHOWN else 0
    instance = _instance_urls([link.membership_id]).get(link.membership_id, "")
    rows = []
    for o in stored[:ROWS_SHOWN]:
        outlook, salesforce, both = _sides(o.state, o.content or {})
        rows.append(OccurrenceRow(
            when=_when(o.original_start), outlook=outlook, salesforce=salesforce, differs=not both, both=both,
            outlook_url=outlook_web_url(kind, o.outlook_id),
            salesforce_url=salesforce_record_url(kind, instance, o.sf_id),
        ))
    first = snapshot.get("start_date") if snapshot.get("is_all_day") else snapshot.get("start")
    return SeriesCard(
        pattern=pattern_words(recurrence),
        first=_when((first or "").removesuffix("Z")),
        outlook_url=outlook_web_url(kind, link.outlook_id or ""),
        salesforce_url=salesforce_record_url(kind, instance, link.sf_id or ""),
        rows=tuple(rows), more=more, differing=sum(r.differs for r in rows),
    )
