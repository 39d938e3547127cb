# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""The target's systemd version, read once per task, and the features the collection branches on.

The version comes from the file name of systemd's own shared library
(``/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so`` on Debian, ``/usr/lib/systemd/``
or ``/usr/lib64/systemd/`` elsewhere, ``libsystemd-shared-256.11-1.fc41.so`` on Fedora): a glob,
no process. Only when no single version is found there does the task ask ``systemctl
--version``, through the gateway, where it is counted. Debian's systemd package re-executes
PID 1 when it is upgraded (``daemon-reexec`` in its postinst), so the installed library is the
manager that reads the unit files.

Code that depends on a systemd feature asks for it by name (:data:`FEATURES`), never by a
bare number; which directives each version knows is the generated table behind _directives.py.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import depends_on_version
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError

# feature -> the first systemd version that has it (measured, or from systemd's NEWS)
FEATURES: dict[str, int] = {
    # prefix drop-ins (`foo-.service.d/`) and type-wide ones (`service.d/`): NEWS of 245
    "hierarchical-dropins": 245,
}

# where distributions install libsystemd-shared-N.so, below the root of the file system
LIBRARY_GLOBS = (
    "usr/lib/systemd/libsystemd-shared-*.so",
    "usr/lib/*/systemd/libsystemd-shared-*.so",
    "usr/lib64/systemd/libsystemd-shared-*.so",
    "lib/systemd/libsystemd-shared-*.so",
    "lib/*/systemd/libsystemd-shared-*.so",
)
_LIBRARY_VERSION = re.compile(r"^libsystemd-shared-(\d+)")


def library_version(top: str = "/") -> int | None:
    """The version in the name of the systemd library installed under `top`; None when there is not exactly one."""
    found = set()
    for pattern in LIBRARY_GLOBS:
        for path in glob.glob(os.path.join(top, pattern)):
            match = _LIBRARY_VERSION.match(os.path.basename(path))
            if match:
                found.add(int(match.group(1)))
    return found.pop() if len(found) == 1 else None


class TargetSystemd:
    """The systemd of the host a task runs on: its version, read at most once, and its features."""

    def __init__(self, systemctl: Systemctl, top: str = "/") -> None:
        self.systemctl = systemctl
        self.top = top  # where to look for the library (tests point it elsewhere)
        self._version: int | None = None

    @property
    def reads_the_files(self) -> bool:
        """Whether this host's systemd is the one that reads the files the task writes.

        Not offline under another root (an image tree): that tree's systemd reads them, and
        its version is not asked for.
        """
        return self.systemctl.root in (None, "/")

    def version(self) -> int:
        """This host's systemd version; raises SystemctlError when even systemctl cannot tell."""
        if self._version is None:
            self._version = library_version(self.top) or self.systemctl.version()
        return self._version

    def has(self, feature: str) -> bool:
        return self.version() >= FEATURES[feature]

    def known_for(self, sections: Mapping[str, Mapping[str, Any]]) -> int | None:
        """The version to check `sections` against, or None: offline under a root, unknown, or not needed.

        Sections whose directives are in every systemd (nothing versioned, nothing deprecated)
        cost nothing: the version is not read for them.
        """
        if not self.reads_the_files or not depends_on_version(sections):
            return None
        try:
            return self.version()
        except SystemctlError:
            return None
