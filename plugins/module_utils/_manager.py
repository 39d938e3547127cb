# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""One task of the `unit` and `dropin` modules: plan, lint, validate, install, reload, act.

The plan (what files and runtime state will change) is computed before anything is
touched, so check mode reports exactly what a real run does; only `_apply` mutates the host,
and every systemctl call goes through the gateway in a fixed order:
stop/disable -> files -> mask/unmask -> enable -> one daemon-reload -> start/restart.
Links are made with --no-reload before the reload, so the one reload sees files and links.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import unit_directory
from ansible_collections.unitcraft.systemd.plugins.module_utils._install import (
    apply_attributes,
    install_file,
    is_vendor_path,
    read_text,
    remove_dir_if_empty,
    remove_file,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import lint_sections
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    parse_unit,
    render_unit,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UnitName, parse_unit_name
from ansible_collections.unitcraft.systemd.plugins.module_utils._validate import Candidate, Validator

ENABLED_STATES = frozenset({"enabled", "enabled-runtime"})
# unit-file states where `enabled: true` has nothing left to do (no [Install], or enabled another way)
ENABLE_SATISFIED = ENABLED_STATES | frozenset({"static", "indirect", "generated", "transient", "alias"})
FILE_STATE_VERBS = (("enable", "enabled"), ("reenable", "enabled"), ("disable", "disabled"),
                    ("mask", "masked"), ("unmask", "unknown"))
RUNNING_STATES = frozenset({"active", "activating", "reloading"})
SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload",
                   "MainPID", "FragmentPath")

PER_UNIT_KEYS = ("sections", "content", "state", "enabled", "masked", "active", "restart_on_change",
                 "validate", "lint", "backup", "mode", "owner", "group", "dropin")


class TaskError(Exception):
    """Bad input or a failed step; `msg` is what the user sees, `result` what happened so far."""

    def __init__(self, msg: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}


@dataclass
class UnitRequest:
    """One unit (or one drop-in of a unit) as the user asked for it, checked."""

    name: str
    unit: UnitName
    state: str = "present"
    sections: Mapping[str, Any] | None = None
    content: str | None = None
    enabled: bool | None = None
    masked: bool | None = None
    active: bool | None = None
    restart_on_change: bool = True
    validate: str = "strict"
    lint: str = "warn"
    backup: bool = False
    mode: Any = "0644"
    owner: str | None = None
    group: str | None = None
    dropin: str | None = None  # drop-in stem when the file managed is `<unit>.d/<dropin>.conf`


@dataclass
class UnitPlan:
    request: UnitRequest
    path: str
    before: str | None
    after: str | None
    file_changed: bool = False
    attrs_changed: bool = False
    base_fragment: str | None = None
    status: dict[str, str] = field(default_factory=dict)
    unit_file_state: str = "unknown"
    actions: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    lint: list[dict[str, str]] = field(default_factory=list)
    backup_file: str | None = None
    restarted_instances: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def changed(self) -> bool:
        return self.file_changed or self.attrs_changed or bool(self.actions)


def build_requests(params: Mapping[str, Any], dropin_module: bool = False) -> list[UnitRequest]:
    """Turn module parameters (with `name` or `units`) into checked requests; raise TaskError on bad input."""
    if params.get("units") is not None:
        items = params["units"]
        if not items:
            raise TaskError("units: the list is empty; give at least one item with a name")
    else:
        items = [{"name": params["name"]}]
    requests = []
    seen: set[tuple[str, str | None]] = set()
    for index, item in enumerate(items):
        where = f"units[{index}]" if params.get("units") is not None else "name"
        if not isinstance(item, Mapping) or not item.get("name"):
            raise TaskError(f"{where}: every item needs a name (the unit name with its type suffix)")
        merged: dict[str, Any] = {}
        takes_source = item.get("sections") is not None or item.get("content") is not None
        for key in PER_UNIT_KEYS:
            value = item.get(key)
            if value is None and not (takes_source and key in ("sections", "content")):
                value = params.get(key)
            if value is not None:
                merged[key] = value
        request = _check_request(item["name"], merged, where, params, dropin_module)
        ident = (request.name, request.dropin)
        if ident in seen:
            raise TaskError(f"{where}: unit {request.name} is listed more than once")
        seen.add(ident)
        requests.append(request)
    return requests


def _check_request(name: str, opts: dict[str, Any], where: str, params: Mapping[str, Any],
                   dropin_module: bool) -> UnitRequest:
    try:
        unit = parse_unit_name(name)
    except UnitFileError as exc:
        raise TaskError(f"{where}: {exc}") from None
    if opts.get("sections") is not None and opts.get("content") is not None:
        raise TaskError(f"unit {name}: give either sections or content, not both")
    request = UnitRequest(name=name, unit=unit, **{k: v for k, v in opts.items() if k != "dropin"})
    if dropin_module:
        request.dropin = opts.get("dropin") or "override"
        if "/" in request.dropin or request.dropin.startswith(".") or not request.dropin.strip():
            raise TaskError(f"unit {name}: dropin {request.dropin!r} must be a plain file stem (no '/', no leading '.')")
    live = params.get("root") is None and params.get("scope") != "global"
    if request.active is not None and not live:
        where_ = f"root {params.get('root')}" if params.get("root") else "scope global"
        raise TaskError(f"unit {name}: active cannot be managed with {where_}: there is no running manager "
                        "to start or stop it; leave active out")
    if request.active is not None and unit.is_template:
        raise TaskError(f"unit {name}: a template is never started itself; start an instance such as "
                        f"{unit.prefix}@example.{unit.type}")
    has_source = request.sections is not None or request.content is not None
    if request.masked and has_source and not dropin_module:
        raise TaskError(f"unit {name}: masked is true but the task also writes its unit file; masking replaces "
                        "that file with a link to /dev/null. Use state: absent, or drop masked")
    if has_source and request.state == "absent":
        raise TaskError(f"unit {name}: state absent removes the file; sections/content make no sense with it")
    if dropin_module and request.state == "present" and not has_source:
        raise TaskError(f"unit {name}: a drop-in needs sections or content (or state: absent)")
    return request


class UnitTask:
    """Carries out one module invocation for a list of requests."""

    def __init__(self, module: Any, requests: Sequence[UnitRequest], scope: str = "system",
                 root: str | None = None, daemon_reload: bool = True) -> None:
        self.module = module
        self.requests = list(requests)
        self.scope = scope
        self.root = root
        self.daemon_reload = daemon_reload
        self.check_mode = bool(module.check_mode)
        self.diff_mode = bool(getattr(module, "_diff", False))
        self.systemctl = Systemctl(module, scope=scope, root=root)
        self.unit_dir = unit_directory(scope, root)
        self.plans: list[UnitPlan] = []
        self.daemon_reloaded = False
        self.restarted: set[str] = set()
        self.warnings: list[str] = []

    # --- planning --------------------------------------------------------------------------

    def plan_files(self) -> None:
        for request in self.requests:
            if request.dropin:
                path = os.path.join(self.unit_dir, f"{request.name}.d", f"{request.dropin}.conf")
            else:
                path = os.path.join(self.unit_dir, request.name)
            writes_unit_file = not request.dropin and (request.sections is not None or request.content is not None)
            if os.path.islink(path) and writes_unit_file:
                raise TaskError(f"unit {request.name}: {path} is a symlink to {os.readlink(path)} (a masked or "
                                "linked unit); unmask or remove it before writing a unit file there")
            if is_vendor_path(path, self.root):
                raise TaskError(f"unit {request.name}: {path} is a vendor file; this module only writes and "
                                "removes files in the admin directory (use dropin to change a vendor unit)")
            before = None if os.path.islink(path) else read_text(path)
            after = self._render(request)
            plan = UnitPlan(request=request, path=path, before=before, after=after)
            if request.state == "absent":
                plan.file_changed = before is not None
            elif after is not None:
                plan.file_changed = after != before
            if request.dropin:
                plan.base_fragment = self._find_fragment(request.unit)
            self.plans.append(plan)

    def _render(self, request: UnitRequest) -> str | None:
        try:
            if request.sections is not None:
                return render_unit(request.sections, unit=request.name)
            if request.content is not None:
                text = request.content if request.content.endswith("\n") else request.content + "\n"
                parse_unit(text, unit=request.name)  # refuse what systemd could not read
                return text
        except UnitFileError as exc:
            raise TaskError(str(exc)) from None
        return None

    def _find_fragment(self, unit: UnitName) -> str | None:
        """Text of the unit file systemd would load: the admin directory first, then the search path."""
        if self.scope == "system":
            vendor = ["/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                      "/lib/systemd/system"]
        else:
            vendor = ["/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"]
        dirs = [self.unit_dir] + [os.path.join(self.root, d.lstrip("/")) if self.root else d for d in vendor]
        for name in [unit.name] + ([unit.template] if unit.template else []):
            for directory in dirs:
                text = read_text(os.path.join(directory, name))
                if text is not None:
                    return text
        return None

    def lint(self) -> None:
        for plan in self.plans:
            req = plan.request
            if req.lint == "off" or plan.after is None:
                continue
            try:
                sections = parse_unit(plan.after, unit=req.name)
                if req.dropin and plan.base_fragment:
                    sections = merge_sections(parse_unit(plan.base_fragment, unit=req.name), sections)
            except UnitFileError:
                continue  # the fragment on disk is systemd's problem to report, in validation
            plan.lint = lint_sections(sections, unit=req.name, enabled=req.enabled)
        errors = [f"unit {p.name}: {f['rule']}: [{f['section']}] {f['key']}: {f['message']}"
                  for p in self.plans if p.request.lint == "error" for f in p.lint]
        if errors:
            raise TaskError("lint found problems (lint: error):\n" + "\n".join(errors))
        for plan in self.plans:
            if plan.request.lint == "warn":
                for f in plan.lint:
                    self.warnings.append(f"unit {plan.name}: {f['rule']}: [{f['section']}] {f['key']}: {f['message']}")

    def validate(self) -> None:
        todo = [p for p in self.plans if p.file_changed and p.after is not None and p.request.validate != "off"]
        if not todo:
            return
        candidates = []
        for plan in todo:
            req = plan.request
            if req.dropin:
                if plan.base_fragment is None:
                    raise TaskError(f"unit {req.name}: no unit file found for it, so the drop-in cannot be "
                                    "validated against it; install the unit first or set validate: off")
                cand = Candidate(name=req.name, fragment=plan.base_fragment, dropins={req.dropin: plan.after},
                                 dropin_paths={req.dropin: plan.path})
            else:
                cand = Candidate(name=req.name, fragment=plan.after, fragment_path=plan.path)
            if req.unit.type == "timer":
                cand.calendars = _values(parse_unit(plan.after, unit=req.name).get("Timer", {}).get("OnCalendar"))
            candidates.append(cand)
        verdicts = Validator(self.module, scope=self.scope, root=self.root).check(candidates)
        problems = []
        for plan in todo:
            verdict = verdicts[plan.name]
            plan.validation = verdict.warnings
            bad = verdict.errors + (verdict.warnings if plan.request.validate == "strict" else [])
            problems.extend(bad)
            if plan.request.validate == "errors":
                self.warnings.extend(f"unit {plan.name}: {w}" for w in verdict.warnings)
        if problems:
            raise TaskError("validation failed, nothing was changed (systemd-analyze said):\n" + "\n".join(problems)
                            + ("\n(validate: strict fails on warnings too; validate: errors only on errors)"
                               if any(p.request.validate == "strict" for p in todo) else ""))

    def read_state(self) -> None:
        # the manager refuses to `show` a template; its file state comes from is-enabled
        shown = [p.name for p in self.plans if not p.request.unit.is_template]
        if self.systemctl.live:
            status = self.systemctl.show(shown, SHOW_PROPERTIES)
            for plan in self.plans:
                plan.status = status.get(plan.name, {})
                plan.unit_file_state = plan.status.get("UnitFileState") or "unknown"
        needs_file_state = [p.name for p in self.plans if (p.request.enabled is not None
                            or p.request.masked is not None or (p.request.state == "absent" and not p.request.dropin))
                            and (not self.systemctl.live or p.request.unit.is_template)]
        if needs_file_state:
            states = self.systemctl.is_enabled(needs_file_state)
            for plan in self.plans:
                plan.unit_file_state = states.get(plan.name, plan.unit_file_state)

    def plan_runtime(self) -> dict[str, list[str]]:
        """Runtime actions per verb, in the order they run; also recorded on each plan."""
        verbs: dict[str, list[str]] = {v: [] for v in
                                       ("stop", "disable", "mask", "unmask", "enable", "reenable", "start",
                                        "restart")}

        def act(plan: UnitPlan, verb: str) -> None:
            verbs[verb].append(plan.name)
            plan.actions.append(verb)

        # A template's file or drop-in is every instance's configuration.
        changed_templates = {p.name: p for p in self.plans if p.request.unit.is_template and p.file_changed}
        for plan in self.plans:
            req = plan.request
            running = plan.status.get("ActiveState") in RUNNING_STATES
            ufs = plan.unit_file_state
            config_changed = plan.file_changed or req.unit.template in changed_templates
            if req.state == "absent" and not req.dropin:
                if running:
                    act(plan, "stop")
                if ufs in ENABLED_STATES or ufs in ("linked", "linked-runtime"):
                    act(plan, "disable")
                continue
            if req.masked is True and ufs not in ("masked", "masked-runtime"):
                if running:
                    act(plan, "stop")
                act(plan, "mask")
                continue
            if req.masked is False and ufs in ("masked", "masked-runtime"):
                act(plan, "unmask")
                ufs = "unknown"
            if req.enabled is True and ufs not in ENABLE_SATISFIED:
                act(plan, "enable")
            elif req.enabled is False and ufs in ENABLED_STATES:
                act(plan, "disable")
            elif plan.file_changed and ufs in ENABLED_STATES and req.enabled is not False \
                    and _install_section(plan.before) != _install_section(plan.after):
                act(plan, "reenable")  # [Install] changed: drop the old links, make the new ones
            if req.active is True and not running:
                act(plan, "start")
            elif req.active is False and running:
                act(plan, "stop")
            elif running and config_changed and req.restart_on_change:
                act(plan, "restart")
        self._restart_other_instances(changed_templates, verbs)
        return verbs

    def _restart_other_instances(self, templates: Mapping[str, UnitPlan], verbs: dict[str, list[str]]) -> None:
        """Running instances of a changed template that the task does not list: restart them once too."""
        wanted = {name: p for name, p in templates.items()
                  if p.request.restart_on_change and p.request.state == "present"}
        if not wanted or not self.systemctl.live:
            return
        listed = {p.name for p in self.plans}
        patterns = [f"{p.request.unit.prefix}@*.{p.request.unit.type}" for p in wanted.values()]
        for name in self.systemctl.running_units(patterns):
            template = wanted.get(parse_unit_name(name).template or "")
            if template is not None and name not in listed and name not in verbs["restart"]:
                verbs["restart"].append(name)
                template.restarted_instances.append(name)

    # --- applying ----------------------------------------------------------------------------

    def _apply(self, verbs: dict[str, list[str]]) -> None:
        sc = self.systemctl
        sc.stop(verbs["stop"])
        sc.disable(verbs["disable"])
        files_changed = False
        for plan in self.plans:
            req = plan.request
            if req.state == "absent":
                if plan.before is not None:
                    plan.backup_file = remove_file(self.module, plan.path, req.backup)
                    files_changed = True
                ddir = os.path.dirname(plan.path) if req.dropin else plan.path + ".d"
                remove_dir_if_empty(ddir)
            elif plan.file_changed and plan.after is not None:
                plan.backup_file = install_file(self.module, plan.path, plan.after, req.mode, req.owner,
                                                req.group, req.backup)
                files_changed = True
        sc.mask(verbs["mask"])
        sc.unmask(verbs["unmask"])
        sc.enable(verbs["enable"])
        sc.reenable(verbs["reenable"])
        if self._reload_wanted(files_changed or _links_change(verbs)):
            sc.daemon_reload()
            self.daemon_reloaded = True
        try:
            sc.start(verbs["start"])
            sc.restart(verbs["restart"])
        except SystemctlError as exc:
            raise TaskError(f"{exc}{self._failure_details(verbs['start'] + verbs['restart'])}") from None
        self.restarted.update(verbs["restart"])

    def _reload_wanted(self, disk_changed: bool) -> bool:
        if not self.daemon_reload or not self.systemctl.live:
            return False
        return disk_changed or any(_stale_in_manager(p) for p in self.plans)

    def _failure_details(self, units: list[str]) -> str:
        try:
            status = self.systemctl.show(units, ("ActiveState", "Result"))
        except SystemctlError:
            return ""
        failed = [u for u, s in status.items() if s.get("ActiveState") not in RUNNING_STATES]
        details = [f"{u}: ActiveState={status[u].get('ActiveState')} Result={status[u].get('Result')}"
                   for u in failed]
        journal = self.module.get_bin_path("journalctl")
        if journal and failed:
            argv = [journal, "--no-pager", "-n", "20", "-b"]
            if self.scope == "user":
                argv.append("--user")
            for u in failed:
                argv += ["-u", u]
            _rc, out, _err = self.module.run_command(argv)
            details.append("last journal lines:\n" + out.strip())
        return "\n" + "\n".join(details) if details else ""

    def run(self) -> dict[str, Any]:
        self.plan_files()
        self.lint()
        self.validate()
        self.read_state()
        verbs = self.plan_runtime()
        for plan in self.plans:
            if plan.request.state == "present" and not plan.file_changed and plan.before is not None \
                    and plan.after is not None:
                plan.attrs_changed = apply_attributes(self.module, plan.path, plan.request.mode,
                                                      plan.request.owner, plan.request.group)
        disk_changed = any(p.file_changed for p in self.plans) or _links_change(verbs)
        if self.check_mode:
            self.daemon_reloaded = self._reload_wanted(disk_changed)
            self.restarted.update(verbs["restart"])
        else:
            self._apply(verbs)
        return self.result(final=self._final_state())

    def _final_state(self) -> dict[str, dict[str, str]]:
        if self.check_mode or not self.systemctl.live:
            return {}
        if not self.daemon_reloaded and not any(p.actions for p in self.plans):
            return {p.name: p.status for p in self.plans}  # nothing ran: what we read is still true
        return self.systemctl.show([p.name for p in self.plans if not p.request.unit.is_template],
                                   ("ActiveState", "SubState", "UnitFileState", "MainPID"))

    # --- reporting ---------------------------------------------------------------------------

    def unit_result(self, plan: UnitPlan, final: Mapping[str, str] | None) -> dict[str, Any]:
        req = plan.request
        active_state = plan.status.get("ActiveState", "unknown")
        if "start" in plan.actions or "restart" in plan.actions:
            active_state = "active"
        elif "stop" in plan.actions:
            active_state = "inactive"
        if final:
            active_state = final.get("ActiveState", active_state)
        # The manager caches UnitFileState until a reload, and links change after ours
        # (--no-reload): so the state after the task is the one read before, moved by our verbs.
        ufs = plan.unit_file_state
        for verb, state in FILE_STATE_VERBS:
            if verb in plan.actions:
                ufs = state
        if final and ufs == "unknown":
            ufs = final.get("UnitFileState") or "unknown"
        result: dict[str, Any] = {
            "name": req.name,
            "path": plan.path,
            "changed": plan.changed,
            "state": req.state,
            "file_changed": plan.file_changed,
            "enabled": ufs in ENABLED_STATES if ufs != "unknown" else None,
            "unit_file_state": ufs,
            "active": active_state in RUNNING_STATES if active_state not in ("", "unknown") else None,
            "active_state": active_state or "unknown",
            "restarted": req.name in self.restarted,
            "actions": list(plan.actions),
            "validation": list(plan.validation),
            "lint": list(plan.lint),
        }
        if req.dropin:
            result["dropin"] = req.dropin
        if plan.restarted_instances:
            result["restarted_instances"] = list(plan.restarted_instances)
        if final and final.get("MainPID"):
            result["main_pid"] = int(final["MainPID"] or 0)
        if plan.backup_file:
            result["backup_file"] = plan.backup_file
        if self.diff_mode and plan.file_changed:
            result["diff"] = {"before": plan.before or "", "after": plan.after or "",
                              "before_header": plan.path if plan.before is not None else "(absent)",
                              "after_header": plan.path if plan.after is not None else "(absent)"}
        return result

    def result(self, final: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        units = [self.unit_result(p, final.get(p.name)) for p in self.plans]
        result: dict[str, Any] = {
            "changed": any(u["changed"] for u in units) or self.daemon_reloaded,
            "daemon_reloaded": self.daemon_reloaded,
            "units": units,
            "systemctl_calls": self.systemctl.calls,
        }
        diffs = [u["diff"] for u in units if "diff" in u]
        if diffs:
            result["diff"] = diffs if len(diffs) > 1 else diffs[0]
        return result


def _links_change(verbs: Mapping[str, list[str]]) -> bool:
    """Whether the verbs add or remove symlinks the manager must re-read (systemd 257 flags NeedDaemonReload)."""
    return any(verbs[v] for v in ("disable", "mask", "unmask", "enable", "reenable"))


def _stale_in_manager(plan: UnitPlan) -> bool:
    """systemd holds an outdated view of this unit: changed on disk, or a file it has not loaded yet."""
    if plan.status.get("NeedDaemonReload") == "yes":
        return True
    return plan.status.get("LoadState") == "not-found" and plan.before is not None and plan.request.state == "present"


def merge_sections(base: Mapping[str, Mapping[str, Any]], overlay: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Sections as systemd sees them after a drop-in: lists extend, `Key=` resets, single values replace."""
    merged: dict[str, dict[str, Any]] = {s: dict(d) for s, d in base.items()}
    for section, directives in overlay.items():
        target = merged.setdefault(section, {})
        for key, value in directives.items():
            values = _values(value)
            current = _values(target.get(key))
            for v in values:
                current = [] if v == "" else current + [v]
            target[key] = current if len(current) != 1 else current[0]
    return merged


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _install_section(text: str | None) -> Any:
    if not text:
        return None
    try:
        return parse_unit(text).get("Install")
    except UnitFileError:
        return None


def run_module(module: Any, dropin_module: bool = False) -> None:
    """Entry point shared by the `unit` and `dropin` modules: exit_json or fail_json, never return."""
    params = module.params
    try:
        requests = build_requests(params, dropin_module=dropin_module)
        task = UnitTask(module, requests, scope=params["scope"], root=params.get("root"),
                        daemon_reload=params["daemon_reload"])
        result = task.run()
    except TaskError as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    except SystemctlError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or ''}: {exc.strerror or exc}")
    for warning in task.warnings:
        module.warn(warning)
    if params.get("units") is None:
        single = dict(result["units"][0])
        single.pop("changed", None)
        single.pop("diff", None)
        result.update(single)
    module.exit_json(**result)
