"""Every "now" of the connections app, in one place.

It reads `django.utils.timezone.now` at call time, like the sandbox does, so a
test that advances time by patching it moves token expiry on both sides at once.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()
