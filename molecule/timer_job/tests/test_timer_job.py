# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.timer_job on a real systemd: what a person would check, checked by code."""

from __future__ import annotations

import datetime
import time

REPORT_RUNS = "/var/lib/unitcraft-report/runs.log"
TICK_RUNS = "/var/lib/unitcraft-tick/runs.log"


def show(host, unit: str, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {unit} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def runs(host, path: str) -> list[str]:
    found = host.file(path)
    return found.content_string.splitlines() if found.exists else []


def test_timers_are_listed_with_a_next_elapse_time(host) -> None:
    listing = host.check_output("systemctl list-timers --all --no-pager --no-legend")
    for name in ("unitcraft-report", "unitcraft-tick"):
        line = next((l for l in listing.splitlines() if f"{name}.timer" in l), None)
        assert line, listing
        assert f"{name}.service" in line
        assert not line.startswith("n/a"), line  # NEXT column
        # while the five-second timer is elapsing, its next elapse is briefly unset
        deadline = time.monotonic() + 3
        while True:
            props = show(host, f"{name}.timer", "NextElapseUSecRealtime", "ActiveState",
                         "UnitFileState")
            if props["NextElapseUSecRealtime"] not in ("", "0") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert props["NextElapseUSecRealtime"] not in ("", "0")
        assert props["ActiveState"] == "active"
        assert props["UnitFileState"] == "enabled"


def test_report_timer_is_as_configured(host) -> None:
    props = show(host, "unitcraft-report.timer", "TimersCalendar", "Persistent",
                 "RandomizedDelayUSec", "Unit")
    assert "OnCalendar=Mon..Fri *-*-* 04:30:00" in props["TimersCalendar"]
    assert props["Persistent"] == "yes"
    assert props["RandomizedDelayUSec"] == "10min"
    assert props["Unit"] == "unitcraft-report.service"


def local_now(host) -> datetime.datetime:
    """The container's local wall-clock time (OnCalendar= is in local time)."""
    text = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    return datetime.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")


def test_report_timer_next_elapse_is_the_next_weekday_at_0430_plus_its_delay(host) -> None:
    """The timer's own NextElapseUSecRealtime: Mon..Fri 04:30:00 plus at most 10 min."""
    now = local_now(host)
    # local time, as "Wed 2026-12-02 04:34:30 UTC"
    shown = show(host, "unitcraft-report.timer", "NextElapseUSecRealtime")["NextElapseUSecRealtime"]
    weekday, date, clock = shown.split()[:3]
    elapse = datetime.datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    assert weekday == f"{elapse:%a}", shown
    base = elapse.replace(hour=4, minute=30, second=0)
    assert elapse.isoweekday() <= 5, f"{shown} is not Mon..Fri"
    assert base <= elapse < base + datetime.timedelta(minutes=10), f"{shown} is not in 04:30..04:40"
    assert elapse > now, f"next elapse {shown} is not after now ({now})"
    # no weekday 04:30 between now and the one chosen: systemd skipped none
    day = now.replace(hour=4, minute=30, second=0)
    while day < base:
        assert not (day > now and day.isoweekday() <= 5), f"{day:%a %F %T} comes before {shown}"
        day += datetime.timedelta(days=1)


def test_job_service_is_a_oneshot_started_only_by_its_timer(host) -> None:
    props = show(host, "unitcraft-report.service", "Type", "User", "UnitFileState",
                 "SyslogIdentifier", "ExecStart")
    assert props["Type"] == "oneshot"
    assert props["User"] == "daemon"
    assert props["UnitFileState"] == "static"  # no [Install]: only the timer starts it
    assert props["SyslogIdentifier"] == "unitcraft-report"
    assert "/usr/local/bin/unitcraft-record-run report" in props["ExecStart"]


def test_starting_it_runs_the_job_once(host) -> None:
    before = runs(host, REPORT_RUNS)
    host.check_output("journalctl --sync")
    journal_before = host.check_output(
        "journalctl -b -q -o cat -u unitcraft-report.service").splitlines()
    host.check_output("systemctl start unitcraft-report.service")  # waits for a oneshot
    after = runs(host, REPORT_RUNS)
    assert len(after) == len(before) + 1
    assert after[-1].split()[1:] == ["daemon", "report"]
    props = show(host, "unitcraft-report.service", "Result", "ExecMainStatus", "ActiveState")
    assert props == {"Result": "success", "ExecMainStatus": "0", "ActiveState": "inactive"}
    host.check_output("journalctl --sync")
    journal_after = host.check_output(
        "journalctl -b -q -o cat -u unitcraft-report.service").splitlines()
    new = journal_after[len(journal_before):]
    assert sum(1 for line in new if line.startswith("Starting ")) == 1, new
    # no second run follows by itself
    time.sleep(1)
    assert len(runs(host, REPORT_RUNS)) == len(after)


def test_tick_timer_elapses_by_itself(host) -> None:
    before = len(runs(host, TICK_RUNS))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(runs(host, TICK_RUNS)) <= before:
        time.sleep(0.5)
    lines = runs(host, TICK_RUNS)
    assert len(lines) > before, "the five-second timer did not run its job within 15 s"
    assert lines[-1].split()[1:] == ["root", "tick"]
    props = show(host, "unitcraft-tick.timer", "LastTriggerUSec", "AccuracyUSec")
    assert props["LastTriggerUSec"] not in ("", "0", "n/a")
    assert props["AccuracyUSec"] == "1s"
