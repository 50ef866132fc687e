"""Advice on a settings change, from apps that know more than policy does.

Policy never imports the sync engine (DESIGN §2), yet some changes deserve a
word from it: turning Auto on for a kind the member never synced should offer
a preview first (issue 11, "First Auto needs a review"). Apps above policy
register an advisor from their `AppConfig.ready()`:

    from policy.extensions import Advice, register_advisor

    def first_auto(*, org, membership, kind, field, value):
        ...
        return [Advice("You have not synced contacts yet: ...", url, "Preview first",
                       blocking=True)]

    register_advisor(first_auto)

An advisor is called with keyword arguments: `org` (Organization),
`membership` (the member whose setting changes, or None for the org's
default), `kind`, `field` (a registry name) and `value` (already cleaned: "auto",
30, True, a `datetime.time`). It returns advice or an empty list; it must not
write. On the member's settings page a blocking advice stops the save and
offers its link and "Turn on anyway" (a re-post with `confirm=1`); on the org
policy page every advice is shown after the save, as information.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Advice:
    message: str
    url: str = ""
    url_label: str = ""
    blocking: bool = False


Advisor = Callable[..., "list[Advice] | tuple[Advice, ...] | None"]
_advisors: list[Advisor] = []


def register_advisor(fn: Advisor) -> Advisor:
    """Add an advisor (idempotent, so a repeated `ready()` does not double advice)."""
    if fn not in _advisors:
        _advisors.append(fn)
    return fn


def unregister_advisor(fn: Advisor) -> None:
    if fn in _advisors:
        _advisors.remove(fn)


@contextlib.contextmanager
def advisors_replaced(*fns: Advisor) -> Iterator[None]:
    """Run with exactly `fns` as advisors (tests: isolate from advisors other apps register)."""
    saved = list(_advisors)
    _advisors[:] = list(fns)
    try:
        yield
    finally:
        _advisors[:] = saved


def advise(*, org, membership, kind: str, field: str, value: Any) -> list[Advice]:
    """Every registered advisor's advice on setting `field` to `value`.

    A failing advisor is logged and skipped: advice is a courtesy, it must never
    turn a settings save into an error page.
    """
    out: list[Advice] = []
    for fn in list(_advisors):
        try:
            got = fn(org=org, membership=membership, kind=kind, field=field, value=value)
        except Exception:
            logger.exception(
                "policy advisor %s failed (org=%s kind=%s field=%s)",
                getattr(fn, "__qualname__", fn),
                getattr(org, "pk", None),
                kind,
                field,
            )
            continue
        out.extend(a for a in got or () if isinstance(a, Advice))
    return out
