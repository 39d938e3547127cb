#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Soak: unchanged reruns of the task that installed a flapping supervised service (seed 000).

The seed's downloader runs under Restart=always and its websocket dies now and then:
systemd brings it back, and the play that installed it is rerun by people and by cron
whenever they like, also while systemd is between two restarts. Such a rerun must pass;
a true crash loop must fail every time.

1. A fresh bench container (systemd as PID 1; Ansible over SSH with pipelining through
   `sshd -i`, bench.SshAccess, as the integration tests). `unitcraft.systemd.unit` converges
   soak-flapping.service: Restart=always, RestartSec=1, a program that lives 3 s and exits 1,
   enabled and active (soak.yml).
2. The same play, unchanged, --count times: each a separate ansible-playbook run, as a user
   would start it, after a random pause of 0 to --max-pause seconds (seeded; the seed is
   printed and --seed repeats the pauses).
3. A true crash loop, soak-crash.service (`sleep 0.3; exit 2`, Restart=always, RestartSec=0.2,
   no start limit): its first converge and --crash-count unchanged reruns must all fail, the
   reruns with a message that says "keeps dying".

Printed: false failures (reruns of the flapping service that failed: goal 0) and reruns that
reported a change (goal 0); the restarts systemd made during the soak, counted by PID 1's
"Started" lines of the unit in the journal and by NRestarts; how many reruns found the unit
between two restarts (result `health: recovered`, `restarts_seen`); seconds per rerun
(median and max, whole ansible-playbook runs); missed crash loops (goal 0).

Exit status 1 when there is a false failure, a changed rerun, a crash-loop run that passed
or failed without "keeps dying", or when a precondition failed: the flapping service must
have been restarted by systemd at least MIN_RESTARTS times during the soak, else the soak
proved nothing. The container (unitcraft-test-soak-PID) is removed at the end.

Usage: .venv/bin/python tests/bench/benchmark/soak.py [--flavour debian12] [--count 50]
       [--crash-count 10] [--max-pause 3] [--seed N]
(with UNITCRAFT_COLLECTIONS_PATH pointing at an installed copy, or it builds one under build/).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402
from converge_50 import Checks  # noqa: E402

FLAPPING_UNIT = "soak-flapping.service"
CRASH_UNIT = "soak-crash.service"
# A downloader whose websocket dies after 3 s; systemd restarts it 1 s later: a 4 s cycle.
FLAPPING_SECTIONS = {
    "Unit": {"Description": "soak: a downloader whose websocket dies every 3 s"},
    "Service": {
        "ExecStart": "/bin/sh -c 'echo websocket open; sleep 3; echo websocket closed >&2; exit 1'",
        "Restart": "always",
        "RestartSec": "1",
    },
    "Install": {"WantedBy": "multi-user.target"},
}
# Dies 0.3 s after every start; no start limit, so it loops for as long as the soak runs.
CRASH_SECTIONS = {
    "Unit": {"Description": "soak: a true crash loop", "StartLimitIntervalSec": "0", "StartLimitBurst": "0"},
    "Service": {"ExecStart": "/bin/sh -c 'sleep 0.3; exit 2'", "Restart": "always", "RestartSec": "0.2"},
    "Install": {"WantedBy": "multi-user.target"},
}
CRASH_WORDS = "keeps dying"
# Fewer restarts during the soak than this and the reruns did not meet the flapping.
MIN_RESTARTS = 3
# Lines of a failure's message printed per run.
MESSAGE_LINES = 4


@dataclasses.dataclass
class Run:
    """One ansible-playbook run of soak.yml and what its task reported."""

    pause: float
    seconds: float
    failed: bool
    changed: bool
    health: str
    restarts_seen: int
    message: str

    @property
    def between_restarts(self) -> bool:
        """The run found the unit between two restarts: systemd restarted it while the task watched."""
        return self.health == "recovered" or self.restarts_seen > 0

    def line(self) -> str:
        verdict = "FAILED" if self.failed else "ok"
        text = (f"pause {self.pause:4.2f} s, {self.seconds:5.2f} s, {verdict}, changed={self.changed}, "
                f"health={self.health}, restarts_seen={self.restarts_seen}")
        if self.failed:  # the verdict; the journal lines after it are left out
            text += "".join(f"\n      {line}" for line in self.message.strip().splitlines()[:MESSAGE_LINES])
        return text


class Target:
    """The soak's container, reached by Ansible over SSH, and its journal."""

    def __init__(self, host: bench.Container, collections_path: str, workdir: Path) -> None:
        self.host = host
        self.collections_path = collections_path
        self.workdir = workdir
        bench.ssh_access().authorize(host.name)
        self.inventory = workdir / "inventory.yml"
        # JSON is YAML: the inventory needs no YAML writer
        self.inventory.write_text(json.dumps({"all": {"hosts": {host.name: bench.ssh_access().hostvars(host.name)}}}))

    def converge(self, unit: str, sections: dict[str, Any], pause: float = 0.0) -> Run:
        """One run of soak.yml for the unit, after the pause."""
        extra = self.workdir / f"{unit}.json"
        extra.write_text(json.dumps({"soak_unit": unit, "soak_sections": sections}))
        time.sleep(pause)
        start = time.monotonic()
        result = bench.run_playbook(HERE / "soak.yml", self.inventory, self.collections_path,
                                    ["--extra-vars", f"@{extra}"], host=self.host.name)
        seconds = time.monotonic() - start
        task: dict[str, Any] = result.results[0] if result.results else {}
        message = str(task.get("msg") or result.failure_summary() or result.stderr[-2000:])
        return Run(pause, seconds, result.rc != 0, bool(task.get("changed")), str(task.get("health", "-")),
                   int(task.get("restarts_seen") or 0), message)

    def starts(self, unit: str) -> int:
        """PID 1's "Started" lines of the unit in this boot: one per start, automatic restarts included."""
        self.host.exec("journalctl", "--sync")
        out = self.host.exec("journalctl", "--no-pager", "-q", "-b", "-o", "cat", "_PID=1", f"UNIT={unit}").stdout
        return sum(1 for line in out.splitlines() if line.startswith("Started "))

    def restarts(self, unit: str) -> int:
        return int(self.host.systemctl_show(unit, "NRestarts").get("NRestarts") or 0)


@dataclasses.dataclass
class Soak:
    first: Run
    reruns: list[Run]
    started_lines: int  # during the reruns
    nrestarts: tuple[int, int]  # before and after the reruns


def soak_flapping(target: Target, count: int, pauses: random.Random, max_pause: float, checks: Checks) -> Soak | None:
    first = target.converge(FLAPPING_UNIT, FLAPPING_SECTIONS)
    print(f"first converge of {FLAPPING_UNIT}: {first.line()}", flush=True)
    if first.failed:
        checks.expect(False, f"the first converge of {FLAPPING_UNIT} failed: the soak did not run")
        return None
    starts_before, nrestarts_before = target.starts(FLAPPING_UNIT), target.restarts(FLAPPING_UNIT)
    reruns = []
    for index in range(count):
        run = target.converge(FLAPPING_UNIT, FLAPPING_SECTIONS, pauses.uniform(0, max_pause))
        reruns.append(run)
        print(f"  rerun {index + 1:>3}/{count}: {run.line()}", flush=True)
    started = target.starts(FLAPPING_UNIT) - starts_before
    return Soak(first, reruns, started, (nrestarts_before, target.restarts(FLAPPING_UNIT)))


def soak_crash_loop(target: Target, count: int, pauses: random.Random, max_pause: float
                    ) -> tuple[Run, list[Run], int]:
    first = target.converge(CRASH_UNIT, CRASH_SECTIONS)
    print(f"first converge of {CRASH_UNIT}: {first.line()}", flush=True)
    starts_before = target.starts(CRASH_UNIT)
    reruns = []
    for index in range(count):
        run = target.converge(CRASH_UNIT, CRASH_SECTIONS, pauses.uniform(0, max_pause))
        reruns.append(run)
        print(f"  crash-loop rerun {index + 1:>3}/{count}: {run.line()}", flush=True)
    return first, reruns, target.starts(CRASH_UNIT) - starts_before


def verdict_line(message: str) -> str:
    """The line of a failure's message that names the unit and what is wrong with it."""
    lines = [line.strip() for line in message.strip().splitlines()]
    return next((line for line in lines if line.startswith("unit ")), lines[0] if lines else "")[:300]


def seconds_text(runs: list[Run]) -> str:
    if not runs:
        return "-"
    times = [run.seconds for run in runs]
    return f"median {statistics.median(times):.2f} s, max {max(times):.2f} s"


def report_flapping(soak: Soak, checks: Checks) -> None:
    reruns = soak.reruns
    failures = [run for run in reruns if run.failed]
    changed = [run for run in reruns if run.changed]
    between = [run for run in reruns if run.between_restarts]
    health = collections.Counter(run.health for run in reruns)
    before, after = soak.nrestarts
    print(f"\nflapping service {FLAPPING_UNIT} (Restart=always, RestartSec=1, its program exits 1 after 3 s), "
          f"{len(reruns)} unchanged reruns")
    print(f"  false failures (reruns that failed; goal 0): {len(failures)}")
    print(f"  reruns that reported a change (goal 0): {len(changed)}")
    print(f"  restarts systemd made during the reruns: {soak.started_lines} (PID 1's \"Started\" lines of the unit); "
          f"NRestarts {before} -> {after} (+{after - before})")
    print(f"  reruns that found the unit between two restarts: {len(between)} "
          f"(health: {', '.join(f'{name} {n}' for name, n in sorted(health.items()))}; "
          f"restarts_seen in all: {sum(run.restarts_seen for run in reruns)})")
    print(f"  seconds per rerun: {seconds_text(reruns)}; those between restarts {seconds_text(between)}, "
          f"the others {seconds_text([run for run in reruns if not run.between_restarts])}")
    for run in failures[:3]:
        print(f"  a false failure: {verdict_line(run.message)}")
    checks.expect(not failures, f"{len(failures)} of {len(reruns)} reruns of the flapping service failed")
    checks.expect(not changed, f"{len(changed)} of {len(reruns)} unchanged reruns reported a change")
    checks.expect(soak.started_lines >= MIN_RESTARTS,
                  f"precondition: systemd restarted {FLAPPING_UNIT} {soak.started_lines} time(s) during the soak, "
                  f"fewer than {MIN_RESTARTS}: the reruns did not meet the flapping, the soak proved nothing")


def report_crash_loop(first: Run, reruns: list[Run], started: int, checks: Checks) -> None:
    passed = [run for run in reruns if not run.failed]
    unnamed = [run for run in reruns if run.failed and CRASH_WORDS not in run.message]
    print(f"\ncrash loop {CRASH_UNIT} (exits 2 after 0.3 s, Restart=always, RestartSec=0.2, no start limit)")
    print(f"  first converge: {'failed' if first.failed else 'PASSED'}"
          + (f": {verdict_line(first.message)}" if first.failed else ""))
    print(f"  reruns: {len(reruns)}, failed {len(reruns) - len(passed)}, saying {CRASH_WORDS!r} "
          f"{len(reruns) - len(passed) - len(unnamed)}; systemd started it {started} times meanwhile")
    print(f"  missed crash loops (runs that passed; goal 0): {len(passed) + (0 if first.failed else 1)}")
    print(f"  failed without {CRASH_WORDS!r} (goal 0): {len(unnamed)}")
    print(f"  seconds per rerun: {seconds_text(reruns)}")
    if reruns and reruns[0].failed:
        print(f"  the first rerun said: {verdict_line(reruns[0].message)}")
    checks.expect(first.failed, f"the first converge of the crash loop {CRASH_UNIT} passed")
    checks.expect(not passed, f"{len(passed)} of {len(reruns)} reruns of the crash loop passed")
    checks.expect(not unnamed, f"{len(unnamed)} failed reruns of the crash loop did not say {CRASH_WORDS!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flavour", default="debian12", choices=list(bench.FLAVOURS))
    parser.add_argument("--count", type=int, default=50, help="unchanged reruns of the flapping service")
    parser.add_argument("--crash-count", type=int, default=10, help="unchanged reruns of the crash loop")
    parser.add_argument("--max-pause", type=float, default=3.0, help="longest random pause before a rerun (s)")
    parser.add_argument("--seed", type=int, help="seed of the random pauses (default: a new one, printed)")
    args = parser.parse_args()
    if args.count < 1 or args.crash_count < 1 or args.max_pause < 0:
        parser.error("--count and --crash-count must be at least 1, --max-pause at least 0")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    pauses = random.Random(seed)
    print(f"soak on {args.flavour}: seed {seed}, pauses of 0 to {args.max_pause:g} s before each rerun", flush=True)

    collections_path = os.environ.get("UNITCRAFT_COLLECTIONS_PATH") or str(bench.install_collection())
    checks = Checks()
    name = f"unitcraft-test-soak-{os.getpid()}"
    began = time.monotonic()
    try:
        host = bench.start_container(name, args.flavour)
        with tempfile.TemporaryDirectory() as tmp:
            target = Target(host, collections_path, Path(tmp))
            systemd = host.exec("systemctl", "--version").stdout.splitlines()[0]
            soak = soak_flapping(target, args.count, pauses, args.max_pause, checks)
            crash = soak_crash_loop(target, args.crash_count, pauses, args.max_pause)
    finally:
        bench.stop_container(name)

    print(f"\nsoak on a fresh {args.flavour} container ({systemd}), seed {seed}, {time.monotonic() - began:.0f} s "
          f"in all, {os.cpu_count()} cores shared, load average {os.getloadavg()[0]:.1f} at the end")
    if soak is not None:
        report_flapping(soak, checks)
    report_crash_loop(*crash, checks)
    return checks.exit_status("\nchecked: no rerun of the flapping service failed or changed anything, systemd "
                              f"restarted it at least {MIN_RESTARTS} times meanwhile, every run of the crash loop "
                              f"failed saying {CRASH_WORDS!r}")


if __name__ == "__main__":
    sys.exit(main())
