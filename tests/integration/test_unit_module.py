# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.unit against real systemd (252 and 257) in bench containers.

Pattern of the house style: check mode -> apply -> check mode again -> apply again, each
step asserted on what the module said AND on the host (files, systemctl show, journal).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import bench
from bench import count_daemon_reloads, run_playbook
from conftest import BenchHost, SystemctlCounter, invocation_id, journal_cursor, started_lines

DOWNLOADER = """\
import sys, time
# stands in for the seed's websocket downloader: append a line every half second
with open(sys.argv[1], "a", buffering=1) as out:
    while True:
        out.write(f"{time.time():.3f} tick\\n")
        time.sleep(0.5)
"""


def huobi_sections(restart_sec: int = 2) -> dict[str, Any]:
    """The seed's huobi unit as sections, its command pointed at a program in the image."""
    return {
        "Unit": {"Description": "huobi downloader", "After": "rc-local.service"},
        "Service": {
            "Type": "simple",
            "User": "root",
            "Group": "root",
            "WorkingDirectory": "/opt/huobi",
            "ExecStart": "/usr/bin/python3 /opt/huobi/downloader.py /opt/huobi/huobi.log",
            "Restart": "always",
            "RestartSec": restart_sec,
        },
        "Install": {"WantedBy": "multi-user.target"},
    }


def unit_task(**args: Any) -> dict[str, Any]:
    return {"name": "unit", "unitcraft.systemd.unit": args}


def show(host: BenchHost, unit: str) -> dict[str, str]:
    return host.systemctl_show(unit, "ActiveState", "SubState", "UnitFileState", "MainPID", "LoadState",
                               "NRestarts", "FragmentPath", "DropInPaths")


@pytest.fixture(scope="module")
def downloader(bench_host: BenchHost) -> BenchHost:
    bench_host.exec("sh", "-c", "mkdir -p /opt/huobi && cat > /opt/huobi/downloader.py", input=DOWNLOADER)
    return bench_host


def test_seed_downloader_installs_enables_starts_then_is_idempotent(downloader: BenchHost) -> None:
    host = downloader
    task = unit_task(name="huobi.service", sections=huobi_sections(), enabled=True, active=True)

    reloads = count_daemon_reloads(host)
    check = host.play([task], check=True, diff=True).results[0]
    assert check["changed"] is True and check["daemon_reloaded"] is True
    assert "ExecStart=/usr/bin/python3 /opt/huobi/downloader.py" in check["diff"]["after"]
    assert host.read_file("/etc/systemd/system/huobi.service") is None, "check mode wrote the file"
    assert count_daemon_reloads(host) == reloads, "check mode reloaded systemd"
    assert show(host, "huobi.service")["LoadState"] == "not-found"

    cursor = journal_cursor(host)
    first = host.play([task]).results[0]
    assert first["changed"] is True
    assert first["actions"] == ["enable", "start"]
    assert first["enabled"] is True and first["active"] is True
    assert count_daemon_reloads(host) == reloads + 1
    assert len(started_lines(host, "huobi.service", cursor)) == 1, "not started exactly once"
    state = show(host, "huobi.service")
    assert state["ActiveState"] == "active" and state["UnitFileState"] == "enabled"
    assert state["FragmentPath"] == "/etc/systemd/system/huobi.service"
    assert host.exec("test", "-L", "/etc/systemd/system/multi-user.target.wants/huobi.service").returncode == 0
    text = host.read_file("/etc/systemd/system/huobi.service")
    assert text.startswith("[Unit]\nDescription=huobi downloader\nAfter=rc-local.service\n\n[Service]\n")
    assert "Restart=always\nRestartSec=2\n" in text

    invocation = invocation_id(host, "huobi.service")
    cursor = journal_cursor(host)
    again_check = host.play([task], check=True).results[0]
    assert again_check["changed"] is False
    again = host.play([task]).results[0]
    assert again["changed"] is False and again["daemon_reloaded"] is False and again["restarted"] is False
    assert count_daemon_reloads(host) == reloads + 1
    assert show(host, "huobi.service")["MainPID"] == state["MainPID"]
    assert started_lines(host, "huobi.service", cursor) == []
    assert invocation_id(host, "huobi.service") == invocation


def test_editing_one_directive_reloads_once_and_restarts_once(downloader: BenchHost) -> None:
    host = downloader
    host.play([unit_task(name="huobi.service", sections=huobi_sections(), enabled=True, active=True)])
    before = show(host, "huobi.service")
    invocation = invocation_id(host, "huobi.service")
    reloads = count_daemon_reloads(host)

    edited = unit_task(name="huobi.service", sections=huobi_sections(restart_sec=5), enabled=True, active=True)
    cursor = journal_cursor(host)
    result = host.play([edited], diff=True).results[0]
    assert result["changed"] is True and result["restarted"] is True and result["daemon_reloaded"] is True
    assert result["diff"]["before"].count("RestartSec=2") == 1 and "RestartSec=5" in result["diff"]["after"]
    assert count_daemon_reloads(host) == reloads + 1
    after = show(host, "huobi.service")
    assert after["ActiveState"] == "active"
    assert after["NRestarts"] == before["NRestarts"], "systemd restarted it by itself (a crash)"
    # once: one start in the journal since the edit (two restarts log two), and a new invocation
    starts = started_lines(host, "huobi.service", cursor)
    assert len(starts) == 1, f"restarted {len(starts)} times: {starts}"
    assert invocation_id(host, "huobi.service") != invocation
    assert host.systemctl_show("huobi.service", "RestartUSec")["RestartUSec"] == "5s"

    invocation = invocation_id(host, "huobi.service")
    cursor = journal_cursor(host)
    steady = host.play([edited]).results[0]
    assert steady["changed"] is False and steady["restarted"] is False and steady["daemon_reloaded"] is False
    assert count_daemon_reloads(host) == reloads + 1
    assert show(host, "huobi.service")["MainPID"] == after["MainPID"]
    assert started_lines(host, "huobi.service", cursor) == []
    assert invocation_id(host, "huobi.service") == invocation


def test_fifty_units_in_one_task_cost_one_daemon_reload(
        bench_host: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    host = bench_host
    names = [f"bulk-{i:02d}.service" for i in range(50)]
    task = unit_task(
        units=[{"name": n} for n in names],
        sections={"Unit": {"Description": "bulk %n"}, "Service": {"ExecStart": "/usr/bin/sleep infinity"},
                  "Install": {"WantedBy": "multi-user.target"}},
        enabled=True, active=True,
    )
    reloads = count_daemon_reloads(host)
    played, processes = systemctl_counter.play([task])
    result = played.results[0]
    assert result["changed"] is True and result["daemon_reloaded"] is True
    assert count_daemon_reloads(host) == reloads + 1
    assert len(result["units"]) == 50 and all(u["actions"] == ["enable", "start"] for u in result["units"])
    states = host.exec("systemctl", "show", "-p", "ActiveState", "-p", "UnitFileState", *names).stdout
    assert states.count("ActiveState=active") == 50
    assert states.count("UnitFileState=enabled") == 50
    # one process per kind of work, not one per unit: counted on the target, and the
    # module's own counter says the same
    assert len(processes) == 1, systemctl_counter.describe()  # one module process
    (calls,) = processes
    assert len(calls) == result["systemctl_calls"], systemctl_counter.describe()
    assert len(calls) <= 6, systemctl_counter.describe()
    assert sum("daemon-reload" in args for args in calls) == 1, systemctl_counter.describe()

    played, processes = systemctl_counter.play([task])
    unchanged = played.results[0]
    assert unchanged["changed"] is False and unchanged["daemon_reloaded"] is False
    assert count_daemon_reloads(host) == reloads + 1
    assert len(processes) == 1, systemctl_counter.describe()  # one module process
    (calls,) = processes
    assert len(calls) == unchanged["systemctl_calls"], systemctl_counter.describe()
    assert not any({"daemon-reload", "start", "restart", "enable"} & set(args) for args in calls), \
        systemctl_counter.describe()

    played, processes = systemctl_counter.play([unit_task(units=[{"name": n} for n in names], state="absent")])
    removed = played.results[0]
    assert removed["changed"] is True and removed["daemon_reloaded"] is True
    assert count_daemon_reloads(host) == reloads + 2
    assert len(processes) == 1, systemctl_counter.describe()  # one module process
    (calls,) = processes
    assert len(calls) == removed["systemctl_calls"], systemctl_counter.describe()
    assert host.exec("sh", "-c", "ls /etc/systemd/system/bulk-* 2>/dev/null | wc -l").stdout.strip() == "0"
    assert host.exec("sh", "-c", "ls /etc/systemd/system/multi-user.target.wants/ | grep -c bulk-",
                     check=False).stdout.strip() == "0"


TYPO = {"Unit": {"Description": "typo"}, "Service": {"ExecStart": "/usr/bin/sleep infinity", "Restat": "always"}}


def test_strict_validation_refuses_a_typo_and_changes_nothing(bench_host: BenchHost) -> None:
    host = bench_host
    result = host.play([unit_task(name="typo.service", sections=TYPO)], expect_failure=True).results[0]
    assert "Restat" in result["msg"]
    assert "/etc/systemd/system/typo.service:6:" in result["msg"], "systemd's message with the line number"
    assert host.read_file("/etc/systemd/system/typo.service") is None


def test_validate_errors_installs_and_returns_the_warning(bench_host: BenchHost) -> None:
    host = bench_host
    result = host.play([unit_task(name="typo.service", sections=TYPO, validate="errors")]).results[0]
    assert result["changed"] is True
    assert any("Restat" in w for w in result["validation"])
    assert host.read_file("/etc/systemd/system/typo.service") is not None
    host.play([unit_task(name="typo.service", state="absent")])


def test_broken_edit_leaves_the_installed_file_byte_for_byte(downloader: BenchHost) -> None:
    host = downloader
    host.play([unit_task(name="huobi.service", sections=huobi_sections(), enabled=True, active=True)])
    path = "/etc/systemd/system/huobi.service"
    digest = host.sha256(path)
    main_pid = show(host, "huobi.service")["MainPID"]
    broken = huobi_sections()
    broken["Service"]["ExecStart"] = "/usr/bin/no-such-program --flag"
    result = host.play([unit_task(name="huobi.service", sections=broken, active=True)],
                       expect_failure=True).results[0]
    assert "no-such-program" in result["msg"] and "not executable" in result["msg"]
    assert host.sha256(path) == digest
    assert show(host, "huobi.service")["MainPID"] == main_pid
    leftovers = host.exec("sh", "-c", "ls -a /etc/systemd/system | grep -c '^\\.huobi' || true").stdout.strip()
    assert leftovers == "0", "a temporary file was left behind"


def test_timer_calendar_is_checked(bench_host: BenchHost) -> None:
    host = bench_host
    sections = {"Timer": {"OnCalendar": "0 2 * * *"}, "Install": {"WantedBy": "timers.target"}}
    result = host.play([unit_task(name="nightly.timer", sections=sections, validate="errors")],
                       expect_failure=True).results[0]
    assert "OnCalendar" in result["msg"] and "0 2 * * *" in result["msg"]
    assert host.read_file("/etc/systemd/system/nightly.timer") is None


@pytest.mark.parametrize("args, needle", [
    ({"name": "inject.service", "sections": {"Service": {"ExecStart": "/bin/true\nExecStartPost=/bin/evil"}}},
     "newline"),
    ({"name": "../evil.service", "sections": {"Service": {"ExecStart": "/bin/true"}}}, "../evil.service"),
    ({"name": "no-suffix", "sections": {"Service": {"ExecStart": "/bin/true"}}}, "no-suffix"),
    ({"units": [{"name": "ok.service"}, {"sections": {"Service": {"ExecStart": "/bin/true"}}}]}, "name"),
    ({"name": "both.service", "sections": {"Service": {"ExecStart": "/bin/true"}},
      "content": "[Service]\nExecStart=/bin/true\n"}, "sections"),
    ({"name": "badkey.service", "sections": {"Service": {"Exec Start": "/bin/true"}}}, "Exec Start"),
    ({"name": "worker@.service", "active": True}, "template"),
    # a misspelt directive whose value YAML made a boolean: the key is named, not the quoting
    ({"name": "typo.service", "sections": {"Service": {"Type": "oneshot", "ExecStart": "/bin/true",
                                                       "RemainAfterExitt": True}}},
     "RemainAfterExitt is not a directive systemd knows in [Service]: a typo?"),
    # an empty unit is what systemd calls masked: the input is named instead
    ({"name": "empty.service", "sections": {}}, "unit empty.service: sections is empty"),
])
def test_bad_input_fails_clearly_before_any_change(
        bench_host: BenchHost, args: dict[str, Any], needle: str) -> None:
    host = bench_host
    before = host.exec("sh", "-c", "ls -la --time-style=+%s /etc/systemd/system | md5sum").stdout
    reloads = count_daemon_reloads(host)
    result = host.play([unit_task(**args)], expect_failure=True).results[0]
    assert needle in result["msg"], result["msg"]
    assert host.exec("sh", "-c", "ls -la --time-style=+%s /etc/systemd/system | md5sum").stdout == before
    assert count_daemon_reloads(host) == reloads


@pytest.mark.parametrize("attrs, needle", [
    ({"mode": "0x44"}, "mode: '0x44' is neither an octal mode"),
    ({"owner": "nosuchuser"}, "owner: no user 'nosuchuser' on the target"),
    ({"group": "nosuchgroup"}, "group: no group 'nosuchgroup' on the target"),
], ids=["mode", "owner", "group"])
def test_a_bad_mode_owner_or_group_is_refused_while_planning_and_systemd_never_knows_the_unit(
        bench_host: BenchHost, attrs: dict[str, Any], needle: str) -> None:
    host = bench_host
    unit = "badattr.service"
    reloads = count_daemon_reloads(host)
    result = host.play([unit_task(name=unit, sections={"Service": {"ExecStart": "/bin/sleep infinity"}},
                                  active=True, **attrs)], expect_failure=True).results[0]
    assert f"unit {unit}: {needle}" in result["msg"], result["msg"]
    assert result["changed"] is False
    assert host.exec("test", "-e", f"/etc/systemd/system/{unit}", check=False).returncode != 0, "a file appeared"
    assert host.exec("sh", "-c", "ls -a /etc/systemd/system | grep -c '^\\.' || true").stdout.strip() == "2", \
        "a temporary file was left"
    assert show(host, unit)["LoadState"] == "not-found", "systemd knows the unit"
    assert count_daemon_reloads(host) == reloads


def test_a_unit_file_that_is_not_utf8_is_refused_naming_the_unit(bench_host: BenchHost) -> None:
    """A latin-1 unit file pasted with lookup('file'): the unit is named, not a bare codec error."""
    host = bench_host
    latin1 = host.workdir / "latin1.service"
    latin1.write_bytes(b"[Service]\nExecStart=/bin/echo caf\xe9\n")
    task = unit_task(name="latin.service", content="{{ lookup('ansible.builtin.file', '%s') }}" % latin1)
    result = host.play([task], expect_failure=True).results[0]
    assert result["msg"].startswith("unit latin.service: content is not UTF-8 text (character 33 of"), result["msg"]
    assert "codec" not in result["msg"]
    assert host.exec("test", "-e", "/etc/systemd/system/latin.service", check=False).returncode != 0


def test_module_defaults_group_sets_wait_timeout_for_unit_and_dropin_tasks(bench_host: BenchHost) -> None:
    """meta/runtime.yml's action group: one module_defaults entry for every module of the collection."""
    host = bench_host
    hang = {"Service": {"Type": "oneshot", "ExecStart": "/bin/sleep 600", "TimeoutStartSec": "infinity"}}
    play = [{
        "name": "defaults for the whole collection",
        "module_defaults": {"group/unitcraft.systemd.systemd": {"wait_timeout": 3}},
        "block": [
            {"name": "unit", "unitcraft.systemd.unit": {"name": "grouped.service", "sections": hang, "active": True},
             "ignore_errors": True},
            {"name": "dropin", "unitcraft.systemd.dropin": {"name": "grouped.service", "dropin": "tune",
                                                             "sections": {"Service": {"Nice": 5}}},
             "ignore_errors": True},
        ],
    }]
    try:
        results = host.play(play).results
        assert results[0]["failed"] is True and "wait_timeout=3s" in results[0]["msg"], results[0]["msg"]
        # the drop-in restarts the (still activating) unit: its wait is the group's too
        assert "wait_timeout=3s" in results[1].get("msg", ""), results[1]
    finally:
        host.sh("systemctl stop --no-block grouped.service; rm -rf /etc/systemd/system/grouped.service*; "
                "systemctl daemon-reload; systemctl reset-failed", check=False)


TEMPLATE_OUTPUT = """\
# Ansible managed: huobi.service.j2
[Install]
WantedBy = multi-user.target

[Service]
# the downloader
ExecStart = /bin/sh -c \\
    'exec sleep infinity'
Restart = always

[Unit]
Description = adopted downloader
"""


def test_a_unit_written_by_template_in_another_form_is_adopted_without_a_restart(bench_host: BenchHost) -> None:
    """The migration day: same directives, other comments, spacing, continuation and section order."""
    host = bench_host
    unit = "adopted.service"
    path = f"/etc/systemd/system/{unit}"
    sections = {"Unit": {"Description": "adopted downloader"},
                "Service": {"ExecStart": "/bin/sh -c 'exec sleep infinity'", "Restart": "always"},
                "Install": {"WantedBy": "multi-user.target"}}
    try:
        host.play([{"ansible.builtin.copy": {"dest": path, "content": TEMPLATE_OUTPUT, "mode": "0644"}},
                   {"ansible.builtin.systemd_service": {"name": unit, "enabled": True, "state": "started",
                                                        "daemon_reload": True}}])
        cursor = journal_cursor(host)
        adopted = host.play([unit_task(name=unit, sections=sections, enabled=True, active=True)]).results[0]
        assert adopted["changed"] is False and adopted["differs_only_in_form"] is True, adopted
        assert host.read_file(path) == TEMPLATE_OUTPUT, "the file was rewritten"
        rewritten = host.play([unit_task(name=unit, sections=sections, enabled=True, active=True,
                                         rewrite_equivalent=True)]).results[0]
        assert rewritten["changed"] is True and rewritten["restarted"] is False and rewritten["file_changed"] is True
        assert host.read_file(path).startswith("[Unit]\nDescription=adopted downloader\n")
        assert show(host, unit)["ActiveState"] == "active"
        assert host.systemctl_show(unit, "NeedDaemonReload")["NeedDaemonReload"] == "no"
        assert started_lines(host, unit, cursor) == [], "the adoption restarted the unit"
        again = host.play([unit_task(name=unit, sections=sections, enabled=True, active=True)]).results[0]
        assert again["changed"] is False and "differs_only_in_form" not in again
    finally:
        host.sh(f"systemctl disable --now {unit}; rm -f {path}; systemctl daemon-reload", check=False)


def snapshot(host: BenchHost, unit: str) -> tuple[Any, ...]:
    return (host.sha256(f"/etc/systemd/system/{unit}"), show(host, unit),
            host.exec("sh", "-c", "find /etc/systemd/system -newer /etc/hostname | sort").stdout,
            count_daemon_reloads(host))


def test_check_mode_on_new_changed_and_absent_units_touches_nothing(bench_host: BenchHost) -> None:
    host = bench_host
    unit = "checkmode.service"
    sections = {"Service": {"ExecStart": "/usr/bin/sleep infinity"}, "Install": {"WantedBy": "multi-user.target"}}
    new_task = unit_task(name=unit, sections=sections, enabled=True, active=True)

    before = snapshot(host, unit)
    new = host.play([new_task], check=True, diff=True).results[0]
    assert new["changed"] is True and new["actions"] == ["enable", "start"] and new["active"] is True
    assert new["diff"]["before"] == "" and "ExecStart=/usr/bin/sleep infinity" in new["diff"]["after"]
    assert snapshot(host, unit) == before

    host.play([new_task])
    sections["Service"]["Nice"] = 5
    before = snapshot(host, unit)
    edited_task = unit_task(name=unit, sections=sections, enabled=True, active=True)
    changed = host.play([edited_task], check=True, diff=True).results[0]
    assert changed["changed"] is True and changed["restarted"] is True and changed["daemon_reloaded"] is True
    assert "Nice=5" in changed["diff"]["after"] and "Nice=5" not in changed["diff"]["before"]
    assert snapshot(host, unit) == before

    absent = host.play([unit_task(name=unit, state="absent")], check=True, diff=True).results[0]
    assert absent["changed"] is True and absent["actions"] == ["stop", "disable"]
    assert absent["diff"]["after"] == ""
    assert snapshot(host, unit) == before

    gone = host.play([unit_task(name=unit, state="absent")]).results[0]
    assert gone["changed"] is True and gone["daemon_reloaded"] is True
    assert host.read_file(f"/etc/systemd/system/{unit}") is None
    assert show(host, unit)["LoadState"] == "not-found"
    assert host.play([unit_task(name=unit, state="absent")]).results[0]["changed"] is False


def test_template_and_instances(bench_host: BenchHost) -> None:
    host = bench_host
    task = unit_task(units=[
        {"name": "worker@.service", "sections": {
            "Unit": {"Description": "worker %i"},
            "Service": {"ExecStart": "/usr/bin/sleep infinity"},
            "Install": {"WantedBy": "multi-user.target"}}},
        {"name": "worker@1.service", "enabled": True, "active": True},
        {"name": "worker@2.service", "enabled": True, "active": True},
    ])
    result = host.play([task]).results[0]
    assert [u["actions"] for u in result["units"]] == [[], ["enable", "start"], ["enable", "start"]]
    assert show(host, "worker@2.service")["ActiveState"] == "active"
    assert host.play([task]).results[0]["changed"] is False

    # an instance the task does not list, then a change of the template: every running
    # instance is restarted once and runs with the new configuration
    host.exec("systemctl", "start", "worker@7.service")
    instances = ("worker@1.service", "worker@2.service", "worker@7.service")
    pids = {n: show(host, n)["MainPID"] for n in instances}
    invocations = {n: invocation_id(host, n) for n in instances}
    edited = unit_task(units=[
        {"name": "worker@.service", "sections": {
            "Unit": {"Description": "worker %i"},
            "Service": {"ExecStart": "/usr/bin/sleep infinity", "Environment": "WORKER=%i"},
            "Install": {"WantedBy": "multi-user.target"}}},
        {"name": "worker@1.service", "enabled": True, "active": True},
        {"name": "worker@2.service", "enabled": True, "active": True},
    ])
    reloads = count_daemon_reloads(host)
    cursor = journal_cursor(host)
    changed = host.play([edited]).results[0]
    assert changed["units"][0]["restarted_instances"] == ["worker@7.service"]
    assert [u["restarted"] for u in changed["units"][1:]] == [True, True]
    assert count_daemon_reloads(host) == reloads + 1
    for name, pid in pids.items():
        state = host.systemctl_show(name, "MainPID", "Environment", "InvocationID")
        assert state["MainPID"] != pid and state["Environment"] == f"WORKER={name[7]}"
        assert state["InvocationID"] != invocations[name]
        # once each, listed or not: one start per instance in the journal since the change
        starts = started_lines(host, name, cursor)
        assert len(starts) == 1, f"{name} was started {len(starts)} times: {starts}"
    cursor = journal_cursor(host)
    assert host.play([edited]).results[0]["changed"] is False
    assert all(started_lines(host, name, cursor) == [] for name in instances)

    host.play([unit_task(units=[{"name": "worker@1.service"}, {"name": "worker@2.service"},
                                {"name": "worker@7.service"}, {"name": "worker@.service"}], state="absent")])
    assert show(host, "worker@1.service")["ActiveState"] == "inactive"


def test_runtime_only_on_a_unit_it_did_not_write(bench_host: BenchHost) -> None:
    host = bench_host
    unit = "systemd-tmpfiles-clean.timer"
    # started at boot by timers.target in both images: the test stops it, then restores it
    assert show(host, unit)["ActiveState"] == "active"
    stop = host.play([unit_task(name=unit, active=False)]).results[0]
    assert stop["changed"] is True and stop["actions"] == ["stop"]
    assert stop["path"] == f"/etc/systemd/system/{unit}" and stop["file_changed"] is False
    assert show(host, unit)["ActiveState"] == "inactive"
    start = host.play([unit_task(name=unit, active=True)]).results[0]
    assert start["changed"] is True and start["actions"] == ["start"]
    assert show(host, unit)["ActiveState"] == "active"
    assert host.read_file(f"/etc/systemd/system/{unit}") is None


def test_root_mode_renders_and_enables_without_a_running_systemd(tmp_path: Path, collections_path: str) -> None:
    """Runs on the controller: nothing but files under root, whatever the controller's PID 1 is.

    `systemctl --root=DIR` never talks to a manager, so this runs (and must pass) on a
    controller booted with systemd as well as on one without.
    """
    root = tmp_path / "rootfs"
    root.mkdir()
    playbook = tmp_path / "root.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        unit_task(name="huobi.service", root=str(root), enabled=True, validate="off",
                  sections={"Service": {"ExecStart": "/usr/bin/python3 /opt/huobi/downloader.py"},
                            "Install": {"WantedBy": "multi-user.target"}}),
        unit_task(name="huobi.service", root=str(root), enabled=True, validate="off",
                  sections={"Service": {"ExecStart": "/usr/bin/python3 /opt/huobi/downloader.py"},
                            "Install": {"WantedBy": "multi-user.target"}}),
        {"name": "active is refused offline", "unitcraft.systemd.unit": {
            "name": "huobi.service", "root": str(root), "active": True}, "ignore_errors": True},
    ]}], sort_keys=False))
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    result = run_playbook(playbook, inventory, collections_path)
    first, second, refused = result.results
    assert first["changed"] is True and first["actions"] == ["enable"] and first["daemon_reloaded"] is False
    assert second["changed"] is False
    assert refused["failed"] is True and "active cannot be managed with root" in refused["msg"]
    link = root / "etc/systemd/system/multi-user.target.wants/huobi.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/huobi.service"
    assert (root / "etc/systemd/system/huobi.service").read_text().startswith("[Service]\nExecStart=")


def test_user_scope_manages_the_connecting_users_own_manager(bench_host: BenchHost) -> None:
    host = bench_host
    host.exec("sh", "-c", "id ucuser >/dev/null 2>&1 || useradd -m ucuser")
    host.exec("loginctl", "enable-linger", "ucuser")
    bench.ssh_access().authorize(host.name, "ucuser")  # Ansible logs in as ucuser
    uid = host.exec("id", "-u", "ucuser").stdout.strip()
    host.exec("sh", "-c", f"for i in $(seq 50); do [ -S /run/user/{uid}/systemd/private ] && exit 0; sleep 0.2; done; exit 1")
    as_user = ["runuser", "-u", "ucuser", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}", "systemctl", "--user"]
    task = {"name": "user unit", "remote_user": "ucuser", "unitcraft.systemd.unit": {
        "name": "hello.service", "scope": "user", "enabled": True, "active": True,
        "sections": {"Service": {"ExecStart": "/usr/bin/sleep infinity"},
                     "Install": {"WantedBy": "default.target"}}}}
    reloads = count_daemon_reloads(host)
    first = host.play([task]).results[0]
    assert first["changed"] is True and first["path"] == "/home/ucuser/.config/systemd/user/hello.service"
    assert first["actions"] == ["enable", "start"] and first["daemon_reloaded"] is True
    state = host.exec(*as_user, "show", "-p", "ActiveState", "-p", "UnitFileState", "hello.service").stdout
    assert "ActiveState=active" in state and "UnitFileState=enabled" in state
    assert host.exec("stat", "-c", "%U", "/home/ucuser/.config/systemd/user/hello.service").stdout.strip() == "ucuser"
    assert count_daemon_reloads(host) == reloads, "the system manager was reloaded for a user unit"
    assert host.play([task]).results[0]["changed"] is False
    host.play([{**task, "unitcraft.systemd.unit": {"name": "hello.service", "scope": "user", "state": "absent"}}])
    assert "ActiveState=inactive" in host.exec(*as_user, "show", "-p", "ActiveState", "hello.service").stdout
