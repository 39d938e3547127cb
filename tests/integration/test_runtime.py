# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runtime truth of `unit`/`dropin` on real systemd 252 and 257 (issue: runtime truth).

A task that reports success leaves every unit it touched in the state asked for, or fails
with systemd's evidence; it never hangs, never leaves a unit on an old definition, and a
failed or interrupted run converges on the next one. Restarts are counted in the journal
(systemd's "Started" lines of the unit), not by PID changes.
"""

from __future__ import annotations

import time

from bench import count_daemon_reloads
from conftest import BenchHost, clean, dropin_task, put_program, show, start_count, unit_task, wait_for

SLEEPER = "/bin/sleep infinity"


# --- started means running -----------------------------------------------------------------


def test_simple_program_that_exits_after_half_a_second_fails_with_its_journal(bench_host: BenchHost) -> None:
    host = bench_host
    # settle: 3 against a 0.5 s life: the death lies well inside the window however slow the machine
    sections = {"Service": {"ExecStart": "/bin/sh -c 'echo quick-exit-marker; sleep 0.5; exit 1'"}}
    try:
        first = host.play([unit_task(name="quick.service", sections=sections, active=True, settle=3,
                                     ignore_errors=True)])
        result = first.results[0]
        assert result["failed"] is True
        assert result["changed"] is True, "a failed task that wrote a file and reloaded reports changed"
        assert result["daemon_reloaded"] is True and result["file_changed"] is True
        assert "unit quick.service" in result["msg"] and "ActiveState=failed" in result["msg"]
        assert "quick-exit-marker" in result["msg"], "the journal line of that start is in the message"
        assert result["units"][0]["problem"] and any("quick-exit-marker" in ln for ln in result["units"][0]["journal"])
        assert show(host, "quick.service")["ActiveState"] == "failed"
        # every later run tries again and still fails: never a silent success
        again = host.play([unit_task(name="quick.service", sections=sections, active=True, settle=3,
                                     ignore_errors=True)])
        assert again.results[0]["failed"] is True and again.results[0]["actions"] == ["start"]
    finally:
        clean(host, "quick.service")


def test_crash_loop_under_restart_always_fails_the_task(bench_host: BenchHost) -> None:
    host = bench_host
    sections = {"Service": {"ExecStart": "/bin/sh -c 'echo crash-loop-marker; sleep 0.3; exit 2'",
                            "Restart": "always", "RestartSec": "0.2"}}
    try:
        result = host.play([unit_task(name="crashy.service", sections=sections, active=True,
                                      ignore_errors=True)]).results[0]
        assert result["failed"] is True
        assert "unit crashy.service" in result["msg"] and "crash-loop-marker" in result["msg"]
        assert int(show(host, "crashy.service")["NRestarts"]) >= 1
    finally:
        clean(host, "crashy.service")


def test_oneshot_without_remain_after_exit_must_finish_with_success(bench_host: BenchHost) -> None:
    host = bench_host
    good = {"Service": {"Type": "oneshot", "ExecStart": "/bin/sh -c 'sleep 0.3; echo done'"}}
    bad = {"Service": {"Type": "oneshot", "ExecStart": "/bin/sh -c 'echo oneshot-fail-marker; exit 4'"}}
    try:
        ok = host.play([unit_task(name="job-ok.service", sections=good, active=True)]).results[0]
        assert ok["changed"] is True and ok["active_state"] == "inactive"
        failed = host.play([unit_task(name="job-bad.service", sections=bad, active=True,
                                      ignore_errors=True)]).results[0]
        assert failed["failed"] is True and "oneshot-fail-marker" in failed["msg"]
    finally:
        clean(host, "job-ok.service", "job-bad.service")


# --- never hang -----------------------------------------------------------------------------


def test_hanging_oneshot_fails_at_wait_timeout_and_no_block_returns_at_once(bench_host: BenchHost) -> None:
    """Bounds that hold on a loaded machine: the task waits at least wait_timeout and gives up
    long before several times it; no_block returns long before a wait_timeout of 300 s."""
    host = bench_host
    sections = {"Service": {"Type": "oneshot", "ExecStart": "/bin/sleep 600", "TimeoutStartSec": "infinity"}}
    try:
        host.play([unit_task(name="hang.service", sections=sections)])
        t0 = time.monotonic()
        result = host.play([unit_task(name="hang.service", active=True, wait_timeout=10,
                                      ignore_errors=True)]).results[0]
        elapsed = time.monotonic() - t0
        assert result["failed"] is True and "wait_timeout=10s" in result["msg"]
        assert "ActiveState=activating" in result["msg"]
        assert elapsed >= 10, f"the task gave up after {elapsed:.1f} s, before its 10 s wait_timeout"
        assert elapsed < 60, f"a 10 s wait_timeout took {elapsed:.1f} s: the task did not give up at its timeout"

        host.exec("systemctl", "stop", "--no-block", "hang.service")
        host.exec("systemctl", "reset-failed", "hang.service", check=False)
        t0 = time.monotonic()
        queued = host.play([unit_task(name="hang.service", active=True, no_block=True,
                                      wait_timeout=300)]).results[0]
        elapsed = time.monotonic() - t0
        assert elapsed < 150, f"no_block took {elapsed:.1f} s of a 300 s wait_timeout: it waited for the job"
        assert queued["queued"] is True and "hang.service" in queued["units"][0]["name"]
        assert show(host, "hang.service")["ActiveState"] == "activating"
    finally:
        clean(host, "hang.service")


# --- no silent drift ------------------------------------------------------------------------


def test_a_failing_unit_does_not_skip_the_restart_of_another(bench_host: BenchHost) -> None:
    host = bench_host
    good_v1 = {"Service": {"ExecStart": SLEEPER, "Environment": "VERSION=1"}}
    good_v2 = {"Service": {"ExecStart": SLEEPER, "Environment": "VERSION=2"}}
    broken = {"Service": {"ExecStart": "/bin/false"}}
    try:
        host.play([unit_task(name="steady.service", sections=good_v1, active=True)])
        started = start_count(host, "steady.service")
        task = unit_task(active=True, ignore_errors=True, units=[
            {"name": "newbad.service", "sections": broken},
            {"name": "steady.service", "sections": good_v2},
        ])
        result = host.play([task]).results[0]
        assert result["failed"] is True and result["changed"] is True
        assert "newbad.service" in result["msg"] and "steady.service" not in result["msg"].split("journal")[0]
        steady = result["units"][1]
        assert steady["restarted"] is True
        assert start_count(host, "steady.service") == started + 1, "the running unit was restarted exactly once"
        assert show(host, "steady.service", "Environment")["Environment"] == "VERSION=2"
        # next run: the changed unit is not restarted again; the broken one still fails loudly
        again = host.play([task]).results[0]
        assert again["failed"] is True and again["units"][1]["restarted"] is False
        assert start_count(host, "steady.service") == started + 1
    finally:
        clean(host, "steady.service", "newbad.service")


def test_unit_file_rewritten_and_reloaded_behind_the_back_restarts_nothing(bench_host: BenchHost) -> None:
    """The same content written again and reloaded without the module (no pending-restart
    marker): the unit already runs that definition, and file times are not consulted."""
    host = bench_host
    sections = {"Service": {"ExecStart": SLEEPER}}
    task = unit_task(name="drift.service", sections=sections, active=True)
    try:
        host.play([task])
        started = start_count(host, "drift.service")
        invocation = show(host, "drift.service")["InvocationID"]
        text = host.read_file("/etc/systemd/system/drift.service")
        host.exec("sh", "-c", "sleep 0.1; cat > /etc/systemd/system/drift.service; systemctl daemon-reload",
                  input=text)
        check = host.play([task], check=True).results[0]
        assert check["changed"] is False and check["restarted"] is False, check
        reloads = count_daemon_reloads(host)
        for _ in range(2):
            run = host.play([task]).results[0]
            assert run["changed"] is False and run["restarted"] is False and run["actions"] == [], run
            assert run["file_changed"] is False and run["daemon_reloaded"] is False
            assert run.get("restart_triggered_by", []) == []
        assert count_daemon_reloads(host) == reloads
        assert start_count(host, "drift.service") == started
        assert show(host, "drift.service")["InvocationID"] == invocation
    finally:
        clean(host, "drift.service")


def test_dropin_touched_and_reloaded_behind_the_back_restarts_nothing(bench_host: BenchHost) -> None:
    host = bench_host
    dropin = dropin_task(name="dropped.service", dropin="tune", sections={"Service": {"Nice": 5}})
    try:
        host.play([unit_task(name="dropped.service", sections={"Service": {"ExecStart": SLEEPER}}, active=True),
                   dropin])
        started = start_count(host, "dropped.service")
        path = "/etc/systemd/system/dropped.service.d/tune.conf"
        host.sh(f"sleep 0.1; touch {path}; systemctl daemon-reload")
        for _ in range(2):
            run = host.play([dropin]).results[0]
            assert run["changed"] is False and run["restarted"] is False, run
            assert run.get("restart_triggered_by", []) == []
        assert start_count(host, "dropped.service") == started
    finally:
        clean(host, "dropped.service")


def test_template_touched_and_reloaded_behind_the_back_restarts_no_instance(bench_host: BenchHost) -> None:
    host = bench_host
    template = unit_task(name="tw@.service", sections={"Service": {"ExecStart": SLEEPER, "Environment": "INST=%i"}})
    listed = unit_task(units=[{"name": "tw@.service", **template["unitcraft.systemd.unit"]},
                              {"name": "tw@a.service", "active": True}])
    instances = ("tw@a.service", "tw@b.service")
    try:
        host.play([listed])
        host.exec("systemctl", "start", "tw@b.service")
        before = {u: start_count(host, u) for u in instances}
        invocations = {u: show(host, u)["InvocationID"] for u in instances}
        host.sh("sleep 0.1; touch /etc/systemd/system/tw@.service; systemctl daemon-reload")
        result = host.play([listed]).results[0]
        assert result["changed"] is False, result
        assert result["units"][1]["restarted"] is False
        assert result["units"][0].get("restarted_instances", []) == []
        assert host.play([template]).results[0]["changed"] is False
        for unit in instances:
            assert start_count(host, unit) == before[unit], unit
            assert show(host, unit)["InvocationID"] == invocations[unit], unit
    finally:
        host.sh("systemctl stop 'tw@*.service'", check=False)
        clean(host, "tw@.service")


def test_restart_triggers_restart_once_when_a_path_is_newer(bench_host: BenchHost) -> None:
    host = bench_host
    host.sh("mkdir -p /opt/trig && echo v1 > /opt/trig/app.conf && ln -sfn /opt/trig/app.conf /opt/trig/current")
    task = unit_task(name="trig.service", sections={"Service": {"ExecStart": SLEEPER}}, active=True,
                     restart_triggers=["/opt/trig/app.conf", "/opt/trig/missing.conf"])
    try:
        first = host.play([task]).results[0]
        assert first["restarted"] is False
        assert any("missing.conf" in w for w in host.play([task]).results[0].get("warnings", []))
        started = start_count(host, "trig.service")
        host.sh("sleep 0.1; echo v2 > /opt/trig/app.conf")
        check = host.play([task], check=True).results[0]
        assert check["changed"] is True and check["restart_triggered_by"] == ["/opt/trig/app.conf"]
        assert start_count(host, "trig.service") == started, "check mode restarted"
        applied = host.play([task]).results[0]
        assert applied["restarted"] is True and applied["changed"] is True
        assert start_count(host, "trig.service") == started + 1
        steady = host.play([task]).results[0]
        assert steady["changed"] is False and steady["restarted"] is False
        assert start_count(host, "trig.service") == started + 1
        # a symlink switched to a new target counts as a change of the path
        host.sh("sleep 0.1; echo v3 > /opt/trig/v3.conf && ln -sfn /opt/trig/v3.conf /opt/trig/current")
        linked = unit_task(name="trig.service", active=True, restart_triggers=["/opt/trig/current"])
        assert host.play([linked]).results[0]["restarted"] is True
        assert start_count(host, "trig.service") == started + 2
    finally:
        clean(host, "trig.service")


# --- the next run repairs what the last one could not ------------------------------------------


def test_a_rerun_starts_the_fixed_program_of_a_unit_whose_failed_start_used_up_its_start_limit(
        bench_host: BenchHost) -> None:
    """StartLimitBurst=1: after the first run's failed start systemd refuses a plain start;
    the rerun, with the program fixed, starts it and counts one start more in the journal."""
    host = bench_host
    unit = "limited.service"
    task = unit_task(name=unit, sections={"Unit": {"StartLimitIntervalSec": "600", "StartLimitBurst": "1"},
                                          "Service": {"ExecStart": "/opt/limited/app"}},
                     active=True, restart_triggers=["/opt/limited/app"], ignore_errors=True)
    try:
        put_program(host, "/opt/limited/app", "echo limited-broken; exit 1")
        first = host.play([task]).results[0]
        assert first["failed"] is True and "limited-broken" in first["msg"], first["msg"]
        put_program(host, "/opt/limited/app", "echo limited-fixed; exec sleep infinity")
        # the precondition: the limit is really used up, systemd refuses the start by itself
        refused = host.sh(f"systemctl start {unit}", check=False)
        assert refused.returncode != 0, "systemd started the unit: the start limit was not used up"
        assert "Start request repeated too quickly" in host.journal(unit)
        starts = start_count(host, unit)
        rerun = host.play([task]).results[0]
        assert not rerun.get("failed"), rerun.get("msg")
        assert rerun["actions"] == ["start"] and rerun["active_state"] == "active"
        assert show(host, unit, "SubState")["SubState"] == "running"
        assert start_count(host, unit) == starts + 1
        assert "limited-fixed" in host.journal(unit)
    finally:
        clean(host, unit)
        host.sh("rm -rf /opt/limited", check=False)


def test_a_program_replaced_while_its_crashing_process_ran_restarts_the_unit_waiting_to_restart(
        bench_host: BenchHost) -> None:
    """The new program lands while the old one still runs; the old one then dies and the unit
    waits RestartSec=120 for its automatic restart. systemd stamps InactiveExit at that death,
    after the file: the task still sees the process as older than the program and restarts."""
    host = bench_host
    unit = "respawn.service"
    sections = {"Service": {"ExecStart": "/opt/respawn/app", "Restart": "always", "RestartSec": "120"}}
    try:
        # v1 lives 4 s: time enough for the rename below even when the machine is loaded
        put_program(host, "/opt/respawn/app", "echo respawn-v1; sleep 4; exit 3")
        host.play([unit_task(name=unit, sections=sections)])
        host.sh(f"systemctl start {unit}")
        time.sleep(0.3)
        put_program(host, "/opt/respawn/app", "echo respawn-v2; exec sleep infinity")
        waiting = wait_for(host, unit, "SubState", "auto-restart")
        # the precondition: the program's change time lies between the process's start and the
        # InactiveExit stamp systemd wrote when the process died
        stamps = show(host, unit, "ExecMainStartTimestampMonotonic", "InactiveExitTimestampMonotonic")
        changed = float(host.exec("python3", "-c", "import os, time; print(os.stat('/opt/respawn/app').st_ctime"
                                  " - time.time() + time.monotonic())").stdout)
        assert int(stamps["ExecMainStartTimestampMonotonic"]) / 1e6 < changed \
            < int(stamps["InactiveExitTimestampMonotonic"]) / 1e6, (stamps, changed, waiting)
        starts = start_count(host, unit)
        result = host.play([unit_task(name=unit, sections=sections, active=True,
                                      restart_triggers=["/opt/respawn/app"])]).results[0]
        assert result["actions"] == ["restart"] and result["restart_triggered_by"] == ["/opt/respawn/app"]
        assert result["active_state"] == "active" and result["sub_state"] == "running"
        assert start_count(host, unit) == starts + 1
        assert "respawn-v2" in host.journal(unit)
    finally:
        clean(host, unit)
        host.sh("rm -rf /opt/respawn", check=False)


# --- mask, absent and templates --------------------------------------------------------------


def test_masked_on_a_unit_file_in_etc_is_refused_before_anything_stops(bench_host: BenchHost) -> None:
    host = bench_host
    try:
        host.play([unit_task(name="maskme.service", sections={"Service": {"ExecStart": SLEEPER}}, active=True)])
        pid = show(host, "maskme.service")["MainPID"]
        refused = host.play([unit_task(name="maskme.service", masked=True, ignore_errors=True)]).results[0]
        assert refused["failed"] is True and "state: absent with masked: true" in refused["msg"]
        assert show(host, "maskme.service")["MainPID"] == pid, "the unit was stopped before the refusal"
        done = host.play([unit_task(name="maskme.service", state="absent", masked=True)]).results[0]
        assert done["changed"] is True and done["unit_file_state"] == "masked"
        assert show(host, "maskme.service")["UnitFileState"] == "masked"
        assert show(host, "maskme.service")["ActiveState"] == "inactive"
        assert host.exec("readlink", "/etc/systemd/system/maskme.service").stdout.strip() == "/dev/null"
        assert host.play([unit_task(name="maskme.service", state="absent", masked=True)]).results[0]["changed"] \
            is False
    finally:
        clean(host, "maskme.service")


def test_absent_template_stops_and_disables_instances_and_removes_links(bench_host: BenchHost) -> None:
    host = bench_host
    sections = {"Service": {"ExecStart": SLEEPER, "Environment": "INST=%i"},
                "Install": {"WantedBy": "multi-user.target"}}
    try:
        host.play([unit_task(units=[{"name": "worker@.service", "sections": sections},
                                    {"name": "worker@a.service"}, {"name": "worker@b.service"}],
                             enabled=True, active=True)])
        host.exec("systemctl", "start", "worker@c.service")
        removed = host.play([unit_task(name="worker@.service", state="absent")]).results[0]
        assert removed["changed"] is True
        assert sorted(removed["stopped_instances"]) == ["worker@a.service", "worker@b.service", "worker@c.service"]
        for inst in ("worker@a.service", "worker@b.service", "worker@c.service"):
            st = show(host, inst)
            assert st["ActiveState"] == "inactive", inst
        links = host.sh("find /etc/systemd/system -lname '*worker@*' -o -name 'worker@*' | sort").stdout
        assert links.strip() == "", f"links left behind:\n{links}"
        assert "worker@" not in host.exec("systemctl", "list-units", "--all", "--plain", "--no-legend").stdout
        again = host.play([unit_task(name="worker@.service", state="absent")]).results[0]
        assert again["changed"] is False
    finally:
        host.sh("systemctl stop 'worker@*.service'", check=False)
        clean(host, "worker@.service")


VENDOR_UNIT = """\
[Unit]
Description=vendor unit shipped by a package

[Service]
ExecStart=/bin/sleep infinity
Environment=FLAVOUR=vendor

[Install]
WantedBy=multi-user.target
Alias=vendor-alias.service
"""


def test_absent_override_of_a_vendor_unit_keeps_its_enablement(bench_host: BenchHost) -> None:
    host = bench_host
    # what a package does: a unit under /usr/lib, enabled with its alias, running
    host.exec("sh", "-c", "cat > /usr/lib/systemd/system/vendored.service && systemctl daemon-reload && "
              "systemctl enable --now vendored.service", input=VENDOR_UNIT)
    links_before = host.sh("find /etc/systemd/system -lname '*vendored*' | sort").stdout
    try:
        override = {"Unit": {"Description": "local override"}, "Service": {"ExecStart": SLEEPER, "Environment": "FLAVOUR=local"},
                    "Install": {"WantedBy": "multi-user.target", "Alias": "vendor-alias.service"}}
        host.play([unit_task(name="vendored.service", sections=override, enabled=True, active=True)])
        assert show(host, "vendored.service", "Environment")["Environment"] == "FLAVOUR=local"
        started = start_count(host, "vendored.service")
        removed = host.play([unit_task(name="vendored.service", state="absent")]).results[0]
        assert removed["changed"] is True and "disable" not in removed["actions"]
        st = show(host, "vendored.service", "FragmentPath", "UnitFileState", "ActiveState", "Environment")
        assert st["FragmentPath"].endswith("/lib/systemd/system/vendored.service")  # /lib on merged /usr
        assert st["UnitFileState"] == "enabled" and st["ActiveState"] == "active"
        assert st["Environment"] == "FLAVOUR=vendor", "still on the override"
        assert start_count(host, "vendored.service") == started + 1, "restarted once on the vendor definition"
        assert host.sh("find /etc/systemd/system -lname '*vendored*' | sort").stdout == links_before
        assert host.exec("systemctl", "is-enabled", "vendor-alias.service", check=False).stdout.strip() in (
            "alias", "enabled")
    finally:
        host.sh("systemctl disable --now vendored.service; rm -f /usr/lib/systemd/system/vendored.service "
                "/etc/systemd/system/vendored.service; systemctl daemon-reload", check=False)


WORKER = "#!/bin/sh\nexec sleep infinity\n"


def test_documented_many_units_example_with_task_level_enabled_and_active(bench_host: BenchHost) -> None:
    host = bench_host
    host.exec("sh", "-c", "cat > /usr/local/bin/worker && chmod 755 /usr/local/bin/worker", input=WORKER)
    example = """
- unitcraft.systemd.unit:
    enabled: true          # task-level values are defaults for every item
    active: true
    units:
      - name: worker@.service
        sections:
          Service: {ExecStart: /usr/local/bin/worker --id %i}
          Install: {WantedBy: multi-user.target}
      - name: worker@1.service
      - name: worker@2.service
        active: false      # an item overrides the default
"""
    try:
        result = host.play(example).results[0]
        template, one, two = result["units"]
        assert template["actions"] == [] and template["file_changed"] is True
        assert one["actions"] == ["enable", "start"] and two["actions"] == ["enable"]
        assert show(host, "worker@1.service")["ActiveState"] == "active"
        assert show(host, "worker@2.service")["ActiveState"] == "inactive"
        assert host.exec("test", "-L", "/etc/systemd/system/multi-user.target.wants/worker@2.service").returncode == 0
        assert host.play(example).results[0]["changed"] is False
        refused = host.play([unit_task(name="worker@.service", enabled=True, ignore_errors=True)]).results[0]
        assert refused["failed"] is True and "DefaultInstance" in refused["msg"]
    finally:
        host.sh("systemctl stop 'worker@*.service'", check=False)
        clean(host, "worker@.service")
        host.sh("rm -f /etc/systemd/system/multi-user.target.wants/worker@*; systemctl daemon-reload", check=False)


# --- truthful returns and real plays -------------------------------------------------------


def test_enabled_on_a_unit_without_install_reports_static(bench_host: BenchHost) -> None:
    host = bench_host
    try:
        result = host.play([unit_task(name="noinstall.service", sections={"Service": {"ExecStart": SLEEPER}},
                                      enabled=True)]).results[0]
        assert result["unit_file_state"] == "static" and result["enabled"] is False
        assert result["state"] == "present", "the top-level state is the unit's, not Ansible's path info"
        assert "enable-without-install" in [f["rule"] for f in result["lint"]]
        assert show(host, "noinstall.service")["UnitFileState"] == "static"
        gone = host.play([unit_task(name="noinstall.service", state="absent")]).results[0]
        assert gone["state"] == "absent"
    finally:
        clean(host, "noinstall.service")


def test_check_mode_accepts_a_program_an_earlier_task_installs(bench_host: BenchHost) -> None:
    host = bench_host
    play = [
        {"name": "ship the program",
         "ansible.builtin.copy": {"dest": "/opt/later-prog", "mode": "0755",
                                  "content": "#!/bin/sh\nexec sleep infinity\n"}},
        unit_task(name="later.service", sections={"Service": {"ExecStart": "/opt/later-prog"}}, active=True),
    ]
    try:
        checked = host.play(play, check=True).results[1]
        assert checked["changed"] is True
        assert any("earlier task" in w for w in checked.get("warnings", [])), checked.get("warnings")
        assert host.read_file("/etc/systemd/system/later.service") is None
        applied = host.play(play).results[1]
        assert applied["changed"] is True and show(host, "later.service")["ActiveState"] == "active"
    finally:
        clean(host, "later.service")
        host.sh("rm -f /opt/later-prog")
