# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""One task of the `unit` and `dropin` modules: plan, lint, validate, install, reload, act, judge.

The plan (what files and runtime state will change) is computed before anything is
touched, so check mode reports exactly what a real run does; only `_apply` mutates the host,
and every systemctl call goes through the gateway in a fixed order:
mark the restarts owed (_pending.py) and record trigger digests -> stop (waited for) -> disable ->
files -> mask/unmask -> enable -> one daemon-reload -> stamp the marks -> reset-failed (a crash
loop's start limit) -> start/restart (queued; then the marks go) -> the health gate waits for the
jobs and judges every unit (_health.py).
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
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import unit_directory
from ansible_collections.unitcraft.systemd.plugins.module_utils._file_plan import FilePlanner, UnitPlan
from ansible_collections.unitcraft.systemd.plugins.module_utils._health import (
    RECOVERED,
    RESTARTED,
    RUNNING,
    STARTED,
    STOPPED_WANT,
    UNTOUCHED,
    HealthGate,
    Outcome,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._host import resolve_target
from ansible_collections.unitcraft.systemd.plugins.module_utils._install import (
    apply_attributes,
    install_file,
    remove_dir_if_empty,
    remove_file,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import lint_sections
from ansible_collections.unitcraft.systemd.plugins.module_utils._pending import task_state
from ansible_collections.unitcraft.systemd.plugins.module_utils._report import Reporter
from ansible_collections.unitcraft.systemd.plugins.module_utils._requests import (  # noqa: F401 (re-exported)
    TaskError,
    UnitRequest,
    build_requests,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._runtime_plan import (
    RUNNING_STATES,
    RuntimePlanner,
    links_change,
    stale_in_manager,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemd_version import FEATURES, TargetSystemd
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import ACTIVATION_PROPERTIES, missing, record_name
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (  # noqa: F401 (re-exported)
    UnitFileError,
    merge_sections,
    parse_unit,
    values_of,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import (
    UserAccount,
    UserManagerError,
    ensure_linger,
    own_manager_missing,
    running_user_managers,
)

HIERARCHICAL_DROPINS = FEATURES["hierarchical-dropins"]  # first systemd to read `foo-.service.d/` and `service.d/`
SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "NeedDaemonReload",
                   "MainPID", "FragmentPath", "NRestarts", "Result", "ActiveEnterTimestampMonotonic",
                   "ExecMainExitTimestampMonotonic", "ExecMainCode", "ExecMainStatus", *ACTIVATION_PROPERTIES)
FINAL_PROPERTIES = ("Id", "ActiveState", "SubState", "Result", "UnitFileState", "MainPID", "NRestarts")


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
        self.files = FilePlanner(scope, root, self.unit_dir, TargetSystemd(self.systemctl))
        self.pending, self.records = task_state(scope, root, user)
        if user is not None:  # the user's files belong to the user
            group = grp.getgrgid(user.gid).gr_name
            for request in self.requests:
                request.owner = request.owner or user.name
                request.group = request.group or group
        self.plans: list[UnitPlan] = []
        self.instances: dict[str, list[dict[str, str]]] = {}  # template -> its loaded instances' status
        self.daemon_reloaded = False
        self.user_managers_reloaded: list[str] = []  # scope global: the running managers told of the change
        self.restarted: set[str] = set()
        self.counted_from_zero: set[str] = set()  # reset-failed before their start: NRestarts began at 0
        self.queued: list[str] = []
        self.outcomes: dict[str, Outcome] = {}
        self.last_read: dict[str, dict[str, str]] = {}  # status the gate read after the last verb
        self.read_at: float | None = None  # monotonic time of the plan's `show`
        self.failures: list[str] = []
        self.warnings: list[str] = []

    # --- planning --------------------------------------------------------------------------

    def plan_files(self) -> None:
        self.plans = [self.files.plan(request) for request in self.requests]

    def check_many_unit_dropins(self) -> None:
        """Prefix (`foo-.service.d/`) and type-wide (`service.d/`) drop-ins: only where systemd reads them."""
        spread = [p for p in self.plans if p.request.type_wide or p.request.prefix_dropin]
        if not spread:
            return
        version = self.files.systemd.version()
        if version < HIERARCHICAL_DROPINS:
            raise TaskError(f"unit {spread[0].name}: systemd {version} on the target does not read prefix or "
                            f"type-wide drop-ins (systemd {HIERARCHICAL_DROPINS} and later do); give the units' "
                            "own names instead")
        for plan in spread:
            if plan.request.type_wide and plan.file_changed:
                self.warnings.append(f"unit {plan.name}: a drop-in for every .{plan.request.unit.type} unit "
                                     "changed; running units keep their settings until they are restarted "
                                     "(the task restarts none of them)")

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
            plan.lint = lint_sections(sections, unit=req.name, enabled=req.enabled,
                                      systemd_version=self.files.systemd.known_for(sections))
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
        # Imported here: a run that changes no file (the common rerun) does not pay for
        # compiling the validator, which the target does afresh for every module call.
        from ansible_collections.unitcraft.systemd.plugins.module_utils._validate import Candidate, Validator

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
                cand.calendars = values_of(parse_unit(plan.after, unit=req.name).get("Timer", {}).get("OnCalendar"))
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
        # before the call: how long a unit has been up is then never overstated, however late the gate looks
        self.read_at = time.monotonic()
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

    # --- applying ----------------------------------------------------------------------------

    def _step(self, verb: Any, units: list[str]) -> bool:
        """One batched systemctl verb; a failure is recorded and the task goes on with the next step."""
        try:
            verb(units)
        except SystemctlError as exc:
            self.failures.append(str(exc))
            return False
        return True

    def _apply(self, verbs: dict[str, list[str]]) -> None:
        sc = self.systemctl
        since = time.time()
        # the restarts owed are marked before the first file changes, and recorded triggers with
        # them: a run killed from here on leaves the next run a restart to make (_pending.py)
        restarts = verbs["restart"]
        reloading = self._reload_wanted(any(p.file_changed for p in self.plans) or links_change(verbs))
        self.pending.mark(restarts, loaded=None if reloading else time.monotonic())
        self.pending.clear(p.name for p in self.plans if p.stale_mark)
        for plan in self.plans:
            if plan.record_update is not None:
                self.records.write(record_name(plan.name, plan.request.dropin), plan.record_update)
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
                self.records.remove(record_name(plan.name, req.dropin))
            elif plan.file_changed and plan.after is not None:
                plan.backup_file = install_file(self.module, plan.path, plan.after, req.mode, req.owner,
                                                req.group, req.backup,
                                                (self.user.uid, self.user.gid) if self.user else None)
        self._step(sc.mask, verbs["mask"])
        self._step(sc.unmask, verbs["unmask"])
        self._step(sc.enable, verbs["enable"])
        self._step(sc.reenable, verbs["reenable"])
        if reloading:
            try:
                sc.daemon_reload()
            except SystemctlError as exc:
                raise TaskError(f"{exc}; nothing was started or restarted", self.result(self._final_state())) \
                    from None
            self.daemon_reloaded = True
            self.pending.mark(restarts, loaded=time.monotonic())
        since, since_monotonic = time.time(), time.monotonic()
        if sc.reset_failed(verbs["reset-failed"]):
            self.counted_from_zero.update(verbs["reset-failed"])
        self._step(sc.start, verbs["start"])
        if self._step(sc.restart, restarts):
            self.pending.clear(restarts)
        self.restarted.update(restarts)
        rows = {**{u: STARTED for u in verbs["start"]}, **{u: RESTARTED for u in restarts}}
        # units asked to be active that the task leaves alone are judged too, unless they are steady
        rows.update({p.name: UNTOUCHED for p in self.plans if p.request.active and p.name not in rows
                     and p.request.is_unit and p.status.get("ActiveState") in RUNNING_STATES})
        outcomes = self._judge({u: RUNNING for u in rows}, since, rows, since_monotonic)
        self.last_read = {u: o.status for u, o in outcomes.items()}

    def _judge(self, wants: Mapping[str, str], since: float, rows: Mapping[str, str] | None = None,
               since_monotonic: float | None = None) -> dict[str, Outcome]:
        rows = rows or {}
        if self.no_block:  # queued and left: nothing is judged, untouched units are not waited for
            self.queued.extend(u for u in wants if u not in self.queued and rows.get(u) != UNTOUCHED)
            return {}
        if not wants:
            return {}
        before = {p.name: p.status for p in self.plans}
        before.update({u: {**before.get(u, {}), "NRestarts": "0"} for u in self.counted_from_zero})
        outcomes = self.gate.wait(wants, since, before, rows, since_monotonic, read_at=self.read_at)
        self.outcomes.update(outcomes)
        for outcome in outcomes.values():
            if outcome.ok and outcome.health == RECOVERED:
                self.warnings.append(
                    f"unit {outcome.unit}: systemd restarted it {outcome.restarts_seen} time(s) by itself during "
                    f"the run (last exit status {outcome.last_exit or 'unknown'}); its new process stayed up for "
                    f"settle={self.gate.settle:g}s, so the task passed")
        return outcomes

    def _reload_wanted(self, disk_changed: bool) -> bool:
        if not self.daemon_reload or not self.systemctl.live:
            return False
        return disk_changed or any(stale_in_manager(p) for p in self.plans)

    def prepare_user(self) -> None:
        """Lingering on first (it starts the user's manager); then there must be a manager to talk to."""
        if self.user is None:
            if self.scope == "user" and self.root is None:
                refusal = own_manager_missing()
                if refusal:
                    raise TaskError(refusal)
            return
        if self.linger:
            self.linger_changed = ensure_linger(self.systemctl, self.user, True, self.check_mode,
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
        verbs = RuntimePlanner(self.plans, self.instances, self.files.fragment_text, self.pending,
                               self.records).plan()
        for plan in self.plans:
            if plan.request.state == "present" and not plan.file_changed and plan.before is not None \
                    and plan.after is not None:
                plan.attrs_changed = apply_attributes(self.module, plan.path, plan.request.mode,
                                                      plan.request.owner, plan.request.group)
            absent_triggers = missing(plan.request.restart_triggers)
            if absent_triggers:
                self.warnings.append(f"unit {plan.name}: restart_triggers {', '.join(absent_triggers)} "
                                     "do not exist (yet) on the target, so they cannot trigger a restart")
        disk_changed = any(p.file_changed for p in self.plans) or links_change(verbs)
        if self.check_mode:
            self.daemon_reloaded = self._reload_wanted(disk_changed)
            self.user_managers_reloaded = self._reload_user_managers(disk_changed, dry=True)
            self.restarted.update(verbs["restart"])
            self._linger_off()
            return self.result(final={})
        self._apply(verbs)
        self.user_managers_reloaded = self._reload_user_managers(disk_changed)
        self._linger_off()
        result = self.result(final=self._final_state())
        problems = self.failures + [o.describe() for o in self.outcomes.values() if not o.ok]
        if problems:
            raise TaskError(f"{len(problems)} problem(s); everything else the task planned was done:\n"
                            + "\n".join(problems), result)
        return result

    def _reload_user_managers(self, disk_changed: bool, dry: bool = False) -> list[str]:
        """scope global: every user manager that runs re-reads the units it shares (one reload each)."""
        if self.scope != "global" or self.root is not None or not disk_changed or not self.daemon_reload:
            return []
        reloaded = []
        for account in running_user_managers():
            try:
                if not dry:
                    Systemctl(self.module, scope="user", user=account).daemon_reload()
                reloaded.append(account.name)
            except SystemctlError as exc:  # a manager that went away meanwhile: say so, the files are in place
                self.warnings.append(f"the user manager of {account.name} was not reloaded: {exc}")
        return reloaded

    def _linger_off(self) -> None:
        """Lingering off comes last: it may stop the manager the task has just talked to."""
        if self.user is not None and self.linger is False:
            self.linger_changed = ensure_linger(self.systemctl, self.user, False, self.check_mode,
                                                wait_timeout=self.gate.wait_timeout)

    def _final_state(self) -> dict[str, dict[str, str]]:
        if self.check_mode or not self.systemctl.live:
            return {}
        if not self.daemon_reloaded and not any(p.actions for p in self.plans):
            # nothing ran: what was read is still true, and the gate's later look at a unit it watched truer
            return {p.name: self.last_read.get(p.name, p.status) for p in self.plans}
        shown = [p.name for p in self.plans if p.request.is_unit]
        if shown and all(u in self.last_read for u in shown):
            return {u: self.last_read[u] for u in shown}  # the gate read them after every change
        try:
            return self.systemctl.show(shown, FINAL_PROPERTIES)
        except SystemctlError as exc:
            self.failures.append(str(exc))
            return {}

    def result(self, final: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        return Reporter(self).result(final)


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
