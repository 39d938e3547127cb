# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Waiting for queued jobs and judging whether the units got where they were sent.

Jobs are queued with --no-block, so nothing here can hang: the gate polls `systemctl show`
(one process for all pending units) until every unit is judged, or `wait_timeout` has passed.

The verdict rule (the table in docs/modules.md, "How the health gate judges a unit"): a unit
sent to run must be `active` (a oneshot without RemainAfterExit must have finished with
success), and the process the gate watches must stay up for `settle` seconds. What the task
did to the unit is the row:
- started or restarted by the task: the process of that start is watched;
- untouched (asked to be active and already on its way): when its current process has been up
  longer than `settle` it is not watched at all; otherwise (between two automatic restarts,
  or up only a moment) the gate waits through systemd's own restart and watches the next
  process like a start.
A process that dies within `settle` fails the unit (a crash loop, every run); one that lived
longer and was restarted by systemd is a healthy restart (`recovered`, with a warning). When a
process died is read from systemd's own monotonic stamps, not from when the gate looked.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

HEALTH_PROPERTIES = ("Id", "LoadState", "Job", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
                     "InvocationID", "Type", "RemainAfterExit", "ActiveEnterTimestampMonotonic",
                     "ActiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic",
                     "ExecMainExitTimestampMonotonic", "ExecMainCode", "ExecMainStatus", "UnitFileState")
TRANSITIONAL = frozenset({"activating", "deactivating", "reloading", "refreshing"})
STOPPED = frozenset({"inactive", "failed"})
# between two automatic starts of a service (Restart=): no process runs
AUTO_RESTART_STATES = frozenset({"auto-restart", "auto-restart-queued"})
JOURNAL_LINES = 20
FIRST_POLL = 0.05
LONGEST_POLL = 0.5

RUNNING = "running"
STOPPED_WANT = "stopped"

# what the task did to a unit: the rows of the verdict table
STARTED = "started"
RESTARTED = "restarted"
UNTOUCHED = "untouched"

# `health` in the result: what the gate found
STEADY = "steady"          # untouched, up longer than settle: not watched
SETTLED = "settled"        # watched, stayed up through the settle window
RECOVERED = "recovered"    # watched; systemd restarted it by itself meanwhile, and the new process settled
FAILED = "failed"
STOPPED_HEALTH = "stopped"

# ExecMainCode: how the last main process ended (CLD_* of waitid(2))
EXIT_CODES = {"1": "exited", "2": "killed", "3": "dumped"}


def last_exit_status(status: Mapping[str, str]) -> str:
    """How the unit's last main process ended ("exited 2", "killed KILL"), "" when none has ended."""
    code, value = status.get("ExecMainCode") or "0", status.get("ExecMainStatus") or "0"
    if code not in EXIT_CODES or not _number(status.get("ExecMainExitTimestampMonotonic")):
        return ""
    if code != "1":
        try:
            value = signal.Signals(int(value)).name.removeprefix("SIG")
        except ValueError:
            pass
    return f"{EXIT_CODES[code]} {value}"


# systemd's own line for a main process that ended: "Main process exited, code=exited, status=2/INVALIDARGUMENT"
_MAIN_EXITED = re.compile(r"Main process exited, code=(?P<code>\w+), status=(?P<status>[^/\s]+)")


def exit_from_journal(lines: Sequence[str]) -> str:
    """The last exit status the journal lines name ("exited 2", "killed KILL"), "" when none does."""
    for line in reversed(lines):
        match = _MAIN_EXITED.search(line)
        if match:
            return f"{match.group('code')} {match.group('status')}"
    return ""


@dataclass
class Outcome:
    """What became of one unit after its job: `problem` is None when it got where it was sent."""

    unit: str
    want: str
    status: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    journal: list[str] = field(default_factory=list)
    row: str = STARTED
    health: str = SETTLED
    restarts_seen: int = 0
    last_exit: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        st = self.status
        text = (f"unit {self.unit}: {self.problem} (ActiveState={st.get('ActiveState', '?')} "
                f"SubState={st.get('SubState', '?')} Result={st.get('Result', '?')} "
                f"NRestarts={st.get('NRestarts') or '0'})")
        if self.journal:
            text += "\n  journal since the task began:\n" + "\n".join(f"    {line}" for line in self.journal)
        elif not self.ok:
            text += "\n  (journalctl has no lines of this unit since the task began)"
        return text


def runs_to_completion(status: Mapping[str, str]) -> bool:
    """A oneshot without RemainAfterExit: its success is to have run and gone inactive."""
    return status.get("Type") == "oneshot" and status.get("RemainAfterExit", "no") != "yes"


def still_moving(status: Mapping[str, str]) -> bool:
    """The unit has a job queued or is between states (waiting for an automatic restart included)."""
    if status.get("Job"):
        return True
    return status.get("ActiveState") in TRANSITIONAL


def is_up(status: Mapping[str, str]) -> bool:
    return status.get("ActiveState") == "active" and not status.get("Job") \
        and status.get("SubState") not in AUTO_RESTART_STATES


def up_since(status: Mapping[str, str]) -> float:
    """Monotonic seconds when the unit last became active (its current process, for a service)."""
    return _number(status.get("ActiveEnterTimestampMonotonic")) / 1e6


def steady(status: Mapping[str, str], settle: float, now: float) -> bool:
    """An untouched unit whose current activation has been up for settle seconds: nothing to watch."""
    entered = up_since(status)
    return is_up(status) and entered > 0 and now - entered >= settle


def restarts_since(now: Mapping[str, str], before: Mapping[str, str]) -> int:
    """Automatic restarts since `before` was read. A count lower than before was flushed by a
    start in between (systemd 257 flushes NRestarts on a start that is not automatic, 252 does
    not), so all of it is new."""
    count, earlier = _number(now.get("NRestarts")), _number(before.get("NRestarts"))
    return count - earlier if count >= earlier else count


def _identity(status: Mapping[str, str]) -> tuple[str, str, str]:
    return (status.get("InvocationID") or "", status.get("MainPID") or "",
            status.get("ActiveEnterTimestampMonotonic") or "")


class _Watch:
    """The gate's view of one unit: the process it settles and what it saw die."""

    def __init__(self, outcome: Outcome, base: Mapping[str, str], watch_start: float, settle: float) -> None:
        self.outcome = outcome
        self.base = dict(base)
        self.watch_start = watch_start
        self.settle = settle
        self.tracked: tuple[str, str, str] | None = None
        self.tracked_since = 0.0
        self.seen_restarts = 0  # restarts counted at the previous look
        self.done = False

    def restarts(self, status: Mapping[str, str]) -> int:
        return restarts_since(status, self.base)

    def _fail(self, problem: str) -> None:
        self.outcome.problem = problem
        self.outcome.health = FAILED
        self.done = True

    def _death(self, status: Mapping[str, str], lived: float | None, now: float) -> None:
        """A process the gate watched (or that began after the task's jobs) died after `lived` seconds."""
        exit_status = last_exit_status(status) or self.outcome.last_exit or "unknown"
        restarts = self.restarts(status)
        life = f"a process lived {lived:.1f}s, less than settle={self.settle:g}s" \
            if lived is not None and self.settle > 0 else f"processes died within settle={self.settle:g}s"
        if self.outcome.row != UNTOUCHED and restarts == 0:
            when = f"{lived:.1f}s " if lived is not None else ""
            self._fail(f"died {when}after the start, within settle={self.settle:g}s (last exit status {exit_status})")
        else:
            self._fail(f"keeps dying: {restarts} restart(s) in {now - self.watch_start:.1f}s, "
                       f"last exit status {exit_status}; {life}")

    def step(self, status: dict[str, str], now: float, wait_timeout: float, deadline_passed: bool) -> None:
        """Judge one look at the unit: decide it, or leave it pending for the next look."""
        outcome = self.outcome
        outcome.status = status
        self.seen_restarts, outcome.restarts_seen = outcome.restarts_seen, self.restarts(status)
        outcome.last_exit = last_exit_status(status) or outcome.last_exit
        if outcome.want == STOPPED_WANT:
            if still_moving(status):
                if deadline_passed:
                    self._fail(_timeout(status, wait_timeout))
                return
            self.done = True
            outcome.health = STOPPED_HEALTH
            if status.get("ActiveState") not in STOPPED:
                self._fail(f"is {status.get('ActiveState')}, not stopped")
            return
        if status.get("LoadState") not in (None, "", "loaded"):
            self._fail(f"cannot run: LoadState={status.get('LoadState')}")
            return
        if self._tracked_died(status, now) or self._died_unseen(status, now):
            return
        if runs_to_completion(status):
            self._judge_oneshot(status, deadline_passed, wait_timeout)
            return
        if is_up(status):
            if self.tracked != _identity(status):
                self.tracked, self.tracked_since = _identity(status), up_since(status) or now
            if self.settle <= 0 or now - self.tracked_since >= self.settle:
                self.done = True
                outcome.health = RECOVERED if outcome.restarts_seen > 0 else SETTLED
            elif deadline_passed:
                self._fail(f"did not stay up for settle={self.settle:g}s within wait_timeout={wait_timeout:g}s")
            return
        if still_moving(status):
            if self._latest_process_died_young(status):
                return
            if deadline_passed:
                self._fail(_timeout(status, wait_timeout))
            return
        # inactive or failed, nothing queued
        if not self._latest_process_died_young(status):
            given_up = " (systemd gave up restarting it)" if outcome.restarts_seen else ""
            self._fail(f"is not running after the start: it is {status.get('ActiveState') or 'unknown'}{given_up}"
                       + (f", last exit status {outcome.last_exit}" if outcome.last_exit else ""))

    def _tracked_died(self, status: Mapping[str, str], now: float) -> bool:
        """The process being settled is gone: a failure when it lived less than settle."""
        if self.tracked is None or (is_up(status) and _identity(status) == self.tracked):
            return False
        died_at = _number(status.get("ActiveExitTimestampMonotonic")) / 1e6
        lived = (died_at if died_at > self.tracked_since else now) - self.tracked_since
        self.tracked = None
        # two restarts or more since the last look: a whole process lived and died between two looks
        if lived < self.settle or self.outcome.restarts_seen - self.seen_restarts >= 2:
            self._death(status, lived, now)
            return True
        return False

    def _died_unseen(self, status: Mapping[str, str], now: float) -> bool:
        """Restarts while no process was being settled: processes the gate never saw up died.

        Two restarts between two looks mean a whole process lived and died in between. After the
        task's own start, the first restart ends the process of that start: it began after the
        jobs were queued and died when the unit last left `active`.
        """
        if self.tracked is not None:
            return False
        new = self.outcome.restarts_seen - self.seen_restarts
        if new >= 2 and self.settle > 0:
            self._death(status, None, now)
            return True
        if new >= 1 and self.seen_restarts == 0 and self.outcome.row != UNTOUCHED:
            died_at = _number(status.get("ActiveExitTimestampMonotonic")) / 1e6
            lived = (died_at if died_at > self.watch_start else now) - self.watch_start
            if self.settle <= 0 or lived < self.settle:
                self._death(status, lived, now)
                return True
        return False

    def _latest_process_died_young(self, status: Mapping[str, str]) -> bool:
        """The unit's last main process began after the gate started watching and lived less than settle."""
        started = _number(status.get("ExecMainStartTimestampMonotonic")) / 1e6
        ended = _number(status.get("ExecMainExitTimestampMonotonic")) / 1e6
        if started < self.watch_start or ended < started or self.settle <= 0:
            return False
        if ended - started < self.settle:
            self._death(status, ended - started, ended)
            return True
        return False

    def _judge_oneshot(self, status: Mapping[str, str], deadline_passed: bool, wait_timeout: float) -> None:
        if still_moving(status):
            if deadline_passed:
                self._fail(_timeout(status, wait_timeout))
            return
        self.done = True
        if status.get("ActiveState") == "inactive" and status.get("Result", "success") == "success":
            self.outcome.health = SETTLED
        else:
            self._fail("the oneshot did not finish with success"
                       + (f" (last exit status {self.outcome.last_exit})" if self.outcome.last_exit else ""))


def _timeout(status: Mapping[str, str], wait_timeout: float) -> str:
    if status.get("SubState") in AUTO_RESTART_STATES and not status.get("Job"):
        return f"was still waiting for systemd's automatic restart after wait_timeout={wait_timeout:g}s"
    job = f" with job {status['Job']} still queued" if status.get("Job") else ""
    return f"did not settle within wait_timeout={wait_timeout:g}s{job}"


class HealthGate:
    """Waits for the jobs of one task and judges every unit they touched, all together."""

    def __init__(self, systemctl: object, wait_timeout: float, settle: float,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.systemctl = systemctl
        self.wait_timeout = wait_timeout
        self.settle = settle
        self.sleep = sleep
        self.monotonic = monotonic

    def wait(self, wants: Mapping[str, str], since: float,
             before: Mapping[str, Mapping[str, str]] | None = None,
             rows: Mapping[str, str] | None = None, since_monotonic: float | None = None,
             read_at: float | None = None) -> dict[str, Outcome]:
        """`wants` maps unit -> RUNNING or STOPPED_WANT; `since` (epoch s) is when the jobs were queued
        (`since_monotonic` the same on the monotonic clock, default now).

        `before` holds each unit's status read before its job: automatic restarts since then count.
        `rows` says what the task did to each unit (STARTED, the default, RESTARTED or UNTOUCHED);
        an untouched unit is judged from `before`, read at `read_at` (monotonic, default now), and
        watched only when it was not steady then: a process that had been up settle seconds when it
        was read has lived that long, one that had not is watched, however late the gate starts.
        """
        before = before or {}
        rows = rows or {}
        start = self.monotonic() if since_monotonic is None else since_monotonic
        outcomes: dict[str, Outcome] = {}
        watches: dict[str, _Watch] = {}
        read = self.monotonic() if read_at is None else read_at
        for unit, want in wants.items():
            row = rows.get(unit, STARTED)
            outcome = Outcome(unit, want, dict(before.get(unit, {})), row=row)
            outcomes[unit] = outcome
            if row == UNTOUCHED and want == RUNNING and steady(before.get(unit, {}), self.settle, read):
                outcome.health = STEADY
                continue
            # restarts count from the status read before the task's jobs
            watches[unit] = _Watch(outcome, before.get(unit, {}), start, self.settle)
            if row == UNTOUCHED:  # found between two restarts: how its last process ended
                outcome.last_exit = last_exit_status(before.get(unit, {}))
        if watches:
            self._watch(watches)
        failed = [o for o in outcomes.values() if not o.ok]
        for outcome in failed:
            outcome.journal = self.systemctl.journal(outcome.unit, since, JOURNAL_LINES)  # type: ignore[attr-defined]
            # systemd forgets how a process ended once the next one runs; its journal line does not
            logged = exit_from_journal(outcome.journal)
            if logged and "last exit status unknown" in (outcome.problem or ""):
                outcome.last_exit = logged
                outcome.problem = (outcome.problem or "").replace("last exit status unknown",
                                                                  f"last exit status {logged}")
        return outcomes

    def _watch(self, watches: dict[str, _Watch]) -> None:
        deadline = self.monotonic() + self.wait_timeout
        pending = list(watches)
        pause = FIRST_POLL
        if self.settle > 0 and any(w.outcome.want == RUNNING for w in watches.values()):
            # the settle window is waited anyway: a first look a little later finds the jobs done
            self.sleep(min(self.settle / 4, self.wait_timeout, LONGEST_POLL))
        while True:
            status = self.systemctl.show(pending, HEALTH_PROPERTIES)  # type: ignore[attr-defined]
            now = self.monotonic()
            passed = now >= deadline
            for unit in pending:
                watches[unit].step(status[unit], now, self.wait_timeout, passed)
            pending = [u for u in pending if not watches[u].done]
            left = deadline - now
            if not pending or left <= 0:
                return
            settling = [watches[u] for u in pending if watches[u].tracked is not None]
            if len(settling) == len(pending):
                # every unit is up and settling: look again when the earliest window ends (one look
                # for all when the windows end together), at most LONGEST_POLL after the first
                ends = [w.tracked_since + self.settle - now for w in settling]
                nap = max(0.0, min(max(ends), min(ends) + LONGEST_POLL))
            else:
                nap = pause
                pause = min(pause * 2, LONGEST_POLL)
            self.sleep(min(nap, left))


def _number(value: str | None) -> int:
    """A numeric property of `systemctl show` (a count or microseconds); 0 when empty or unknown."""
    try:
        return int(value or 0)
    except ValueError:
        return 0
