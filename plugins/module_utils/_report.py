# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""The module result of a task: per unit and for the task, as systemd reports the state after it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._file_plan import UnitPlan
from ansible_collections.unitcraft.systemd.plugins.module_utils._runtime_plan import ENABLED_STATES, MASKED_STATES

UP_STATES = frozenset({"active", "reloading"})
FILE_STATE_VERBS = (("enable", "enabled"), ("reenable", "enabled"), ("disable", "disabled"),
                    ("mask", "masked"), ("unmask", "unknown"))


class Reporter:
    """Builds results from a task's plans and what the task did (`task` is a UnitTask)."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def _file_state_after(self, plan: UnitPlan, final: Mapping[str, str] | None) -> str:
        """The unit-file state after the task, as systemd reports it when it has re-read the links."""
        ufs = plan.unit_file_state
        for verb, state in FILE_STATE_VERBS:
            if verb in plan.actions:
                ufs = state
        fresh = self.task.daemon_reloaded or not any(verb in plan.actions for verb, _state in FILE_STATE_VERBS)
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
            # what active_state says: a unit on its way (activating, between two restarts) is not active yet
            "active": active_state in UP_STATES if active_state not in ("", "unknown") else None,
            "active_state": active_state or "unknown",
            "restarted": req.name in self.task.restarted,
            "queued": req.name in self.task.queued,
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
        if plan.restart_pending:
            result["restart_pending"] = True
        if plan.differs_only_in_form:
            result["differs_only_in_form"] = True
        outcome = self.task.outcomes.get(req.name)
        result["health"] = outcome.health if outcome is not None else ("queued" if result["queued"] else "none")
        result["restarts_seen"] = outcome.restarts_seen if outcome is not None else 0
        result["last_exit_status"] = outcome.last_exit if outcome is not None else ""
        if outcome is not None and not outcome.ok:
            result["problem"] = outcome.problem
            result["journal"] = list(outcome.journal)
        if plan.backup_file:
            result["backup_file"] = plan.backup_file
        if self.task.diff_mode and plan.file_changed:
            result["diff"] = {"before": plan.before or "", "after": plan.after or "",
                              "before_header": plan.path if plan.before is not None else "(absent)",
                              "after_header": plan.path if plan.after is not None else "(absent)"}
        return result

    def result(self, final: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        units = [self.unit_result(p, final.get(p.name)) for p in self.task.plans]
        result: dict[str, Any] = {
            "changed": any(u["changed"] for u in units) or self.task.daemon_reloaded or bool(self.task.restarted)
            or self.task.linger_changed,
            "daemon_reloaded": self.task.daemon_reloaded,
            "units": units,
            "queued": list(self.task.queued),
            "systemctl_calls": self.task.systemctl.calls,
        }
        if self.task.scope == "global":
            result["user_managers_reloaded"] = list(self.task.user_managers_reloaded)
        if self.task.user is not None:
            result["user"] = self.task.user.name
            if self.task.linger is not None:
                result["linger"] = self.task.linger
        diffs = [u["diff"] for u in units if "diff" in u]
        if diffs:
            result["diff"] = diffs if len(diffs) > 1 else diffs[0]
        return result
