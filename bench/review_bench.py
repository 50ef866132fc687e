"""Review page benchmark: prints, never asserts.

    python bench/review_bench.py [--items 10000] [--repeat 5] [--database-url URL]

Stores one plan of N items (every group of the review page represented) for a
member, then requests the review page through Django's test client as that
member and prints one JSON object per page: the page, its median server time
(ms, the whole request through middleware, tenancy and template), its query
count, and the rows shown. Pages: the first page, a filtered page (the update
group), a search, the third keyset page, the My sync page, and one
include toggle (an htmx row swap). Target: each under 150 ms with a query
count that does not depend on N. Uses a throw-away SQLite database pair unless
--database-url is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup(tmp: str, database_url: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp}/review.sqlite3"
    os.environ["SANDBOX_ENABLED"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "linkpoint.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Production settings (DEBUG off) without a collectstatic manifest.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

    call_command("migrate", verbosity=0)
    call_command("migrate", database="sandbox", verbosity=0)


def _member():
    from accounts.models import User
    from orgs.models import Membership, Organization

    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    user, _ = User.objects.get_or_create(email="reviewer@bench.test")
    membership, _ = Membership.objects.get_or_create(organization=org, user=user, defaults={"role": "member"})
    return user, membership


def _plan(membership, n: int):
    sys.path.insert(0, str(ROOT))
    from tests.syncengine.plan_factory import plan_make

    t = time.perf_counter()
    run = plan_make(membership, n)
    return run, time.perf_counter() - t


def _measure(client, url: str, repeat: int, *, method: str = "get", data=None, headers=None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, body = [], 0, b""
    for _ in range(repeat + 1):  # the first request warms caches and is not counted
        with CaptureQueriesContext(connection) as q:
            t = time.perf_counter()
            response = getattr(client, method)(url, data or {}, headers=headers or {})
            elapsed = time.perf_counter() - t
        assert response.status_code == 200, (url, response.status_code)
        times.append(elapsed)
        queries, body = len(q), response.content
    return {"server_ms": round(1000 * statistics.median(times[1:]), 1), "queries": queries,
            "rows": body.count(b'class="item ')}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _setup(tmp, args.database_url)
        from django.test import Client
        from django.test.utils import setup_test_environment

        from syncengine.models import PlannedChange

        setup_test_environment()  # the test client's ALLOWED_HOSTS, without a test database
        user, membership = _member()
        run, store_s = _plan(membership, args.items)
        print(json.dumps({"phase": "store_plan", "items": args.items, "wall_s": round(store_s, 2)}))
        client = Client()
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        base = f"/o/bench/sync/runs/{run.pk}/review/"
        third = PlannedChange.objects.filter(run=run).order_by("seq").values_list("seq", flat=True)[99]
        change = PlannedChange.objects.filter(run=run, action="create").first()
        pages = {
            "first_page": (base, "get", None, None),
            "filtered_update_group": (base + "?group=update", "get", None, None),
            "search_title": (base + "?q=Person 09", "get", None, None),
            "search_no_match": (base + "?q=nobody-at-all", "get", None, None),
            "third_page_keyset": (base + f"?after={third}&fragment=rows", "get", None, {"HX-Request": "true"}),
            "excluded_only": (base + "?show=excluded", "get", None, None),
            "include_toggle_htmx": (f"/o/bench/sync/runs/{run.pk}/review/include/", "post",
                                    {"change_ids": [change.pk], "included": "0"}, {"HX-Request": "true"}),
            "my_sync_page": ("/o/bench/sync/", "get", None, None),
        }
        for name, (url, method, data, headers) in pages.items():
            out = _measure(client, url, args.repeat, method=method, data=data, headers=headers)
            print(json.dumps({"page": name, "items": args.items, **out, "target_ms": 150}))


if __name__ == "__main__":
    main()
