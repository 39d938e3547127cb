# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Another user's systemd manager, reached from a root play.

The user's manager is talked to as that user (`runuser -u USER -- systemctl --user`) over its
private socket in `$XDG_RUNTIME_DIR/systemd/private`, which needs no user D-Bus
(dbus-user-session is often missing on servers). Lingering is the file
/var/lib/systemd/linger/USER: `loginctl enable-linger` makes it and starts the manager on a
running system; offline the file alone is what counts at the next boot.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LINGER_DIR = "/var/lib/systemd/linger"
LINGER_OFF_GRACE = 5.0


class UserManagerError(Exception):
    """The user does not exist, or has no manager to talk to; the message says what to do."""


@dataclass(frozen=True)
class UserAccount:
    name: str
    uid: int
    gid: int
    home: str

    @property
    def runtime_dir(self) -> str:
        return f"/run/user/{self.uid}"

    @property
    def unit_dir(self) -> str:
        """Where this collection writes the user's units (~/.config/systemd/user)."""
        return os.path.join(self.home, ".config", "systemd", "user")

    @property
    def manager_socket(self) -> str:
        return os.path.join(self.runtime_dir, "systemd", "private")

    def manager_running(self) -> bool:
        return os.path.exists(self.manager_socket)

    def linger_path(self, root: str | None = None) -> str:
        path = os.path.join(LINGER_DIR, self.name)
        return os.path.join(root, path.lstrip("/")) if root else path

    def lingers(self, root: str | None = None) -> bool:
        return os.path.exists(self.linger_path(root))

    def command_prefix(self, runuser: str) -> list[str]:
        """Run a command as this user, with HOME and XDG_RUNTIME_DIR theirs (the manager's socket is there)."""
        return [runuser, "-u", self.name, "--", "env", f"HOME={self.home}", f"XDG_RUNTIME_DIR={self.runtime_dir}"]

    def missing_manager_message(self) -> str:
        return (f"user {self.name} has no running user manager ({self.manager_socket} does not exist) and "
                f"lingering is off: set linger: true (loginctl enable-linger {self.name}) so that the manager "
                "runs without a login, or give the user a login session first")


def lookup_user(name: str) -> UserAccount:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UserManagerError(f"user {name!r} does not exist on the target; create it first "
                               "(ansible.builtin.user)") from None
    if entry.pw_uid == 0:
        raise UserManagerError(f"user {name!r} is root: use scope: system, or scope: user without user")
    return UserAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def ensure_linger(gateway: Any, account: UserAccount, want: bool, check_mode: bool,
                  wait_timeout: float, sleep: Callable[[float], None] = time.sleep,
                  monotonic: Callable[[], float] = time.monotonic) -> bool:
    """Bring lingering of `account` to `want` with `loginctl`; True when it changed (or would, in check mode).

    Lingering on starts the user's manager, which is waited for. Only a running system gets
    here: without systemd as PID 1 a task for `user` is refused before it plans anything.
    """
    changed = account.lingers() != want
    if check_mode:
        return changed
    if changed:
        gateway.set_linger(account, want)
    if want:
        deadline = monotonic() + wait_timeout
        while not account.manager_running():
            if monotonic() >= deadline:
                raise UserManagerError(f"user {account.name}: lingering is on, but the user manager "
                                       f"(user@{account.uid}.service) did not start within {wait_timeout:g}s")
            sleep(0.1)
    elif changed:
        # the manager stops unless the user is logged in: give it a moment, so the next task sees it gone
        deadline = monotonic() + min(wait_timeout, LINGER_OFF_GRACE)
        while account.manager_running() and monotonic() < deadline:
            sleep(0.1)
    return changed


def own_manager_missing() -> str | None:
    """Why `scope: user` cannot reach the connecting user's own manager, or None when it can.

    Checked before anything is written: systemctl would only say "Failed to connect to bus".
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    socket = os.path.join(runtime, "systemd", "private")
    if os.path.exists(socket):
        return None
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    return (f"scope: user: the connecting user {name} has no running user manager ({socket} does not exist), "
            "so nothing was changed. A login session starts it; so does lingering (loginctl enable-linger "
            f"{name}), or a task run as root with user: {name} and linger: true")


RUNTIME_ROOT = "/run/user"


def running_user_managers(runtime_root: str = RUNTIME_ROOT) -> list[UserAccount]:
    """The users whose manager runs now (its private socket exists), in uid order."""
    try:
        entries = os.listdir(runtime_root)
    except OSError:
        return []
    accounts = []
    for entry in sorted((e for e in entries if e.isdigit()), key=int):
        if not os.path.exists(os.path.join(runtime_root, entry, "systemd", "private")):
            continue
        try:
            pw = pwd.getpwuid(int(entry))
        except KeyError:
            continue
        accounts.append(UserAccount(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir))
    return accounts
