# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the unit_info module on the target, then its JMESPath `query` on the controller."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError:  # only needed when a task uses `query`
    jmespath = None
    JMESPathError = Exception


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp  # not used since ansible-core 2.0
        query = self._task.args.get("query")
        compiled = None
        if query is not None:
            if jmespath is None:
                result.update(failed=True, msg="The query option of unitcraft.systemd.unit_info needs the "
                                               "jmespath Python library on the controller: pip install jmespath")
                return result
            if not isinstance(query, str) or not query.strip():
                result.update(failed=True, msg=f"query must be a JMESPath expression, got {query!r}")
                return result
            try:
                compiled = jmespath.compile(str(query))
            except JMESPathError as exc:
                result.update(failed=True, msg=f"query {query!r} is not a valid JMESPath expression: {exc}")
                return result

        result.update(self._execute_module(module_name="unitcraft.systemd.unit_info",
                                           module_args=self._task.args, task_vars=task_vars))
        if compiled is None or result.get("failed"):
            return result
        try:
            result["query_result"] = compiled.search(result.get("units", []))
        except JMESPathError as exc:
            result.update(failed=True, msg=f"query {query!r} failed on the units: {exc}")
        return result
