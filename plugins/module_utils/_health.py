# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Waiting for queued jobs and judging whether the units got where they were sent.

Jobs are queued with --no-block, so nothing here can hang: the gate polls `systemctl show`
(one process for all pending units) until every unit has no job and is out of a transitional
state, or `wait_timeout` has passed. Units sent to run must then be `active` (a oneshot
without RemainAfterExit must have finished with success) and stay up for `settle` seconds
with the same main PID, invocation and restart count; all units settle together, in one
window. A unit that does not gets a verdict naming its state and the journal of that start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HEALTH_PROPERTIES = ("Id", "LoadState", "Job", "ActiveState", "SubState", "Result", "MainPID", "NRestarts",
                     "InvocationID", "Type", "RemainAfterExit", "ActiveEnterTimestampMonotonic", "UnitFileState")
TRANSITIONAL = frozenset({"activating", "deactivating", "reloading", "refreshing"})
STOPPED = frozenset({"inactive", "failed"})
# what must not move while a unit settles: a change means it died and was restarted
STEADY_KEYS = ("MainPID", "InvocationID", "NRestarts")
JOURNAL_LINES = 20
FIRST_POLL = 0.05
LONGEST_POLL = 0.5

RUNNING = "running"
STOPPED_WANT = "stopped"


@dataclass
class Outcome:
    """What became of one unit after its job: `problem` is None when it got where it was sent."""

    unit: str
    want: str
    status: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    journal: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        st = self.status
        text = (f"unit {self.unit}: {self.problem} (ActiveState={st.get('ActiveState', '?')} "
                f"SubState={st.get('SubState', '?')} Result={st.get('Result', '?')} "
                f"NRestarts={st.get('NRestarts') or '0'})")
        if self.journal:
            text += "\n  journal of this start:\n" + "\n".join(f"    {line}" for line in self.journal)
        return text


def runs_to_completion(status: Mapping[str, str]) -> bool:
    """A oneshot without RemainAfterExit: its success is to have run and gone inactive."""
    return status.get("Type") == "oneshot" and status.get("RemainAfterExit", "no") != "yes"


def still_moving(status: Mapping[str, str], want: str) -> bool:
    """The unit has a job queued or is between states; `auto-restart` counts as arrived (it died)."""
    if status.get("Job"):
        return True
    if want == RUNNING and status.get("SubState") == "auto-restart":
        return False
    return status.get("ActiveState") in TRANSITIONAL


def judge_arrival(status: Mapping[str, str], want: str, wait_timeout: float) -> str | None:
    """Problem with a unit once its job is done (or the wait is over), None when it arrived."""
    active = status.get("ActiveState", "")
    if still_moving(status, want):
        job = f" with job {status['Job']} still queued" if status.get("Job") else ""
        return f"did not settle within wait_timeout={wait_timeout:g}s{job}"
    if want == STOPPED_WANT:
        return None if active in STOPPED else f"is {active}, not stopped"
    if status.get("LoadState") not in (None, "", "loaded"):
        return f"cannot run: LoadState={status.get('LoadState')}"
    if status.get("SubState") == "auto-restart":
        return "its process exited after the start and systemd is restarting it"
    if runs_to_completion(status):
        if active == "inactive" and status.get("Result", "success") == "success":
            return None
        return "the oneshot did not finish with success"
    if active != "active":
        return f"is not running after the start: it is {active or 'unknown'}"
    return None


def judge_settle(first: Mapping[str, str], last: Mapping[str, str], settle: float) -> str | None:
    """Problem when a running unit did not stay up, with the same process, through the settle window."""
    if last.get("ActiveState") != "active" or last.get("SubState") == "auto-restart":
        return f"did not stay up for settle={settle:g}s: it went {last.get('ActiveState')}"
    moved = [f"{key} {first.get(key) or '-'} -> {last.get(key) or '-'}" for key in STEADY_KEYS
             if (first.get(key) or "") != (last.get(key) or "")]
    if moved:
        return f"was restarted within settle={settle:g}s ({', '.join(moved)})"
    return None


def restarts_since(now: Mapping[str, str], before: Mapping[str, str]) -> int:
    """Automatic restarts since `before` was read. A count lower than before was flushed by a
    start in between (systemd 257 flushes NRestarts on a start that is not automatic, 252 does
    not), so all of it is new."""
    count, earlier = _number(now.get("NRestarts")), _number(before.get("NRestarts"))
    return count - earlier if count >= earlier else count


class HealthGate:
    """Waits for the jobs of one task and judges every unit they touched, all together."""

    def __init__(self, systemctl: Any, wait_timeout: float, settle: float,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.systemctl = systemctl
        self.wait_timeout = wait_timeout
        self.settle = settle
        self.sleep = sleep
        self.monotonic = monotonic

    def wait(self, wants: Mapping[str, str], since: float,
             before: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Outcome]:
        """`wants` maps unit -> RUNNING or STOPPED_WANT; `since` (epoch s) is when the jobs were queued.

        `before` holds each unit's status read before its job: automatic restarts since then count.
        """
        if not wants:
            return {}
        status = self._until_arrived(list(wants), wants)
        outcomes = {u: Outcome(u, wants[u], status[u], judge_arrival(status[u], wants[u], self.wait_timeout))
                    for u in wants}
        for unit, outcome in outcomes.items():
            restarts = restarts_since(outcome.status, (before or {}).get(unit, {}))
            if outcome.ok and outcome.want == RUNNING and restarts > 0:
                outcome.problem = f"systemd restarted it {restarts} time(s) since the start: it keeps dying"
        runners = [u for u, o in outcomes.items()
                   if o.ok and o.want == RUNNING and not runs_to_completion(o.status)]
        if runners and self.settle > 0:
            self._settle(runners, outcomes)
        failed = [o for o in outcomes.values() if not o.ok]
        for outcome in failed:
            outcome.journal = self.systemctl.journal(outcome.unit, since, JOURNAL_LINES)
        return outcomes

    def _until_arrived(self, units: Sequence[str], wants: Mapping[str, str]) -> dict[str, dict[str, str]]:
        deadline = self.monotonic() + self.wait_timeout
        status: dict[str, dict[str, str]] = {}
        pending = list(units)
        pause = FIRST_POLL
        if self.settle > 0 and RUNNING in wants.values():
            # the settle window is waited anyway: a first look a little later finds the jobs done
            self.sleep(min(self.settle / 4, self.wait_timeout, LONGEST_POLL))
        while True:
            status.update(self.systemctl.show(pending, HEALTH_PROPERTIES))
            pending = [u for u in pending if still_moving(status[u], wants[u])]
            left = deadline - self.monotonic()
            if not pending or left <= 0:
                return status
            self.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_POLL)

    def _settle(self, runners: Sequence[str], outcomes: dict[str, Outcome]) -> None:
        # The window counts from when each unit became active: time already spent waiting counts.
        entered = max(_number(outcomes[u].status.get("ActiveEnterTimestampMonotonic")) for u in runners) / 1e6
        elapsed = self.monotonic() - entered if entered else 0.0
        remaining = min(self.settle, max(0.0, self.settle - elapsed))
        if remaining > 0:
            self.sleep(remaining)
        after = self.systemctl.show(list(runners), HEALTH_PROPERTIES)
        for unit in runners:
            outcome = outcomes[unit]
            outcome.problem = judge_settle(outcome.status, after[unit], self.settle)
            outcome.status = after[unit]


def _number(value: str | None) -> int:
    """A numeric property of `systemctl show` (a count or microseconds); 0 when empty or unknown."""
    try:
        return int(value or 0)
    except ValueError:
        return 0
