# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Restart triggers: did the content of a unit's trigger paths change since the unit last took them in?

Decided by content, never by file times: a digest of every trigger path is kept on the target,
one small JSON record per unit (and drop-in), written just before the restart it causes (the
restart itself is made certain by the pending-restart marker, _pending.py). New content with an
old modification time (rsync -t, unarchive) restarts the unit once; a future modification time
(a clock stepped back, files unpacked with preserved times) with the same content restarts
nothing. The record is state of the host, not of the controller, and survives a reboot (after
which a changed record costs at most one restart the unit did not need).

Only where no record exists yet (triggers first given for a unit that already runs) does the
time comparison decide, once: a path changed after the unit's activation began restarts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._install import make_directories

RECORD_DIR = "/var/lib/unitcraft/restart-triggers"
USER_RECORD_DIR = ".local/state/unitcraft/restart-triggers"  # under the user's home
# properties that say when the current activation began (a service's main process, or any unit leaving inactive)
MAIN_PROCESS_START = "ExecMainStartTimestampMonotonic"
ACTIVATION_PROPERTIES = (MAIN_PROCESS_START, "InactiveExitTimestampMonotonic")
# between two automatic starts of a service (Restart=): no process runs
AUTO_RESTART_STATES = frozenset({"auto-restart", "auto-restart-queued"})
# how deep a trigger directory (or a chain of symlinks) is followed, and how many entries it may hold
MAX_DEPTH = 8
MAX_ENTRIES = 10000
CHUNK = 1 << 20


def activation_seconds(status: Mapping[str, str]) -> float | None:
    """Monotonic seconds when the unit's current activation began, None when systemd does not say.

    A service waiting for its automatic restart runs nothing: its last process started at
    ExecMainStartTimestamp. systemd (252 and 257 alike) stamps InactiveExitTimestamp when that
    process died, so a file put in place while it ran would look older than the activation.
    """
    stamps = []
    keys = (MAIN_PROCESS_START,) if status.get("SubState") in AUTO_RESTART_STATES else ACTIVATION_PROPERTIES
    for key in keys:
        try:
            stamps.append(int(status.get(key) or 0))
        except ValueError:
            continue
    newest = max(stamps, default=0)
    return newest / 1e6 if newest else None


# --- content digests ------------------------------------------------------------------------


def digest(path: str) -> str:
    """A digest of what a path holds: a file's bytes, a symlink's target and what it points to,
    a directory's names and their digests. "absent" for a missing path."""
    hasher = hashlib.sha256()
    if not _feed(hasher, path, 0):
        return "absent"
    return "sha256:" + hasher.hexdigest()


def _feed(hasher: Any, path: str, depth: int) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if depth > MAX_DEPTH:
        hasher.update(b"too-deep\0")
        return True
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        hasher.update(b"link\0" + os.fsencode(target) + b"\0")
        if not _feed(hasher, os.path.join(os.path.dirname(path), target), depth + 1):
            hasher.update(b"dangling\0")
    elif stat.S_ISDIR(info.st_mode):
        hasher.update(b"dir\0")
        try:
            names = sorted(os.listdir(path))[:MAX_ENTRIES]
        except PermissionError:
            names = []
            hasher.update(b"unreadable\0")
        for name in names:
            hasher.update(os.fsencode(name) + b"\0")
            _feed(hasher, os.path.join(path, name), depth + 1)
    elif stat.S_ISREG(info.st_mode):
        hasher.update(b"file\0")
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    hasher.update(chunk)
        except PermissionError:
            # what cannot be read (another user's file) is known by its size and inode change only
            hasher.update(f"unreadable {info.st_size} {info.st_ino}".encode())
    else:
        hasher.update(f"special {info.st_mode:o} {info.st_rdev}\0".encode())
    return True


def digests(paths: Iterable[str]) -> dict[str, str]:
    return {path: digest(path) for path in paths}


# --- the records ----------------------------------------------------------------------------


def record_name(unit: str, dropin: str | None = None) -> str:
    """One record per unit, and one per drop-in of a unit (each task keeps its own triggers)."""
    return f"{unit}.d-{dropin}.json" if dropin else f"{unit}.json"


class TriggerRecords:
    """The digests each unit's triggers had when the unit last took them in, in `directory`.

    `directory` None: nothing is kept (offline under a root, --global: nothing runs there).
    `owner` (uid, gid) owns what is created (a user's records in the user's home).
    """

    def __init__(self, directory: str | None, owner: tuple[int, int] | None = None) -> None:
        self.directory = directory
        self.owner = owner

    def read(self, name: str) -> dict[str, str] | None:
        if self.directory is None:
            return None
        try:
            with open(os.path.join(self.directory, name), encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None

    def write(self, name: str, record: Mapping[str, str]) -> None:
        if self.directory is None:
            return
        make_directories(self.directory, self.owner)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(sorted(record.items())), handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            if self.owner is not None:
                os.chown(tmp, *self.owner)
            os.replace(tmp, os.path.join(self.directory, name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def remove(self, name: str) -> None:
        if self.directory is not None:
            try:
                os.unlink(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass


def changed_triggers(paths: list[str], record: Mapping[str, str] | None, current: Mapping[str, str],
                     status: Mapping[str, str], clock: Callable[[], tuple[float, float]] | None = None) -> list[str]:
    """The trigger paths whose content differs from the record.

    Paths the record does not know yet (no record, or a path newly added) are judged once by
    the time comparison (newer than the unit's activation); the record then knows them.
    """
    known = record or {}
    changed = [p for p in paths if p in known and known[p] != current[p]]
    unknown = [p for p in paths if p not in known and current[p] != "absent"]
    changed += newer_than_activation(unknown, status, clock)
    return [p for p in paths if p in changed]


# --- the time comparison, for paths no record knows yet --------------------------------------

# The link itself, then what it points to.
STAT_FUNCTIONS: tuple[Callable[[str], os.stat_result], ...] = (os.lstat, os.stat)


def file_seconds(path: str, wall_minus_monotonic: float) -> float | None:
    """Monotonic seconds of a path's last change (the newer of the link and what it points to).

    A change is the newer of the modification time and the inode change time: a file put in
    place by a rename (Ansible's copy, a package manager) keeps the modification time of its
    temporary copy, or the packaged one, while the rename itself sets the change time.
    """
    times = []
    for stat_function in STAT_FUNCTIONS:
        try:
            result = stat_function(path)
        except OSError:
            continue
        times.append(max(result.st_mtime, result.st_ctime))
    return max(times) - wall_minus_monotonic if times else None


def newer_than_activation(paths: Iterable[str], status: Mapping[str, str],
                          clock: Callable[[], tuple[float, float]] | None = None) -> list[str]:
    """The paths changed after the unit's current activation began (missing paths never are)."""
    started = activation_seconds(status)
    if started is None:
        return []
    wall, mono = clock() if clock else (time.time(), time.monotonic())
    offset = wall - mono
    newer = []
    for path in paths:
        changed = file_seconds(path, offset)
        if changed is not None and changed > started:
            newer.append(path)
    return newer


def missing(paths: Iterable[str]) -> list[str]:
    return [p for p in paths if not os.path.lexists(p)]
