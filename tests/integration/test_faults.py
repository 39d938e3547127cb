# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A converge killed at any point converges on the next run (fault injection).

One `unit` task manages three services (`units:`). Each round changes their definition
(`Environment=VERSION=k` to `k+1`: a file change, one reload and three restarts), kills the
module at its N-th systemctl process (`systemctl_faults`, tests/integration/conftest.py),
right after a call that changes state (it took effect, the module never read the answer) or
at a random moment after a call, then, in the same play, disarms the wrapper and reruns the task.
Then every unit must be active, enabled, with no reload pending, its process running the
current definition (VERSION in /proc/MAINPID/environ), started exactly once across the
killed run and the rerun (systemd's "Started" lines in the journal); /etc/systemd/system
must hold nothing but the unit files and links, and no pending-restart mark may be left.
Every round is checked before any is asserted, so a failure lists all the kill points that
did not converge, with the systemctl calls of both runs. The figure (kill points tried and
converged) goes to build/fault-injection/FLAVOUR.txt and to stdout (pytest -s).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from conftest import (REPO_ROOT, BenchHost, SystemctlFaults, journal_barrier, journal_cursor, manager_messages,
                      started_lines)

UNITS = ("ucfault-a.service", "ucfault-b.service", "ucfault-c.service")
UNIT_DIR = "/etc/systemd/system"
MARKER_DIR = "/run/unitcraft/pending-restarts"
FIGURES = REPO_ROOT / "build" / "fault-injection"
KILL_POINTS = range(1, 9)
# A module that restarted its units waits `settle` seconds after their start before it
# judges them: killers sleeping at most 60 % of it, started before the restart, find it alive.
DELAY_SETTLE = 2.0
LONGEST_DELAY = 0.6 * DELAY_SETTLE


def converge(version: int, **options: Any) -> dict[str, Any]:
    """The one task: three services on `VERSION=version`, enabled and active."""
    units = [{"name": unit,
              "sections": {"Unit": {"Description": f"fault injection {unit}"},
                           "Service": {"ExecStart": "/bin/sleep infinity", "Environment": f"VERSION={version}"},
                           "Install": {"WantedBy": "multi-user.target"}}}
             for unit in UNITS]
    return {"name": f"converge v{version}", "ignore_errors": True,
            "unitcraft.systemd.unit": {"units": units, "enabled": True, "active": True, **options}}


def verb(args: list[str]) -> str:
    """The systemctl verb of a call's arguments (the first that is not an option)."""
    return next((arg for arg in args if not arg.startswith("-")), "")


def brief(args: list[str]) -> str:
    """A call's arguments for the report: without the options every call has, property lists counted."""
    shown = [f"--property=<{arg.count(',') + 1}>" if arg.startswith("--property=") else arg
             for arg in args if arg not in ("--system", "--no-pager", "--no-ask-password")]
    return " ".join(shown)


def unit_dir_listing(host: BenchHost) -> set[str]:
    out = host.exec("find", UNIT_DIR, "-mindepth", "1", "-printf", "%P\\n").stdout
    return set(out.splitlines())


def clean(host: BenchHost) -> None:
    units = " ".join(UNITS)
    host.sh(f"systemctl stop {units}; systemctl disable {units}; "
            f"cd {UNIT_DIR} && rm -f {units} && rm -f {MARKER_DIR}/ucfault-*; "
            "systemctl daemon-reload; systemctl reset-failed", check=False)


def converge_problems(host: BenchHost, version: int, cursor: str, expected_files: set[str],
                      starts: int = 1) -> list[str]:
    """What is not converged on `version`: [] when every unit runs it, started `starts` times since the cursor."""
    problems = []
    journal_barrier(host)
    for unit in UNITS:
        st = host.systemctl_show(unit, "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload", "MainPID",
                                 "ExecMainStartTimestamp")
        wanted = {"ActiveState": "active", "UnitFileState": "enabled", "NeedDaemonReload": "no"}
        wrong = [f"{key}={st.get(key)}" for key, value in wanted.items() if st.get(key) != value]
        if wrong:
            problems.append(f"{unit}: {' '.join(wrong)} (SubState={st.get('SubState')})")
        environ = host.exec("sh", "-c", f"tr '\\0' '\\n' < /proc/{st.get('MainPID')}/environ", check=False).stdout
        running = sorted(line for line in environ.splitlines() if line.startswith("VERSION="))
        if running != [f"VERSION={version}"]:
            problems.append(f"{unit}: its process (MainPID {st.get('MainPID')}) runs {running or 'nothing'}, "
                            f"not VERSION={version}")
        started = started_lines(host, unit, cursor)
        if len(started) != starts:
            said = manager_messages(host, unit, cursor)
            journald = host.exec("journalctl", "-q", "--no-pager", f"--after-cursor={cursor}",
                                 "_COMM=systemd-journal", check=False).stdout.strip()
            problems.append(f"{unit}: started {len(started)} times since the round began, not {starts} "
                            f"(PID 1 said: {said}; ExecMainStartTimestamp={st.get('ExecMainStartTimestamp')}; "
                            f"journald said: {journald!r})")
    # a rerun that converged owes no restart: it removed every pending-restart mark (and its temporary file)
    marks = host.exec("sh", "-c", f"cd {MARKER_DIR} 2>/dev/null && ls -A | grep ucfault-", check=False).stdout.split()
    if marks:
        problems.append(f"{MARKER_DIR}: marks left: {marks}")
    files = unit_dir_listing(host)
    if files != expected_files:
        problems.append(f"{UNIT_DIR}: extra {sorted(files - expected_files)}, missing {sorted(expected_files - files)}")
    return problems


@dataclass
class Round:
    """One kill point: where the kill was set, whether it happened, and what was wrong after the rerun."""

    n: int
    delay: float | None
    after: bool = False  # killed once call n had run, before the module read its answer
    call: str = ""  # the systemctl call the kill was set at ("" when the task made fewer calls)
    killed: str | None = None  # the harness's word on the kill, None when no module died
    task_failed: bool = False
    calls: list[list[str]] = field(default_factory=list)
    rerun_calls: list[list[str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = f"N={self.n}" + (f" +{self.delay:.2f}s" if self.delay is not None else " after" if self.after else "")
        if self.killed:
            what = f"at `systemctl {self.call}`: killed {self.killed}"
        elif self.call:
            what = f"at `systemctl {self.call}`: NOT killed"
        else:
            what = f"the task ended after {len(self.calls)} calls, before call {self.n}: not a kill point"
        verdict = "converged" if not self.problems else "NOT CONVERGED: " + "; ".join(self.problems)
        text = f"{where} {what}; {verdict}"
        if self.problems:
            text += "\n    killed run: " + " | ".join(map(brief, self.calls))
            text += "\n    rerun:      " + " | ".join(map(brief, self.rerun_calls))
        return text


class FaultRun:
    """The rounds on one host: each moves the units on by one version, through a kill and a rerun."""

    def __init__(self, host: BenchHost, faults: SystemctlFaults, version: int, expected_files: set[str]) -> None:
        self.host = host
        self.faults = faults
        self.version = version
        self.expected_files = expected_files

    def first_runs(self) -> tuple[list[list[list[str]]], list[str]]:
        """v1 (files, enablement, first starts) and v1 -> v2 without a kill, in one play: the
        systemctl calls of each and what is not converged after them (two starts each)."""
        cursor = journal_cursor(self.host)
        self.faults.reset()
        self.version += 2
        play = self.host.play([converge(self.version - 1), converge(self.version)])
        problems = [f"the clean run v{self.version - 1 + i} failed: {result.get('msg')}"
                    for i, result in enumerate(play.results) if result.get("failed")]
        problems += converge_problems(self.host, self.version, cursor, self.expected_files, starts=2)
        return self.faults.calls_by_module(), problems

    def kill_round(self, n: int, delay: float | None = None, after: bool = False) -> Round:
        """The next version killed at call n (right after it, or `delay` s after it began), then,
        in the same play, rerun."""
        self.version += 1
        r = Round(n, delay, after)
        cursor = journal_cursor(self.host)
        self.faults.arm(n, delay, after)
        options = {"settle": DELAY_SETTLE} if delay is not None else {}
        play = self.host.play([converge(self.version, **options), self.faults.disarm_task(),
                               converge(self.version)])
        self.faults.disarm()
        killed_run, rerun = play.results[0], play.results[2]
        r.task_failed = bool(killed_run.get("failed"))
        r.calls, r.rerun_calls = (self.faults.calls_by_module() + [[], []])[:2]
        r.call = brief(r.calls[n - 1]) if len(r.calls) >= n else ""
        kill = self.faults.killed()
        r.killed = f"{kill[2]} (module PID {kill[1]})" if kill else None
        if kill and not r.task_failed:
            r.problems.append("the module was killed and the task still reported success")
        if rerun.get("failed"):
            r.problems.append(f"the rerun failed: {rerun.get('msg')}")
        r.problems += converge_problems(self.host, self.version, cursor, self.expected_files)
        return r


def test_a_converge_killed_at_any_systemctl_call_converges_on_the_next_run(
        bench_host: BenchHost, systemctl_faults: SystemctlFaults) -> None:
    host = bench_host
    seed = int(os.environ.get("UNITCRAFT_FAULT_SEED") or random.SystemRandom().randrange(1 << 32))
    rng = random.Random(seed)
    t0 = time.monotonic()
    clean(host)
    expected_files = unit_dir_listing(host) | set(UNITS) | {f"multi-user.target.wants/{u}" for u in UNITS}
    try:
        run = FaultRun(host, systemctl_faults, 0, expected_files)
        clean_calls, problems = run.first_runs()
        assert not problems, f"the clean runs did not converge: {problems}"
        assert len(clean_calls) == 2, f"the modules' systemctl calls did not all go through the wrapper: {clean_calls}"
        # the calls of v1 -> v2, in order: every round's task makes the same change
        reference = clean_calls[1]
        verbs = [verb(args) for args in reference]
        last_change = max(i for i, v in enumerate(verbs) if v != "show")
        assert verbs[last_change] == "restart", f"the clean run's calls: {reference}"
        # up to the gate's first look after the restart, every clean run makes the same calls;
        # later looks depend on how fast the jobs ran
        certain = last_change + 2
        rounds: list[Round] = []
        for n in KILL_POINTS:
            if rounds and not rounds[-1].killed:
                break  # the last task ended before its N-th call: a later N is no kill point either
            rounds.append(run.kill_round(n))
        beyond = [n for n in KILL_POINTS if n > rounds[-1].n]
        # the call took effect, the module never knew: a reload done, a restart queued
        rounds += [run.kill_round(i + 1, after=True) for i, v in enumerate(verbs) if v != "show"]
        delay_points = [verbs.index("reset-failed") + 1, last_change + 1, last_change + 2]
        rounds += [run.kill_round(n, round(rng.uniform(0, LONGEST_DELAY), 2)) for n in delay_points]
        elapsed = time.monotonic() - t0
    finally:
        clean(host)

    harness = []  # the harness did not do what it was armed for: the round proves nothing
    for r in rounds:
        if r.delay is None and len(r.calls) >= r.n and not r.killed:
            harness.append(f"N={r.n}: the task made {len(r.calls)} calls and was not killed at call {r.n}")
        if r.delay is None and (r.n <= certain or r.after) and not r.killed:
            harness.append(f"N={r.n}: a clean run makes at least {certain} calls, yet no kill")
        if r.delay is not None and not r.killed:
            harness.append(f"N={r.n} +{r.delay}s: the module ended before its killer fired")
        if r.killed and r.calls[:r.n] != reference[:r.n] and r.n <= certain:
            harness.append(f"N={r.n}: the calls before the kill differ from a clean run's: "
                           + " | ".join(map(brief, r.calls)))
    tried = [r for r in rounds if r.killed]
    converged = [r for r in tried if not r.problems]
    figure = (f"{host.flavour}: {len(converged)} of {len(tried)} kill points converged on the next run "
              f"({sum(1 for r in tried if r.delay is None and not r.after)} at a systemctl call, "
              f"{sum(1 for r in tried if r.after)} right after one, "
              f"{sum(1 for r in tried if r.delay is not None)} at a random moment after one; "
              f"a clean run makes {len(reference)} systemctl calls; seed {seed}; {elapsed:.0f} s)")
    last = next(r for r in rounds if r.delay is None and not r.after and not r.killed) if beyond else None
    skipped = [f"N={n}: not run: the task of N={last.n} ended after {len(last.calls)} calls"
               for n in beyond if last is not None]
    report = "\n".join([figure, *(r.describe() for r in rounds), *skipped, *harness]) + "\n"
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f"{host.flavour}.txt").write_text(report)
    print(f"\n{report}", end="")
    assert not harness, report
    assert all(not r.problems for r in rounds), report
