"""A run's worker threads for HTTP, and the one thread that does its database work.

A sync run mostly waits on the network (Microsoft and Salesforce answer in
100–400 ms). The run's own thread, the *owner*, opens a `Fanout`; its worker
threads only send requests through the remote clients and hand the answers
back. Django's ORM stays on the owner thread, because a worker's own database
connection would not see the owner's open transaction (pytest-django's test
transaction among them) and a connection used by two threads at once breaks:

- `owner_post(fn, ...)` from a worker queues bookkeeping that can wait (a
  connection's last use, Salesforce's API usage, a needs-reconnect mark); the
  owner runs it the next time it waits, and always before a fan-out returns.
- `owner_call(fn, ...)` runs `fn` on the owner and waits for the answer (a
  token refresh: the new token is stored in the database first).
- On the owner thread, or outside any fan-out, both simply run `fn`.

A worker that opens a database connection of its own is a bug; it raises
(`connection_created` below). The one database a worker may use is one the
owner lends (`borrow_connection`): the sandbox's in-process emulators run on
the worker that sends the request, on the owner's connection to the sandbox
database, one request at a time (sandbox/transport.py), the way Django's
LiveServerThread shares its test connection.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from django.db.backends.signals import connection_created

logger = logging.getLogger("linkpoint.fanout")
_local = threading.local()
_WAKE = object()


class Fanout:
    """Worker threads of one run; the thread that opens it is their owner."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self._owner = threading.get_ident()
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future] = set()
        self._readers: list[_Reader] = []
        self._lent: dict[str, Any] = {}
        self._lent_count: dict[str, int] = {}
        self._lock = threading.Lock()
        self._previous = None

    # ------------------------------------------------------------ lifetime
    def __enter__(self) -> Fanout:
        self._previous = getattr(_local, "owning", None)
        _local.owning = self
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.close()
        finally:
            _local.owning = self._previous

    def close(self) -> None:
        """Stop readers, drop queued tasks, wait (serving the workers) for running ones."""
        for reader in self._readers:
            reader.stop()
        for f in list(self._futures):
            f.cancel()
        self._wait(lambda: all(f.done() for f in self._futures))
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._serve()
        from django.db import connections

        for alias, n in self._lent_count.items():
            for _ in range(n):
                connections[alias].dec_thread_sharing()
        self._lent_count.clear()

    # ------------------------------------------------------------ work
    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        """Run `fn` on a worker; its result (or exception) is the future's."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="sync-io")
        future = self._pool.submit(self._work, fn, args, kwargs)
        self._futures.add(future)
        # Set after the result: the owner, woken, sees the future done.
        future.add_done_callback(lambda f: self._calls.put(_WAKE))
        return future

    def result(self, future: Future):
        """The future's result, serving the workers' calls meanwhile."""
        self._wait(future.done)
        self._futures.discard(future)
        return future.result()

    def map(self, fn: Callable, items: Iterable) -> list:
        """fn over items on the workers, results in order. All tasks finish before
        anything is returned or raised: nothing of this call is still in flight after."""
        futures = [self.submit(fn, item) for item in items]
        self._wait(lambda: all(f.done() for f in futures))
        for f in futures:
            self._futures.discard(f)
        return [f.result() for f in futures]

    def read_ahead(self, make: Callable[[], Iterator], *, ahead: int = 4) -> Iterator:
        """The items of `make()`, pulled by a worker up to `ahead` items before the owner
        takes them (memory stays bounded), the owner serving calls while it waits."""
        reader = _Reader(self, make, ahead)
        self._readers.append(reader)
        reader.future = self.submit(reader.pull)
        return reader

    def _work(self, fn, args, kwargs):
        _local.fanout = self
        try:
            return fn(*args, **kwargs)
        finally:
            _local.fanout = None

    # ------------------------------------------------------------ the owner's side
    def _wait(self, done: Callable[[], bool]) -> None:
        while True:
            self._serve()
            if done():
                self._serve()
                return
            self._handle(self._calls.get())

    def _serve(self) -> None:
        while True:
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    @staticmethod
    def _handle(item) -> None:
        if item is _WAKE:
            return
        fn, args, kwargs, future = item
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the worker that asked
            if future is None:
                logger.exception("bookkeeping posted by a sync worker failed")
            else:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(value)

    def _lend(self, alias: str):
        from django.db import connections

        with self._lock:
            if alias not in self._lent:
                raise RuntimeError(f"database {alias!r} was not lent to this run's workers")
            conn = self._lent[alias]
        if connections[alias] is not conn:
            with self._lock:
                conn.inc_thread_sharing()
                self._lent_count[alias] = self._lent_count.get(alias, 0) + 1
            connections[alias] = conn

    def lend(self, *aliases: str) -> None:
        """Let the workers use the owner's connection for these databases (see module doc)."""
        from django.db import connections

        for alias in aliases:
            if alias in connections.settings:
                # Not opened here: a run that never reaches that database (production has no
                # sandbox) never connects to it; where it is used, it is open already.
                self._lent[alias] = connections[alias]


class _Reader:
    """An iterator pulled ahead by a worker (Fanout.read_ahead)."""

    def __init__(self, fanout: Fanout, make: Callable[[], Iterator], ahead: int):
        self.fanout = fanout
        self.make = make
        self.items: deque = deque()
        self.room = threading.Semaphore(max(1, ahead))
        self.finished = False
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.future: Future | None = None

    def pull(self) -> None:
        try:
            for item in self.make():
                while not self.room.acquire(timeout=0.05):
                    if self.stopped.is_set():
                        return
                if self.stopped.is_set():
                    return
                self.items.append(item)
                self.fanout._calls.put(_WAKE)
        except BaseException as exc:  # noqa: BLE001 - raised again on the owner
            self.error = exc
        finally:
            self.finished = True
            self.fanout._calls.put(_WAKE)

    def stop(self) -> None:
        self.stopped.set()

    def __iter__(self) -> Iterator:
        return self

    def __next__(self):
        self.fanout._wait(lambda: bool(self.items) or self.finished)
        if self.items:
            self.room.release()
            return self.items.popleft()
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        raise StopIteration


# ---------------------------------------------------------------- helpers for any code


def current() -> Fanout | None:
    """The fan-out this thread owns, if any (the place to start parallel work from)."""
    return getattr(_local, "owning", None)


def in_worker() -> bool:
    return getattr(_local, "fanout", None) is not None


def owner_call(fn: Callable, *args, **kwargs):
    """Run fn on the owner thread and return its result (at once where we are the owner)."""
    fan = getattr(_local, "fanout", None)
    if fan is None:
        return fn(*args, **kwargs)
    future: Future = Future()
    fan._calls.put((fn, args, kwargs, future))
    try:
        return future.result()
    except CancelledError:  # pragma: no cover - the owner never cancels a call
        raise


def owner_post(fn: Callable, *args, **kwargs) -> None:
    """Run fn on the owner thread soon, without waiting (at once where we are the owner)."""
    fan = getattr(_local, "fanout", None)
    if fan is None:
        fn(*args, **kwargs)
    else:
        fan._calls.put((fn, args, kwargs, None))


def borrow_connection(alias: str) -> None:
    """On a worker, use the owner's connection for `alias` from now on (it must be lent);
    elsewhere nothing. The caller serialises its use of that connection."""
    fan = getattr(_local, "fanout", None)
    if fan is not None:
        fan._lend(alias)


def _refuse_worker_connections(sender, connection, **kwargs) -> None:
    fan = getattr(_local, "fanout", None)
    if fan is not None and fan._lent.get(connection.alias) is not connection:
        raise RuntimeError(
            f"a sync worker thread opened its own {connection.alias!r} database connection: "
            "database work belongs on the run's thread (linkpoint/fanout.py)"
        )


connection_created.connect(_refuse_worker_connections, dispatch_uid="linkpoint.fanout.refuse")
