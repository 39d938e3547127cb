# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private module_utils: not a public API of the collection, may change without notice.
"""Unit names: systemd's validity rules, template/instance forms, and systemd-escape.

The rules follow systemd's unit_name_is_valid(): at most 255 characters, a known type
suffix after the last dot, a non-empty prefix made of ``A-Z a-z 0-9 : _ . \\ -`` and
``@``, where the first ``@`` separates the prefix from the instance (``foo@.service`` is
a template, ``foo@bar.service`` an instance; like systemd, an instance may itself hold
``@``). On top of systemd's rules, a name containing ``..`` is refused, so that no name
can ever be read as a path part; ``/`` and whitespace are already outside the allowed
characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError

__all__ = [
    "UNIT_NAME_MAX",
    "UNIT_TYPES",
    "UnitName",
    "escape_unit_name_part",
    "parse_unit_name",
]

UNIT_TYPES: tuple[str, ...] = (
    "service", "socket", "device", "mount", "automount", "swap",
    "target", "path", "timer", "slice", "scope",
)
UNIT_NAME_MAX = 255
# systemd's VALID_CHARS for unit names (DIGITS LETTERS ":-_.\\"); "@" is handled apart.
_VALID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:-_.\\")
# Characters systemd-escape keeps as they are (VALID_CHARS minus '-' and '\\').
_KEEP_BYTES = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:_.")
_PATH_MAX = 4096
_NAME_MAX = 255
_WHITESPACE_RE = re.compile(r"\s")


@dataclass(frozen=True)
class UnitName:
    """A valid unit name split into its parts.

    ``instance`` is None for a plain unit, ``""`` for a template (``foo@.service``) and the
    instance string for an instance (``foo@bar.service``); ``type`` is the suffix without dot.
    """

    name: str
    prefix: str
    instance: str | None
    type: str

    @property
    def is_template(self) -> bool:
        return self.instance == ""

    @property
    def is_instance(self) -> bool:
        return bool(self.instance)

    @property
    def template(self) -> str | None:
        """The template an instance is made from (``foo@.service``), else None."""
        if not self.is_instance:
            return None
        return f"{self.prefix}@.{self.type}"


def parse_unit_name(name: str) -> UnitName:
    """Check a unit name against systemd's rules and split it; raise UnitFileError if invalid."""

    def fail(why: str) -> UnitFileError:
        return UnitFileError(f"invalid unit name {name!r}: {why}")

    if not isinstance(name, str):
        raise UnitFileError(f"invalid unit name {name!r}: must be a string, not {type(name).__name__}")
    if not name:
        raise fail("it is empty")
    if "/" in name:
        raise fail("it contains '/' (give a name, not a path)")
    if _WHITESPACE_RE.search(name):
        raise fail("it contains whitespace")
    if ".." in name:
        raise fail("it contains '..'")
    if len(name) > UNIT_NAME_MAX:
        raise fail(f"it is {len(name)} characters long, the maximum is {UNIT_NAME_MAX}")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        raise fail("it has no type suffix such as .service (known: " + ", ".join(UNIT_TYPES) + ")")
    if suffix not in UNIT_TYPES:
        raise fail(f"unknown unit type {suffix!r} (known: " + ", ".join(UNIT_TYPES) + ")")
    bad = sorted({c for c in stem if c not in _VALID_CHARS and c != "@"})
    if bad:
        raise fail(
            "it contains " + ", ".join(repr(c) for c in bad)
            + " (allowed: letters, digits, ':', '_', '.', '\\', '-' and '@')"
        )
    prefix, at, instance = stem.partition("@")
    if at and not prefix:
        raise fail("nothing before '@'")
    return UnitName(name=name, prefix=prefix, instance=instance if at else None, type=suffix)


def _escape_bytes(text: str) -> str:
    data = text.encode("utf-8", "surrogateescape")
    out = []
    for index, byte in enumerate(data):
        if byte == 0x2F:  # '/'
            out.append("-")
        elif byte in _KEEP_BYTES and not (index == 0 and byte == 0x2E):  # leading '.'
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _simplify_path(text: str) -> str:
    """Drop duplicate slashes, ``.`` parts and trailing slashes, as systemd's path_simplify()."""
    absolute = text.startswith("/")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if absolute:
        return "/" + "/".join(parts)
    if not parts:
        return "." if text else ""
    return "/".join(parts)


def escape_unit_name_part(text: str, path: bool = False) -> str:
    """Escape a string for use in a unit name, byte for byte like ``systemd-escape``.

    ``/`` becomes ``-``; ``-``, ``\\``, a leading ``.`` and every byte outside
    ``A-Z a-z 0-9 : _ .`` become ``\\xNN`` (lowercase hex of the UTF-8 bytes).
    With ``path=True`` it behaves like ``systemd-escape --path``: the path is simplified
    (duplicate slashes, ``.`` parts, leading and trailing slashes dropped), ``""`` and ``/``
    give ``-``, and a path with a ``..`` part, or a part longer than 255 bytes, is refused.
    """
    if not isinstance(text, str):
        raise UnitFileError(f"cannot escape {text!r}: must be a string, not {type(text).__name__}")
    if not path:
        return _escape_bytes(text)
    simple = _simplify_path(text)
    if simple in ("", "/"):
        return "-"
    parts = simple.split("/")
    if ".." in parts or simple == ".":
        raise UnitFileError(f"cannot escape path {text!r}: it is not normalized ('..' or '.' part)")
    if len(text.encode("utf-8", "surrogateescape")) >= _PATH_MAX or any(
        len(part.encode("utf-8", "surrogateescape")) > _NAME_MAX for part in parts
    ):
        raise UnitFileError(f"cannot escape path {text!r}: it is too long to be a valid path")
    return _escape_bytes(simple.strip("/"))
