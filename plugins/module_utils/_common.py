# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Argument specs shared by the collection's modules, declared once."""

from __future__ import annotations

import os
import pwd
from typing import Any

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
