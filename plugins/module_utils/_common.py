# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Argument specs shared by the collection's modules, declared once."""

from __future__ import annotations

import os
import pwd
from typing import Any

from ansible.module_utils.basic import AnsibleModule


class SystemdModule(AnsibleModule):
    """AnsibleModule that refuses unit text which is not UTF-8, naming the unit, before anything runs.

    Ansible passes the undecodable bytes of a file read with `lookup('file')` (a latin-1 unit file)
    as lone surrogates; its invocation log and its result would fail on them with a bare codec error.
    """

    def _log_invocation(self) -> None:
        try:
            super()._log_invocation()
        except UnicodeEncodeError:
            self.log("Invoked with a parameter that is not UTF-8 text")
        problem = not_utf8(self.params)
        if problem:
            self.params = _escaped(self.params)  # the result echoes the arguments: they must serialize
            self.fail_json(msg=f"{problem}; systemd reads unit files as UTF-8, nothing was changed")


def not_utf8(params: dict[str, Any]) -> str | None:
    """The first unit text (content or sections, of the task or of an item) that is not UTF-8."""
    items = [params] + [i for i in params.get("units") or [] if isinstance(i, dict)]
    for item in items:
        name = item.get("name") or params.get("name") or "?"
        for key in ("content", "sections"):
            bad = _first_bad(item.get(key))
            if bad is not None:
                return f"unit {name}: {key} is not UTF-8 text ({bad})"
    return None


def _first_bad(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, inner in value.items():
            bad = _first_bad(key) or _first_bad(inner)
            if bad is not None:
                return bad
    elif isinstance(value, list):
        for inner in value:
            bad = _first_bad(inner)
            if bad is not None:
                return bad
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"character {exc.start} of {value[max(0, exc.start - 20):exc.start + 1]!r}"
    return None


def _escaped(value: Any) -> Any:
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


SCOPES = ("system", "user", "global")

# Options that every module which talks to a systemd instance takes (task level).
TARGET_OPTIONS: dict[str, dict[str, Any]] = {
    "scope": {"type": "str", "default": "system", "choices": list(SCOPES)},
    "root": {"type": "path"},
    "user": {"type": "str"},
}

# Lingering of the O(user) whose units a task manages (modules that change things).
LINGER_OPTIONS: dict[str, dict[str, Any]] = {
    "linger": {"type": "bool"},
}

# Options that describe what to do with one unit file (or drop-in) and its unit.
# With `units`, each may also be given per item; the task-level value is the default.
FILE_OPTIONS: dict[str, dict[str, Any]] = {
    "sections": {"type": "dict"},
    "content": {"type": "str"},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "restart_on_change": {"type": "bool", "default": True},
    "restart_triggers": {"type": "list", "elements": "path", "default": []},
    "validate": {"type": "str", "default": "strict", "choices": ["strict", "errors", "off"]},
    "lint": {"type": "str", "default": "warn", "choices": ["warn", "error", "off"]},
    "backup": {"type": "bool", "default": False},
    "mode": {"type": "raw", "default": "0644"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "rewrite_equivalent": {"type": "bool", "default": False},
}

RUNTIME_OPTIONS: dict[str, dict[str, Any]] = {
    "enabled": {"type": "bool"},
    "masked": {"type": "bool"},
    "active": {"type": "bool"},
}

RELOAD_OPTIONS: dict[str, dict[str, Any]] = {
    "daemon_reload": {"type": "bool", "default": True},
}

# How the task waits for the jobs it queued and judges the units (task level only).
WAIT_OPTIONS: dict[str, dict[str, Any]] = {
    "wait_timeout": {"type": "float", "default": 120},
    "settle": {"type": "float", "default": 1},
    "no_block": {"type": "bool", "default": False},
}


def without_defaults(spec: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Copy of a spec with no defaults, for `units` items (unset means: take the task-level value)."""
    return {name: {k: v for k, v in opt.items() if k != "default"} for name, opt in spec.items()}


def unit_directory(scope: str, root: str | None, home: str | None = None) -> str:
    """Directory where this collection writes unit files for a scope (admin directory, never vendor).

    `home` is the home of the user whose units are managed (option `user`).
    """
    if home is not None:
        return os.path.join(home, ".config", "systemd", "user")
    if scope == "system":
        path = "/etc/systemd/system"
    elif scope == "global":
        path = "/etc/systemd/user"
    else:
        config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            pwd.getpwuid(os.getuid()).pw_dir, ".config")
        path = os.path.join(config_home, "systemd", "user")
    if root:
        return os.path.join(root, path.lstrip("/"))
    return path
