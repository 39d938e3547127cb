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
    restarts_since,
    still_moving,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils import _triggers
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    activation_seconds,
    file_seconds,
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


def test_a_restart_count_lower_than_before_was_flushed_by_the_start_and_is_all_new() -> None:
    """systemd 257 sets NRestarts to 0 on a start that is not automatic; 252 keeps counting."""
    assert restarts_since({"NRestarts": "1"}, {"NRestarts": "7"}) == 1
    assert restarts_since({"NRestarts": "9"}, {"NRestarts": "7"}) == 2
    assert restarts_since({"NRestarts": "0"}, {}) == 0
    now = {"a.service": st(NRestarts="2")}
    outcomes = gate(FakeSystemctl([now]), Clock(), settle=0).wait(
        {"a.service": RUNNING}, since=0, before={"a.service": {"NRestarts": "5"}})
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


def test_a_service_waiting_for_its_automatic_restart_was_activated_when_its_last_process_started() -> None:
    """systemd stamps InactiveExit when the crashed process died: that is not when it loaded its files."""
    crashed = {"SubState": "auto-restart", "ExecMainStartTimestampMonotonic": "5000000",
               "InactiveExitTimestampMonotonic": "5400000"}
    assert activation_seconds(crashed) == 5.0
    assert activation_seconds({**crashed, "SubState": "auto-restart-queued"}) == 5.0
    assert activation_seconds({**crashed, "SubState": "running"}) == 5.4


def _fake_stats(monkeypatch: pytest.MonkeyPatch, times: dict[str, tuple[float, float, float, float]]) -> None:
    """File times by path: (link mtime, link ctime, target mtime, target ctime); others are missing."""

    def stat_of(first: int) -> Any:
        def stat(path: str) -> os.stat_result:
            if path not in times:
                raise FileNotFoundError(path)
            mtime, ctime = times[path][first:first + 2]
            # (mode, ino, dev, nlink, uid, gid, size, int atime, int mtime, int ctime, atime, mtime, ctime)
            return os.stat_result((0o100644, 0, 0, 1, 0, 0, 0, 0, int(mtime), int(ctime), 0.0, mtime, ctime))
        return stat
    monkeypatch.setattr(_triggers, "STAT_FUNCTIONS", (stat_of(0), stat_of(2)))


def test_newer_than_activation_compares_on_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # wall 1000 = monotonic 100 with the offset below; the activation began at monotonic 105
    _fake_stats(monkeypatch, {
        "/old": (1000.0, 1000.0, 1000.0, 1000.0),
        "/new": (1010.0, 1010.0, 1010.0, 1010.0),
        "/link": (1020.0, 1020.0, 1000.0, 1000.0),  # the link itself was switched later
    })
    status: dict[str, Any] = {"ExecMainStartTimestampMonotonic": str(105 * 10**6)}

    def clock() -> tuple[float, float]:
        return 2000.0, 1100.0  # wall - monotonic = 900
    paths = ["/old", "/new", "/link", "/missing"]
    assert newer_than_activation(paths, status, clock) == ["/new", "/link"]
    assert newer_than_activation(paths, {}, clock) == [], "no activation known: nothing is newer"


def test_a_file_renamed_into_place_counts_from_its_change_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ansible's copy renames a temporary file into place: its mtime is older than the rename.

    Here the content was written at wall 1003 (monotonic 103), the unit (re)started at 104,
    and the rename happened at 106: the unit still runs what was there before the rename.
    The same holds for a packaged file whose mtime is the package's build time.
    """
    _fake_stats(monkeypatch, {"/opt/prog": (1003.0, 1006.0, 1003.0, 1006.0),
                              "/usr/bin/packaged": (500.0, 1006.0, 500.0, 1006.0)})
    status = {"ExecMainStartTimestampMonotonic": str(104 * 10**6)}

    def clock() -> tuple[float, float]:
        return 2000.0, 1100.0
    assert newer_than_activation(["/opt/prog", "/usr/bin/packaged"], status, clock) == ["/opt/prog", "/usr/bin/packaged"]


def test_real_files_are_read_through_lstat_and_stat(tmp_path: Path) -> None:
    target, link = tmp_path / "target", tmp_path / "link"
    target.write_text("x")
    link.symlink_to(target)
    os.utime(target, (1000.0, 1000.0))  # an old mtime: the change time (now) still counts
    now = file_seconds(str(link), 0.0)
    assert now is not None and now >= os.stat(target).st_ctime >= 1000.0 + 1
    assert file_seconds(str(tmp_path / "missing"), 0.0) is None
