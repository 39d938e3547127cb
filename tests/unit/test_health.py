# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate (waiting for jobs, settling, judging) and restart triggers, with fakes."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._health import (
    RECOVERED,
    RESTARTED,
    RUNNING,
    SETTLED,
    STEADY,
    UNTOUCHED,
    HealthGate,
    is_up,
    last_exit_status,
    restarts_since,
    still_moving,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils import _triggers
from ansible_collections.unitcraft.systemd.plugins.module_utils._pending import PendingRestarts
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    activation_seconds,
    file_seconds,
    newer_than_activation,
)

ACTIVE = {"LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success", "Job": "",
          "MainPID": "10", "InvocationID": "aa", "NRestarts": "0", "Type": "simple", "RemainAfterExit": "no"}


def st(**kw: str) -> dict[str, str]:
    return {**ACTIVE, **kw}


def test_auto_restart_is_still_moving_for_a_start_and_a_stop() -> None:
    """Between two automatic restarts the unit is on its way: the gate waits through it."""
    status = st(ActiveState="activating", SubState="auto-restart")
    assert still_moving(status) is True
    assert is_up(status) is False and is_up(st()) is True


@pytest.mark.parametrize("code, status, exit_at, text", [
    ("1", "2", "5", "exited 2"),
    ("2", "9", "5", "killed KILL"),
    ("3", "11", "5", "dumped SEGV"),
    ("1", "2", "0", ""),  # no process has ended yet
    ("0", "0", "5", ""),
])
def test_last_exit_status_names_how_the_last_process_ended(code: str, status: str, exit_at: str, text: str) -> None:
    assert last_exit_status({"ExecMainCode": code, "ExecMainStatus": status,
                             "ExecMainExitTimestampMonotonic": exit_at}) == text


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
    assert "keeps dying: 2 restart(s)" in (outcomes["a.service"].problem or "")


def test_a_restart_count_lower_than_before_was_flushed_by_the_start_and_is_all_new() -> None:
    """systemd 257 sets NRestarts to 0 on a start that is not automatic; 252 keeps counting."""
    assert restarts_since({"NRestarts": "1"}, {"NRestarts": "7"}) == 1
    assert restarts_since({"NRestarts": "9"}, {"NRestarts": "7"}) == 2
    assert restarts_since({"NRestarts": "0"}, {}) == 0
    now = {"a.service": st(NRestarts="2")}
    outcomes = gate(FakeSystemctl([now]), Clock(), settle=0).wait(
        {"a.service": RUNNING}, since=0, before={"a.service": {"NRestarts": "5"}})
    assert "keeps dying: 2 restart(s)" in (outcomes["a.service"].problem or "")


def test_settle_zero_skips_the_window() -> None:
    fake, clock = FakeSystemctl([{"a.service": st()}]), Clock()
    assert gate(fake, clock, settle=0).wait({"a.service": RUNNING}, since=0)["a.service"].ok
    assert clock.sleeps == [] and len(fake.shows) == 1


# --- the verdict table (docs/modules.md): what the task did x what the gate sees --------------


def us(seconds: float) -> str:
    """A systemd monotonic stamp (microseconds) for a moment of the fake clock."""
    return str(int(seconds * 1e6))


class TimedSystemctl(FakeSystemctl):
    """Answers `show` from a function of the fake clock's time: a unit that lives on its own."""

    def __init__(self, clock: Clock, states: Any) -> None:
        super().__init__([])
        self.clock = clock
        self.states = states

    def show(self, units: Sequence[str], properties: Sequence[str]) -> dict[str, dict[str, str]]:
        self.shows.append(list(units))
        return {u: dict(self.states(u, self.clock.now)) for u in units}

    def journal(self, unit: str, since: float, lines: int) -> list[str]:
        self.journals.append(unit)
        return [f"{unit}: Main process exited, code=exited, status=2/INVALIDARGUMENT",
                f"{unit}: Failed with result 'exit-code'."]


def flapping(life: float, restart_sec: float, first_start: float, code: str = "1", status: str = "2") -> Any:
    """A Restart=always service whose every process lives `life` s, restarted `restart_sec` s after it dies."""
    period = life + restart_sec

    def states(unit: str, now: float) -> dict[str, str]:
        n = int((now - first_start) // period)
        began = first_start + n * period
        if now - began < life:  # a process runs
            return st(MainPID=str(100 + n), InvocationID=f"inv{n}", NRestarts=str(n),
                      ActiveEnterTimestampMonotonic=us(began), ExecMainStartTimestampMonotonic=us(began),
                      ActiveExitTimestampMonotonic=us(began - restart_sec) if n else "0",
                      ExecMainExitTimestampMonotonic="0", ExecMainCode="0", ExecMainStatus="0")
        return st(ActiveState="activating", SubState="auto-restart", MainPID="0", InvocationID=f"inv{n}",
                  NRestarts=str(n), ActiveEnterTimestampMonotonic=us(began),
                  ExecMainStartTimestampMonotonic=us(began), ActiveExitTimestampMonotonic=us(began + life),
                  ExecMainExitTimestampMonotonic=us(began + life), ExecMainCode=code, ExecMainStatus=status)
    return states


def test_an_untouched_unit_up_longer_than_settle_costs_no_look() -> None:
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=3, restart_sec=1, first_start=clock.now - 1.5))
    before = {"a.service": fake.states("a.service", clock.now)}
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, before=before,
                                     rows={"a.service": UNTOUCHED})["a.service"]
    assert outcome.ok and outcome.health == STEADY
    assert fake.shows == [] and clock.sleeps == [], "a steady unit is not watched"


def test_a_unit_read_up_a_moment_is_watched_however_late_the_gate_starts() -> None:
    """The plan read a crash-looping unit 0.5 s into a process; the module was slow and the gate
    starts 1.5 s later: the process read was not steady, so the gate watches (and fails) it."""
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=0.6, restart_sec=0.1, first_start=clock.now - 7.5))
    read_at = clock.now
    before = {"a.service": fake.states("a.service", read_at)}
    assert before["a.service"]["ActiveState"] == "active"
    clock.now += 1.5
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, before=before,
                                     rows={"a.service": UNTOUCHED}, read_at=read_at)["a.service"]
    assert not outcome.ok and (outcome.problem or "").startswith("keeps dying:"), outcome.describe()


@pytest.mark.parametrize("phase", [0.0, 0.2, 0.5, 0.9, 2.95, 3.0, 3.3, 3.7, 3.99])
def test_the_seed_pattern_passes_wherever_the_rerun_finds_it(phase: float) -> None:
    """Restart=always, a program that lives 3 s, RestartSec=1: untouched, it never fails a run,
    whether found up a moment, up long, or between two automatic restarts."""
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=3, restart_sec=1, first_start=clock.now - 8 - phase))
    before = {"a.service": fake.states("a.service", clock.now)}
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, before=before,
                                     rows={"a.service": UNTOUCHED})["a.service"]
    assert outcome.ok, outcome.describe()
    found_up = phase < 3
    if found_up and phase >= 1:
        assert outcome.health == STEADY
    elif found_up:
        assert outcome.health == SETTLED and outcome.restarts_seen == 0
    else:
        assert outcome.health == RECOVERED and outcome.restarts_seen == 1 and outcome.last_exit == "exited 2"


@pytest.mark.parametrize("phase", [0.0, 0.1, 0.3, 0.55, 0.65, 0.69])
def test_a_crash_loop_fails_wherever_the_rerun_finds_it(phase: float) -> None:
    """A process that lives 0.6 s, restarted 0.1 s after it dies: every look fails, the instant of a
    running process included, and the message says it keeps dying."""
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=0.6, restart_sec=0.1, first_start=clock.now - 7 - phase))
    before = {"a.service": fake.states("a.service", clock.now)}
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, before=before,
                                     rows={"a.service": UNTOUCHED})["a.service"]
    assert not outcome.ok
    assert (outcome.problem or "").startswith("keeps dying:"), outcome.problem
    assert "last exit status exited 2" in (outcome.problem or "")
    assert fake.journals == ["a.service"]


def test_a_crash_loop_the_gate_only_sees_between_restarts_fails_by_systemds_stamps() -> None:
    """Processes that live 0.02 s: the looks never catch one running; the stamps of the last one say
    it began after the gate started watching and died young."""
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=0.02, restart_sec=0.3, first_start=clock.now - 5.001))
    before = {"a.service": fake.states("a.service", clock.now)}
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, before=before,
                                     rows={"a.service": UNTOUCHED})["a.service"]
    assert not outcome.ok and (outcome.problem or "").startswith("keeps dying:"), outcome.problem


def test_settle_three_fails_a_program_that_dies_at_two_seconds_and_passes_one_that_lives() -> None:
    for life, ok in ((2.0, False), (20.0, True)):
        clock = Clock()
        fake = TimedSystemctl(clock, flapping(life=life, restart_sec=5, first_start=clock.now + 0.01))
        outcome = gate(fake, clock, settle=3).wait({"a.service": RUNNING}, since=0,
                                                   since_monotonic=clock.now)["a.service"]
        assert outcome.ok is ok, outcome.describe()
        if not ok:
            assert "died 2.0s after the start, within settle=3s (last exit status exited 2)" in (outcome.problem or "")


def test_a_restarted_process_that_lived_longer_than_settle_before_systemd_restarted_it_passes() -> None:
    """The task's restart, then a slow first look: its process lived 1.5 s (settle 1) and systemd
    restarted it; the new one settles. A healthy restart, not a crash."""
    clock = Clock()
    start = clock.now
    fake = TimedSystemctl(clock, flapping(life=1.5, restart_sec=0.1, first_start=start))
    clock.now += 1.7  # the machine was busy: the first look comes late
    outcome = gate(fake, clock).wait({"a.service": RUNNING}, since=0, rows={"a.service": RESTARTED},
                                     since_monotonic=start)["a.service"]
    assert not outcome.ok or outcome.health == RECOVERED
    # 1.5 s lives are longer than settle=1: each new process settles before it dies
    assert outcome.ok, outcome.describe()


def test_an_untouched_unit_waiting_longer_than_wait_timeout_for_its_restart_says_so() -> None:
    clock = Clock()
    fake = TimedSystemctl(clock, flapping(life=1, restart_sec=600, first_start=clock.now - 2))
    before = {"a.service": fake.states("a.service", clock.now)}
    outcome = gate(fake, clock, timeout=5).wait({"a.service": RUNNING}, since=0, before=before,
                                                rows={"a.service": UNTOUCHED})["a.service"]
    assert not outcome.ok and "still waiting for systemd's automatic restart after wait_timeout=5s" in \
        (outcome.problem or "")


def test_a_failed_outcome_without_journal_lines_says_so() -> None:
    class Silent(FakeSystemctl):
        def journal(self, unit: str, since: float, lines: int) -> list[str]:
            return []
    died = {"a.service": st(ActiveState="failed", SubState="failed", Result="exit-code")}
    outcome = gate(Silent([died]), Clock(), settle=0).wait({"a.service": RUNNING}, since=0)["a.service"]
    assert "journalctl has no lines of this unit since the task began" in outcome.describe()


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


# --- trigger digests and records: content decides, file times do not -------------------------


def test_a_digest_follows_content_not_file_times(tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("v1")
    first = _triggers.digest(str(conf))
    os.utime(conf, (time.time() + 86400, time.time() + 86400))  # a future mtime, same content
    assert _triggers.digest(str(conf)) == first
    conf.write_text("v2")
    os.utime(conf, (time.time() - 2 * 86400, time.time() - 2 * 86400))  # new content, an old mtime
    assert _triggers.digest(str(conf)) != first
    assert _triggers.digest(str(tmp_path / "missing")) == "absent"


def test_a_digest_sees_a_switched_symlink_and_a_directorys_entries(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("same")
    (tmp_path / "b").write_text("same")
    link = tmp_path / "current"
    link.symlink_to("a")
    on_a = _triggers.digest(str(link))
    link.unlink()
    link.symlink_to("b")
    assert _triggers.digest(str(link)) != on_a, "the link's target is part of what it holds"
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    empty = _triggers.digest(str(conf_d))
    (conf_d / "10-x.conf").write_text("x")
    assert _triggers.digest(str(conf_d)) != empty


def test_changed_triggers_trusts_the_record_and_times_only_paths_it_does_not_know(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf, other = tmp_path / "app.conf", tmp_path / "other.conf"
    conf.write_text("v1")
    other.write_text("o")
    paths = [str(conf), str(other)]
    current = _triggers.digests(paths)
    status = {"ExecMainStartTimestampMonotonic": str(int((time.monotonic() + 3600) * 1e6))}  # began "later"
    assert _triggers.changed_triggers(paths, dict(current), current, status) == []
    old_record = {**current, str(conf): "sha256:old"}
    assert _triggers.changed_triggers(paths, old_record, current, status) == [str(conf)]
    # no record: the time comparison decides, once (the files are older than the activation here)
    assert _triggers.changed_triggers(paths, None, current, status) == []
    newer = {"ExecMainStartTimestampMonotonic": "1000000"}  # began at monotonic 1 s: long before the files
    assert _triggers.changed_triggers(paths, None, current, newer) == paths
    assert _triggers.changed_triggers(paths, {str(conf): current[str(conf)]}, current, newer) == [str(other)]


def test_trigger_records_round_trip_atomically(tmp_path: Path) -> None:
    records = _triggers.TriggerRecords(str(tmp_path / "var" / "lib" / "restart-triggers"))
    assert records.read("a.service.json") is None
    records.write("a.service.json", {"/etc/a.conf": "sha256:1"})
    assert records.read("a.service.json") == {"/etc/a.conf": "sha256:1"}
    assert sorted(os.listdir(tmp_path / "var" / "lib" / "restart-triggers")) == ["a.service.json"]
    records.remove("a.service.json")
    assert records.read("a.service.json") is None
    assert _triggers.TriggerRecords(None).read("a.service.json") is None


def test_a_pending_restart_is_due_until_the_unit_began_after_its_new_definition_was_loaded(tmp_path: Path) -> None:
    pending = PendingRestarts(str(tmp_path / "pending"))

    def began(seconds: float) -> dict[str, str]:
        return {"ExecMainStartTimestampMonotonic": str(int(seconds * 1e6))}
    assert pending.due("a.service", began(5)) is False, "no mark, nothing owed"
    pending.mark(["a.service"])
    assert pending.due("a.service", began(500)) is True, "never stamped: the reload may not have happened"
    pending.mark(["a.service"], loaded=100.0)
    assert pending.due("a.service", began(50)) is True, "its process is older than the new definition"
    assert pending.due("a.service", began(150)) is False, "restarted (by the run or by systemd) after the load"
    (tmp_path / "pending" / "a.service").write_text('{"loa')  # cut short by a kill
    assert pending.due("a.service", began(150)) is True
    pending.clear(["a.service"])
    assert pending.stamp_of("a.service") == (False, None)
    assert PendingRestarts(None).due("a.service", began(1)) is False
