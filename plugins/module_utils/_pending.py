# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Pending restarts: what makes a run that was killed half-way converge on the next one.

Before a task writes the first file, it marks every unit it is about to restart (a small
file under /run); once the new definitions are loaded (after the daemon-reload) it stamps the
marks with that moment on the monotonic clock; once the restart is queued it removes them.
A later run restarts a marked unit that runs, unless its current activation began after the
stamp: then it already runs the new definition (the killed run queued its restart, or systemd
restarted it by itself), and the mark is only removed. An unstamped mark always restarts.

Nothing here compares file times, and the monotonic clock cannot be stepped. /run is empty
after a reboot, and after a reboot every unit runs the definitions on disk: a mark is never
needed across one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from ansible_collections.unitcraft.systemd.plugins.module_utils._triggers import (
    RECORD_DIR,
    USER_RECORD_DIR,
    TriggerRecords,
    activation_seconds,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import UserAccount

PENDING_DIR = "/run/unitcraft/pending-restarts"


class PendingRestarts:
    """Marks of the restarts a task owes, in `directory` (None: offline or --global, nothing runs)."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory

    def _path(self, unit: str) -> str:
        return os.path.join(self.directory or "", unit)

    def stamp_of(self, unit: str) -> tuple[bool, float | None]:
        """(marked, the monotonic second its new definition was loaded, or None when never stamped)."""
        if self.directory is None:
            return False, None
        try:
            with open(self._path(unit), encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return False, None
        except (OSError, ValueError):
            return True, None  # a mark cut short by the kill: the restart is still owed
        loaded = data.get("loaded") if isinstance(data, dict) else None
        return True, float(loaded) if isinstance(loaded, (int, float)) else None

    def owed(self, unit: str, status: Mapping[str, str]) -> tuple[bool, bool]:
        """(the unit is marked, the running unit still owes the restart an earlier run marked)."""
        marked, loaded = self.stamp_of(unit)
        if not marked:
            return False, False
        began = activation_seconds(status)
        return True, loaded is None or began is None or began < loaded

    def due(self, unit: str, status: Mapping[str, str]) -> bool:
        return self.owed(unit, status)[1]

    def mark(self, units: Iterable[str], loaded: float | None = None) -> None:
        """Mark units (before any file is written), or stamp their marks with `loaded`."""
        units = list(units)
        if self.directory is None or not units:
            return
        os.makedirs(self.directory, mode=0o755, exist_ok=True)
        text = json.dumps({"loaded": loaded})
        for unit in units:
            tmp = self._path(f".{unit}.tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self._path(unit))

    def clear(self, units: Iterable[str]) -> None:
        if self.directory is None:
            return
        for unit in units:
            try:
                os.unlink(self._path(unit))
            except FileNotFoundError:
                pass


def task_state(scope: str, root: str | None, user: UserAccount | None) -> tuple[PendingRestarts, TriggerRecords]:
    """Where a task keeps what it owes and what it has seen: per manager, on the target.

    Nothing offline (a root) or for --global: no manager runs those units. A user manager's
    marks live beside root's (a task for `user` runs as root) or in the user's own runtime
    directory; its trigger records in the user's home, owned by the user.
    """
    if root is not None or scope == "global":
        return PendingRestarts(None), TriggerRecords(None)
    if scope == "system":
        return PendingRestarts(PENDING_DIR), TriggerRecords(RECORD_DIR)
    if user is not None:
        return (PendingRestarts(os.path.join(PENDING_DIR, f"user-{user.uid}")),
                TriggerRecords(os.path.join(user.home, USER_RECORD_DIR), owner=(user.uid, user.gid)))
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return (PendingRestarts(os.path.join(runtime, "unitcraft", "pending-restarts")),
            TriggerRecords(os.path.join(os.path.expanduser("~"), USER_RECORD_DIR)))
