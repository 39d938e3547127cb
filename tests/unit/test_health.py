# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate (waiting for jobs, settling, judging) and restart triggers, with fakes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._health import (
    RUNNING,
    STOPPED_WANT,
    HealthGate,
    judge_arrival,
    judge_settle,
    still_moving,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    activation_seconds,
    newer_than_activation,
)

ACTIVE = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success", "Job": "",
          "MainPID": "10", "InvocationID": "aa", "NRestarts": "0", "Type": "simple", "RemainAfterExit": "no"}


def st(**kw: str) -> dict[str, str]:
    return {**ACTIVE, **kw}


@pytest.mark.parametrize("status, want, problem", [
    (st(), RUNNING, None),
    (st(ActiveState="failed", SubState="failed", Result="exit-code"), RUNNING, "is not running"),
    (st(ActiveState="inactive", SubState="dead"), RUNNING, "is not running"),
    (st(ActiveState="activating", SubState="auto-restart"), RUNNING, "systemd is restarting it"),
    (st(ActiveState="activating", SubState="start", Job="42"), RUNNING, "did not settle within wait_timeout=5s"),
    (st(ActiveState="inactive", Job="42"), RUNNING, "job 42 still queued"),
    (st(Type="oneshot", ActiveState="inactive", SubState="dead"), RUNNING, None),
    (st(Type="oneshot", ActiveState="failed", Result="exit-code"), RUNNING, "oneshot did not finish"),
    (st(Type="oneshot", RemainAfterExit="yes", ActiveState="active", SubState="exited"), RUNNING, None),
    (st(LoadState="not-found", ActiveState="inactive"), RUNNING, "LoadState=not-found"),
    (st(ActiveState="inactive", SubState="dead"), STOPPED_WANT, None),
    (st(ActiveState="failed"), STOPPED_WANT, None),
    (st(ActiveState="deactivating", Job="7"), STOPPED_WANT, "did not settle"),
])
def test_judge_arrival(status: dict[str, str], want: str, problem: str | None) -> None:
    verdict = judge_arrival(status, want, 5)
    if problem is None:
        assert verdict is None
    else:
        assert verdict is not None and problem in verdict


@pytest.mark.parametrize("last, problem", [
    (st(), None),
    (st(MainPID="11", InvocationID="bb", NRestarts="1"), "MainPID 10 -> 11"),
    (st(ActiveState="failed"), "did not stay up"),
    (st(ActiveState="activating", SubState="auto-restart"), "did not stay up"),
])
def test_judge_settle(last: dict[str, str], problem: str | None) -> None:
    verdict = judge_settle(st(), last, 1)
    assert (verdict is None) if problem is None else (verdict is not None and problem in verdict)


def test_auto_restart_has_arrived_for_a_start_but_not_for_a_stop() -> None:
    status = st(ActiveState="activating", SubState="auto-restart")
    assert still_moving(status, RUNNING) is False
    assert still_moving(status, STOPPED_WANT) is True


class FakeSystemctl:
    """Answers `show` from a script of states per call; records journal requests."""

    def __init__(self, script: Sequence[dict[str, dict[str, str]]]) -> None:
        self.script = list(script)
        self.shows: list[list[str]] = []
        self.journals: list[str] = []

    def show(self, units: Sequence[str], properties: Sequence[str]) -> dict[str, dict[str, str]]:
        self.shows.append(list(units))
        states = self.script[min(len(self.shows), len(self.script)) - 1]
        return {u: dict(states[u]) for u in units}

    def journal(self, unit: str, since: float, lines: int) -> list[str]:
        self.journals.append(unit)
        return [f"{unit}: journal line"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def gate(fake: FakeSystemctl, clock: Clock, timeout: float = 10, settle: float = 1) -> HealthGate:
    return HealthGate(fake, wait_timeout=timeout, settle=settle, sleep=clock.sleep, monotonic=clock.monotonic)


def test_many_units_settle_together_in_one_window() -> None:
    units = [f"u{i}.service" for i in range(20)]
    up = {u: st(ActiveEnterTimestampMonotonic="1000000000") for u in units}  # entered at monotonic 1000 s
    fake, clock = FakeSystemctl([up]), Clock()
    outcomes = gate(fake, clock).wait({u: RUNNING for u in units}, since=0)
    assert all(o.ok for o in outcomes.values())
    assert sum(clock.sleeps) == pytest.approx(1.0), "one settle window for all units, not one per unit"
    assert len(fake.shows) == 2 and fake.shows[0] == units, "one show to arrive, one after the window"


def test_time_already_up_counts_towards_the_window() -> None:
    clock = Clock()
    up = {"a.service": st(ActiveEnterTimestampMonotonic=str(int((clock.now - 0.75) * 1e6)))}
    gate(FakeSystemctl([up]), clock).wait({"a.service": RUNNING}, since=0)
    assert sum(clock.sleeps) == pytest.approx(0.25), "the unit was up 0.75 s of its 1 s already"


def test_a_unit_that_dies_in_the_window_fails_with_its_journal() -> None:
    up = {"a.service": st(), "b.service": st()}
    died = {"a.service": st(),
            "b.service": st(ActiveState="failed", SubState="failed", Result="exit-code", MainPID="0")}
    fake, clock = FakeSystemctl([up, died]), Clock()
    outcomes = gate(fake, clock).wait({"a.service": RUNNING, "b.service": RUNNING}, since=0)
    assert outcomes["a.service"].ok and not outcomes["b.service"].ok
    assert fake.journals == ["b.service"], "the journal is read for failed units only"
    text = outcomes["b.service"].describe()
    assert "unit b.service" in text and "ActiveState=failed" in text and "b.service: journal line" in text


def test_jobs_are_polled_until_done_and_the_wait_is_bounded() -> None:
    pending = {"slow.service": st(ActiveState="activating", SubState="start", Job="9")}
    fake, clock = FakeSystemctl([pending]), Clock()
    outcomes = gate(fake, clock, timeout=5, settle=0).wait({"slow.service": RUNNING}, since=0)
    assert not outcomes["slow.service"].ok and "wait_timeout=5s" in (outcomes["slow.service"].problem or "")
    assert sum(clock.sleeps) == pytest.approx(5), "waits exactly until the limit, no longer"
    assert len(fake.shows) > 3 and max(clock.sleeps) <= 0.5


def test_automatic_restarts_since_the_start_fail_the_unit() -> None:
    now = {"a.service": st(NRestarts="3")}
    outcomes = gate(FakeSystemctl([now]), Clock(), settle=0).wait(
        {"a.service": RUNNING}, since=0, before={"a.service": {"NRestarts": "1"}})
    assert "restarted it 2 time(s)" in (outcomes["a.service"].problem or "")


def test_settle_zero_skips_the_window() -> None:
    fake, clock = FakeSystemctl([{"a.service": st()}]), Clock()
    assert gate(fake, clock, settle=0).wait({"a.service": RUNNING}, since=0)["a.service"].ok
    assert clock.sleeps == [] and len(fake.shows) == 1


# --- restart triggers --------------------------------------------------------------------------


def test_activation_is_the_newest_of_main_process_start_and_leaving_inactive() -> None:
    assert activation_seconds({"ExecMainStartTimestampMonotonic": "5000000",
                               "InactiveExitTimestampMonotonic": "4000000"}) == 5.0
    assert activation_seconds({"InactiveExitTimestampMonotonic": "4000000"}) == 4.0
    assert activation_seconds({"ExecMainStartTimestampMonotonic": "0"}) is None


def test_newer_than_activation_compares_on_the_monotonic_clock(tmp_path: Path) -> None:
    old, new, link = tmp_path / "old", tmp_path / "new", tmp_path / "link"
    old.write_text("x")
    new.write_text("y")
    os.utime(old, (1000.0, 1000.0))  # wall 1000 = monotonic 100 with the offset below
    os.utime(new, (1010.0, 1010.0))  # wall 1010 = monotonic 110
    link.symlink_to(old)
    os.utime(link, (1020.0, 1020.0), follow_symlinks=False)  # the link itself was switched later
    status: dict[str, Any] = {"ExecMainStartTimestampMonotonic": str(105 * 10**6)}

    def clock() -> tuple[float, float]:
        return 2000.0, 1100.0  # wall - monotonic = 900
    paths = [str(old), str(new), str(link), str(tmp_path / "missing")]
    assert newer_than_activation(paths, status, clock) == [str(new), str(link)]
    assert newer_than_activation(paths, {}, clock) == [], "no activation known: nothing is newer"
