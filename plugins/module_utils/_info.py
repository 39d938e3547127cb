# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""What the `unit_info` module reports: units by name, glob pattern or all loaded, and boot order.

Live managers are asked with one `systemctl show` for every unit at once (plus one
`list-unit-files` when patterns or templates are asked, to find unit files systemd has
not loaded). Offline (root, global scope) only unit files and their enablement are known.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Sequence
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._host import resolve_target
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UNIT_TYPES, parse_unit_name
from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import UserManagerError

DEFAULT_PROPERTIES: tuple[str, ...] = (
    "Id", "Description", "LoadState", "ActiveState", "SubState", "UnitFileState", "UnitFilePreset", "FragmentPath",
    "DropInPaths", "MainPID", "NRestarts", "Result", "ExecMainStatus",
    "ActiveEnterTimestamp", "ActiveEnterTimestampMonotonic",
    "ActiveExitTimestamp", "ActiveExitTimestampMonotonic",
    "InactiveEnterTimestamp", "InactiveEnterTimestampMonotonic",
    "InactiveExitTimestamp", "InactiveExitTimestampMonotonic",
    "ExecMainStartTimestamp", "ExecMainStartTimestampMonotonic",
    "ExecMainExitTimestamp", "ExecMainExitTimestampMonotonic",
)

# What `order` compares (fetched in the same `show` even when not asked for in `properties`).
ORDER_PROPERTIES: tuple[str, ...] = (
    "Id", "Result", "ActiveEnterTimestampMonotonic", "InactiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
)

# What can be known without a running manager, from unit files alone.
OFFLINE_PROPERTIES: tuple[str, ...] = ("Id", "UnitFileState", "UnitFilePreset", "FragmentPath", "DropInPaths")

# Counters and PIDs reported as int (other values stay the text systemctl prints).
INT_PROPERTIES = frozenset({
    "MainPID", "ControlPID", "ExecMainPID", "ExecMainStatus", "ExecMainCode", "NRestarts",
    "NAccepted", "NConnections", "NRefused", "TasksCurrent", "MemoryCurrent", "CPUUsageNSec",
})
# Space-separated lists of paths reported as lists.
LIST_PROPERTIES = frozenset({"DropInPaths"})
# systemd prints UINT64_MAX for counters it does not track ("[not set]" in newer versions).
_UNSET = "18446744073709551615"
_PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_GLOB_CHARS = frozenset("*?[")

# Unit directories by scope, highest priority first (paths as seen inside the root).
_SEARCH_PATHS: dict[str, tuple[str, ...]] = {
    "system": ("/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
               "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
               "/usr/lib/systemd/system", "/lib/systemd/system"),
    "global": ("/etc/systemd/user", "/run/systemd/user", "/usr/local/lib/systemd/user",
               "/usr/lib/systemd/user", "/lib/systemd/user"),
}


class InfoError(Exception):
    """Bad input or an answer that cannot be used; the message is for the user."""


def is_glob(name: str) -> bool:
    return any(c in _GLOB_CHARS for c in name)


def normalize_name(name: str) -> str:
    """A plain unit name with its type suffix (C(foo) means C(foo.service), as for systemctl)."""
    if not isinstance(name, str) or not name.strip():
        raise InfoError(f"invalid unit name {name!r}: it is empty")
    if name.rpartition(".")[2] not in UNIT_TYPES:
        name += ".service"
    try:
        parse_unit_name(name)
    except UnitFileError as exc:
        raise InfoError(str(exc)) from exc
    return name


def normalize_pattern(pattern: str) -> str:
    if "/" in pattern or any(c.isspace() for c in pattern):
        raise InfoError(f"invalid unit name pattern {pattern!r}: no '/' or whitespace allowed")
    return pattern


def is_template(name: str) -> bool:
    return parse_unit_name(name).is_template


def check_properties(properties: Sequence[str] | None) -> list[str]:
    """The properties to report, Id first, each a systemd property name."""
    wanted = list(DEFAULT_PROPERTIES) if not properties else ["Id", *properties]
    bad = [p for p in wanted if not isinstance(p, str) or not _PROPERTY_NAME.match(p)]
    if bad:
        raise InfoError(f"invalid property names {bad}: systemd property names are letters and digits, "
                        "such as ActiveState or ExecMainStartTimestampMonotonic")
    return list(dict.fromkeys(wanted))


def convert_value(prop: str, value: str) -> Any:
    """Ints for PIDs, counters and monotonic timestamps; lists for DropInPaths; text otherwise."""
    if prop in LIST_PROPERTIES:
        return value.split()
    if prop in INT_PROPERTIES or prop.endswith("Monotonic"):
        if value == _UNSET or value == "[not set]":
            return None
        if value.isdigit():
            return int(value)
    return value


def report(block: dict[str, str], properties: Sequence[str]) -> dict[str, Any]:
    """The asked properties of one unit, converted; properties its type lacks are left out."""
    return {p: convert_value(p, block[p]) for p in properties if p in block}


class UnitInfo:
    """Gathers the answer of one `unit_info` task through one Systemctl gateway."""

    def __init__(self, systemctl: Systemctl, names: Sequence[str] | None, properties: Sequence[str] | None,
                 order: Sequence[str] | None = None) -> None:
        self.systemctl = systemctl
        self.all_units = names is None
        self.properties = check_properties(properties)
        self.entries: list[tuple[str, str]] = []  # ("name"|"pattern", text) in the order given
        for name in names or []:
            if is_glob(name):
                self.entries.append(("pattern", normalize_pattern(name)))
            else:
                self.entries.append(("name", normalize_name(name)))
        self.entries = list(dict.fromkeys(self.entries))
        self.order: list[str] | None = None
        if order is not None:
            if len(order) != 2 or any(is_glob(n) for n in order):
                raise InfoError(f"order takes exactly two unit names (no patterns), got {list(order)}")
            self.order = [normalize_name(n) for n in order]
            if any(is_template(n) for n in self.order):
                raise InfoError(f"order takes units that can run, not templates: {self.order}")
            if not systemctl.live:
                raise InfoError("order needs a running manager: it compares this boot's timestamps, "
                                "which do not exist with root or scope=global")

    # --- live -------------------------------------------------------------------------------

    def gather(self) -> dict[str, Any]:
        if self.systemctl.live:
            units, order_blocks = self._gather_live()
        else:
            units, order_blocks = self._gather_offline(), {}
        result: dict[str, Any] = {"changed": False, "units": units}
        if self.order is not None:
            first, second = self.order
            result["ordered"], result["order_detail"] = compare_order(
                first, order_blocks[first], second, order_blocks[second])
        result["systemctl_calls"] = self.systemctl.calls
        return result

    def _gather_live(self) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
        plain = [text for kind, text in self.entries if kind == "name"]
        templates = [n for n in plain if is_template(n)]
        runnable = [n for n in plain if n not in templates]
        patterns = ["*"] if self.all_units else [text for kind, text in self.entries if kind == "pattern"]
        # Unit files systemd has not loaded match patterns too, and templates are never loaded.
        files: dict[str, dict[str, str]] = {}
        if templates or (patterns and not self.all_units):
            files = self.systemctl.list_unit_files([*patterns, *templates] if not self.all_units else templates)
        lead = runnable + [n for n in (self.order or []) if n not in runnable]
        file_units = [f for f in files if not is_template(f) and f not in lead
                      and any(fnmatch.fnmatchcase(f, p) for p in patterns)]
        properties = list(dict.fromkeys([*self.properties, *(ORDER_PROPERTIES if self.order else ())]))
        blocks = self.systemctl.show_units([*lead, *file_units, *patterns], properties)
        if len(blocks) < len(lead):
            raise SystemctlError(f"systemctl show answered {len(blocks)} units for {len(lead)} names")
        by_name = dict(zip(lead, blocks))
        matched: dict[str, dict[str, str]] = {}
        for block in blocks[len(lead):]:
            matched.setdefault(block.get("Id", ""), block)
        for name in files:
            if is_template(name) and name not in matched:
                matched[name] = self._file_block(name, files[name])

        units: dict[str, dict[str, Any]] = {}
        placed: set[str] = set()
        for kind, text in self.entries:
            if kind == "name":
                block = by_name.get(text) or matched.get(text) or self._file_block(text, files.get(text))
                units.setdefault(block.get("Id") or text, report(block, self.properties))
            else:
                for unit_id in sorted(i for i in matched if fnmatch.fnmatchcase(i, text)):
                    units.setdefault(unit_id, report(matched[unit_id], self.properties))
                    placed.add(unit_id)
        # All loaded units, and what a pattern matched under another name (an alias).
        for unit_id in sorted(set(matched) - placed):
            if self.all_units or unit_id not in units:
                units.setdefault(unit_id, report(matched[unit_id], self.properties))
        return list(units.values()), by_name

    @staticmethod
    def _file_block(name: str, file: dict[str, str] | None) -> dict[str, str]:
        """What list-unit-files says of a template (systemctl show refuses templates)."""
        if file is None:
            return {"Id": name, "UnitFileState": "not-found"}
        return {"Id": name, "UnitFileState": file["state"], "UnitFilePreset": file["preset"]}

    # --- offline ----------------------------------------------------------------------------

    def _gather_offline(self) -> list[dict[str, Any]]:
        """Unit files and enablement under root (or for --global): one list-unit-files call."""
        plain = [text for kind, text in self.entries if kind == "name"]
        patterns = [text for kind, text in self.entries if kind == "pattern"]
        files = self.systemctl.list_unit_files([] if self.all_units else [*plain, *patterns])
        # Instances are not unit files: is-enabled answers for them (only when asked by name).
        instances = [n for n in plain if n not in files and parse_unit_name(n).is_instance]
        states = self.systemctl.is_enabled(instances) if instances else {}
        wanted = [p for p in self.properties if p in OFFLINE_PROPERTIES] or ["Id"]
        names: list[str] = []
        if self.all_units:
            names = sorted(files)
        for kind, text in self.entries:
            if kind == "name":
                names.append(text)
            else:
                names.extend(sorted(f for f in files if fnmatch.fnmatchcase(f, text)))
        units: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(names):
            if name in files:
                block = {"Id": name, "UnitFileState": files[name]["state"], "UnitFilePreset": files[name]["preset"]}
            else:
                block = {"Id": name, "UnitFileState": states.get(name, "not-found"), "UnitFilePreset": ""}
            fragment, dropins = find_unit_files(name, self.systemctl.scope, self.systemctl.root)
            block["FragmentPath"] = fragment
            block["DropInPaths"] = " ".join(dropins)
            units[name] = report(block, wanted)
        return list(units.values())


def search_paths(scope: str, root: str | None) -> list[str]:
    """Unit directories of a scope, highest priority first, as paths inside the root."""
    if scope == "system":
        return list(_SEARCH_PATHS["system"])
    paths = list(_SEARCH_PATHS["global"])
    if scope == "user":
        home = os.path.expanduser("~")
        paths.insert(0, os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
                                     "systemd", "user"))
    return paths


def _dropin_dirs(name: str) -> list[str]:
    """Drop-in directory names that apply to a unit, most general first (systemd.unit(5))."""
    parsed = parse_unit_name(name)
    dirs = [f"{parsed.type}.d"]
    parts = parsed.prefix.split("-")
    dirs += ["-".join(parts[:i]) + f"-.{parsed.type}.d" for i in range(1, len(parts))]
    if parsed.is_instance and parsed.template:
        dirs.append(parsed.template + ".d")
    dirs.append(name + ".d")
    return list(dict.fromkeys(dirs))


def find_unit_files(name: str, scope: str, root: str | None) -> tuple[str, list[str]]:
    """FragmentPath and DropInPaths of a unit from the files alone (paths as seen inside root)."""
    base = root or "/"
    dirs = search_paths(scope, root)

    def host(path: str) -> str:
        return os.path.join(base, path.lstrip("/"))

    fragment = ""
    parsed = parse_unit_name(name)
    candidates = [name] + ([parsed.template] if parsed.is_instance and parsed.template else [])
    for candidate in candidates:
        for directory in dirs:
            path = os.path.join(directory, candidate)
            if os.path.lexists(host(path)):
                fragment = path
                if os.path.islink(host(path)):
                    target = os.readlink(host(path))
                    fragment = target if os.path.isabs(target) else os.path.normpath(
                        os.path.join(directory, target))
                break
        if fragment:
            break
    # A drop-in of a given file name in a higher-priority directory hides the others.
    chosen: dict[str, str] = {}
    order: list[str] = []
    for dropin_dir in _dropin_dirs(name):
        for directory in dirs:
            folder = host(os.path.join(directory, dropin_dir))
            if not os.path.isdir(folder):
                continue
            for entry in sorted(os.listdir(folder)):
                if entry.endswith(".conf") and entry not in chosen:
                    chosen[entry] = os.path.join(directory, dropin_dir, entry)
                    order.append(entry)
    return fragment, [chosen[e] for e in sorted(order)]


def describe_paths(paths: Sequence[str], root: str | None) -> dict[str, dict[str, Any]]:
    """Whether each absolute path exists (inside root), its kind, and the SHA-1 of a regular file.

    Lets a role learn in the same call which programs and files a host has, and whether a
    file it manages already has the wanted content (the SHA-1 is what ansible.builtin.stat
    and the copy module's checksum use), so that it writes nothing when nothing differs.
    """
    bad = [p for p in paths if not isinstance(p, str) or not p.startswith("/")]
    if bad:
        raise InfoError(f"paths must be absolute paths, got {bad}")
    described: dict[str, dict[str, Any]] = {}
    for path in paths:
        host_path = os.path.join(root or "/", path.lstrip("/"))
        try:
            mode = os.stat(host_path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            described[path] = {"exists": False, "type": None, "checksum": None}
            continue
        kind = "file" if stat.S_ISREG(mode) else "directory" if stat.S_ISDIR(mode) else "other"
        checksum = None
        if kind == "file":
            digest = hashlib.sha1()
            with open(host_path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(chunk)
            checksum = digest.hexdigest()
        described[path] = {"exists": True, "type": kind, "checksum": checksum}
    return described


NOT_STARTED = ("has not started in this boot (or it stopped and systemd unloaded it, forgetting its "
               "timestamps, as it does with units nothing refers to)")


def _timestamp(block: dict[str, str], prop: str) -> int:
    value = block.get(prop, "")
    return int(value) if value.isdigit() else 0


def compare_order(first: str, a: dict[str, str], second: str, b: dict[str, str]) -> tuple[bool, dict[str, Any]]:
    """Whether, in this boot, unit A finished starting before unit B began to start.

    A finished starting when it entered `active` (ActiveEnterTimestampMonotonic, taken at or
    after its last start); a unit that ran and ended without staying active, such as a
    oneshot without RemainAfterExit, finished when it went back to `inactive` with
    Result=success (InactiveEnterTimestampMonotonic). B began to start when it left
    `inactive` (InactiveExitTimestampMonotonic): when its start job ran, before
    ExecStartPre= and ExecStart=. This is exactly what `After=`/`Before=` guarantee.
    """
    a_start = _timestamp(a, "InactiveExitTimestampMonotonic")
    a_active = _timestamp(a, "ActiveEnterTimestampMonotonic")
    a_inactive = _timestamp(a, "InactiveEnterTimestampMonotonic")
    detail: dict[str, Any] = {"first": a.get("Id") or first, "second": b.get("Id") or second,
                              "first_finished": 0, "first_finished_property": None,
                              "second_started": 0, "second_started_property": "InactiveExitTimestampMonotonic"}
    if a_active and a_active >= a_start:
        detail["first_finished"], detail["first_finished_property"] = a_active, "ActiveEnterTimestampMonotonic"
    elif a_start and a_inactive > a_start and a.get("Result") == "success":
        detail["first_finished"], detail["first_finished_property"] = a_inactive, "InactiveEnterTimestampMonotonic"
    b_start = _timestamp(b, "InactiveExitTimestampMonotonic")
    detail["second_started"] = b_start
    if not detail["first_finished"]:
        if not a_start:
            why = NOT_STARTED
        else:
            why = f"has not finished starting in this boot (Result={a.get('Result') or 'unknown'})"
        detail["reason"] = f"{detail['first']} {why}"
        return False, detail
    if not b_start:
        detail["reason"] = f"{detail['second']} {NOT_STARTED}"
        return False, detail
    ordered = detail["first_finished"] <= b_start
    relation = "before" if ordered else "after"
    detail["reason"] = (f"{detail['first']} finished starting {relation} {detail['second']} started "
                        f"({detail['first_finished']} {'<=' if ordered else '>'} {b_start} us since boot)")
    return ordered, detail


def run_module(module: Any) -> None:
    """Entry point of the `unit_info` module: exit_json or fail_json, never return."""
    params = module.params
    warnings: list[str] = []
    try:
        target = resolve_target(params["scope"], params.get("root"), params.get("user"))
        warnings = target.warnings("units were read from their files")
        if target.user is not None and not target.user.manager_running():
            raise InfoError(target.user.missing_manager_message())
        systemctl = Systemctl(module, scope=target.scope, root=target.root, user=target.user)
        info = UnitInfo(systemctl, params.get("names"), params.get("properties"), params.get("order"))
        paths = params.get("paths")
        described = describe_paths(paths, target.root) if paths is not None else None
        result = info.gather()
        if described is not None:
            result["paths"] = described
    except InfoError as exc:
        module.fail_json(msg=str(exc))
    except SystemctlError as exc:
        module.fail_json(msg=str(exc))
    except UserManagerError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or ''}: {exc.strerror or exc}")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)
