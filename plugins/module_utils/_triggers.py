# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Restart triggers: is a file newer than the running unit's current activation?

Stateless by design: the unit's own activation time is the record of what it has seen, so a
run that wrote a file but was interrupted before the restart converges on the next run, and
a run after the restart finds nothing newer. Times are compared on the monotonic clock that
systemd's `*TimestampMonotonic` properties use; file times are moved onto it with the
current offset between the wall clock and the monotonic clock (this code runs on the target),
so a step of the wall clock after a file was written shifts the comparison by that step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping

# properties that say when the current activation began (a service's main process, or any unit leaving inactive)
MAIN_PROCESS_START = "ExecMainStartTimestampMonotonic"
ACTIVATION_PROPERTIES = (MAIN_PROCESS_START, "InactiveExitTimestampMonotonic")
# between two automatic starts of a service (Restart=): no process runs
AUTO_RESTART_STATES = frozenset({"auto-restart", "auto-restart-queued"})


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


# The link itself, then what it points to.
STAT_FUNCTIONS: tuple[Callable[[str], os.stat_result], ...] = (os.lstat, os.stat)


def file_seconds(path: str, wall_minus_monotonic: float) -> float | None:
    """Monotonic seconds of a path's last change (the newer of the link and what it points to).

    A change is the newer of the modification time and the inode change time: a file put in
    place by a rename (Ansible's copy, a package manager) keeps the modification time of its
    temporary copy, or the packaged one, while the rename itself sets the change time. A
    chmod or chown also counts, which costs at most one extra restart.
    """
    times = []
    for stat in STAT_FUNCTIONS:
        try:
            result = stat(path)
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
