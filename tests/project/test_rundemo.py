"""`make run` (rundemo): Ctrl-C stops the web server and the worker, and all they started.

Ctrl-C sends SIGINT to the terminal's whole process group. An outside check once saw
qcluster's sentinel and workers outlive the demo (orphaned to init); rundemo now starts
each child in its own process group and ends each group whole (SIGTERM, then SIGKILL
for what is left), so no worker can be left behind even when its parent exits first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_members(pgids: set[int]) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pgid=,pid=,args="], capture_output=True, text=True,  # noqa: S607
                         check=True).stdout
    return [line for line in out.splitlines() if line.split(None, 1)[0].isdigit()
            and int(line.split(None, 1)[0]) in pgids]


def _sessions_of(pid: int) -> set[int]:
    """The process groups of `pid`'s descendants (rundemo starts each child in its own)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,pgid="], capture_output=True, text=True,  # noqa: S607
                         check=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    kids, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp, _ in rows if pp in frontier} - kids
        kids |= frontier
    return {g for p, _, g in rows if p in kids}


def test_ctrl_c_stops_the_web_server_the_worker_and_its_children(tmp_path):
    env = {**os.environ, "SANDBOX_ENABLED": "1", "DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3"}
    env.pop("REDIS_URL", None)  # the demo's embedded default: the ORM broker
    manage = [sys.executable, "manage.py"]
    for db in ("default", "sandbox"):
        subprocess.run([*manage, "migrate", "-v0", "--database", db], cwd=ROOT, env=env, check=True)  # noqa: S603
    port = _free_port()
    demo = subprocess.Popen([*manage, "rundemo", "--addr", f"127.0.0.1:{port}"], cwd=ROOT, env=env,  # noqa: S603
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    groups: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        # Up when the web server answers and qcluster has started its workers.
        while time.monotonic() < deadline:
            groups = _sessions_of(demo.pid)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                if len(_group_members(groups)) >= 4:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert demo.poll() is None, demo.stdout.read().decode()
        assert len(_group_members(groups)) >= 4, "the demo never started its worker's processes"

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C does
        assert demo.wait(timeout=30) == 0
        # A child that has exited but is not reaped yet (<defunct>) runs nothing; give
        # init a moment, then only live processes count.
        left = [1]
        for _ in range(20):
            left = [p for p in _group_members(groups) if "<defunct>" not in p]
            if not left:
                break
            time.sleep(0.25)
        assert left == [], "processes outlived the demo"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
        for g in groups:  # never leave a stray worker behind, whatever the outcome
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(g, signal.SIGKILL)
