# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""What one request does on disk: the file it manages, its text before and after, and what it is checked against.

Planning only reads; refusals that systemctl would only make half-way through a task
(masking a file in /etc, enabling a template without DefaultInstance=) are made here, and so
is the refusal of a directive the host's systemd is too old for (it would ignore the line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._install import attribute_problem, is_vendor_path, read_text
from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import newer_directives
from ansible_collections.unitcraft.systemd.plugins.module_utils._requests import TaskError, UnitRequest
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemd_version import TargetSystemd
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError, install_section, parse_unit, render_unit
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UnitName

# what a drop-in for many units of a type (prefix or type-wide) is validated on
STAND_IN_UNITS = {
    "service": "[Unit]\nDescription=stand-in unit for a drop-in check\n\n[Service]\nExecStart=/bin/true\n",
    "target": "[Unit]\nDescription=stand-in unit for a drop-in check\n",
    "slice": "[Unit]\nDescription=stand-in unit for a drop-in check\n",
}


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
    restart_pending: bool = False  # an earlier run was killed before this unit's restart
    stale_mark: bool = False  # an earlier run's mark, whose restart was made: to remove
    differs_only_in_form: bool = False  # the file on disk says what `sections` says, in another form
    trigger_digests: dict[str, str] | None = None  # the triggers' content now (read once)
    trigger_record: dict[str, str] | None = None  # what the record says they held
    record_update: dict[str, str] | None = None  # digests to record before the restart

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def changed(self) -> bool:
        return self.file_changed or self.attrs_changed or bool(self.actions) or bool(self.stopped_instances)


def same_directives(before: str, after: str, unit: str) -> bool:
    """Both texts give the same sections, directives and values (in order per directive), as
    from_unit reads them: comments, spacing, continuation lines and section order do not count."""
    try:
        return _spaced(parse_unit(before, unit=unit)) == _spaced(parse_unit(after, unit=unit))
    except UnitFileError:
        return False


def _spaced(sections: Any) -> Any:
    """Values with runs of white space outside quotes folded to one space (a continuation line's indent)."""
    if isinstance(sections, dict):
        return {key: _spaced(value) for key, value in sections.items()}
    if isinstance(sections, list):
        return [_spaced(value) for value in sections]
    folded, quote, space = [], "", False
    for char in str(sections).strip():
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char.isspace():
            space = True
            continue
        if space:
            folded.append(" ")
            space = False
        folded.append(char)
    return "".join(folded)


class FilePlanner:
    """Plans the file of each request in one scope (and root, or user's home).

    With `systemd` (the host's), what a request writes is checked against its version.
    """

    def __init__(self, scope: str, root: str | None, unit_dir: str, systemd: TargetSystemd | None = None) -> None:
        self.scope = scope
        self.root = root
        self.unit_dir = unit_dir
        self.systemd = systemd

    def plan(self, request: UnitRequest) -> UnitPlan:
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
        if request.state == "present":
            problem = attribute_problem(request.mode, request.owner, request.group)
            if problem:
                raise TaskError(f"unit {request.name}: {problem}; nothing was changed")
        before = None if os.path.islink(path) else read_text(path)
        after = self._render(request)
        plan = UnitPlan(request=request, path=path, before=before, after=after)
        if request.sections is not None and before is not None and after is not None and after != before \
                and same_directives(before, after, request.name):
            plan.differs_only_in_form = True  # adopted as it is, or rewritten: no restart either way
            if not request.rewrite_equivalent:
                plan.after = after = before
        if request.state == "absent":
            plan.file_changed = before is not None
        elif after is not None:
            plan.file_changed = after != before
        if request.state == "present" and plan.file_changed and plan.after is not None and request.validate != "off":
            self._check_versions(plan)
        if request.dropin:
            self._find_base(plan)
        else:
            self._check_unit_plan(plan)
        return plan

    def _check_versions(self, plan: UnitPlan) -> None:
        """Refuse directives this host's systemd does not know yet (validation would only see an unknown key)."""
        req = plan.request
        if self.systemd is None:
            return
        try:
            sections = req.sections if req.sections is not None else parse_unit(plan.after or "", unit=req.name)
        except UnitFileError:
            return  # systemd-analyze verify reports what it cannot read
        version = self.systemd.known_for(sections)
        if version is None:
            return
        newer = newer_directives(sections, req.name, version)
        if not newer:
            return
        (section, key, added), more = newer[0], newer[1:]
        also = "".join(f"; [{s}] {k}= needs {a}" for s, k, a in more)
        them = "them" if more else "it"
        raise TaskError(f"unit {req.name}: [{section}] {key}= needs systemd {added}; this host runs {version}{also}. "
                        f"systemd {version} would ignore {them} (\"Unknown key\") and run the unit without {them}: "
                        f"leave {them} out for this host, or give {them} in a drop-in only on hosts with a newer "
                        "systemd (validate: off writes the file anyway); nothing was changed")

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
        found = self.find_fragment(req.unit)
        if found:
            plan.base_path, plan.base_fragment = found

    def _check_unit_plan(self, plan: UnitPlan) -> None:
        """Refuse, while planning, what systemctl would refuse half-way through the task."""
        req = plan.request
        if req.masked and req.state == "present" and os.path.lexists(plan.path) \
                and os.path.realpath(plan.path) != "/dev/null":
            raise TaskError(f"unit {req.name}: masked: true, but {plan.path} exists, and systemctl mask cannot "
                            "replace a unit file in the admin directory. To remove that file and mask the unit "
                            "in one task, use state: absent with masked: true")
        if req.state == "absent":
            plan.overrides_vendor = plan.before is not None and self.find_fragment(req.unit, vendor_only=True) \
                is not None
            if req.unit.is_template:
                plan.instance_links = self._links_to(plan.path)
        if req.unit.is_template and req.enabled and req.state == "present":
            install = install_section(plan.after or plan.before or self.fragment_text(req.unit)) or {}
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

    def fragment_text(self, unit: UnitName) -> str | None:
        found = self.find_fragment(unit)
        return found[1] if found else None

    def find_fragment(self, unit: UnitName, vendor_only: bool = False) -> tuple[str, str] | None:
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
