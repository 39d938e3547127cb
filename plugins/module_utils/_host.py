# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""The target's shape: is there a running manager to talk to, or is the work done offline?

systemd is PID 1 when /run/systemd/system exists (what sd_booted() checks). Where it is not
(a container started without systemd as init, an image build), files, enablement and masks
are handled offline on / with `systemctl --root=/`, as `root` does for an image tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import (
    UserAccount,
    UserManagerError,
    lookup_user,
)

BOOTED_MARK = "/run/systemd/system"
NOT_BOOTED = ("the target's PID 1 is not systemd (no /run/systemd/system, as in a container or an image "
              "build without systemd as init)")


def systemd_booted(mark: str = BOOTED_MARK) -> bool:
    return os.path.isdir(mark)


@dataclass
class Target:
    """Where a task acts: `root` is set for offline work; `offline_reason` says why there is no manager."""

    scope: str
    root: str | None = None
    offline_reason: str | None = None
    user: UserAccount | None = None

    def warnings(self, done: str) -> list[str]:
        """What to tell the user when the work was done offline because systemd is not PID 1."""
        if self.offline_reason != NOT_BOOTED:
            return []
        return [f"{NOT_BOOTED}: {done} offline on / (systemctl --root=/); runtime state (start, stop, "
                "restart, daemon-reload) was not touched"]


def resolve_target(scope: str, root: str | None, user: str | None = None, mark: str = BOOTED_MARK) -> Target:
    """Raises UserManagerError for a `user` that cannot be served."""
    if user is not None:
        if scope != "user":
            raise UserManagerError(f"user {user!r} manages that user's units: it needs scope: user")
        if root:
            raise UserManagerError("user and root cannot be combined: give the user's units under root as files")
        if not systemd_booted(mark):
            raise UserManagerError(f"user {user!r}: {NOT_BOOTED}, so there is no user manager either")
        return Target(scope, None, None, lookup_user(user))
    if root:
        return Target(scope, root, f"root {root}")
    if scope == "global":
        return Target(scope, None, "scope global")
    if scope == "system" and not systemd_booted(mark):
        return Target(scope, "/", NOT_BOOTED)
    return Target(scope)


def offline_refusal(unit: str, what: str, reason: str) -> str:
    """The message for runtime work asked of a target that has no running manager."""
    if reason == NOT_BOOTED:
        return (f"unit {unit}: {what} needs a running systemd, but {reason}. Leave {what} out to install, "
                "enable or mask offline (as an image build does), or boot the host or container with "
                "systemd as PID 1 (podman run --systemd=always ... /sbin/init)")
    return (f"unit {unit}: {what} cannot be managed with {reason}: there is no running manager to start or "
            f"stop it; leave {what} out")
