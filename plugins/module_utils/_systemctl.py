# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""The one gateway through which the collection talks to systemctl.

Every call goes through `Systemctl.run`, which adds the scope/root flags and counts the
processes started, so modules can batch work (one `show` for many units, one
daemon-reload per task) and report how many calls they made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, Protocol

from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import UserAccount


class SystemctlError(Exception):
    """A systemctl call failed; the message holds the command and what systemctl said."""


class CommandRunner(Protocol):
    """The subset of AnsibleModule the gateway uses (lets unit tests pass a fake)."""

    check_mode: bool

    def run_command(self, args: list[str], **kwargs: Any) -> tuple[int, str, str]: ...

    def get_bin_path(self, arg: str, required: bool = False) -> str | None: ...


def systemd_tool_env(scope: str) -> dict[str, str]:
    """Environment for systemctl and systemd-analyze: plain output, and the user manager's runtime dir."""
    env = {"SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LC_ALL": "C"}
    if scope == "user" and not os.environ.get("XDG_RUNTIME_DIR"):
        # Sessions without a login (become, podman exec, cron) lack it; the user manager lives here.
        env["XDG_RUNTIME_DIR"] = f"/run/user/{os.getuid()}"
    return env


_MISSING_STATE = re.compile(r"^Failed to get unit file state for (?P<unit>\S+?):")


class Systemctl:
    """systemctl for one scope (system, user, global) on the live host or offline under a root.

    With `user`, the calls go to that user's manager, run as that user. `manager=False` says
    the manager is not running yet (check mode before linger starts it): nothing is asked of it.
    """

    def __init__(self, module: CommandRunner, scope: str = "system", root: str | None = None,
                 user: UserAccount | None = None, manager: bool = True) -> None:
        self.module = module
        self.scope = scope
        self.root = root
        self.user = user
        self.manager = manager
        self.calls = 0
        self.other_calls = 0  # journalctl, loginctl
        self.commands: list[list[str]] = []
        self.binary = module.get_bin_path("systemctl", required=True) or "systemctl"
        self.env = systemd_tool_env(scope)
        self.prefix: list[str] = []
        if user is not None:
            self.env["XDG_RUNTIME_DIR"] = user.runtime_dir
            self.prefix = user.command_prefix(module.get_bin_path("runuser", required=True) or "runuser")

    @property
    def live(self) -> bool:
        """True when a running manager is talked to (not offline under a root, not --global)."""
        return self.root is None and self.scope != "global" and self.manager

    def argv(self, *args: str) -> list[str]:
        argv = [*self.prefix, self.binary, f"--{self.scope}", "--no-pager", "--no-ask-password"]
        if self.root:
            argv.append(f"--root={self.root}")
        argv.extend(args)
        return argv

    def run(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        argv = self.argv(*args)
        self.calls += 1
        self.commands.append(argv)
        rc, out, err = self.module.run_command(argv, environ_update=self.env)
        if check and rc != 0:
            raise SystemctlError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")
        return rc, out, err

    # --- reading -------------------------------------------------------------------------

    def show(self, units: Sequence[str], properties: Sequence[str]) -> dict[str, dict[str, str]]:
        """Properties of many units in one process, keyed by the names asked for."""
        if not units:
            return {}
        args = ["show", "--property=" + ",".join(properties), "--", *units]
        _rc, out, _err = self.run(*args)
        return dict(zip(units, parse_show(out, len(units))))

    def is_enabled(self, units: Sequence[str]) -> dict[str, str]:
        """Unit-file state (enabled, disabled, static, masked, ..., not-found) read from disk.

        For offline use (--root, --global); a live manager answers UnitFileState in `show`.
        systemd 252 stops at the first unit it cannot find, so the call resumes after it.
        """
        result: dict[str, str] = {}
        pending = list(units)
        while pending:
            _rc, out, err = self.run("is-enabled", "--", *pending, check=False)
            states = [line.strip() for line in out.splitlines() if line.strip()]
            missing = next((m.group("unit") for m in map(_MISSING_STATE.match, err.splitlines()) if m), None)
            answered = pending[:len(states)]
            result.update(zip(answered, states))
            pending = pending[len(states):]
            if not pending:
                break
            if missing is None or pending[0] != missing:
                raise SystemctlError(f"systemctl is-enabled gave no state for {pending[0]}: {err.strip()}")
            result[pending.pop(0)] = "not-found"
        return result

    def show_units(self, names: Sequence[str], properties: Sequence[str]) -> list[dict[str, str]]:
        """`systemctl show --all` of names and glob patterns in one process, one block per unit.

        systemctl answers each plain name in the order given (not-found ones too), then the
        loaded units (inactive ones included, thanks to --all) that the patterns match.
        --all also prints properties whose value is empty, so every block has the same keys.
        Include "Id" in `properties`: a unit lacking all of them would otherwise print no block.
        """
        if not names:
            return []  # `systemctl show` without units describes the manager itself
        args = ["show", "--all", "--property=" + ",".join(properties), "--", *names]
        _rc, out, _err = self.run(*args)
        return split_show(out)

    def list_unit_files(self, patterns: Sequence[str] = ()) -> dict[str, dict[str, str]]:
        """Unit files matching the patterns (all with none), read from disk, in one process.

        Maps file name to {"state": enabled|disabled|static|masked|..., "preset": ... or ""}.
        Works offline (--root, --global). Instances (foo@bar.service) are never listed.
        """
        rc, out, err = self.run("list-unit-files", "--no-legend", "--plain", "--", *patterns, check=False)
        if rc != 0 and (out.strip() or err.strip()):
            raise SystemctlError(f"{' '.join(self.commands[-1])} failed (rc={rc}): {(err or out).strip()}")
        files: dict[str, dict[str, str]] = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 2:
                preset = fields[2] if len(fields) > 2 and fields[2] != "-" else ""
                files[fields[0]] = {"state": fields[1], "preset": preset}
        return files

    # --- changing --------------------------------------------------------------------------

    def version(self) -> int:
        """systemd's version number (`systemctl --version`: "systemd 252 (252.39-1~deb12u2)")."""
        _rc, out, _err = self.run("--version")
        match = re.match(r"systemd (\d+)", out)
        if not match:
            raise SystemctlError(f"systemctl --version said {out.strip()[:80]!r}, not 'systemd N'")
        return int(match.group(1))

    def daemon_reload(self) -> None:
        self.run("daemon-reload")

    def _batch(self, verb: str, units: Sequence[str], no_reload: bool = False, no_block: bool = False) -> None:
        if units:
            flags = (["--no-reload"] if no_reload and self.live else []) + (["--no-block"] if no_block else [])
            self.run(verb, *flags, "--", *units)

    def enable(self, units: Sequence[str]) -> None:
        self._batch("enable", units, no_reload=True)

    def reenable(self, units: Sequence[str]) -> None:
        self._batch("reenable", units, no_reload=True)

    def disable(self, units: Sequence[str]) -> None:
        self._batch("disable", units, no_reload=True)

    def mask(self, units: Sequence[str]) -> None:
        self._batch("mask", units, no_reload=True)

    def unmask(self, units: Sequence[str]) -> None:
        self._batch("unmask", units, no_reload=True)

    # Jobs are only queued (--no-block): the health gate waits for them with a time limit.
    def start(self, units: Sequence[str]) -> None:
        self._batch("start", units, no_block=True)

    def stop(self, units: Sequence[str]) -> None:
        self._batch("stop", units, no_block=True)

    def restart(self, units: Sequence[str]) -> None:
        self._batch("restart", units, no_block=True)

    def reset_failed(self, units: Sequence[str]) -> bool:
        """Clear the failed state, NRestarts and the start rate limit (StartLimitBurst=) of units.

        True when every unit was reset. systemctl refuses a unit it has not loaded; the start
        that follows reports that unit's real problem, so a refusal is not an error here.
        """
        if not units:
            return True
        rc, _out, _err = self.run("reset-failed", "--", *units, check=False)
        return rc == 0

    # --- the journal, the evidence of a start --------------------------------------------

    def journal(self, unit: str, since: float, lines: int) -> list[str]:
        """The unit's last `lines` journal lines of this boot since `since` (epoch seconds); [] if unreadable."""
        binary = self.module.get_bin_path("journalctl")
        if not binary:
            return []
        argv = [binary, "--no-pager", "--quiet", "--output=short-iso", "--boot", f"--lines={lines}",
                f"--since=@{int(since)}"]
        if self.user is not None:
            # root reads the user's journal: the service's own lines and its manager's lines about it
            uid = f"_UID={self.user.uid}"
            argv += [uid, f"_SYSTEMD_USER_UNIT={unit}", "+", uid, f"USER_UNIT={unit}"]
        elif self.scope == "user":
            argv += ["--user", "--unit", unit]
        else:
            argv += ["--unit", unit]
        self.other_calls += 1
        rc, out, _err = self.module.run_command(argv, environ_update=self.env)
        return [line for line in out.splitlines() if line.strip()] if rc == 0 else []

    # --- lingering: a user manager that runs without a login ------------------------------

    def set_linger(self, user: UserAccount, enable: bool) -> None:
        """`loginctl enable-linger`/`disable-linger` on a running system (it starts or stops the manager)."""
        binary = self.module.get_bin_path("loginctl", required=True) or "loginctl"
        argv = [binary, "enable-linger" if enable else "disable-linger", user.name]
        self.other_calls += 1
        self.commands.append(argv)
        rc, out, err = self.module.run_command(argv, environ_update=self.env)
        if rc != 0:
            raise SystemctlError(f"{' '.join(argv)} failed (rc={rc}): {(err or out).strip()}")


def parse_show(text: str, expected: int) -> list[dict[str, str]]:
    """Split `systemctl show` output of several units, checking that every unit answered."""
    blocks = split_show(text)
    if len(blocks) != expected:
        raise SystemctlError(f"systemctl show returned {len(blocks)} blocks for {expected} units")
    return blocks


def split_show(text: str) -> list[dict[str, str]]:
    """Blocks of `systemctl show` output for any number of units (separated by blank lines)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks
