# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.ntp_force_sync on a systemd-timesyncd host, across real reboots of the container.

Debian 13 with systemd-timesyncd and an SNTP server on 127.0.0.1:123 (prepare.yml). The
role's ntp-force-sync.service runs systemd-time-wait-sync after systemd-timesyncd and
before time-sync.target; unitcraft-test-after-sync.service is ordered After=time-sync.target.
The reboot tests run in file order; the last one switches the time source off and back on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the helpers shared with the ntp_force_sync scenario
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ntp_force_sync" / "tests"))
from ntp_boot import boot_start, reboot as reboot_container, show  # noqa: E402

UNIT = "ntp-force-sync.service"
TIMESYNCD = "systemd-timesyncd.service"
SOURCE = "unitcraft-test-timesource.service"
AFTER_SYNC = "unitcraft-test-after-sync.service"
DROPIN = "/etc/systemd/timesyncd.conf.d/ntp-force-sync.conf"
TIMEOUT = 10  # ntp_force_sync_timeout in molecule.yml


def reboot(host) -> int:
    """Reboot the container; the monotonic time at which this boot's userspace began."""
    reboot_container(host)
    return boot_start(host)


def journal(host, unit: str) -> list[tuple[int, str]]:
    """(monotonic microseconds, message) of a unit's journal lines in this boot."""
    host.check_output("journalctl --sync")
    out = host.check_output(f"journalctl -b -q -o json -u {unit} --output-fields=MESSAGE")
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [(int(entry["__MONOTONIC_TIMESTAMP"]), str(entry.get("MESSAGE", ""))) for entry in lines]


def first(lines: list[tuple[int, str]], text: str) -> int:
    """When the first line containing text was logged (monotonic microseconds)."""
    times = [stamp for stamp, message in lines if text in message]
    assert times, f"no line with {text!r} in {lines}"
    return times[0]


def test_unit_waits_for_timesyncd_with_the_timeout(host) -> None:
    props = show(host, UNIT, "FragmentPath", "UnitFileState", "Type", "RemainAfterExit", "TimeoutStartUSec",
                 "ExecStart", "After", "Before", "Wants", "WantedBy", "DefaultDependencies")
    assert props["FragmentPath"] == f"/etc/systemd/system/{UNIT}"
    assert props["UnitFileState"] == "enabled"
    assert (props["Type"], props["RemainAfterExit"]) == ("oneshot", "yes")
    assert props["TimeoutStartUSec"] == f"{TIMEOUT}s"
    assert "argv[]=/usr/lib/systemd/systemd-time-wait-sync ;" in props["ExecStart"]
    assert TIMESYNCD in props["After"].split()
    assert "time-sync.target" in props["Before"].split()
    assert "time-sync.target" in props["Wants"].split()
    assert "sysinit.target" in props["WantedBy"].split()
    assert host.file(f"/etc/systemd/system/sysinit.target.wants/{UNIT}").is_symlink


def test_servers_are_in_a_timesyncd_dropin_that_timesyncd_uses(host) -> None:
    dropin = host.file(DROPIN)
    assert dropin.user == "root" and dropin.mode == 0o644
    assert dropin.content_string.splitlines()[1:] == ["[Time]", "NTP=127.0.0.1"]
    # timesyncd was restarted on the drop-in during converge: it asks that server now
    status = host.check_output("timedatectl show-timesync -p ServerName -p SystemNTPServers")
    assert "SystemNTPServers=127.0.0.1" in status.splitlines(), status


def test_after_a_reboot_the_wait_ended_after_a_real_sync_and_before_after_sync_units(host) -> None:
    booted = reboot(host)
    wait = show(host, UNIT, "ActiveState", "Result", "ExecMainStatus", "InactiveExitTimestampMonotonic",
                "ExecMainExitTimestampMonotonic", "ActiveEnterTimestampMonotonic")
    after = show(host, AFTER_SYNC, "ActiveState", "InactiveExitTimestampMonotonic")
    assert (wait["ActiveState"], wait["Result"], wait["ExecMainStatus"]) == ("active", "success", "0"), wait
    assert after["ActiveState"] == "active", after
    # the SNTP source answered (its own CLOCK_MONOTONIC stamp: journald stamps a line when it
    # reads it, which may be later), and timesyncd synchronised with it, in this boot
    answers = [int(message.split(" at monotonic ")[1].split()[0])
               for _, message in journal(host, SOURCE) if message.startswith("answered 127.0.0.1:")]
    assert answers, journal(host, SOURCE)
    timesyncd = journal(host, TIMESYNCD)
    assert booted < first(timesyncd, "Contacted time server 127.0.0.1:123") <= first(
        timesyncd, "Initial clock synchronization"), timesyncd
    assert host.file("/run/systemd/timesync/synchronized").exists
    wait_started = int(wait["InactiveExitTimestampMonotonic"])
    wait_done = int(wait["ActiveEnterTimestampMonotonic"])
    after_started = int(after["InactiveExitTimestampMonotonic"])
    # in this boot: a real exchange, then the end of the wait, then the unit After=time-sync.target
    assert booted < answers[0] <= wait_done <= after_started, (booted, answers, wait_done, after_started)
    assert booted < wait_started <= wait_done, wait


def test_without_the_source_the_wait_times_out_and_the_boot_goes_on(host) -> None:
    host.check_output(f"systemctl disable -q {SOURCE}")
    try:
        booted = reboot(host)
        wait = show(host, UNIT, "ActiveState", "Result", "InactiveExitTimestampMonotonic",
                    "InactiveEnterTimestampMonotonic")
        after = show(host, AFTER_SYNC, "ActiveState", "InactiveExitTimestampMonotonic")
        assert (wait["ActiveState"], wait["Result"]) == ("failed", "timeout"), wait
        assert after["ActiveState"] == "active", after
        started, gave_up = int(wait["InactiveExitTimestampMonotonic"]), int(wait["InactiveEnterTimestampMonotonic"])
        # it waited the whole timeout (no sync without a source), not much more, and the
        # unit ordered after time-sync.target waited for it. systemd arms the timeout when it
        # spawns the program and stamps InactiveExit a moment later, so the stamps can be a
        # few milliseconds short of the timeout (seen: 9.995 s for 10 s).
        assert (TIMEOUT - 0.1) * 1_000_000 <= gave_up - started <= (TIMEOUT + 2) * 1_000_000, wait
        assert booted < gave_up <= int(after["InactiveExitTimestampMonotonic"])
        assert not any("Initial clock synchronization" in message for _, message in journal(host, TIMESYNCD))
    finally:
        host.run(f"systemctl enable -q --now {SOURCE}")
    assert show(host, SOURCE, "ActiveState")["ActiveState"] == "active"
