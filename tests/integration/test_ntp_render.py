# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ntp_force_sync role's default path (ntp_force_sync_set_clock: true), rendered and verified.

Stepping the clock needs CAP_SYS_TIME, which the bench containers rightly lack, so the
unit is never started here. What can be proven without it is proven for each daemon the
role supports (chrony, ntpsec, ntp, timesyncd) on both images: the role renders the unit
(for ntpd with the server lines in the unit, read by `ntpd -c /dev/stdin`; for timesyncd
with a timesyncd.conf.d drop-in); the unit passes `systemd-analyze verify` (the module's
strict validation and a run of our own); its command line is the expected one, as systemd
loaded it. Where the chosen daemon is not installed in the image, a stand-in program at
its path lets verify find an executable; it never runs, and is removed afterwards. The
timesyncd flavour is proven at boot by the molecule scenario ntp_timesyncd.

One query-only path runs here, at boot: ntp_force_sync_set_clock: false without servers on
ntpd, where the unit itself reads the hosts of ntp.conf (ntpdig and sntp read no
configuration). Querying sets no clock, so after a reboot the unit really runs: on debian13
ntpsec's ntpdig asks an SNTP source on loopback; on debian12 (chrony) the ntp flavour's
sntp is a stand-in that logs the hosts it is given.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from conftest import REPO_ROOT, BenchHost, journal_cursor, manager_messages

UNIT = "ntp-force-sync.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
# The server list that earlier versions of the role wrote for ntpd: never written now.
LEGACY_SERVER_LIST = "/etc/ntp-force-sync.conf"
TIMESYNCD_DROPIN = "/etc/systemd/timesyncd.conf.d/ntp-force-sync.conf"
STAND_IN = "#!/bin/sh\n# unitcraft test stand-in: never runs in the tests, never sets the clock\nexit 0\n"
# the role's default timeout (30 s); chronyd gets -t two seconds under it
TIMEOUT = 30


@dataclasses.dataclass(frozen=True)
class Daemon:
    name: str
    program: str
    unit: str
    documentation: str


DAEMONS = {
    "chrony": Daemon("chrony", "/usr/sbin/chronyd", "chrony.service", "man:chronyd(8)"),
    "ntpsec": Daemon("ntpsec", "/usr/sbin/ntpd", "ntpsec.service", "man:ntpd(8)"),
    "ntp": Daemon("ntp", "/usr/sbin/ntpd", "ntp.service", "man:ntpd(8)"),
    "timesyncd": Daemon("timesyncd", "/usr/lib/systemd/systemd-time-wait-sync", "systemd-timesyncd.service",
                        "man:systemd-time-wait-sync.service(8)"),
}

SERVERS = ["127.0.0.1 iburst", "pool 2.debian.pool.ntp.org iburst"]
CHRONY_SERVERS = ["127.0.0.1 port 11123 iburst", "pool 2.debian.pool.ntp.org iburst"]


def test_state_absent_removes_the_server_list_of_earlier_versions(bench_host: BenchHost) -> None:
    host = bench_host
    host.exec("sh", "-c", f"echo 'server 127.0.0.1' > {LEGACY_SERVER_LIST}")
    try:
        result = host.play([role_task(ntp_force_sync_state="absent")])
        assert host.read_file(LEGACY_SERVER_LIST) is None
        assert any(r.get("changed") for r in result.results), "the removal was not reported"
    finally:
        host.exec("rm", "-f", LEGACY_SERVER_LIST)


def expected_exec_start(daemon: Daemon, servers: list[str]) -> str:
    """The command line the role documents for ntp_force_sync_set_clock: true."""
    if daemon.name == "chrony":
        lines = [server_line(line) for line in servers]
        return " ".join([daemon.program, "-q", "-t", str(TIMEOUT - 2), *(f"'{line}'" for line in lines)])
    if daemon.name == "timesyncd":
        return daemon.program
    return f"{daemon.program} -qg -c /dev/stdin" if servers else f"{daemon.program} -qg"


def server_line(line: str) -> str:
    return line if line.split()[0] in ("server", "pool", "peer") else f"server {line}"


def expected_unit(daemon: Daemon, servers: list[str]) -> str:
    if daemon.name == "timesyncd":
        return (
            "[Unit]\n"
            f"Description=Wait until {daemon.unit} has synchronised the clock\n"
            f"Documentation={daemon.documentation}\n"
            "ConditionCapability=CAP_SYS_TIME\n"
            "ConditionVirtualization=!container\n"
            "DefaultDependencies=no\n"
            f"After={daemon.unit}\n"
            "Before=time-sync.target shutdown.target\n"
            "Wants=time-sync.target\n"
            "Conflicts=shutdown.target\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            "RemainAfterExit=yes\n"
            f"ExecStart={daemon.program}\n"
            f"TimeoutStartSec={TIMEOUT}\n"
            "\n"
            "[Install]\n"
            "WantedBy=sysinit.target\n"
        )
    # ntpd reads the server lines from the unit (StandardInputText=), no file
    stdin = ("StandardInput=data\n" + "".join(f"StandardInputText={server_line(line)}\n" for line in servers)
             if daemon.name != "chrony" and servers else "")
    return (
        "[Unit]\n"
        f"Description=Step the clock once before {daemon.unit} starts\n"
        f"Documentation={daemon.documentation}\n"
        "Wants=network-online.target\n"
        "After=network.target network-online.target\n"
        f"Before={daemon.unit} time-sync.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"{stdin}"
        f"ExecStart={expected_exec_start(daemon, servers)}\n"
        f"TimeoutStartSec={TIMEOUT}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def role_task(**role_vars: Any) -> dict[str, Any]:
    return {"name": "ntp_force_sync", "ansible.builtin.include_role": {"name": "unitcraft.systemd.ntp_force_sync"},
            "vars": role_vars}


@pytest.mark.parametrize("with_servers", [True, False], ids=["servers", "daemon-config"])
@pytest.mark.parametrize("daemon_name", list(DAEMONS))
def test_set_clock_unit_is_rendered_and_verified(bench_host: BenchHost, daemon_name: str, with_servers: bool) -> None:
    host = bench_host
    daemon = DAEMONS[daemon_name]
    servers = (CHRONY_SERVERS if daemon.name == "chrony" else SERVERS) if with_servers else []
    stand_in = host.exec("test", "-e", daemon.program, check=False).returncode != 0
    if stand_in:
        host.exec("sh", "-c", f"cat > {daemon.program} && chmod 0755 {daemon.program}", input=STAND_IN)
    cursor = journal_cursor(host)
    try:
        # ntp_force_sync_set_clock is left at its default: the path users get
        result = host.play([role_task(ntp_force_sync_daemon=daemon.name, ntp_force_sync_servers=servers,
                                      ntp_force_sync_validate="strict")])
        # the unit module's task, and what it did for the unit
        (installed,) = [unit for r in result.results for unit in r.get("units", []) if unit.get("path") == UNIT_PATH]
        assert installed["changed"] is True and installed["file_changed"] is True, installed
        assert installed["unit_file_state"] == "enabled", installed

        text = host.read_file(UNIT_PATH)
        assert text == expected_unit(daemon, servers)
        assert host.read_file(LEGACY_SERVER_LIST) is None
        if daemon.name == "timesyncd" and servers:
            hosts = " ".join(server_line(line).split()[1] for line in servers)
            assert host.read_file(TIMESYNCD_DROPIN) == (
                "# Managed by unitcraft.systemd.ntp_force_sync: the servers systemd-timesyncd asks.\n"
                f"[Time]\nNTP={hosts}\n"
            )
        else:
            assert host.read_file(TIMESYNCD_DROPIN) is None

        # systemd-analyze verify, run here as well as by the module (validate: strict)
        verify = host.exec("systemd-analyze", "verify", "--man=no", UNIT_PATH, check=False)
        assert verify.returncode == 0 and UNIT not in verify.stdout + verify.stderr, verify.stdout + verify.stderr

        # what systemd loaded: the command line, its ordering, enabled and never started
        shown = host.systemctl_show(UNIT, "ExecStart", "Before", "TimeoutStartUSec", "Type", "UnitFileState",
                                    "ActiveState", "InvocationID")
        argv = shown["ExecStart"].split("argv[]=", 1)[1].split(" ; ", 1)[0]
        assert argv == expected_exec_start(daemon, servers).replace("'", "")
        # Before= names the daemon's unit, or the unit it is an alias of (ntpsec: ntp.service);
        # the wait for timesyncd's sync comes after timesyncd
        daemon_unit = host.systemctl_show(daemon.unit, "Id")["Id"]
        assert "time-sync.target" in shown["Before"].split()
        if daemon.name == "timesyncd":
            assert daemon_unit in host.systemctl_show(UNIT, "After")["After"].split()
        else:
            assert daemon_unit in shown["Before"].split()
        assert (shown["Type"], shown["TimeoutStartUSec"], shown["UnitFileState"]) == ("oneshot", "30s", "enabled")
        assert (shown["ActiveState"], shown["InvocationID"]) == ("inactive", ""), "the role started the unit"
        assert not any(line.startswith("Starting") for line in manager_messages(host, UNIT, cursor))

        if with_servers:  # the timesyncd drop-in too is left alone by a second run
            again = host.play([role_task(ntp_force_sync_daemon=daemon.name, ntp_force_sync_servers=servers,
                                         ntp_force_sync_validate="strict")])
            assert not any(r.get("changed") for r in again.results), "the second run changed something"
    finally:
        host.play([role_task(ntp_force_sync_daemon=daemon.name, ntp_force_sync_servers=servers,
                             ntp_force_sync_state="absent")])
        if stand_in:
            host.exec("rm", "-f", daemon.program)
    assert host.read_file(UNIT_PATH) is None and host.read_file(TIMESYNCD_DROPIN) is None
    assert host.exec("test", "-e", f"/etc/systemd/system/multi-user.target.wants/{UNIT}", check=False).returncode != 0


# --- ntp_force_sync_set_clock: false without servers on ntpd, at boot -----------------------

# The SNTP source of the molecule scenario: answers on a loopback address, logs every answer.
SNTP_SERVER = REPO_ROOT / "molecule" / "ntp_force_sync" / "files" / "sntp_server.py"
TIME_SOURCE = "unitcraft-test-timesource.service"
TIME_SOURCE_PROGRAM = "/usr/local/bin/unitcraft-sntp-server"
# What the unit must make of ntp.conf: the host of each server and pool line (after an
# option such as -4), not a comment, not a reference clock of classic ntpd (127.127.t.u).
NTP_CONF_WITH_HOSTS = (
    "# unitcraft test: written after the play, read by the unit at boot\n"
    "# server 127.0.0.9 iburst\n"
    "  server -4 127.0.0.2 iburst\n"
    "server 127.127.1.0\n"
    "pool 127.0.0.3 iburst\n"
)
HOSTS_IN_NTP_CONF = "127.0.0.2 127.0.0.3"
NTP_CONF_WITHOUT_HOSTS = "# unitcraft test: no server or pool line\n# server 127.0.0.2 iburst\ndriftfile /dev/null\n"
# debian12 (chrony) holds no ntpd: the classic ntp flavour, with stand-ins for its programs
SNTP_STAND_IN = (
    "#!/bin/sh\n"
    "# unitcraft test stand-in for sntp: logs the hosts it is given, asks none\n"
    'echo "sntp stand-in asked: $*"\n'
)


@dataclasses.dataclass(frozen=True)
class QueryFlavour:
    daemon: str
    config: str
    tool: str
    stand_ins: dict[str, str]


# Per image, the ntpd it can hold: on debian13 ntpsec's ntpdig really asks a loopback SNTP
# source; on debian12 classic ntp's sntp is a stand-in that logs the hosts it gets.
QUERY_FLAVOURS = {
    "debian12": QueryFlavour("ntp", "/etc/ntp.conf", "/usr/bin/sntp",
                             {"/usr/sbin/ntpd": STAND_IN, "/usr/bin/sntp": SNTP_STAND_IN}),
    "debian13": QueryFlavour("ntpsec", "/etc/ntpsec/ntp.conf", "/usr/bin/ntpdig", {}),
}


def unit_output(host: BenchHost, unit: str) -> list[str]:
    """What the unit's processes logged since its main process last started (this boot's run).

    By the unit name that systemd gives the stdout stream, not the invocation id: journald
    finds that one in the cgroup, which is gone when the process has ended quickly. The
    lines of a process that has just ended may still be on their way: wait up to 10 s.
    """
    started = int(host.systemctl_show(unit, "ExecMainStartTimestampMonotonic")["ExecMainStartTimestampMonotonic"])
    assert started > 0, f"{unit} has not run in this boot"
    lines: list[str] = []
    for _attempt in range(20):
        host.exec("journalctl", "--sync")
        out = host.exec("journalctl", "-q", "-o", "json", "--output-fields=MESSAGE,_PID",
                        f"_SYSTEMD_UNIT={unit}").stdout
        entries = [json.loads(line) for line in out.splitlines()]
        lines = [entry["MESSAGE"] for entry in entries if entry.get("_PID") != "1"
                 and int(entry["__MONOTONIC_TIMESTAMP"]) >= started and isinstance(entry.get("MESSAGE"), str)]
        if lines:
            break
        time.sleep(0.5)
    return lines


def test_query_without_servers_asks_the_hosts_of_ntp_conf_at_boot_and_fails_clearly_without_one(
        bench_host: BenchHost) -> None:
    host = bench_host
    flavour = QUERY_FLAVOURS[host.flavour]
    role = role_task(ntp_force_sync_daemon=flavour.daemon, ntp_force_sync_set_clock=False,
                     ntp_force_sync_timeout=20, ntp_force_sync_validate="strict")
    config_before = host.read_file(flavour.config)
    made = [path for path in flavour.stand_ins if host.exec("test", "-e", path, check=False).returncode != 0]
    try:
        for path in made:
            host.exec("sh", "-c", f"cat > {path} && chmod 0755 {path}", input=flavour.stand_ins[path])
        if not flavour.stand_ins:
            host.exec("sh", "-c", f"cat > {TIME_SOURCE_PROGRAM} && chmod 0755 {TIME_SOURCE_PROGRAM}",
                      input=SNTP_SERVER.read_text())
            host.play([{"unitcraft.systemd.unit": {
                "name": TIME_SOURCE, "enabled": True, "active": True,
                "sections": {"Unit": {"Description": "unitcraft test time source on loopback",
                                      "Before": UNIT},
                             "Service": {"Type": "notify", "ExecStart": f"/usr/bin/python3 {TIME_SOURCE_PROGRAM} "
                                                                       "--address 127.0.0.2 --port 123"},
                             "Install": {"WantedBy": "multi-user.target"}}}}])
        # the play sees no host to ask: the unit reads ntp.conf when it runs, not the role now
        host.exec("sh", "-c", f"cat > {flavour.config}", input=NTP_CONF_WITHOUT_HOSTS)
        host.play([role])
        host.exec("sh", "-c", f"cat > {flavour.config}", input=NTP_CONF_WITH_HOSTS)

        host.reboot()
        shown = host.systemctl_show(UNIT, "ActiveState", "Result", "ExecMainStatus")
        output = unit_output(host, UNIT)
        assert shown == {"ActiveState": "active", "Result": "success", "ExecMainStatus": "0"}, (shown, output)
        if flavour.stand_ins:
            assert output == [f"sntp stand-in asked: {HOSTS_IN_NTP_CONF}"], output
        else:
            # ntpdig's report of the answering source, and the source's log of that answer
            assert any(" 127.0.0.2 s8 " in line for line in output), output
            assert any(line.startswith("answered 127.0.0.1:") for line in unit_output(host, TIME_SOURCE))

        # without a server or pool line: the unit fails, saying why, and runs no query
        host.exec("sh", "-c", f"cat > {flavour.config}", input=NTP_CONF_WITHOUT_HOSTS)
        host.reboot()
        shown = host.systemctl_show(UNIT, "ActiveState", "Result", "ExecMainStatus")
        output = unit_output(host, UNIT)
        assert shown == {"ActiveState": "failed", "Result": "exit-code", "ExecMainStatus": "1"}, (shown, output)
        assert output == [f"ntp-force-sync: no server or pool host in {flavour.config} for {flavour.tool} to "
                          "query; add a server or pool line there, or set ntp_force_sync_servers"], output
    finally:
        host.play([{**role, "vars": {**role["vars"], "ntp_force_sync_state": "absent"}}])
        if not flavour.stand_ins:
            host.play([{"unitcraft.systemd.unit": {"name": TIME_SOURCE, "state": "absent"}}])
            host.exec("rm", "-f", TIME_SOURCE_PROGRAM)
        if config_before is None:
            host.exec("rm", "-f", flavour.config)
        else:
            host.exec("sh", "-c", f"cat > {flavour.config}", input=config_before)
        if made:
            host.exec("rm", "-f", *made)
        host.exec("systemctl", "reset-failed", check=False)
