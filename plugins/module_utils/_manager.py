# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""One task of the `unit` and `dropin` modules: plan, lint, validate, install, reload, act, judge.

The plan (what files and runtime state will change) is computed before anything is
touched, so check mode reports exactly what a real run does; only `_apply` mutates the host,
and every systemctl call goes through the gateway in a fixed order:
stop (waited for) -> disable -> files -> mask/unmask -> enable -> one daemon-reload ->
start/restart (queued) -> the health gate waits for the jobs and judges every unit.
Links are made with --no-reload before the reload, so the one reload sees files and links.
A failed step does not stop the steps for other units; the task fails at the end, listing
every failure with systemd's evidence, and still reports what changed.
"""

from __future__ import annotations

import fnmatch
import grp
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import unit_directory
from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import is_single_valued
from ansible_collections.unitcraft.systemd.plugins.module_utils._host import resolve_target
from ansible_collections.unitcraft.systemd.plugins.module_utils._health import (
    RUNNING,
    STOPPED_WANT,
    HealthGate,
    Outcome,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._install import (
    apply_attributes,
    install_file,
    is_vendor_path,
    read_text,
    remove_dir_if_empty,
    remove_file,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import lint_sections
from ansible_collections.unitcraft.systemd.plugins.module_utils._requests import (  # noqa: F401 (re-exported)
    TaskError,
    UnitRequest,
    build_requests,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    ACTIVATION_PROPERTIES,
    missing,
    newer_than_activation,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    parse_unit,
    render_unit,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UnitName
from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import (
    UserAccount,
    UserManagerError,
    ensure_linger,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._validate import Candidate, Validator

ENABLED_STATES = frozenset({"enabled", "enabled-runtime"})
# unit-file states where `enabled: true` has nothing left to do (no [Install], or enabled another way)
ENABLE_SATISFIED = ENABLED_STATES | frozenset({"static", "indirect", "generated", "transient", "alias"})
MASKED_STATES = frozenset({"masked", "masked-runtime"})
FILE_STATE_VERBS = (("enable", "enabled"), ("reenable", "enabled"), ("disable", "disabled"),
                    ("mask", "masked"), ("unmask", "unknown"))
RUNNING_STATES = frozenset({"active", "activating", "reloading"})
HIERARCHICAL_DROPINS = 245  # first systemd to read `foo-.service.d/` and `service.d/`
# what a drop-in for many units of a type (prefix or type-wide) is validated on
STAND_IN_UNITS = {
    "service": "[Unit]\nDescription=stand-in unit for a drop-in check\n\n[Service]\nExecStart=/bin/true\n",
    "target": "[Unit]\nDescription=stand-in unit for a drop-in check\n",
    "slice": "[Unit]\nDescription=stand-in unit for a drop-in check\n",
}
SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload",
                   "MainPID", "FragmentPath", "NRestarts", "Result", *ACTIVATION_PROPERTIES)
FINAL_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "UnitFileState", "MainPID", "NRestarts")
VERBS = ("stop", "disable", "mask", "unmask", "enable", "reenable", "start", "restart")
INSTALL_KEYS = ("WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also", "DefaultInstance")


@dataclass
class UnitPlan:
    request: UnitRequest
    path: str
    before: str | None
    after: str | None
    file_changed: bool = False
    attrs_changed: bool = False
    base_fragment: str | None = None
    base_path: str | None = None
    overrides_vendor: bool = False  # an /etc file that shadows a vendor unit of the same name
    status: dict[str, str] = field(default_factory=dict)
    unit_file_state: str = "unknown"
    actions: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    lint: list[dict[str, str]] = field(default_factory=list)
    backup_file: str | None = None
    restarted_instances: list[str] = field(default_factory=list)
    stopped_instances: list[str] = field(default_factory=list)
    instance_links: list[str] = field(default_factory=list)
    restart_triggered_by: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def changed(self) -> bool:
        return self.file_changed or self.attrs_changed or bool(self.actions) or bool(self.stopped_instances)


class UnitTask:
    """Carries out one module invocation for a list of requests."""

    def __init__(self, module: Any, requests: Sequence[UnitRequest], scope: str = "system",
                 root: str | None = None, daemon_reload: bool = True, wait_timeout: float = 120,
                 settle: float = 1, no_block: bool = False, user: UserAccount | None = None,
                 linger: bool | None = None) -> None:
        self.module = module
        self.requests = list(requests)
        self.scope = scope
        self.root = root
        self.daemon_reload = daemon_reload
        self.no_block = no_block
        self.check_mode = bool(module.check_mode)
        self.diff_mode = bool(getattr(module, "_diff", False))
        self.user = user
        self.linger = linger
        self.linger_changed = False
        self.systemctl = Systemctl(module, scope=scope, root=root, user=user)
        self.gate = HealthGate(self.systemctl, wait_timeout=wait_timeout, settle=settle)
        self.unit_dir = unit_directory(scope, root, user.home if user else None)
        if user is not None:  # the user's files belong to the user
            group = grp.getgrgid(user.gid).gr_name
            for request in self.requests:
                request.owner = request.owner or user.name
                request.group = request.group or group
        self.plans: list[UnitPlan] = []
        self.instances: dict[str, list[dict[str, str]]] = {}  # template -> its loaded instances' status
        self.daemon_reloaded = False
        self.restarted: set[str] = set()
        self.queued: list[str] = []
        self.outcomes: dict[str, Outcome] = {}
        self.last_read: dict[str, dict[str, str]] = {}  # status the gate read after the last verb
        self.failures: list[str] = []
        self.warnings: list[str] = []

    # --- planning --------------------------------------------------------------------------

    def plan_files(self) -> None:
        for request in self.requests:
            if request.dropin:
                path = os.path.join(self.unit_dir, f"{request.name}.d", f"{request.dropin}.conf")
            else:
                path = os.path.join(self.unit_dir, request.name)
            writes_unit_file = not request.dropin and request.has_source
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
                self._find_base(plan)
            else:
                self._check_unit_plan(plan)
            self.plans.append(plan)

    def _find_base(self, plan: UnitPlan) -> None:
        """What a drop-in is checked against: the unit's file, or a stand-in unit for a drop-in of many units."""
        req = plan.request
        if req.type_wide or req.prefix_dropin:
            plan.base_fragment = STAND_IN_UNITS.get(req.unit.type)
            plan.base_path = f"(a stand-in {req.unit.type} unit)"
            if plan.base_fragment is None and req.validate != "off" and plan.file_changed and plan.after:
                raise TaskError(f"unit {req.name}: a drop-in for many .{req.unit.type} units can only be validated "
                                f"for {', '.join(sorted(STAND_IN_UNITS))} units; set validate: off")
            return
        found = self._find_fragment(req.unit)
        if found:
            plan.base_path, plan.base_fragment = found

    def check_many_unit_dropins(self) -> None:
        """Prefix (`foo-.service.d/`) and type-wide (`service.d/`) drop-ins: only where systemd reads them."""
        spread = [p for p in self.plans if p.request.type_wide or p.request.prefix_dropin]
        if not spread:
            return
        version = self.systemctl.version()
        if version < HIERARCHICAL_DROPINS:
            raise TaskError(f"unit {spread[0].name}: systemd {version} on the target does not read prefix or "
                            f"type-wide drop-ins (systemd {HIERARCHICAL_DROPINS} and later do); give the units' "
                            "own names instead")
        for plan in spread:
            if plan.request.type_wide and plan.file_changed:
                self.warnings.append(f"unit {plan.name}: a drop-in for every .{plan.request.unit.type} unit "
                                     "changed; running units keep their settings until they are restarted "
                                     "(the task restarts none of them)")

    def _check_unit_plan(self, plan: UnitPlan) -> None:
        """Refuse, while planning, what systemctl would refuse half-way through the task."""
        req = plan.request
        if req.masked and req.state == "present" and os.path.lexists(plan.path) \
                and os.path.realpath(plan.path) != "/dev/null":
            raise TaskError(f"unit {req.name}: masked: true, but {plan.path} exists, and systemctl mask cannot "
                            "replace a unit file in the admin directory. To remove that file and mask the unit "
                            "in one task, use state: absent with masked: true")
        if req.state == "absent":
            plan.overrides_vendor = plan.before is not None and self._find_fragment(req.unit, vendor_only=True) \
                is not None
            if req.unit.is_template:
                plan.instance_links = self._links_to(plan.path)
        if req.unit.is_template and req.enabled and req.state == "present":
            install = _install_section(plan.after or plan.before or self._fragment_text(req.unit)) or {}
            if not install.get("DefaultInstance"):
                raise TaskError(f"unit {req.name}: enabled: true on a template needs DefaultInstance= in its "
                                f"[Install] section; otherwise enable instances such as "
                                f"{req.unit.prefix}@example.{req.unit.type}")

    def _links_to(self, target: str) -> list[str]:
        """Symlinks in the admin directory's .wants/.requires/.upholds folders that point at `target`."""
        found = []
        try:
            folders = [e.path for e in os.scandir(self.unit_dir) if e.is_dir() and not e.name.endswith(".d")]
        except OSError:
            return []
        for folder in folders:
            for entry in os.scandir(folder):
                if entry.is_symlink() and os.path.join(folder, os.readlink(entry.path)) == target:
                    found.append(entry.path)
        return sorted(found)

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

    def _fragment_text(self, unit: UnitName) -> str | None:
        found = self._find_fragment(unit)
        return found[1] if found else None

    def _find_fragment(self, unit: UnitName, vendor_only: bool = False) -> tuple[str, str] | None:
        """Path and text of the unit file systemd would load: the admin directory first, then the search path."""
        if self.scope == "system":
            vendor = ["/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                      "/lib/systemd/system"]
        else:
            vendor = ["/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"]
        dirs = ([] if vendor_only else [self.unit_dir]) + \
            [os.path.join(self.root, d.lstrip("/")) if self.root else d for d in vendor]
        for name in [unit.name] + ([unit.template] if unit.template else []):
            for directory in dirs:
                if os.path.join(directory, name) == os.path.join(self.unit_dir, name) and vendor_only:
                    continue
                text = read_text(os.path.join(directory, name))
                if text is not None:
                    return os.path.join(directory, name), text
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
        for index, plan in enumerate(todo):
            req = plan.request
            if req.dropin:
                if plan.base_fragment is None:
                    raise TaskError(f"unit {req.name}: no unit file found for it, so the drop-in cannot be "
                                    "validated against it; install the unit first or set validate: off")
                # a drop-in for many units is checked on a stand-in unit of that type
                name = req.name if req.is_unit or req.unit.is_template \
                    else f"unitcraft-dropin-check-{index}.{req.unit.type}"
                cand = Candidate(name=name, fragment=plan.base_fragment, dropins={req.dropin: plan.after},
                                 dropin_paths={req.dropin: plan.path}, fragment_path=plan.base_path)
            else:
                cand = Candidate(name=req.name, fragment=plan.after, fragment_path=plan.path)
            cand.sections = req.sections
            if req.unit.type == "timer":
                cand.calendars = _values(parse_unit(plan.after, unit=req.name).get("Timer", {}).get("OnCalendar"))
            candidates.append(cand)
        verdicts = Validator(self.module, scope=self.scope, root=self.root, user=self.user).check(candidates)
        problems = []
        for plan, cand in zip(todo, candidates):
            verdict = verdicts[cand.name]
            plan.validation = verdict.warnings + verdict.inherited
            self.warnings.extend(f"unit {plan.name}: the unit has this without the drop-in, so the drop-in was "
                                 f"installed: {line}" for line in verdict.inherited)
            bad = verdict.errors + (verdict.warnings if plan.request.validate == "strict" else [])
            problems.extend(bad)
            if plan.request.validate == "errors":
                self.warnings.extend(f"unit {plan.name}: {w}" for w in verdict.warnings)
            self.warnings.extend(f"unit {plan.name}: {a}" for a in verdict.advisories)
        if problems:
            raise TaskError("validation failed, nothing was changed (systemd-analyze said):\n" + "\n".join(problems)
                            + ("\n(validate: strict fails on warnings too; validate: errors only on errors)"
                               if any(p.request.validate == "strict" for p in todo) else ""))

    def read_state(self) -> None:
        # the manager refuses to `show` a template; its file state comes from is-enabled. The units
        # a template or prefix drop-in configures come from globs in the same `show`.
        shown = [p.name for p in self.plans if p.request.is_unit]
        groups = {p.name: p.request.members_glob for p in self.plans if p.request.members_glob}
        if self.systemctl.live:
            if groups:
                blocks = self.systemctl.show_units(shown + sorted(set(groups.values())), SHOW_PROPERTIES)
                status = dict(zip(shown, blocks[:len(shown)]))
                for block in blocks[len(shown):]:
                    for group, glob in groups.items():
                        if fnmatch.fnmatchcase(block.get("Id", ""), glob) and block.get("Id") not in status:
                            self.instances.setdefault(group, []).append(block)
            else:
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
        verbs: dict[str, list[str]] = {v: [] for v in VERBS}

        def act(plan: UnitPlan, verb: str) -> None:
            verbs[verb].append(plan.name)
            plan.actions.append(verb)

        templates = {p.name: p for p in self.plans if p.request.members_glob and p.request.state == "present"}
        for plan in self.plans:
            req = plan.request
            running = plan.status.get("ActiveState") in RUNNING_STATES
            ufs = plan.unit_file_state
            if req.state == "absent" and not req.dropin:
                self._plan_removal(plan, running, act, verbs)
                continue
            if req.masked is True and ufs not in MASKED_STATES:
                if running:
                    act(plan, "stop")
                act(plan, "mask")
                continue
            if req.masked is False and ufs in MASKED_STATES:
                act(plan, "unmask")
                ufs = "unknown"
            if req.enabled is True and ufs not in ENABLE_SATISFIED and self._can_enable(plan, templates):
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
            elif running and req.restart_on_change:
                template = templates.get(req.unit.template or "")
                if self._needs_restart(plan, plan.status, template):
                    act(plan, "restart")
        self._restart_other_instances(templates, verbs)
        return verbs

    def _can_enable(self, plan: UnitPlan, templates: Mapping[str, UnitPlan]) -> bool:
        """The unit file systemd will load has an [Install] section (without one, systemd calls it static)."""
        if plan.request.dropin:
            return True  # the drop-in module never enables
        template = templates.get(plan.request.unit.template or "")
        text = plan.after or plan.before or (template.after if template else None) \
            or self._fragment_text(plan.request.unit)
        return text is None or _has_install(text)

    def _plan_removal(self, plan: UnitPlan, running: bool, act: Any, verbs: dict[str, list[str]]) -> None:
        req = plan.request
        ufs = plan.unit_file_state
        if req.unit.is_template:
            for inst in self.instances.get(req.name, []):
                if inst.get("ActiveState") in RUNNING_STATES:
                    verbs["stop"].append(inst["Id"])
                    plan.stopped_instances.append(inst["Id"])
            if plan.before is not None:
                act(plan, "disable")  # a template's disable also removes its instances' links
        elif plan.overrides_vendor:
            # the vendor unit takes over again: keep its enablement, run it on its own definition
            if running and not req.masked:
                act(plan, "restart")
        else:
            if running:
                act(plan, "stop")
            if ufs in ENABLED_STATES or ufs in ("linked", "linked-runtime"):
                act(plan, "disable")
        if req.masked and ufs not in MASKED_STATES:
            if running and "stop" not in plan.actions:
                act(plan, "stop")
            act(plan, "mask")

    def _needs_restart(self, plan: UnitPlan, status: Mapping[str, str], template: UnitPlan | None) -> bool:
        """A running unit runs an old definition: its file (or its template's) changed, or a trigger is newer."""
        req = plan.request
        if plan.file_changed or (template is not None and template.file_changed):
            return True
        paths = list(req.restart_triggers)
        if req.has_source:
            paths.append(plan.path)
        if template is not None:
            paths += [template.path, *template.request.restart_triggers]
        plan.restart_triggered_by = newer_than_activation(paths, status)
        return bool(plan.restart_triggered_by)

    def _restart_other_instances(self, templates: Mapping[str, UnitPlan], verbs: dict[str, list[str]]) -> None:
        """Running instances of a template in this task that the task does not list: restart those on an
        old definition once too."""
        listed = {p.name for p in self.plans}
        for name, template in templates.items():
            if not template.request.restart_on_change:
                continue
            for inst in self.instances.get(name, []):
                unit = inst.get("Id", "")
                if unit in listed or unit in verbs["restart"] or inst.get("ActiveState") not in RUNNING_STATES:
                    continue
                paths = [template.path, *template.request.restart_triggers]
                if template.file_changed or newer_than_activation(paths, inst):
                    verbs["restart"].append(unit)
                    template.restarted_instances.append(unit)

    # --- applying ----------------------------------------------------------------------------

    def _step(self, verb: Any, units: list[str]) -> None:
        """One batched systemctl verb; a failure is recorded and the task goes on with the next step."""
        try:
            verb(units)
        except SystemctlError as exc:
            self.failures.append(str(exc))

    def _apply(self, verbs: dict[str, list[str]]) -> None:
        sc = self.systemctl
        since = time.time()
        self._step(sc.stop, verbs["stop"])
        self._judge({u: STOPPED_WANT for u in verbs["stop"]}, since)  # files go only once units are down
        self._step(sc.disable, verbs["disable"])
        for plan in self.plans:
            req = plan.request
            if req.state == "absent":
                if plan.before is not None:
                    plan.backup_file = remove_file(self.module, plan.path, req.backup)
                for link in plan.instance_links:
                    if os.path.islink(link):
                        os.unlink(link)
                ddir = os.path.dirname(plan.path) if req.dropin else plan.path + ".d"
                remove_dir_if_empty(ddir)
            elif plan.file_changed and plan.after is not None:
                plan.backup_file = install_file(self.module, plan.path, plan.after, req.mode, req.owner,
                                                req.group, req.backup,
                                                (self.user.uid, self.user.gid) if self.user else None)
        self._step(sc.mask, verbs["mask"])
        self._step(sc.unmask, verbs["unmask"])
        self._step(sc.enable, verbs["enable"])
        self._step(sc.reenable, verbs["reenable"])
        if self._reload_wanted(any(p.file_changed for p in self.plans) or _links_change(verbs)):
            try:
                sc.daemon_reload()
            except SystemctlError as exc:
                raise TaskError(f"{exc}; nothing was started or restarted", self.result(self._final_state())) \
                    from None
            self.daemon_reloaded = True
        since = time.time()
        self._step(sc.start, verbs["start"])
        self._step(sc.restart, verbs["restart"])
        self.restarted.update(verbs["restart"])
        wants = {u: RUNNING for u in verbs["start"] + verbs["restart"]}
        # units asked to be active that are on their way (activating, auto-restart) are judged too
        wants.update({p.name: RUNNING for p in self.plans
                      if p.request.active and p.status.get("ActiveState") in ("activating", "reloading")})
        self.last_read = {u: o.status for u, o in self._judge(wants, since).items()}

    def _judge(self, wants: Mapping[str, str], since: float) -> dict[str, Outcome]:
        if not wants:
            return {}
        if self.no_block:
            self.queued.extend(u for u in wants if u not in self.queued)
            return {}
        before = {p.name: p.status for p in self.plans}
        outcomes = self.gate.wait(wants, since, before)
        self.outcomes.update(outcomes)
        return outcomes

    def _reload_wanted(self, disk_changed: bool) -> bool:
        if not self.daemon_reload or not self.systemctl.live:
            return False
        return disk_changed or any(_stale_in_manager(p) for p in self.plans)

    def prepare_user(self) -> None:
        """Lingering on first (it starts the user's manager); then there must be a manager to talk to."""
        if self.user is None:
            return
        if self.linger:
            self.linger_changed = ensure_linger(self.systemctl, self.user, True, self.check_mode, booted=True,
                                                wait_timeout=self.gate.wait_timeout)
        running = self.user.manager_running()
        # without a manager only what needs none can be done: files, and lingering off
        needs_manager = any(r.active is not None or r.enabled is not None or r.masked is not None
                            for r in self.requests)
        if not running and not (self.check_mode and self.linger) and (needs_manager or self.linger is not False):
            raise TaskError(self.user.missing_manager_message())
        # a task that only turns lingering off leaves the manager alone (it may be shutting down)
        self.systemctl.manager = running and (needs_manager or any(r.has_source for r in self.requests)
                                              or self.linger is not False)

    def run(self) -> dict[str, Any]:
        self.plan_files()
        self.check_many_unit_dropins()
        self.lint()
        self.validate()
        self.prepare_user()
        self.read_state()
        verbs = self.plan_runtime()
        for plan in self.plans:
            if plan.request.state == "present" and not plan.file_changed and plan.before is not None \
                    and plan.after is not None:
                plan.attrs_changed = apply_attributes(self.module, plan.path, plan.request.mode,
                                                      plan.request.owner, plan.request.group)
            absent_triggers = missing(plan.request.restart_triggers)
            if absent_triggers:
                self.warnings.append(f"unit {plan.name}: restart_triggers {', '.join(absent_triggers)} "
                                     "do not exist (yet) on the target, so they cannot trigger a restart")
        disk_changed = any(p.file_changed for p in self.plans) or _links_change(verbs)
        if self.check_mode:
            self.daemon_reloaded = self._reload_wanted(disk_changed)
            self.restarted.update(verbs["restart"])
            self._linger_off()
            return self.result(final={})
        self._apply(verbs)
        self._linger_off()
        result = self.result(final=self._final_state())
        problems = self.failures + [o.describe() for o in self.outcomes.values() if not o.ok]
        if problems:
            raise TaskError(f"{len(problems)} problem(s); everything else the task planned was done:\n"
                            + "\n".join(problems), result)
        return result

    def _linger_off(self) -> None:
        """Lingering off comes last: it may stop the manager the task has just talked to."""
        if self.user is not None and self.linger is False:
            self.linger_changed = ensure_linger(self.systemctl, self.user, False, self.check_mode, booted=True,
                                                wait_timeout=self.gate.wait_timeout)

    def _final_state(self) -> dict[str, dict[str, str]]:
        if self.check_mode or not self.systemctl.live:
            return {}
        if not self.daemon_reloaded and not any(p.actions for p in self.plans):
            return {p.name: p.status for p in self.plans}  # nothing ran: what we read is still true
        shown = [p.name for p in self.plans if p.request.is_unit]
        if shown and all(u in self.last_read for u in shown):
            return {u: self.last_read[u] for u in shown}  # the gate read them after every change
        try:
            return self.systemctl.show(shown, FINAL_PROPERTIES)
        except SystemctlError as exc:
            self.failures.append(str(exc))
            return {}

    # --- reporting ---------------------------------------------------------------------------

    def _file_state_after(self, plan: UnitPlan, final: Mapping[str, str] | None) -> str:
        """The unit-file state after the task, as systemd reports it when it has re-read the links."""
        ufs = plan.unit_file_state
        for verb, state in FILE_STATE_VERBS:
            if verb in plan.actions:
                ufs = state
        fresh = self.daemon_reloaded or not any(v in plan.actions for v, _ in FILE_STATE_VERBS)
        if final and final.get("UnitFileState") and (fresh or ufs == "unknown"):
            return final["UnitFileState"]
        if plan.request.state == "absent" and not plan.request.dropin and ufs not in MASKED_STATES \
                and not plan.overrides_vendor:
            return "not-found" if plan.before is not None or ufs == "unknown" else ufs
        return ufs

    def unit_result(self, plan: UnitPlan, final: Mapping[str, str] | None) -> dict[str, Any]:
        req = plan.request
        active_state = plan.status.get("ActiveState", "unknown")
        if "start" in plan.actions or "restart" in plan.actions:
            active_state = "active"
        elif "stop" in plan.actions:
            active_state = "inactive"
        if final:
            active_state = final.get("ActiveState", active_state)
        ufs = self._file_state_after(plan, final)
        result: dict[str, Any] = {
            "name": req.name,
            "path": plan.path,
            "changed": plan.changed,
            "state": req.state,
            "file_changed": plan.file_changed,
            "enabled": ufs in ENABLED_STATES if ufs not in ("unknown", "") else None,
            "unit_file_state": ufs,
            "active": active_state in RUNNING_STATES if active_state not in ("", "unknown") else None,
            "active_state": active_state or "unknown",
            "restarted": req.name in self.restarted,
            "queued": req.name in self.queued,
            "actions": list(plan.actions),
            "validation": list(plan.validation),
            "lint": list(plan.lint),
        }
        if final and final.get("SubState"):
            result["sub_state"] = final["SubState"]
            result["result"] = final.get("Result", "")
        if req.dropin:
            result["dropin"] = req.dropin
        if plan.restarted_instances:
            result["restarted_instances"] = list(plan.restarted_instances)
        if plan.stopped_instances:
            result["stopped_instances"] = list(plan.stopped_instances)
        if plan.restart_triggered_by:
            result["restart_triggered_by"] = list(plan.restart_triggered_by)
        if final and final.get("MainPID"):
            result["main_pid"] = int(final["MainPID"] or 0)
        outcome = self.outcomes.get(req.name)
        if outcome is not None and not outcome.ok:
            result["problem"] = outcome.problem
            result["journal"] = list(outcome.journal)
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
            "changed": any(u["changed"] for u in units) or self.daemon_reloaded or bool(self.restarted)
            or self.linger_changed,
            "daemon_reloaded": self.daemon_reloaded,
            "units": units,
            "queued": list(self.queued),
            "systemctl_calls": self.systemctl.calls,
        }
        if self.user is not None:
            result["user"] = self.user.name
            if self.linger is not None:
                result["linger"] = self.linger
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
            if is_single_valued(section, key) and values:
                target[key] = values[-1]
                continue
            current = _values(target.get(key))
            for v in values:
                current = [] if v == "" else current + [v]
            target[key] = current if len(current) != 1 else current[0]
    return merged


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _has_install(text: str | None) -> bool:
    """Whether a unit file has anything for `systemctl enable` to act on (else systemd calls it static)."""
    install = _install_section(text) or {}
    return any(install.get(key) not in (None, "", []) for key in INSTALL_KEYS)


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
    # A `path` key makes AnsibleModule add file facts to the result, `state: file` among them;
    # this module's `state` is the unit's present/absent.
    module.add_path_info = lambda kwargs: kwargs
    task: UnitTask | None = None
    failure: tuple[str, dict[str, Any] | None] | None = None
    try:
        target = resolve_target(params["scope"], params.get("root"), params.get("user"))
        if params.get("linger") is not None and target.user is None:
            raise TaskError("linger needs user (the user whose manager should run without a login)")
        requests = build_requests(params, dropin_module=dropin_module, offline_reason=target.offline_reason)
        task = UnitTask(module, requests, scope=target.scope, root=target.root,
                        daemon_reload=params["daemon_reload"], wait_timeout=params["wait_timeout"],
                        settle=params["settle"], no_block=params["no_block"], user=target.user,
                        linger=params.get("linger"))
        task.warnings.extend(target.warnings("unit files, enablement and masks were handled"))
        result = task.run()
    except TaskError as exc:
        failure = (exc.msg, exc.result)
    except SystemctlError as exc:
        failure = (str(exc), None)
    except UserManagerError as exc:
        failure = (str(exc), None)
    except OSError as exc:
        failure = (f"{exc.filename or ''}: {exc.strerror or exc}", None)
    # outside the except blocks: the message is the evidence, a Python traceback would only hide it
    if failure is not None:
        _fail(module, task, *failure)
    _warn(module, task)
    module.exit_json(**_shaped(params, result))


def _warn(module: Any, task: UnitTask | None) -> None:
    for warning in task.warnings if task else []:
        module.warn(warning)


def _fail(module: Any, task: UnitTask | None, msg: str, result: dict[str, Any] | None) -> None:
    """fail_json with what the task did so far: a failed task still says what changed."""
    _warn(module, task)
    if result is None and task is not None and task.plans:
        result = task.result(final={})
    module.fail_json(msg=msg, **_shaped(module.params, result or {}))


def _shaped(params: Mapping[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """With `name`, the one unit's keys are also returned at the top level."""
    if params.get("units") is None and result.get("units"):
        single = dict(result["units"][0])
        single.pop("changed", None)
        single.pop("diff", None)
        result = {**result, **single}
    return result
