# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Module options -> checked requests, one per unit (or drop-in): bad input fails here, before anything runs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._host import offline_refusal
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import (
    UNIT_TYPES,
    UnitName,
    parse_unit_name,
)

PER_UNIT_KEYS = ("sections", "content", "state", "enabled", "masked", "active", "restart_on_change",
                 "restart_triggers", "validate", "lint", "backup", "mode", "owner", "group", "dropin",
                 "rewrite_equivalent")
# Task-level values of these are meant for the instances; a template item takes them only when it says so.
INSTANCE_ONLY_KEYS = ("enabled", "active")


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
    restart_triggers: list[str] = field(default_factory=list)
    validate: str = "strict"
    lint: str = "warn"
    backup: bool = False
    mode: Any = "0644"
    owner: str | None = None
    group: str | None = None
    dropin: str | None = None  # drop-in stem when the file managed is `<unit>.d/<dropin>.conf`
    rewrite_equivalent: bool = False  # rewrite a file that says the same in another form

    type_wide: bool = False  # a drop-in for every unit of a type (`service.d/`)

    @property
    def has_source(self) -> bool:
        return self.sections is not None or self.content is not None

    @property
    def prefix_dropin(self) -> bool:
        """A drop-in in `foo-.service.d/`: systemd applies it to foo-bar.service, foo-bar-baz.service, ..."""
        return bool(self.dropin) and not self.unit.is_template and self.unit.prefix.endswith("-") \
            and self.unit.instance is None

    @property
    def members_glob(self) -> str | None:
        """The units this file configures besides a unit of its own name (None: just that one)."""
        if self.unit.is_template:
            return f"{self.unit.prefix}@*.{self.unit.type}"
        if self.prefix_dropin:
            return f"{self.unit.prefix}*.{self.unit.type}"
        return None

    @property
    def is_unit(self) -> bool:
        """Names one unit that systemd can show (not a template, prefix or type-wide drop-in)."""
        return self.members_glob is None and not self.type_wide


def build_requests(params: Mapping[str, Any], dropin_module: bool = False,
                   offline_reason: str | None = None) -> list[UnitRequest]:
    """Turn module parameters (with `name` or `units`) into checked requests; raise TaskError on bad input.

    `offline_reason` says why no running manager will be talked to (None: there is one).
    """
    if offline_reason is None and params.get("root"):
        offline_reason = f"root {params['root']}"
    elif offline_reason is None and params.get("scope") == "global":
        offline_reason = "scope global"
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
        is_template = _is_template(item["name"])
        listed = params.get("units") is not None
        merged: dict[str, Any] = {}
        takes_source = item.get("sections") is not None or item.get("content") is not None
        for key in PER_UNIT_KEYS:
            value = item.get(key)
            inherit = not (takes_source and key in ("sections", "content")) \
                and not (listed and is_template and key in INSTANCE_ONLY_KEYS)
            if value is None and inherit:
                value = params.get(key)
            if value is not None:
                merged[key] = value
        request = _check_request(item["name"], merged, where, offline_reason, dropin_module)
        ident = (request.name, request.dropin)
        if ident in seen:
            raise TaskError(f"{where}: unit {request.name} is listed more than once")
        seen.add(ident)
        requests.append(request)
    return requests


def _is_template(name: Any) -> bool:
    try:
        return parse_unit_name(str(name)).is_template
    except UnitFileError:
        return False  # _check_request names the problem


def _check_request(name: str, opts: dict[str, Any], where: str, offline_reason: str | None,
                   dropin_module: bool) -> UnitRequest:
    type_wide = dropin_module and name in UNIT_TYPES
    try:
        unit = UnitName(name=name, prefix="", instance=None, type=name) if type_wide else parse_unit_name(name)
    except UnitFileError as exc:
        raise TaskError(f"{where}: {exc}") from None
    if opts.get("sections") is not None and opts.get("content") is not None:
        raise TaskError(f"unit {name}: give either sections or content, not both")
    if opts.get("sections") is not None and not any(opts["sections"].values() if isinstance(opts["sections"], Mapping)
                                                    else [True]):
        raise TaskError(f"unit {name}: sections is empty: give at least one section with a directive "
                        "(an empty unit file is what systemd calls masked), or use state: absent to remove it")
    request = UnitRequest(name=name, unit=unit, type_wide=type_wide, **{k: v for k, v in opts.items() if k != "dropin"})
    request.restart_triggers = list(request.restart_triggers or [])
    if dropin_module:
        request.dropin = opts.get("dropin") or "override"
        if "/" in request.dropin or request.dropin.startswith(".") or not request.dropin.strip():
            raise TaskError(f"unit {name}: dropin {request.dropin!r} must be a plain file stem (no '/', no leading '.')")
    for path in request.restart_triggers:
        if not isinstance(path, str) or not os.path.isabs(path) or "\n" in path:
            raise TaskError(f"unit {name}: restart_triggers: {path!r} is not an absolute path on the target")
    if request.active is not None and offline_reason is not None:
        raise TaskError(offline_refusal(name, "active", offline_reason))
    if request.active is not None and unit.is_template:
        raise TaskError(f"unit {name}: a template is never started itself; start an instance such as "
                        f"{unit.prefix}@example.{unit.type}")
    if request.masked and request.has_source and not dropin_module:
        raise TaskError(f"unit {name}: masked is true but the task also writes its unit file; masking replaces "
                        "that file with a link to /dev/null. Use state: absent with masked: true to remove the "
                        "file and mask the unit in one task")
    if request.has_source and request.state == "absent":
        raise TaskError(f"unit {name}: state absent removes the file; sections/content make no sense with it")
    if dropin_module and request.state == "present" and not request.has_source:
        raise TaskError(f"unit {name}: a drop-in needs sections or content (or state: absent)")
    return request
