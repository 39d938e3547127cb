# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit/dropin task engine with a fake systemctl: planning, ordering, check mode, errors."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils import _manager
from ansible_collections.unitcraft.systemd.plugins.module_utils._file_plan import FilePlanner
from ansible_collections.unitcraft.systemd.plugins.module_utils._pending import PendingRestarts
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import TriggerRecords
from ansible_collections.unitcraft.systemd.plugins.module_utils._manager import (
    TaskError,
    UnitTask,
    build_requests,
    merge_sections,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import (
    Systemctl,
    SystemctlError,
    parse_show,
)

BASE = {"scope": "system", "root": None, "daemon_reload": True, "state": "present", "restart_on_change": True,
        "validate": "off", "lint": "warn", "backup": False, "mode": "0644", "owner": None, "group": None,
        "sections": None, "content": None, "enabled": None, "masked": None, "active": None, "units": None,
        "rewrite_equivalent": False,
        "name": None}


class FakeModule:
    """Records every command; answers `systemctl show` from a table of unit states."""

    def __init__(self, states: dict[str, dict[str, str]] | None = None, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self._diff = True
        self.states = states or {}
        self.commands: list[list[str]] = []
        self.written: dict[str, str] = {}

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return f"/usr/bin/{name}"

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.commands.append(argv)
        units = argv[argv.index("--") + 1:] if "--" in argv else []
        if "show" in argv:
            names = [u for u in units if "*" not in u]
            names += [u for pattern in units if "*" in pattern for u in sorted(self.states)
                      if fnmatch.fnmatch(u, pattern) and u not in names]
            blocks = []
            for unit in names:
                st = {"Id": unit, "LoadState": "not-found", "ActiveState": "inactive", "UnitFileState": "",
                      "NeedDaemonReload": "no", "MainPID": "0", "Job": "",
                      "ActiveEnterTimestampMonotonic": "1", **self.states.get(unit, {})}
                blocks.append("\n".join(f"{k}={v}" for k, v in st.items()))
            return 0, "\n\n".join(blocks) + "\n", ""
        verb = next((a for a in argv[1:] if not a.startswith("--")), "")
        if verb == "is-enabled":
            return 0, "".join((self.states.get(u, {}).get("UnitFileState") or "disabled") + "\n" for u in units), ""
        for unit in units:
            self.transition(verb, unit)
        return 0, "", ""

    def transition(self, verb: str, unit: str) -> None:
        """What systemd would do to the unit's state: starts succeed, stops stop."""
        state = self.states.setdefault(unit, {})
        if verb == "reset-failed":
            state.update(NRestarts="0", Result="success")
            if state.get("ActiveState") == "failed":
                state.update(ActiveState="inactive", SubState="dead")
        elif verb in ("start", "restart") and state.get("Result") == "start-limit-hit":
            pass  # systemd refuses the start until the rate limit is reset
        elif verb in ("start", "restart"):
            state.update(LoadState="loaded", ActiveState="active", SubState="running",
                         MainPID=str(100 + len(self.commands)))
        elif verb == "stop":
            state.update(ActiveState="inactive", SubState="dead", MainPID="0")
        elif verb in ("enable", "disable", "mask"):
            state["UnitFileState"] = {"enable": "enabled", "disable": "disabled", "mask": "masked"}[verb]

    def verbs(self) -> list[str]:
        """The systemctl verbs run, with their units, in order (show excluded)."""
        out = []
        for argv in self.commands:
            if argv[0].endswith("systemctl") and "show" not in argv:
                args = [a for a in argv[1:] if not a.startswith("--")]
                out.append(" ".join(args))
        return out

    def atomic_move(self, src: str, dest: str, unsafe_writes: bool = False) -> None:
        os.replace(src, dest)

    def backup_local(self, path: str) -> str:
        return path + ".bak"

    def load_file_common_arguments(self, params: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        return {"path": path, **params}

    def set_fs_attributes_if_different(self, file_args: dict[str, Any], changed: bool, diff: Any = None) -> bool:
        return changed


def params(**kw: Any) -> dict[str, Any]:
    return {**BASE, **kw}


SERVICE = {"Service": {"ExecStart": "/usr/bin/sleep infinity"}, "Install": {"WantedBy": "multi-user.target"}}


@pytest.fixture()
def unit_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "etc-systemd-system"
    d.mkdir()
    monkeypatch.setattr(_manager, "unit_directory", lambda scope, root, home=None: str(d))
    # the task's marks and trigger records go to the test's directory, never to the machine's /run or /var/lib
    state = tmp_path / "state"
    monkeypatch.setattr(_manager, "task_state", lambda scope, root, user: (
        PendingRestarts(str(state / "pending")), TriggerRecords(str(state / "records"))))
    return d


def run(module: FakeModule, p: dict[str, Any], dropin: bool = False, settle: float = 0) -> dict[str, Any]:
    task = UnitTask(module, build_requests(p, dropin_module=dropin), scope=p["scope"], root=p["root"],
                    daemon_reload=p["daemon_reload"], settle=settle)
    task.gate.sleep = lambda seconds: None
    return task.run()


def test_new_unit_is_written_then_one_reload_between_enable_and_start(unit_dir: Path) -> None:
    module = FakeModule()
    result = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    assert result["changed"] and result["daemon_reloaded"]
    assert module.verbs() == ["enable a.service", "daemon-reload", "start a.service"]
    assert (unit_dir / "a.service").read_text().startswith("[Service]\nExecStart=/usr/bin/sleep infinity\n")


def test_unchanged_unit_runs_no_mutation(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep infinity\n\n[Install]\n"
                                        "WantedBy=multi-user.target\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}})
    result = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    assert result["changed"] is False and result["daemon_reloaded"] is False
    assert module.verbs() == []
    assert len(module.commands) == 1, "one show, nothing else"


def test_changed_running_unit_is_restarted_after_the_reload(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n\n[Install]\nWantedBy=multi-user.target\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}})
    result = run(module, params(name="a.service", sections=SERVICE))
    # a loaded unit's start limit and failed state are cleared before the task's own restart
    assert module.verbs() == ["daemon-reload", "reset-failed a.service", "restart a.service"]
    assert result["units"][0]["restarted"] is True


def test_a_unit_out_of_start_attempts_is_reset_before_the_tasks_start_and_runs(unit_dir: Path) -> None:
    """A crash loop used up StartLimitBurst=: without reset-failed systemd refuses the start."""
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "failed", "SubState": "failed",
                                       "Result": "start-limit-hit", "NRestarts": "4"}})
    result = run(module, params(name="a.service", sections=SERVICE, active=True))
    assert module.verbs() == ["daemon-reload", "reset-failed a.service", "start a.service"]
    assert result["units"][0]["active_state"] == "active" and result["units"][0]["actions"] == ["start"]


def test_a_new_unit_gets_no_reset_failed(unit_dir: Path) -> None:
    """systemd has not loaded it: nothing to clear, and systemctl would refuse the name."""
    module = FakeModule()
    run(module, params(name="new.service", sections=SERVICE, active=True))
    assert "reset-failed" not in " ".join(module.verbs())


def test_restarts_are_counted_from_zero_after_the_reset(unit_dir: Path) -> None:
    """A crash-looping unit had NRestarts=1; after the reset and the restart it died once (1 again)."""
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")

    class DiesOnce(FakeModule):
        def transition(self, verb: str, unit: str) -> None:
            super().transition(verb, unit)
            if verb == "restart":
                self.states[unit]["NRestarts"] = "1"

    module = DiesOnce({"a.service": {"LoadState": "loaded", "ActiveState": "activating", "SubState": "auto-restart",
                                     "NRestarts": "1"}})
    with pytest.raises(TaskError, match=r"keeps dying: 1 restart\(s\)"):
        run(module, params(name="a.service", sections=SERVICE, active=True))
    assert module.verbs() == ["daemon-reload", "reset-failed a.service", "restart a.service"]


def test_restart_on_change_false_keeps_the_process(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active"}})
    run(module, params(name="a.service", sections=SERVICE, restart_on_change=False))
    assert module.verbs() == ["daemon-reload"]


def test_check_mode_predicts_and_touches_nothing(unit_dir: Path) -> None:
    module = FakeModule(check_mode=True)
    result = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    unit = result["units"][0]
    assert result["changed"] and result["daemon_reloaded"]
    assert unit["actions"] == ["enable", "start"] and unit["active"] is True and unit["enabled"] is True
    assert result["diff"]["before"] == "" and "ExecStart" in result["diff"]["after"]
    assert module.verbs() == [] and not (unit_dir / "a.service").exists()


def test_many_units_batch_each_verb_into_one_call(unit_dir: Path) -> None:
    module = FakeModule()
    names = [f"u{i}.service" for i in range(50)]
    run(module, params(units=[{"name": n} for n in names], sections=SERVICE, enabled=True, active=True))
    assert [v.split()[0] for v in module.verbs()] == ["enable", "daemon-reload", "start"]
    assert len(module.commands) == 5  # show, enable, reload, start, one poll of the jobs (also the final read)


def test_absent_stops_disables_removes_and_reloads(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    (unit_dir / "a.service.d").mkdir()
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}})
    result = run(module, params(name="a.service", state="absent"))
    assert module.verbs() == ["stop a.service", "disable a.service", "daemon-reload"]
    assert not (unit_dir / "a.service").exists() and not (unit_dir / "a.service.d").exists()
    assert result["units"][0]["file_changed"] is True


def test_install_section_change_reenables(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep infinity\n\n[Install]\n"
                                        "WantedBy=graphical.target\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "UnitFileState": "enabled"}})
    run(module, params(name="a.service", sections=SERVICE, enabled=True))
    assert module.verbs() == ["reenable a.service", "daemon-reload"]


def test_need_daemon_reload_alone_triggers_one_reload(unit_dir: Path) -> None:
    module = FakeModule({"ntp.service": {"LoadState": "loaded", "NeedDaemonReload": "yes", "ActiveState": "active"}})
    result = run(module, params(name="ntp.service", active=True))
    assert module.verbs() == ["daemon-reload"] and result["changed"]


def test_failed_start_reports_unit_state(unit_dir: Path) -> None:
    class Failing(FakeModule):
        def run_command(self, argv: list[str], **kw: Any) -> tuple[int, str, str]:
            if "start" in argv:
                self.commands.append(argv)
                return 1, "", "Job for a.service failed because the control process exited with error code."
            return super().run_command(argv, **kw)

    module = Failing()
    with pytest.raises(TaskError) as err:
        run(module, params(name="a.service", sections=SERVICE, active=True))
    assert "Job for a.service failed" in err.value.msg and "ActiveState=inactive" in err.value.msg


@pytest.mark.parametrize("p, needle", [
    (params(name="a b.service"), "a b.service"),
    (params(name="x.service", sections=SERVICE, content="[Service]\n"), "either sections or content"),
    (params(units=[{"name": "a.service"}, {"sections": SERVICE}]), "units[1]"),
    (params(units=[{"name": "a.service"}, {"name": "a.service"}]), "more than once"),
    (params(units=[]), "empty"),
    (params(name="w@.service", active=True), "template"),
    (params(name="a.service", active=True, root="/srv/img"), "root"),
    (params(name="a.service", active=True, scope="global"), "global"),
    (params(name="a.service", masked=True, sections=SERVICE), "masked"),
    (params(name="a.service", state="absent", sections=SERVICE), "absent"),
])
def test_bad_requests_are_refused_with_the_offender_named(p: dict[str, Any], needle: str) -> None:
    with pytest.raises(TaskError) as err:
        build_requests(p)
    assert needle in err.value.msg


def test_injection_is_refused_before_any_command(unit_dir: Path) -> None:
    module = FakeModule()
    bad = {"Service": {"ExecStart": "/bin/true\nExecStartPost=/bin/evil"}}
    with pytest.raises(TaskError) as err:
        run(module, params(name="a.service", sections=bad))
    assert "ExecStart" in err.value.msg and "newline" in err.value.msg
    assert module.commands == [] and list(unit_dir.iterdir()) == []


def test_units_items_inherit_task_level_options() -> None:
    items = [{"name": "a.service"},
             {"name": "b.service", "enabled": False, "content": "[Service]\nExecStart=/bin/true\n"}]
    reqs = build_requests(params(units=items, sections=SERVICE, enabled=True, validate="errors"))
    assert reqs[0].sections == SERVICE and reqs[0].enabled is True and reqs[0].validate == "errors"
    assert reqs[1].sections is None and reqs[1].content and reqs[1].enabled is False


def test_dropin_defaults_to_override_and_refuses_paths() -> None:
    assert build_requests(params(name="a.service", sections=SERVICE), dropin_module=True)[0].dropin == "override"
    with pytest.raises(TaskError, match="plain file stem"):
        build_requests(params(name="a.service", sections=SERVICE, dropin="../x"), dropin_module=True)


@pytest.mark.parametrize("base, overlay, expected", [
    ({"Service": {"ExecStart": "/a"}}, {"Service": {"ExecStart": ["", "/b"]}}, {"Service": {"ExecStart": "/b"}}),
    ({"Unit": {"After": "x"}}, {"Unit": {"After": "y"}}, {"Unit": {"After": ["x", "y"]}}),
    ({"Unit": {"After": "x"}}, {"Install": {"WantedBy": "m"}}, {"Unit": {"After": "x"}, "Install": {"WantedBy": "m"}}),
    ({"Service": {"Type": "simple"}}, {"Service": {"Type": "oneshot"}}, {"Service": {"Type": "oneshot"}}),
    ({"Service": {"Restart": "always"}}, {"Service": {"Restart": ""}}, {"Service": {"Restart": ""}}),
])
def test_merge_sections_follows_systemd_dropin_rules(base: Any, overlay: Any, expected: Any) -> None:
    assert merge_sections(base, overlay) == expected


def test_parse_show_splits_blocks_and_checks_the_count() -> None:
    text = "Id=a.service\nActiveState=active\n\nId=b.service\nActiveState=failed\n"
    assert parse_show(text, 2) == [{"Id": "a.service", "ActiveState": "active"},
                                   {"Id": "b.service", "ActiveState": "failed"}]
    with pytest.raises(SystemctlError):
        parse_show(text, 3)


def test_is_enabled_resumes_after_a_missing_unit_like_systemd_252() -> None:
    class Offline(FakeModule):
        def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
            self.commands.append(argv)
            units = argv[argv.index("--") + 1:]
            out = []
            for u in units:
                if u.startswith("missing"):
                    return 1, "\n".join(out), f"Failed to get unit file state for {u}: No such file or directory"
                out.append("enabled")
            return 0, "\n".join(out), ""

    sc = Systemctl(Offline(), root="/srv/img")
    states = sc.is_enabled(["a.service", "missing1.service", "b.service", "missing2.service"])
    assert states == {"a.service": "enabled", "missing1.service": "not-found", "b.service": "enabled",
                      "missing2.service": "not-found"}
    assert sc.calls == 2  # one call per missing unit met, none after the last
    assert all("--root=/srv/img" in argv for argv in sc.commands)


ONLINE_WITHOUT_WANTS = {"Unit": {"After": "network-online.target"}, "Service": {"ExecStart": "/bin/true"}}


def test_lint_warn_returns_findings_and_installs(unit_dir: Path) -> None:
    module = FakeModule()
    task = UnitTask(module, build_requests(params(name="a.service", sections=ONLINE_WITHOUT_WANTS)))
    result = task.run()
    findings = result["units"][0]["lint"]
    assert [f["rule"] for f in findings] == ["wants-network-online"]
    assert findings[0]["section"] == "Unit" and findings[0]["key"] == "After"
    assert any("wants-network-online" in w for w in task.warnings)
    assert (unit_dir / "a.service").exists()


def test_lint_error_fails_before_any_change(unit_dir: Path) -> None:
    module = FakeModule()
    with pytest.raises(TaskError) as err:
        run(module, params(name="a.service", sections=ONLINE_WITHOUT_WANTS, lint="error"))
    assert "wants-network-online" in err.value.msg and "a.service" in err.value.msg
    assert module.commands == [] and not (unit_dir / "a.service").exists()


def test_lint_enable_without_install_uses_the_enabled_option(unit_dir: Path) -> None:
    module = FakeModule()
    result = run(module, params(name="a.service", sections={"Service": {"ExecStart": "/bin/true"}}, enabled=True,
                                lint="warn"))
    assert "enable-without-install" in [f["rule"] for f in result["units"][0]["lint"]]


def test_lint_of_a_dropin_sees_the_merged_unit(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Unit]\nWants=network-online.target\n[Service]\nExecStart=/bin/true\n")
    module = FakeModule({"a.service": {"LoadState": "loaded"}})
    result = run(module, params(name="a.service", sections={"Unit": {"After": "network-online.target"}}),
                 dropin=True)
    assert result["units"][0]["lint"] == []


def test_vendor_files_are_never_written_or_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vendor = tmp_path / "usr/lib/systemd/system"
    vendor.mkdir(parents=True)
    (vendor / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    monkeypatch.setattr(_manager, "unit_directory", lambda scope, root, home=None: str(vendor))
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active"}})
    with pytest.raises(TaskError, match="vendor file"):
        run(module, params(name="a.service", state="absent", root=str(tmp_path)))
    assert module.commands == [] and (vendor / "a.service").exists()


def test_changed_template_restarts_its_running_instances_once(unit_dir: Path) -> None:
    (unit_dir / "w@.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")
    running = {"LoadState": "loaded", "ActiveState": "active"}
    module = FakeModule({"w@1.service": running, "w@9.service": dict(running),
                         "w@5.service": {"LoadState": "loaded", "ActiveState": "inactive"}})
    result = run(module, params(units=[{"name": "w@.service", "sections": {"Service": {"ExecStart": "/bin/x %i"}}},
                                       {"name": "w@1.service"}]))
    assert module.verbs()[-1] == "restart w@1.service w@9.service"  # each once, in one call
    template, listed = result["units"]
    assert template["restarted_instances"] == ["w@9.service"]
    assert listed["restarted"] is True and listed["actions"] == ["restart"]
    shows = [argv for argv in module.commands if "show" in argv]
    assert "w@*.service" in shows[0], "the instances are read in the same show as the units"


def test_unchanged_template_costs_one_show_and_restarts_nothing(unit_dir: Path) -> None:
    (unit_dir / "w@.service").write_text("[Service]\nExecStart=/bin/x %i\n")
    module = FakeModule({"w@1.service": {"LoadState": "loaded", "ActiveState": "active"}})
    result = run(module, params(name="w@.service", sections={"Service": {"ExecStart": "/bin/x %i"}}))
    assert result["changed"] is False and module.verbs() == []
    assert len(module.commands) == 1 and "w@*.service" in module.commands[0]


def test_a_failed_start_does_not_skip_the_restart_of_another_unit_and_reports_changed(unit_dir: Path) -> None:
    class StartFails(FakeModule):
        def transition(self, verb: str, unit: str) -> None:
            if verb == "start" and unit == "new.service":
                self.states.setdefault(unit, {}).update(LoadState="loaded", ActiveState="failed", Result="exit-code")
                return
            super().transition(verb, unit)

        def run_command(self, argv: list[str], **kw: Any) -> tuple[int, str, str]:
            rc, out, err = super().run_command(argv, **kw)
            if "start" in argv and "new.service" in argv:
                return 1, out, "Job for new.service failed."
            return rc, out, err

    (unit_dir / "old.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")
    module = StartFails({"old.service": {"LoadState": "loaded", "ActiveState": "active"}})
    with pytest.raises(TaskError) as err:
        run(module, params(units=[{"name": "new.service", "active": True}, {"name": "old.service"}], sections=SERVICE))
    assert module.verbs()[-2:] == ["start new.service", "restart old.service"], "the restart still ran"
    assert "Job for new.service failed" in err.value.msg and "unit new.service" in err.value.msg
    assert "unit old.service" not in err.value.msg
    assert err.value.result["changed"] is True and err.value.result["daemon_reloaded"] is True
    new, old = err.value.result["units"]
    assert new["problem"] and old["restarted"] is True and "problem" not in old


def test_masking_a_unit_file_in_the_admin_directory_is_refused_before_any_command(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active"}})
    with pytest.raises(TaskError, match="state: absent with masked: true"):
        run(module, params(name="a.service", masked=True))
    assert module.commands == []


def test_absent_and_masked_remove_the_file_then_mask(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "static"}})
    result = run(module, params(name="a.service", state="absent", masked=True))
    assert module.verbs() == ["stop a.service", "mask a.service", "daemon-reload"]
    assert result["units"][0]["unit_file_state"] == "masked"


def test_absent_template_stops_its_running_instances_and_disables_it(unit_dir: Path) -> None:
    (unit_dir / "w@.service").write_text("[Service]\nExecStart=/bin/x %i\n[Install]\nWantedBy=multi-user.target\n")
    wants = unit_dir / "multi-user.target.wants"
    wants.mkdir()
    (wants / "w@a.service").symlink_to(unit_dir / "w@.service")
    module = FakeModule({"w@a.service": {"LoadState": "loaded", "ActiveState": "active"},
                         "w@b.service": {"LoadState": "loaded", "ActiveState": "inactive"}})
    result = run(module, params(name="w@.service", state="absent"))
    assert module.verbs() == ["is-enabled w@.service", "stop w@a.service", "disable w@.service", "daemon-reload"]
    assert result["units"][0]["stopped_instances"] == ["w@a.service"]
    assert not (unit_dir / "w@.service").exists() and not (wants / "w@a.service").is_symlink()


def test_absent_override_of_a_vendor_unit_restarts_it_and_keeps_its_links(
        tmp_path: Path, unit_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vendor = tmp_path / "lib"
    vendor.mkdir()
    (vendor / "v.service").write_text("[Service]\nExecStart=/bin/true\n")
    (unit_dir / "v.service").write_text("[Service]\nExecStart=/bin/false\n")
    real_find = FilePlanner.find_fragment

    def find(self: FilePlanner, unit: Any, vendor_only: bool = False) -> tuple[str, str] | None:
        if vendor_only:
            return str(vendor / unit.name), (vendor / unit.name).read_text()
        return real_find(self, unit)

    monkeypatch.setattr(FilePlanner, "find_fragment", find)
    module = FakeModule({"v.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}})
    result = run(module, params(name="v.service", state="absent"))
    assert module.verbs() == ["daemon-reload", "reset-failed v.service", "restart v.service"]
    assert result["units"][0]["unit_file_state"] == "enabled"


def test_a_template_item_does_not_take_task_level_enabled_and_active() -> None:
    reqs = build_requests(params(units=[{"name": "w@.service", "sections": SERVICE}, {"name": "w@1.service"}],
                                 enabled=True, active=True))
    assert (reqs[0].enabled, reqs[0].active) == (None, None)
    assert (reqs[1].enabled, reqs[1].active) == (True, True)


def test_enabling_a_template_without_default_instance_is_refused_while_planning(unit_dir: Path) -> None:
    module = FakeModule()
    with pytest.raises(TaskError, match="DefaultInstance"):
        run(module, params(name="w@.service", sections=SERVICE, enabled=True))
    assert module.commands == [] and not (unit_dir / "w@.service").exists()


def test_enabled_without_install_is_not_enabled_and_reported_static(unit_dir: Path) -> None:
    module = FakeModule()
    module.states["a.service"] = {"UnitFileState": "static"}
    result = run(module, params(name="a.service", sections={"Service": {"ExecStart": "/bin/true"}}, enabled=True))
    assert "enable" not in " ".join(module.verbs())
    assert result["units"][0]["unit_file_state"] == "static" and result["units"][0]["enabled"] is False


def test_no_block_queues_and_does_not_wait(unit_dir: Path) -> None:
    module = FakeModule()
    task = UnitTask(module, build_requests(params(name="a.service", sections=SERVICE, active=True)), no_block=True)
    result = task.run()
    assert result["queued"] == ["a.service"] and result["units"][0]["queued"] is True
    starts = [argv for argv in module.commands if "start" in argv]
    assert starts and "--no-block" in starts[0]
    shows = [argv for argv in module.commands if "show" in argv]
    assert len(shows) == 2, "the state read before and the final read; no polling"


# --- interrupted runs and triggers: marks and records, no file times -------------------------


def test_the_restart_is_marked_before_the_file_is_written_and_the_mark_removed_once_queued(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep 1\n")
    pending = unit_dir.parent / "state" / "pending"
    seen: list[str] = []

    class Watching(FakeModule):
        def run_command(self, argv: list[str], **kw: Any) -> tuple[int, str, str]:
            if "daemon-reload" in argv or "restart" in argv:
                seen.append(f"{argv[-1]} marked={sorted(os.listdir(pending)) if pending.is_dir() else []}")
            return super().run_command(argv, **kw)
    module = Watching({"a.service": {"LoadState": "loaded", "ActiveState": "active"}})
    run(module, params(name="a.service", sections=SERVICE))
    assert seen == ["daemon-reload marked=['a.service']", "a.service marked=['a.service']"]
    assert not pending.exists() or os.listdir(pending) == [], "the mark is gone once the restart is queued"


def test_a_rerun_after_a_kill_before_the_restart_restarts_once_and_a_rerun_after_it_does_not(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep infinity\n\n[Install]\n"
                                        "WantedBy=multi-user.target\n")
    pending = PendingRestarts(str(unit_dir.parent / "state" / "pending"))
    running = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled",
               "ExecMainStartTimestampMonotonic": "5000000"}  # began at monotonic 5 s
    pending.mark(["a.service"])  # the killed run marked it, wrote the file, and died before the reload
    module = FakeModule({"a.service": dict(running)})
    first = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    assert first["units"][0]["restarted"] is True and first["units"][0]["restart_pending"] is True
    assert module.verbs() == ["reset-failed a.service", "restart a.service"]
    assert pending.stamp_of("a.service") == (False, None)
    # killed after its restart was queued: the unit began after the load stamp, only the mark is left
    pending.mark(["a.service"], loaded=4.0)
    again = FakeModule({"a.service": dict(running)})
    second = run(again, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    assert second["units"][0]["restarted"] is False and again.verbs() == []
    assert pending.stamp_of("a.service") == (False, None), "the stale mark is removed"


def test_check_mode_reports_a_pending_restart_and_keeps_the_mark(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep infinity\n")
    pending = PendingRestarts(str(unit_dir.parent / "state" / "pending"))
    pending.mark(["a.service"])
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "active",
                                       "ExecMainStartTimestampMonotonic": "5000000"}}, check_mode=True)
    result = run(module, params(name="a.service", sections=SERVICE))
    assert result["changed"] is True and result["units"][0]["restarted"] is True and module.verbs() == []
    assert pending.stamp_of("a.service")[0] is True


def test_trigger_content_restarts_once_whatever_its_mtime(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text("[Service]\nExecStart=/usr/bin/sleep infinity\n")
    conf = unit_dir.parent / "app.conf"
    conf.write_text("v1")
    running = {"LoadState": "loaded", "ActiveState": "active", "ExecMainStartTimestampMonotonic": "1"}
    task = params(name="a.service", sections=SERVICE, restart_triggers=[str(conf)])
    first = run(FakeModule({"a.service": dict(running)}), task)  # no record yet: times decide, once
    assert first["units"][0]["restarted"] is True
    assert run(FakeModule({"a.service": dict(running)}), task)["units"][0]["restarted"] is False, "recorded: same content"
    os.utime(conf, (2e9, 2e9))  # a future mtime
    assert run(FakeModule({"a.service": dict(running)}), task)["units"][0]["restarted"] is False
    conf.write_text("v2")
    os.utime(conf, (1e9, 1e9))  # new content with an old mtime
    third = run(FakeModule({"a.service": dict(running)}), task)
    assert third["units"][0]["restarted"] is True and third["units"][0]["restart_triggered_by"] == [str(conf)]
    assert run(FakeModule({"a.service": dict(running)}), task)["units"][0]["restarted"] is False


@pytest.mark.parametrize("attrs, needle", [
    ({"mode": "0x44"}, "mode: '0x44' is neither an octal mode"),
    ({"mode": 0o17777}, "mode: 8191 is not a mode"),
    ({"mode": "u=rw,g=r,o=r", "owner": "nosuchuser-unitcraft"}, "owner: no user 'nosuchuser-unitcraft' on the target"),
    ({"group": "nosuchgroup-unitcraft"}, "group: no group 'nosuchgroup-unitcraft' on the target"),
])
def test_a_bad_file_attribute_is_refused_while_planning_and_nothing_is_written(
        unit_dir: Path, attrs: dict[str, Any], needle: str) -> None:
    module = FakeModule()
    with pytest.raises(TaskError, match="unit a.service: ") as caught:
        run(module, params(name="a.service", sections=SERVICE, active=True, **attrs))
    assert needle in caught.value.msg and "nothing was changed" in caught.value.msg
    assert module.commands == [] and list(unit_dir.iterdir()) == []


@pytest.mark.parametrize("mode", ["0644", "644", 0o644, "u=rw,g=r,o=r", "a+r", None])
def test_good_modes_pass_the_attribute_check(unit_dir: Path, mode: Any) -> None:
    run(FakeModule(), params(name="a.service", sections=SERVICE, mode=mode, owner="root", group="0"))
    assert (unit_dir / "a.service").exists()


# --- adopting files another tool wrote, and inputs that point the wrong way -----------------

TEMPLATED = """# Managed by Ansible (template)
[Install]
WantedBy = multi-user.target

[Service]
ExecStart = /usr/bin/sleep \\
    infinity
"""


def test_a_file_that_says_the_same_in_another_form_is_adopted_without_a_restart(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text(TEMPLATED)
    running = {"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}}
    module = FakeModule(dict(running))
    result = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True))
    unit = result["units"][0]
    assert result["changed"] is False and unit["differs_only_in_form"] is True and unit["restarted"] is False
    assert module.verbs() == [] and (unit_dir / "a.service").read_text() == TEMPLATED, "left as it was"
    module = FakeModule(dict(running))
    rewritten = run(module, params(name="a.service", sections=SERVICE, enabled=True, active=True,
                                   rewrite_equivalent=True))
    assert rewritten["changed"] is True and rewritten["units"][0]["restarted"] is False
    assert module.verbs() == ["daemon-reload"], "rewritten into the canonical form: one reload, no restart"
    assert (unit_dir / "a.service").read_text().startswith("[Service]\nExecStart=/usr/bin/sleep infinity\n")


def test_a_different_value_or_raw_content_is_not_equivalent(unit_dir: Path) -> None:
    (unit_dir / "a.service").write_text(TEMPLATED.replace("infinity", "1000"))
    running = {"a.service": {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}}
    module = FakeModule(dict(running))
    result = run(module, params(name="a.service", sections=SERVICE, enabled=True))
    assert result["units"][0]["restarted"] is True and "differs_only_in_form" not in result["units"][0]
    (unit_dir / "b.service").write_text(TEMPLATED)
    module = FakeModule({"b.service": running["a.service"]})
    content = run(module, params(name="b.service", content="[Service]\nExecStart=/usr/bin/sleep infinity\n"
                                 "\n[Install]\nWantedBy=multi-user.target\n"))
    assert content["units"][0]["restarted"] is True, "raw content is compared byte for byte"


@pytest.mark.parametrize("p, needle", [
    ({"sections": {}}, "sections is empty"),
    ({"sections": {"Service": {}}}, "sections is empty"),
])
def test_inputs_that_systemd_would_misreport_are_refused_naming_the_cause(
        unit_dir: Path, p: dict[str, Any], needle: str) -> None:
    module = FakeModule()
    with pytest.raises(TaskError, match="unit a.service: " + needle):
        run(module, params(name="a.service", **p))
    assert module.commands == [] and list(unit_dir.iterdir()) == []


def test_scope_user_without_the_connecting_users_manager_is_refused_before_any_command(
        unit_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run-user"))
    module = FakeModule()
    with pytest.raises(TaskError, match="has no running user manager") as caught:
        run(module, params(name="a.service", scope="user", sections=SERVICE, active=True))
    assert str(tmp_path / "run-user" / "systemd" / "private") in caught.value.msg
    assert module.commands == [] and list(unit_dir.iterdir()) == []


def test_a_temporary_file_left_by_a_killed_write_is_removed_by_the_next_write(unit_dir: Path) -> None:
    (unit_dir / ".a.service.k1ll3d.tmp").write_text("[Service]\nExecSt")  # killed half-way
    (unit_dir / ".other.service.x.tmp").write_text("not ours to remove")
    run(FakeModule(), params(name="a.service", sections=SERVICE))
    assert sorted(p.name for p in unit_dir.iterdir()) == [".other.service.x.tmp", "a.service"]


def test_returned_active_agrees_with_active_state(unit_dir: Path) -> None:
    """A unit still activating, or waiting for its automatic restart, is not reported active."""
    module = FakeModule({"a.service": {"LoadState": "loaded", "ActiveState": "activating", "SubState": "auto-restart"}})
    result = run(module, params(name="a.service"))
    unit = result["units"][0]
    assert unit["active_state"] == "activating" and unit["active"] is False


@pytest.mark.parametrize("p, needle", [
    ({"name": "a.service", "content": "[Service]\nExecStart=/bin/echo caf\udce9\n"},
     "unit a.service: content is not UTF-8 text (character 33 of"),
    ({"units": [{"name": "b.service", "sections": {"Unit": {"Description": "caf\udce9"}}}]},
     "unit b.service: sections is not UTF-8 text"),
])
def test_unit_text_that_is_not_utf8_is_named_with_its_unit(p: dict[str, Any], needle: str) -> None:
    from ansible_collections.unitcraft.systemd.plugins.module_utils._common import not_utf8
    problem = not_utf8(p)
    assert problem is not None and problem.startswith(needle), problem
    assert not_utf8({"name": "a.service", "content": "[Service]\nExecStart=/bin/echo café\n"}) is None
