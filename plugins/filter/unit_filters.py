# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters on systemd unit files: to_unit, from_unit, systemd_escape, lint_unit.

Thin wrappers around the unit-file model in module_utils; documented one file per filter
(to_unit.yml, from_unit.yml, systemd_escape.yml, lint_unit.yml).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import lint_sections
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    parse_unit,
    render_unit,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import (
    escape_unit_name_part,
)


def _plain(value: Any) -> Any:
    """Turn Ansible's tagged/unsafe containers into plain dicts and lists, keeping order."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def to_unit(sections: Any, unit: str | None = None) -> str:
    """Render sections as unit file text."""
    try:
        return render_unit(_plain(sections), unit=unit)
    except UnitFileError as exc:
        raise AnsibleFilterError(f"to_unit: {exc}") from exc


def from_unit(text: Any, unit: str | None = None) -> dict[str, dict[str, Any]]:
    """Parse unit file text into sections."""
    try:
        return parse_unit(str(text) if isinstance(text, str) else text, unit=unit)
    except UnitFileError as exc:
        raise AnsibleFilterError(f"from_unit: {exc}") from exc


def systemd_escape(text: Any, path: bool = False) -> str:
    """Escape a string for use in a unit name, like systemd-escape (--path)."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f"systemd_escape: input must be a string, not {type(text).__name__}")
    try:
        return escape_unit_name_part(str(text), path=bool(path))
    except UnitFileError as exc:
        raise AnsibleFilterError(f"systemd_escape: {exc}") from exc


def _systemd_version(value: Any) -> int | None:
    """The systemd_version option: an integer such as 252 (a string of digits is taken too), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise AnsibleFilterError(f"lint_unit: systemd_version must be an integer such as 252, not {value!r}")
    return int(value)


def lint_unit(unit_input: Any, unit: str | None = None, enabled: bool | None = None,
              systemd_version: Any = None) -> list[dict[str, Any]]:
    """Lint a unit given as sections or as unit file text, for systemd `systemd_version` if given; return the findings."""
    version = _systemd_version(systemd_version)
    try:
        if isinstance(unit_input, str):
            sections = parse_unit(str(unit_input), unit=unit)
        elif isinstance(unit_input, Mapping):
            sections = _plain(unit_input)
        else:
            raise AnsibleFilterError(
                f"lint_unit: input must be sections (a mapping) or unit file text, not {type(unit_input).__name__}"
            )
        return lint_sections(sections, unit=unit, enabled=enabled, systemd_version=version)
    except UnitFileError as exc:
        raise AnsibleFilterError(f"lint_unit: {exc}") from exc


class FilterModule:
    """unitcraft.systemd filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "to_unit": to_unit,
            "from_unit": from_unit,
            "systemd_escape": systemd_escape,
            "lint_unit": lint_unit,
        }
