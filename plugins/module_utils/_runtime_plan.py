# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Which systemctl verbs a task needs, per unit, from the file plans and the state systemd reported.

Restarts follow the definition a unit runs: its file (or its template's, or a prefix
drop-in's) changed in this task, an earlier run was killed before the restart it owed
(_pending.py), or the content of a restart trigger changed (_triggers.py). File times are not
consulted, except once for trigger paths no record knows yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._file_plan import UnitPlan
from ansible_collections.unitcraft.systemd.plugins.module_utils._pending import PendingRestarts
from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    TriggerRecords,
    changed_triggers,
    digests,
    record_name,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import has_install, install_section
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UnitName

ENABLED_STATES = frozenset({"enabled", "enabled-runtime"})
# unit-file states where `enabled: true` has nothing left to do (no [Install], or enabled another way)
ENABLE_SATISFIED = ENABLED_STATES | frozenset({"static", "indirect", "generated", "transient", "alias"})
MASKED_STATES = frozenset({"masked", "masked-runtime"})
RUNNING_STATES = frozenset({"active", "activating", "reloading"})
VERBS = ("stop", "disable", "mask", "unmask", "enable", "reenable", "reset-failed", "start", "restart")


class RuntimePlanner:
    """`instances` holds the loaded units each template or prefix drop-in of the task configures."""

    def __init__(self, plans: list[UnitPlan], instances: Mapping[str, list[dict[str, str]]],
                 fragment_text: Callable[[UnitName], str | None], pending: PendingRestarts | None = None,
                 records: TriggerRecords | None = None) -> None:
        self.plans = plans
        self.instances = instances
        self.fragment_text = fragment_text
        self.pending = pending or PendingRestarts(None)
        self.records = records or TriggerRecords(None)

    def plan(self) -> dict[str, list[str]]:
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
                    and install_section(plan.before) != install_section(plan.after):
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
        for plan in self.plans:
            self._plan_record(plan)
        verbs["reset-failed"] = self._reset_before_start(verbs["start"] + verbs["restart"])
        return verbs

    def _reset_before_start(self, units: list[str]) -> list[str]:
        """Loaded units the task starts or restarts: each gets `reset-failed` before its job.

        A crash loop, or a few restarts in a row, may have used up the unit's StartLimitBurst=
        within StartLimitIntervalSec=; systemd would then refuse the task's own start
        (start-limit-hit) and the next run could not repair the unit either. The reset also sets
        NRestarts to 0, on every systemd version, so the health gate counts this start's
        restarts from 0. A unit systemd has not loaded yet has no history to clear (and
        systemctl would refuse it).
        """
        loaded = {p.name for p in self.plans if p.status.get("LoadState") == "loaded"}
        loaded.update(inst.get("Id", "") for group in self.instances.values() for inst in group)
        return [unit for unit in units if unit in loaded]

    def _can_enable(self, plan: UnitPlan, templates: Mapping[str, UnitPlan]) -> bool:
        """The unit file systemd will load has an [Install] section (without one, systemd calls it static)."""
        if plan.request.dropin:
            return True  # the drop-in module never enables
        template = templates.get(plan.request.unit.template or "")
        text = plan.after or plan.before or (template.after if template else None) \
            or self.fragment_text(plan.request.unit)
        return text is None or has_install(text)

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
        """A running unit runs an old definition: its file (or its template's) changed, an earlier run
        owes it a restart, or the content of a trigger changed."""
        if _new_definition(plan) or (template is not None and _new_definition(template)):
            return True
        marked, due = self.pending.owed(plan.name, status)
        if due:
            plan.restart_pending = True
            return True
        plan.stale_mark = marked  # its restart was made: only the mark is left
        plan.restart_triggered_by = self._triggered(plan, status)
        if template is not None:
            plan.restart_triggered_by += self._triggered(template, status)
        return bool(plan.restart_triggered_by)

    def _triggered(self, owner: UnitPlan, status: Mapping[str, str]) -> list[str]:
        """The trigger paths of `owner` (a unit, drop-in or template plan) changed for a unit in `status`."""
        req = owner.request
        if not req.restart_triggers or not req.restart_on_change:
            return []
        if owner.trigger_digests is None:
            owner.trigger_digests = digests(req.restart_triggers)
            owner.trigger_record = self.records.read(record_name(req.name, req.dropin))
        return changed_triggers(req.restart_triggers, owner.trigger_record, owner.trigger_digests, status)

    def _plan_record(self, plan: UnitPlan) -> None:
        """The digests to record for a plan whose triggers' content differs from its record."""
        req = plan.request
        if req.state != "present" or not req.restart_triggers or not req.restart_on_change:
            return
        if plan.trigger_digests is None:
            self._triggered(plan, {})
        if plan.trigger_record != plan.trigger_digests:
            plan.record_update = dict(plan.trigger_digests or {})

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
                if _new_definition(template) or self.pending.due(unit, inst) or self._triggered(template, inst):
                    verbs["restart"].append(unit)
                    template.restarted_instances.append(unit)


def _new_definition(plan: UnitPlan) -> bool:
    """The task changes what the file says (not only how it says it)."""
    return plan.file_changed and not plan.differs_only_in_form


def links_change(verbs: Mapping[str, list[str]]) -> bool:
    """Whether the verbs add or remove symlinks the manager must re-read (systemd 257 flags NeedDaemonReload)."""
    return any(verbs[v] for v in ("disable", "mask", "unmask", "enable", "reenable"))


def stale_in_manager(plan: UnitPlan) -> bool:
    """systemd holds an outdated view of this unit: changed on disk, or a file it has not loaded yet."""
    if plan.status.get("NeedDaemonReload") == "yes":
        return True
    return plan.status.get("LoadState") == "not-found" and plan.before is not None and plan.request.state == "present"
