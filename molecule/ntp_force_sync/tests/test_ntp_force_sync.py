# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.ntp_force_sync on a real systemd, across real reboots of the container.

Debian 12 runs chrony (chronyd -Q against a chronyd on 127.0.0.1:11123), Debian 13 runs
ntpsec (ntpdig against an SNTP server on 127.0.0.2:123); neither sets the clock. The
reboot tests run in file order; the last one breaks the time source on purpose and
restores it.
"""

from __future__ import annotations

from ntp_boot import boot_start, reboot, show

UNIT = "ntp-force-sync.service"
SOURCE = "unitcraft-test-timesource.service"
TIMEOUT = 10  # ntp_force_sync_timeout in molecule.yml


def flavour(host) -> str:
    return "chrony" if host.file("/usr/sbin/chronyd").exists else "ntpsec"


def daemon_unit(host) -> str:
    return "chrony.service" if flavour(host) == "chrony" else "ntpsec.service"


def test_unit_is_installed_and_enabled(host) -> None:
    props = show(host, UNIT, "FragmentPath", "UnitFileState", "Type", "RemainAfterExit",
                 "TimeoutStartUSec", "WantedBy")
    assert props["FragmentPath"] == f"/etc/systemd/system/{UNIT}"
    assert props["UnitFileState"] == "enabled"
    assert props["Type"] == "oneshot"
    assert props["RemainAfterExit"] == "yes"
    assert props["TimeoutStartUSec"] == f"{TIMEOUT}s"
    assert host.file(f"/etc/systemd/system/multi-user.target.wants/{UNIT}").is_symlink


def test_ordered_after_the_network_and_before_the_daemon(host) -> None:
    props = show(host, UNIT, "Before", "After", "Wants")
    assert daemon_unit(host) in props["Before"].split()
    assert {"network.target", "network-online.target"} <= set(props["After"].split())
    assert "network-online.target" in props["Wants"].split()
    # the same ordering, seen from the daemon's side
    before_daemon = host.check_output(
        f"systemctl list-dependencies --after --plain --no-pager {daemon_unit(host)}")
    assert UNIT in before_daemon.split()
    after_sync = host.check_output(
        f"systemctl list-dependencies --before --plain --no-pager {UNIT}")
    assert daemon_unit(host) in after_sync.split()


def test_daemon_only_wants_it_never_requires_it(host) -> None:
    props = show(host, daemon_unit(host), "Requires", "Requisite", "BindsTo", "PartOf")
    for prop, value in props.items():
        assert UNIT not in value.split(), f"{daemon_unit(host)} {prop}={value}"
    assert show(host, UNIT, "RequiredBy")["RequiredBy"] == ""


def test_query_never_sets_the_clock(host) -> None:
    exec_start = show(host, UNIT, "ExecStart")["ExecStart"]
    if flavour(host) == "chrony":
        assert "/usr/sbin/chronyd" in exec_start and " -Q " in exec_start
        assert " -q " not in exec_start
    else:
        assert "/usr/bin/ntpdig" in exec_start
        assert " -S" not in exec_start and " -s" not in exec_start


def test_after_a_reboot_it_finished_before_the_daemon_started(host) -> None:
    reboot(host)
    booted = boot_start(host)
    sync = show(host, UNIT, "ActiveState", "Result", "ExecMainStatus",
                "ExecMainStartTimestampMonotonic", "ExecMainExitTimestampMonotonic",
                "ActiveEnterTimestampMonotonic")
    daemon = show(host, daemon_unit(host), "ActiveState", "SubState",
                  "InactiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic")
    assert (sync["ActiveState"], sync["Result"], sync["ExecMainStatus"]) == ("active", "success", "0")
    assert daemon["ActiveState"] == "active", daemon
    sync_started = int(sync["ExecMainStartTimestampMonotonic"])
    sync_done = int(sync["ExecMainExitTimestampMonotonic"])
    daemon_started = int(daemon["InactiveExitTimestampMonotonic"])
    # all three in this boot, and the force-sync had exited when the daemon began to start
    assert booted < sync_started <= sync_done <= daemon_started, (booted, sync, daemon)
    assert int(sync["ActiveEnterTimestampMonotonic"]) <= daemon_started


def test_a_real_ntp_exchange_happened_at_boot(host) -> None:
    host.check_output("journalctl --sync")
    journal = host.check_output(f"journalctl -b -q -o cat -u {UNIT}")
    if flavour(host) == "chrony":
        # chronyd -Q got its samples from the loopback source and left the clock alone, within
        # the 10 s timeout, from a server line given without iburst (the role added it)
        assert "System clock wrong by" in journal and "(ignored)" in journal, journal
        assert "server 127.0.0.1 port 11123 iburst" in show(host, UNIT, "ExecStart")["ExecStart"]
        assert show(host, UNIT, "Result")["Result"] == "success"
    else:
        # ntpdig's report: offset, error, the source, its stratum
        assert " 127.0.0.2 s8 " in journal, journal
        source = host.check_output(f"journalctl -b -q -o cat -u {SOURCE}")
        assert "answered 127.0.0.1:" in source, source


def test_boot_goes_on_and_the_daemon_starts_when_the_sync_fails(host) -> None:
    host.check_output(f"systemctl disable -q {SOURCE}")
    try:
        reboot(host)
        sync = show(host, UNIT, "ActiveState", "Result", "ExecMainExitTimestampMonotonic",
                    "InactiveExitTimestampMonotonic")
        daemon = show(host, daemon_unit(host), "ActiveState", "InactiveExitTimestampMonotonic")
        assert sync["ActiveState"] == "failed", sync
        assert sync["Result"] in ("exit-code", "timeout"), sync
        assert daemon["ActiveState"] == "active", daemon
        started = int(sync["InactiveExitTimestampMonotonic"])
        gave_up = int(sync["ExecMainExitTimestampMonotonic"])
        # within the timeout (plus a little), and the daemon still waited for it
        assert gave_up - started <= (TIMEOUT + 2) * 1_000_000, sync
        assert gave_up <= int(daemon["InactiveExitTimestampMonotonic"])
        assert host.check_output("systemctl is-system-running || true").strip() in (
            "degraded", "running")
    finally:
        host.run(f"systemctl enable -q --now {SOURCE}")
    assert show(host, SOURCE, "ActiveState")["ActiveState"] == "active"
