# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Which unit files load a credential file: the evidence before a shared credential is removed.

A file in a host-wide credential store (``/etc/credstore.encrypted/NAME``) can be loaded by any
unit: by name (``LoadCredentialEncrypted=NAME``, which systemd looks up in its stores), by path
(``NAME:PATH``, or a directory that holds it), or by a glob (``ImportCredential=``, systemd 254
and later). `CredentialLoaders` reads the unit files and drop-ins of the manager's search path
and matches each of those lines against the file. Matching errs on the side of keeping: a value
with a specifier (``%d``, ``%I``...) matches whatever the specifier could stand for.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Collection, Iterator, Sequence

# Unit types that run processes, the only ones that load credentials (systemd.exec(5)).
EXEC_UNIT_TYPES = ("service", "socket", "mount", "swap")

# The system manager's unit search path (systemd.unit(5)); /lib for hosts without merged /usr.
SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
    "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached",
    "/run/systemd/system", "/run/systemd/system.attached", "/run/systemd/generator",
    "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
    "/run/systemd/generator.late",
)
# Where the system manager looks a credential up by name, encrypted and plain (systemd.exec(5)).
SYSTEM_STORE_DIRS = tuple(f"{base}/{kind}" for kind in ("credstore.encrypted", "credstore")
                          for base in ("/etc", "/run", "/usr/local/lib", "/usr/lib"))

_CREDENTIAL_LINE = re.compile(r"^[ \t]*(LoadCredential|LoadCredentialEncrypted|ImportCredential)[ \t]*=[ \t]*(.*?)\s*$")
_SPECIFIER = re.compile(r"%%|%.")


def user_unit_dirs(home: str, config_home: str, runtime_dir: str) -> tuple[str, ...]:
    """A user manager's unit search path (systemd.unit(5)); the runtime parts only when there is a runtime directory."""
    parts = ("user.control", "transient", "generator.early", "user", "generator", "generator.late")
    runtime = [f"{runtime_dir}/systemd/{part}" for part in parts] if runtime_dir else []
    return (f"{config_home}/systemd/user.control", f"{config_home}/systemd/user", "/etc/systemd/user",
            "/run/systemd/user", f"{home}/.local/share/systemd/user", "/usr/local/share/systemd/user",
            "/usr/share/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user",
            *runtime)


def _pattern(text: str, glob: bool) -> str:
    """An fnmatch pattern for a unit-file value: a specifier stands for anything, `%%` for `%`."""
    def part(literal: str) -> str:
        return literal if glob else re.sub(r"([*?\[])", r"[\1]", literal)

    out, last = [], 0
    for found in _SPECIFIER.finditer(text):
        out.append(part(text[last:found.start()]))
        out.append("%" if found.group() == "%%" else "*")
        last = found.end()
    out.append(part(text[last:]))
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class CredentialLine:
    """One LoadCredential=, LoadCredentialEncrypted= or ImportCredential= line of a unit file or drop-in."""

    source: str
    directive: str
    value: str

    def loads(self, path: str, searched: Collection[str]) -> bool:
        """Whether this line can load the file `path` (as the booted system sees it).

        `searched` are the store directories that a credential named without a path is looked up in.
        """
        head, colon, rest = self.value.partition(":")
        in_store = os.path.dirname(path) in searched
        name = os.path.basename(path)
        if self.directive == "ImportCredential":
            return bool(head) and in_store and fnmatch.fnmatchcase(name, _pattern(head, glob=True))
        target = rest if colon else head  # without a path, the ID is looked up in the stores
        if not target:
            return False
        if not target.startswith(("/", "%")):
            return in_store and fnmatch.fnmatchcase(name, _pattern(target, glob=False))
        if "%" in target.replace("%%", ""):
            return fnmatch.fnmatchcase(path, _pattern(target, glob=False))
        target = os.path.normpath(target.replace("%%", "%"))
        # a directory loads every file under it
        return path == target or path.startswith(target.rstrip("/") + "/")


def credential_lines(text: str, source: str) -> list[CredentialLine]:
    """The credential lines of a unit file's text (comments and other directives are skipped)."""
    lines = []
    for line in text.splitlines():
        found = _CREDENTIAL_LINE.match(line)
        if found:
            lines.append(CredentialLine(source, found.group(1), found.group(2)))
    return lines


def _loads_credentials(name: str) -> bool:
    return name.rpartition(".")[2] in EXEC_UNIT_TYPES


def unit_files(dirs: Sequence[str], names: Collection[str] | None = None) -> Iterator[str]:
    """Unit files and drop-ins (``*.d/*.conf``) in `dirs` that may load credentials, each real file once.

    With `names`, only the files of those units: ``NAME`` and ``NAME.d/*.conf``.
    """
    seen: set[str] = set()
    for directory in dirs:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".d"):
                stem = entry.name[:-2]
                if not _loads_credentials(stem) or (names is not None and stem not in names):
                    continue
                try:
                    inside = sorted(os.scandir(entry.path), key=lambda dropin: dropin.name)
                except OSError:
                    continue
                candidates = [dropin.path for dropin in inside if dropin.name.endswith(".conf")]
            elif _loads_credentials(entry.name) and (names is None or entry.name in names):
                candidates = [entry.path]
            else:
                continue
            for candidate in candidates:
                real = os.path.realpath(candidate)
                if real not in seen and os.path.isfile(candidate):
                    seen.add(real)
                    yield candidate


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class CredentialLoaders:
    """The credential lines of a manager's unit files, read once; paths are the target's (under `root`)."""

    def __init__(self, unit_dirs: Sequence[str], store_dirs: Sequence[str], root: str | None = None) -> None:
        self.root = root
        self.unit_dirs = [self._under_root(d) for d in unit_dirs]
        self.store_dirs = tuple(store_dirs)
        self._all: list[CredentialLine] | None = None

    def _under_root(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/")) if self.root else path

    def _lines(self, names: Collection[str] | None) -> list[CredentialLine]:
        return [line for source in unit_files(self.unit_dirs, names) for line in credential_lines(_read(source), source)]

    def loaded_by(self, path: str) -> list[str]:
        """The unit files and drop-ins that load `path` (as the booted system sees it)."""
        if self._all is None:
            self._all = self._lines(None)
        return sorted({line.source for line in self._all if line.loads(path, self.store_dirs)})

    def unit_loads(self, unit_names: Collection[str], path: str) -> bool:
        """Whether the files of these units (a unit and its template) load `path`."""
        return any(line.loads(path, self.store_dirs) for line in self._lines(unit_names))
