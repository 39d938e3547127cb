# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.unit_info against real systemd (252 and 257) in bench containers.

Every answer of the module is checked against what systemctl itself says in the container.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import run_playbook
from conftest import BenchHost, SystemctlCounter

BULK = [f"info-bulk-{i:02d}.service" for i in range(50)]

UNITS = {
    "info-fail.service": "[Service]\nExecStart=/bin/false\n",
    "info-crash.service": "[Service]\nExecStart=/usr/bin/sleep infinity\nRestart=always\nRestartSec=1\n",
    "info-first.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/bin/sleep 0.2\n",
    "info-second.service": "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    # enabled so that a dependency keeps it loaded: systemd unloads an unreferenced inactive
    # unit, and its timestamps with it
    "info-norae.service": "[Service]\nType=oneshot\nExecStart=/usr/bin/sleep 0.2\n[Install]\nWantedBy=multi-user.target\n",
    "info-never.service": "[Service]\nExecStart=/usr/bin/sleep infinity\n",
    "info-tmpl@.service": "[Service]\nExecStart=/usr/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n",
    **{name: "[Unit]\nDescription=bulk %n\n[Service]\nExecStart=/usr/bin/sleep infinity\n" for name in BULK},
}


def info_task(**args: Any) -> dict[str, Any]:
    return {"name": "unit_info", "unitcraft.systemd.unit_info": args}


@pytest.fixture(scope="module")
def units(bench_host: BenchHost) -> BenchHost:
    """The info-* units installed; info-fail failed; info-crash running; norae, first, second started in order."""
    host = bench_host
    script = "".join(f"cat > /etc/systemd/system/{name} <<'EOF'\n{text}EOF\n" for name, text in UNITS.items())
    host.exec("sh", "-c", script)
    host.exec("systemctl", "enable", "info-norae.service")
    host.exec("systemctl", "start", "info-fail.service", check=False)
    host.exec("systemctl", "start", "info-crash.service")
    for name in ("info-norae.service", "info-first.service", "info-second.service"):
        host.exec("systemctl", "start", name)
    return host


def loaded_units(host: BenchHost) -> set[str]:
    listed = host.exec("systemctl", "list-units", "--all", "--no-legend", "--plain").stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_query_returns_the_failed_unit(units: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    host = units
    assert host.systemctl_show("info-fail.service", "ActiveState")["ActiveState"] == "failed"
    loaded_before = loaded_units(host)
    played, processes = systemctl_counter.play([info_task(query="[?ActiveState=='failed'].Id")])
    result = played.results[0]
    loaded_after = loaded_units(host)
    assert "info-fail.service" in result["query_result"]
    assert result["systemctl_calls"] == 1
    assert [len(calls) for calls in processes] == [1], systemctl_counter.describe()  # counted on the target
    assert result["changed"] is False
    # all loaded units: what systemctl lists (units may be loaded or collected meanwhile)
    reported = {u["Id"] for u in result["units"]}
    assert loaded_before & loaded_after <= reported <= loaded_before | loaded_after
    assert len(reported) == len(result["units"]), "a unit is reported twice"
    failed = host.exec("systemctl", "list-units", "--all", "--state=failed", "--no-legend", "--plain").stdout
    assert sorted(result["query_result"]) == sorted(line.split()[0] for line in failed.splitlines() if line.strip())
    by_id = {u["Id"]: u for u in result["units"]}
    assert by_id["info-fail.service"]["Result"] == "exit-code"
    assert by_id["info-fail.service"]["ExecMainStatus"] == 1


def test_nrestarts_and_main_pid_after_a_crash(units: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    host = units
    task = info_task(names=["info-crash.service"], properties=["ActiveState", "MainPID", "NRestarts"])
    before = host.play([task]).results[0]["units"][0]
    assert before["ActiveState"] == "active" and before["MainPID"] > 0
    host.exec("kill", "-9", str(before["MainPID"]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = host.systemctl_show("info-crash.service", "ActiveState", "MainPID")
        if now["ActiveState"] == "active" and now["MainPID"] not in ("0", str(before["MainPID"])):
            break
        time.sleep(0.3)
    played, processes = systemctl_counter.play([task])
    after = played.results[0]
    unit = after["units"][0]
    assert set(unit) == {"Id", "ActiveState", "MainPID", "NRestarts"}
    assert unit["NRestarts"] >= before["NRestarts"] + 1
    assert unit["MainPID"] not in (0, before["MainPID"])
    assert unit["MainPID"] == int(host.systemctl_show("info-crash.service", "MainPID")["MainPID"])
    assert after["systemctl_calls"] == 1
    assert [len(calls) for calls in processes] == [1], systemctl_counter.describe()


def test_order_of_units_started_in_a_known_order(units: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    host = units
    played, processes = systemctl_counter.play([
        info_task(names=["info-first.service"], order=["info-first.service", "info-second.service"]),
        info_task(names=["info-first.service"], order=["info-second", "info-first"]),
        info_task(names=["info-first.service"], order=["info-norae.service", "info-first.service"]),
        info_task(names=["info-first.service"], order=["info-first.service", "info-never.service"]),
    ])
    forward, backward, norae, never = played.results
    assert forward["ordered"] is True and forward["systemctl_calls"] == 1
    # one systemctl process per task, counted on the target
    assert [len(calls) for calls in processes] == [r["systemctl_calls"] for r in played.results] == [1] * 4, \
        systemctl_counter.describe()
    detail = forward["order_detail"]
    shown = host.systemctl_show("info-first.service", "ActiveEnterTimestampMonotonic")
    assert detail["first_finished"] == int(shown["ActiveEnterTimestampMonotonic"])
    assert detail["first_finished_property"] == "ActiveEnterTimestampMonotonic"
    shown = host.systemctl_show("info-second.service", "InactiveExitTimestampMonotonic")
    assert detail["second_started"] == int(shown["InactiveExitTimestampMonotonic"])
    assert 0 < detail["first_finished"] <= detail["second_started"]
    # the order units are asked in the same call but reported only when named
    assert [u["Id"] for u in forward["units"]] == ["info-first.service"]

    assert backward["ordered"] is False
    assert backward["order_detail"]["first"] == "info-second.service"
    assert "after info-first.service started" in backward["order_detail"]["reason"]

    assert norae["ordered"] is True
    assert norae["order_detail"]["first_finished_property"] == "InactiveEnterTimestampMonotonic"

    assert never["ordered"] is False
    assert never["order_detail"]["reason"].startswith("info-never.service has not started in this boot")


def test_fifty_units_by_name_cost_one_systemctl_process(units: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    played, processes = systemctl_counter.play([info_task(names=BULK)])
    result = played.results[0]
    assert result["systemctl_calls"] == 1
    assert [len(calls) for calls in processes] == [1], systemctl_counter.describe()
    ((args,),) = processes  # one process on the target, with all fifty names
    assert args[-len(BULK):] == BULK, args
    assert [u["Id"] for u in result["units"]] == BULK
    assert all(u["LoadState"] == "loaded" and u["FragmentPath"] == f"/etc/systemd/system/{u['Id']}"
               for u in result["units"])
    assert result["units"][7]["Description"] == f"bulk {BULK[7]}"


def test_glob_pattern_finds_loaded_units_and_unit_files(units: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    played, processes = systemctl_counter.play([info_task(names=["info-*.service", "dbus"],
                                                          properties=["LoadState", "ActiveState", "UnitFileState"])])
    result = played.results[0]
    ids = [u["Id"] for u in result["units"]]
    expected = sorted(UNITS)
    assert ids[:len(expected)] == expected, "matches are sorted, at the pattern's place"
    assert ids[len(expected):] == ["dbus.service"]
    by_id = {u["Id"]: u for u in result["units"]}
    # a template: only what list-unit-files knows (systemctl show refuses templates)
    assert by_id["info-tmpl@.service"] == {"Id": "info-tmpl@.service", "UnitFileState": "disabled"}
    assert by_id["info-crash.service"]["ActiveState"] == "active"
    # one list-unit-files (files systemd has not loaded, templates) and one show
    assert result["systemctl_calls"] == 2
    assert len(processes) == 1, systemctl_counter.describe()  # one module process
    (calls,) = processes
    assert sorted(next(verb for verb in args if not verb.startswith("-")) for args in calls) == \
        ["list-unit-files", "show"], systemctl_counter.describe()


def test_bad_query_fails_with_jmespaths_message(units: BenchHost) -> None:
    host = units
    result = host.play([info_task(query="[?ActiveState=='failed'")], expect_failure=True).results[0]
    assert result["failed"] is True
    assert "is not a valid JMESPath expression" in result["msg"]
    assert "Invalid jmespath expression" in result["msg"], "jmespath's own message is kept"
    runtime = host.play([info_task(names=["dbus.service"], query="length(@[0].MainPID)")],
                        expect_failure=True).results[0]
    assert "length()" in runtime["msg"] and "invalid type" in runtime["msg"]
    bad_name = host.play([info_task(names=["bad/name"])], expect_failure=True).results[0]
    assert "bad/name" in bad_name["msg"]


def test_check_mode_reports_the_same(units: BenchHost) -> None:
    host = units
    task = info_task(names=["info-first.service", "info-tmpl@.service"], properties=["ActiveState"],
                     query="[].Id")
    normal = host.play([task]).results[0]
    checked = host.play([task], check=True).results[0]
    assert checked["changed"] is False and checked.get("skipped") is not True
    assert checked["units"] == normal["units"]
    assert checked["query_result"] == ["info-first.service", "info-tmpl@.service"]


def test_root_mode_reports_unit_files_without_a_running_systemd(tmp_path: Path, collections_path: str) -> None:
    """Runs on the controller: enablement read from files under root, whatever its PID 1 is.

    `systemctl --root=DIR` never talks to a manager. The systemctl processes are counted
    by a wrapper first on the PATH that the modules search.
    """
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    calls_log = tmp_path / "systemctl-calls.log"
    real_systemctl = shutil.which("systemctl")
    assert real_systemctl, "systemctl is not installed on the controller"
    wrapper = wrappers / "systemctl"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls_log}\nexec {real_systemctl} "$@"\n')
    wrapper.chmod(0o755)
    root = tmp_path / "rootfs"
    vendor = root / "usr/lib/systemd/system"
    vendor.mkdir(parents=True)
    (vendor / "info-vendor.service").write_text("[Service]\nExecStart=/bin/true\n")
    dropins = root / "etc/systemd/system/info-offline.service.d"
    dropins.mkdir(parents=True)
    (dropins / "10-env.conf").write_text("[Service]\nEnvironment=A=1\n")
    playbook = tmp_path / "root.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "unit", "unitcraft.systemd.unit": {
            "name": "info-offline.service", "root": str(root), "enabled": True, "validate": "off",
            "sections": {"Service": {"ExecStart": "/bin/true"}, "Install": {"WantedBy": "multi-user.target"}}}},
        info_task(root=str(root), names=["info-offline.service", "info-v*", "info-missing.service"]),
        info_task(root=str(root), query="[?UnitFileState=='enabled'].Id"),
        {**info_task(root=str(root), names=["info-offline.service"],
                     order=["info-offline.service", "info-vendor.service"]), "ignore_errors": True},
    ]}], sort_keys=False))
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    result = run_playbook(playbook, inventory, collections_path,
                          env={"PATH": f"{wrappers}{os.pathsep}{os.environ['PATH']}"})
    unit, info, everything, refused = result.results
    assert info["systemctl_calls"] == 1
    calls = calls_log.read_text().splitlines()
    assert len(calls) == sum(r.get("systemctl_calls", 0) for r in (unit, info, everything)), calls
    assert all(f"--root={root}" in line for line in calls), calls
    assert info["units"] == [
        {"Id": "info-offline.service", "UnitFileState": "enabled", "UnitFilePreset": "enabled",
         "FragmentPath": "/etc/systemd/system/info-offline.service",
         "DropInPaths": ["/etc/systemd/system/info-offline.service.d/10-env.conf"]},
        # systemctl prints no preset ("-") for a static unit
        {"Id": "info-vendor.service", "UnitFileState": "static", "UnitFilePreset": "",
         "FragmentPath": "/usr/lib/systemd/system/info-vendor.service", "DropInPaths": []},
        {"Id": "info-missing.service", "UnitFileState": "not-found", "UnitFilePreset": "",
         "FragmentPath": "", "DropInPaths": []},
    ]
    assert everything["query_result"] == ["info-offline.service"]
    assert refused["failed"] is True and "order needs a running manager" in refused["msg"]
