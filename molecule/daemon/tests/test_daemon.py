# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.daemon on a real systemd: what a person would check, checked by code.

The crash tests kill the program and the start-limit test drives the service into
`failed` on purpose, then brings it back; they run in file order.
"""

from __future__ import annotations

import re
import time

UNIT = "unitcraft-appender.service"
LINES = "/var/lib/unitcraft-appender/lines.log"
RESTART_SEC = 1
START_LIMIT_BURST = 5
MARGIN = 5.0


def show(host, unit: str, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {unit} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def lines_of(host) -> list[str]:
    return host.file(LINES).content_string.splitlines()


def journal_after_start_of(host, pid: int) -> str:
    """The unit's journal of this boot from the program's first line as process `pid` on."""
    host.check_output("journalctl --sync")
    lines = host.check_output(f"journalctl -b -q -o cat -u {UNIT}").splitlines()
    marker = f" as pid {pid},"
    starts = [i for i, line in enumerate(lines) if marker in line]
    assert starts, f"no line of the program as pid {pid} in the journal"
    return "\n".join(lines[starts[-1]:])


def running_main_pid(host) -> int:
    state = show(host, UNIT, "ActiveState", "SubState", "MainPID")
    if (state["ActiveState"], state["SubState"]) == ("active", "running"):
        return int(state["MainPID"])
    return 0


def test_unit_is_enabled_running_and_as_configured(host) -> None:
    props = show(host, UNIT, "UnitFileState", "ActiveState", "SubState", "Type", "User",
                 "Group", "Restart", "RestartUSec", "StartLimitBurst",
                 "StartLimitIntervalUSec", "Wants", "After", "StateDirectory",
                 "SyslogIdentifier", "FragmentPath")
    assert props["FragmentPath"] == f"/etc/systemd/system/{UNIT}"
    assert props["UnitFileState"] == "enabled"
    assert (props["ActiveState"], props["SubState"]) == ("active", "running")
    assert props["Type"] == "exec"
    assert props["User"] == props["Group"] == "unitcraft-appender"
    assert props["Restart"] == "always"
    assert props["RestartUSec"] == f"{RESTART_SEC}s"
    assert props["StartLimitBurst"] == str(START_LIMIT_BURST)
    assert props["StartLimitIntervalUSec"] == "1min"
    assert "network-online.target" in props["Wants"].split()
    assert "network-online.target" in props["After"].split()
    assert props["StateDirectory"] == "unitcraft-appender"
    assert props["SyslogIdentifier"] == "unitcraft-appender"


def test_system_account_was_created(host) -> None:
    user = host.user("unitcraft-appender")
    assert user.exists
    assert user.uid < 1000
    assert user.group == "unitcraft-appender"
    assert user.shell == "/usr/sbin/nologin"


def test_program_writes_its_lines_with_the_restrictions_the_container_applies(host) -> None:
    """The program works under the strict preset as far as this container can apply it.

    Applied here and checked on the running process: its own user, no capabilities,
    no_new_privs, a seccomp filter. Not applied here: the mount namespace (ProtectSystem=,
    ProtectHome=, PrivateDevices=) needs CAP_SYS_ADMIN, which the bench containers lack;
    those are checked as loaded settings in test_strict_preset_settings_are_loaded.
    """
    before = len(lines_of(host))
    time.sleep(1.6)
    after = lines_of(host)
    assert len(after) >= before + 2
    pid, tag = after[-1].split()[0::2]
    assert int(pid) == running_main_pid(host)
    assert tag in {"converge", "side-effect"}  # $APPENDER_TAG from daemon_environment
    state_dir = host.file("/var/lib/unitcraft-appender")
    assert state_dir.user == "unitcraft-appender"
    status = dict(line.split(":\t", 1) for line in host.file(f"/proc/{pid}/status").content_string.splitlines()
                  if ":\t" in line)
    assert status["Uid"].split()[0] == str(host.user("unitcraft-appender").uid)
    assert status["CapEff"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # SystemCallArchitectures=, MemoryDenyWriteExecute=, ...


def test_strict_preset_exposure_is_at_most_2(host) -> None:
    out = host.check_output(f"systemd-analyze security --no-pager {UNIT}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out[-500:]
    assert float(match.group(1)) <= 2.0, out


def test_strict_preset_settings_are_loaded(host) -> None:
    # The bench containers lack CAP_SYS_ADMIN, so systemd skips the mount namespace there
    # (the service still sees / read-write); these are the settings systemd loaded and
    # that `systemd-analyze security` scored, and that apply on a real host.
    props = show(host, UNIT, "ProtectSystem", "ProtectHome", "NoNewPrivileges",
                 "CapabilityBoundingSet", "PrivateDevices", "RestrictAddressFamilies",
                 "SystemCallArchitectures", "MemoryDenyWriteExecute", "UMask")
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["NoNewPrivileges"] == "yes"
    assert props["CapabilityBoundingSet"] == ""
    assert props["PrivateDevices"] == "yes"
    assert sorted(props["RestrictAddressFamilies"].split()) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert props["SystemCallArchitectures"] == "native"
    assert props["MemoryDenyWriteExecute"] == "yes"
    assert props["UMask"] == "0077"


def test_kill_9_restarts_it_within_restart_sec_and_loses_nothing(host) -> None:
    pid = running_main_pid(host)
    assert pid
    restarts = int(show(host, UNIT, "NRestarts")["NRestarts"])
    killed_at = time.monotonic()
    host.check_output(f"kill -9 {pid}")
    # what was on disk when the program died
    written_before = lines_of(host)

    new_pid = wait_for(lambda: (p := running_main_pid(host)) != pid and p, RESTART_SEC + MARGIN)
    elapsed = time.monotonic() - killed_at
    assert new_pid and new_pid != pid, f"not running again after {elapsed:.1f}s"
    assert elapsed <= RESTART_SEC + MARGIN
    assert int(show(host, UNIT, "NRestarts")["NRestarts"]) == restarts + 1

    # as in the seed's log: killed, failed with result 'signal', restart scheduled, started
    journal = journal_after_start_of(host, pid)
    assert "Main process exited, code=killed, status=9/KILL" in journal
    assert "Failed with result 'signal'" in journal
    assert re.search(r"Scheduled restart job, restart counter is at \d+", journal), journal
    assert re.search(r"^Started .*unitcraft appender", journal, re.M), journal

    # nothing lost: every line written before the crash is still there, new ones follow
    assert wait_for(lambda: any(l.startswith(f"{new_pid} ") for l in lines_of(host)), 3.0)
    after = lines_of(host)
    assert after[: len(written_before)] == written_before
    assert any(line.startswith(f"{pid} ") for line in after)
    assert after[-1].startswith(f"{new_pid} ")


def test_crashing_faster_than_the_start_limit_ends_in_failed(host) -> None:
    host.check_output(f"systemctl reset-failed {UNIT}")
    first_pid = wait_for(lambda: running_main_pid(host), RESTART_SEC + MARGIN)
    kills = 0
    try:
        while kills <= START_LIMIT_BURST + 1:
            pid = wait_for(lambda: running_main_pid(host), RESTART_SEC + MARGIN)
            if not pid:
                break
            host.check_output(f"kill -9 {pid}")
            kills += 1
            time.sleep(0.2)
        state = wait_for(
            lambda: show(host, UNIT, "ActiveState")["ActiveState"] == "failed",
            RESTART_SEC + MARGIN,
        )
        assert state, show(host, UNIT, "ActiveState", "SubState", "Result")
        # the limit counts starts: the one before the kills plus BURST restarts at most
        assert kills <= START_LIMIT_BURST + 1
        journal = journal_after_start_of(host, first_pid)
        assert "Start request repeated too quickly" in journal
        assert show(host, UNIT, "Restart")["Restart"] == "always"
    finally:
        host.run(f"systemctl reset-failed {UNIT}")
        host.run(f"systemctl start {UNIT}")
    assert wait_for(lambda: running_main_pid(host), MARGIN)


def test_basic_preset_service_runs_as_root_without_network_wait(host) -> None:
    props = show(host, "unitcraft-sleeper.service", "ActiveState", "User", "After",
                 "Wants", "NoNewPrivileges", "ProtectSystem", "StateDirectory")
    assert props["ActiveState"] == "active"
    assert props["User"] == ""
    assert "network-online.target" not in props["After"].split()
    assert "network-online.target" not in props["Wants"].split()
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "full"
    assert props["StateDirectory"] == ""
