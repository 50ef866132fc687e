"""Run the web server and the django-q2 worker together; Ctrl-C stops both.

If either process dies, the other is stopped and the command exits non-zero,
so `make run` never leaves a half-working demo behind.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from orgs.management.commands.seed_demo import PASSWORD

ADDRESS = "127.0.0.1:8000"


class Command(BaseCommand):
    help = "Start runserver and qcluster together (the demo); Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=ADDRESS, help="host:port for the web server")

    def handle(self, *args, addr, **options):
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [*manage, "runserver", addr, "--noreload"],
            "worker": [*manage, "qcluster"],
        }
        # Each child leads its own process group, so stopping it reaches what it started
        # too (qcluster's sentinel and workers): nothing outlives the demo.
        procs = {name: subprocess.Popen(cmd, start_new_session=True)  # noqa: S603
                 for name, cmd in commands.items()}
        stopping = {"signal": None}

        def on_signal(signum, _frame):
            stopping["signal"] = signum

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        self.stdout.write(f"LinkPoint demo on http://{addr}/ (password {PASSWORD}); Ctrl-C stops it.")
        failed = None
        while stopping["signal"] is None and failed is None:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    failed = (name, proc.returncode)
                    break
            time.sleep(0.3)
        self._stop_all(procs)
        if failed is not None:
            raise CommandError(f"the {failed[0]} process exited ({failed[1]}); stopped the rest")
        self.stdout.write("Stopped the web server and the worker.")

    def _stop_all(self, procs):
        for proc in procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Whatever is left in a group (a worker that ignored SIGTERM, or whose parent
        # exited first) is killed, the group leader included.
        for proc in procs.values():
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _signal_group(proc, signum) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)
