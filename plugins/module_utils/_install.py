# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Atomic installation and removal of unit files and drop-ins."""

from __future__ import annotations

import glob
import grp
import os
import pwd
import re
import tempfile
from typing import Any

VENDOR_DIRS = ("/usr/lib/systemd/", "/lib/systemd/", "/usr/local/lib/systemd/")


def read_text(path: str) -> str | None:
    """Current text of a regular file, or None when there is none."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None


def is_vendor_path(path: str, root: str | None = None) -> bool:
    rel = "/" + os.path.relpath(path, root).lstrip("/") if root else path
    return rel.startswith(VENDOR_DIRS)


# a symbolic mode as chmod(1) and Ansible's file modules take it: u=rw,g=r,o=r or a+x
_SYMBOLIC_MODE = re.compile(r"^[ugoa]*[-+=](?:[rwxXst]*|[ugo])(?:[-+=](?:[rwxXst]*|[ugo]))*"
                            r"(?:,[ugoa]*[-+=](?:[rwxXst]*|[ugo])(?:[-+=](?:[rwxXst]*|[ugo]))*)*$")


def attribute_problem(mode: Any, owner: str | None, group: str | None) -> str | None:
    """What is wrong with a file's mode, owner or group, named by attribute; None when all can be applied.

    Checked while planning, so that a bad attribute is refused before any file is written.
    """
    if mode is not None:
        if isinstance(mode, bool) or not isinstance(mode, (int, str)):
            return f"mode: {mode!r} is not a mode (give an octal string such as '0644')"
        if isinstance(mode, int) and not 0 <= mode <= 0o7777:
            return f"mode: {mode} is not a mode (0 to 0o7777; as a string, '0644')"
        if isinstance(mode, str) and not (re.fullmatch(r"[0-7]{1,4}", mode) or _SYMBOLIC_MODE.match(mode)):
            return (f"mode: {mode!r} is neither an octal mode (such as '0644') nor a symbolic one "
                    "(such as 'u=rw,g=r,o=r')")
    if owner is not None and not str(owner).isdigit():
        try:
            pwd.getpwnam(str(owner))
        except KeyError:
            return f"owner: no user {owner!r} on the target"
    if group is not None and not str(group).isdigit():
        try:
            grp.getgrnam(str(group))
        except KeyError:
            return f"group: no group {group!r} on the target"
    return None


def make_directories(path: str, ids: tuple[int, int] | None = None) -> None:
    """Create `path` and its missing parents (0755), owned by `ids` (uid, gid) when given, e.g. ~/.config."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        if ids is not None:
            os.chown(directory, *ids)


def install_file(module: Any, path: str, text: str, mode: Any, owner: str | None, group: str | None,
                 backup: bool, dir_ids: tuple[int, int] | None = None) -> str | None:
    """Write `text` to `path` atomically (temp file beside it, then rename); return the backup path."""
    directory = os.path.dirname(path)
    make_directories(directory, dir_ids)
    backup_file = module.backup_local(path) if backup and os.path.exists(path) else None
    prefix = f".{os.path.basename(path)}."
    for stale in glob.glob(os.path.join(glob.escape(directory), glob.escape(prefix) + "*.tmp")):
        os.unlink(stale)  # left by a run killed while it wrote this file
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8", errors="surrogateescape"))
            f.flush()
            os.fsync(f.fileno())
        module.atomic_move(tmp, path, unsafe_writes=False)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    apply_attributes(module, path, mode, owner, group)
    return backup_file


def apply_attributes(module: Any, path: str, mode: Any, owner: str | None, group: str | None) -> bool:
    """Bring mode/owner/group of an existing file in line; True when something (would have) changed.

    AnsibleModule only reports, without touching the file, in check mode.
    """
    file_args = module.load_file_common_arguments({"mode": mode, "owner": owner, "group": group}, path=path)
    return bool(module.set_fs_attributes_if_different(file_args, False))


def remove_file(module: Any, path: str, backup: bool) -> str | None:
    backup_file = module.backup_local(path) if backup and os.path.exists(path) else None
    os.unlink(path)
    return backup_file


def remove_dir_if_empty(path: str) -> bool:
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False
