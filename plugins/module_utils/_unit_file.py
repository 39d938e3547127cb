# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private module_utils: not a public API of the collection, may change without notice.
"""Parse and render systemd unit files (systemd.syntax(7)) from and to "sections".

"Sections" is the data model shared by every module and filter: an ordered mapping of
section name to an ordered mapping of directive to value::

    {"Unit": {"Description": "x", "After": ["a.service", "b.service"]},
     "Service": {"ExecStart": "/bin/true", "Restart": None}}

Rendering (:func:`render_unit`):

* sections and directives come out in the order given, one blank line between sections;
  the text ends with a newline, and an empty mapping renders as ``""``;
* a section is always rendered as its header, even when it holds no directive or all of
  its directives are ``None`` (an empty ``[Install]`` stays visible, as written);
* a list or tuple renders one ``Key=element`` line per element, in order (``None``
  elements are left out);
* ``True``/``False`` render ``yes``/``no``; numbers render as text (``str()``);
* ``""`` renders ``Key=``, systemd's reset of a list setting;
* ``None`` leaves the directive out;
* a list with more than one (non-``None``) element for a directive that systemd reads only
  once (``Type=``, ``User=``, ``RestartSec=``...: the table is in _directives) is refused:
  each assignment would replace the one before, silently. A one-element list is fine.
  ``allow_reassign=True`` lifts this for sections read back from a file (or merged from
  drop-ins), where a later assignment overriding an earlier one is what systemd does.

Parsing (:func:`parse_unit`) follows the parser of systemd itself (conf-parser.c):

* lines end at ``\\n``, ``\\r\\n`` or ``\\r``; a leading UTF-8 byte order mark is dropped;
* a line whose first non-blank character is ``#`` or ``;`` is a comment and is skipped,
  also in the middle of a continuation: systemd.syntax(7) says "When a comment line or
  lines follow a line ending with a backslash, the comment block is ignored, so the
  continued line is concatenated with whatever follows the comment block";
* a line ending in an unescaped backslash (an odd number of trailing backslashes)
  continues: the backslash becomes one space and the next non-comment line is appended
  as it is, leading whitespace included (``A=x \\`` + ``    y`` gives ``x      y``);
  an empty line ends a continuation; a continuation still open at the end of the text
  is parsed as it stands;
* the joined line is stripped of blanks (space, tab, CR, LF); empty lines are skipped;
* ``[Name]`` opens a section; a section header seen again merges into the first one
  (its position in the result is that of its first appearance);
* ``Key=value``: blanks around ``=`` and at both ends are dropped; a key set once gives
  a string, a key set several times gives a list in file order, ``Key=`` gives ``""``
  (kept in the list, where systemd reads it as a reset);
* a directive that systemd reads only once (see _directives) set several times gives its
  last value, as systemd keeps it (Debian 12's ``chrony.service`` sets
  ``NoNewPrivileges=yes`` and later ``NoNewPrivileges=no``: the result is ``"no"``), so
  that what is parsed can always be rendered again.

Rejected with :class:`UnitFileError` (naming unit, section, key, value and, when
parsing, the line number):

* a newline, carriage return or NUL inside a section name, key or value;
* a key that is not a directive name (letters, digits, ``-`` and ``_``);
* a section name that is empty or contains ``[`` or ``]``;
* a value that ends in an odd number of backslashes (it would continue onto the next
  line when read back);
* values of other types (mappings, nested lists, objects);
* several values for a single-valued directive (unless ``allow_reassign``);
* when parsing: a line that is neither a comment, a section header nor ``Key=value``,
  and a ``Key=value`` line before the first section header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import is_single_valued

__all__ = [
    "UnitFileError",
    "check_sections",
    "directive_lines",
    "line_sources",
    "parse_unit",
    "render_unit",
]

# systemd's WHITESPACE: strstrip() in conf-parser.c removes only these.
_BLANKS = " \t\n\r"
_COMMENT_CHARS = "#;"
_KEY_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
_LINE_END_RE = re.compile(r"\r\n|\r|\n")
_FORBIDDEN = (("\n", "a newline"), ("\r", "a carriage return"), ("\x00", "a NUL byte"))


def _show(name: str) -> str:
    """Return a name as it can be shown on one line (repr() when it holds control characters)."""
    return name if name.isprintable() else repr(name)


class UnitFileError(ValueError):
    """A unit file or sections mapping that cannot be parsed, rendered or named safely.

    ``str()`` names everything known about the offender, for example
    ``unit huobi.service: [Service] ExecStart: value contains a newline: '/bin/true\\nX=y'``.
    """

    def __init__(
        self,
        message: str,
        *,
        unit: str | None = None,
        section: str | None = None,
        key: str | None = None,
        value: Any = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.unit = unit
        self.section = section
        self.key = key
        self.value = value
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.unit is not None:
            where.append(f"unit {_show(self.unit)}")
        if self.line is not None:
            where.append(f"line {self.line}")
        place = []
        if self.section is not None:
            place.append(f"[{_show(self.section)}]")
        if self.key is not None:
            place.append(_show(self.key))
        if place:
            where.append(" ".join(place))
        text = ": ".join(where + [self.message])
        if self.value is not None:
            text += f": {self.value!r}"
        return text


def _forbidden_char(text: str) -> str | None:
    for char, label in _FORBIDDEN:
        if char in text:
            return label
    return None


def _check_section_name(section: Any, unit: str | None, line: int | None = None) -> None:
    if not isinstance(section, str):
        raise UnitFileError(
            f"section name must be a string, not {type(section).__name__}",
            unit=unit, value=section, line=line,
        )
    bad = _forbidden_char(section)
    if bad:
        raise UnitFileError(f"section name contains {bad}", unit=unit, value=section, line=line)
    if not section:
        raise UnitFileError("section name is empty", unit=unit, value=section, line=line)
    if "[" in section or "]" in section:
        raise UnitFileError("section name contains '[' or ']'", unit=unit, value=section, line=line)


def _check_key(section: str, key: Any, unit: str | None, line: int | None = None) -> None:
    if not isinstance(key, str):
        raise UnitFileError(
            f"directive name must be a string, not {type(key).__name__}",
            unit=unit, section=section, value=key, line=line,
        )
    bad = _forbidden_char(key)
    if bad:
        raise UnitFileError(
            f"directive name contains {bad}", unit=unit, section=section, value=key, line=line
        )
    if not _KEY_RE.match(key):
        raise UnitFileError(
            "not a valid directive name (only letters, digits, '-' and '_' are allowed)",
            unit=unit, section=section, value=key, line=line,
        )


def _scalar_text(value: Any) -> str:
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(type(value).__name__)


def _directive_items(
    section: str, key: str, value: Any, unit: str | None, allow_reassign: bool
) -> list[tuple[Any, str]]:
    """(element as given, its text) for each ``Key=`` line one directive renders to."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, Mapping):
        raise UnitFileError(
            "value must be a string, number, boolean, null or a list of those, not a mapping",
            unit=unit, section=section, key=key, value=value,
        )
    else:
        items = [value]
    rendered = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, (list, tuple, Mapping)):
            raise UnitFileError(
                "list elements must be strings, numbers or booleans, not "
                + ("a mapping" if isinstance(item, Mapping) else "a nested list"),
                unit=unit, section=section, key=key, value=value,
            )
        try:
            text = _scalar_text(item)
        except TypeError as exc:
            raise UnitFileError(
                f"value of type {exc} cannot be rendered",
                unit=unit, section=section, key=key, value=item,
            ) from None
        bad = _forbidden_char(text)
        if bad:
            raise UnitFileError(f"value contains {bad}", unit=unit, section=section, key=key, value=text)
        if (len(text) - len(text.rstrip("\\"))) % 2 == 1:
            raise UnitFileError(
                "value ends with a backslash, which systemd reads as a line continuation",
                unit=unit, section=section, key=key, value=text,
            )
        rendered.append((item, text))
    if len(rendered) > 1 and not allow_reassign and is_single_valued(section, key):
        raise UnitFileError(
            f"systemd reads {key}= only once (each assignment replaces the one before, so only the"
            f" last of these {len(rendered)} values would count): give one value, not a list",
            unit=unit, section=section, key=key, value=list(value),
        )
    return rendered


def directive_lines(
    section: str, key: str, value: Any, unit: str | None = None, *, allow_reassign: bool = False
) -> list[str]:
    """Return the values of the ``Key=`` lines one directive renders to (``[]`` for None).

    Raises UnitFileError for a value that cannot be rendered safely, and for several values of
    a directive systemd reads only once unless ``allow_reassign`` (sections read from a file).
    """
    return [text for _item, text in _directive_items(section, key, value, unit, allow_reassign)]


def check_sections(
    sections: Mapping[str, Mapping[str, Any]], unit: str | None = None, *, allow_reassign: bool = False
) -> None:
    """Validate a sections mapping without rendering it; raise UnitFileError on the first offender."""
    if not isinstance(sections, Mapping):
        raise UnitFileError(
            f"sections must be a mapping of section name to directives, not {type(sections).__name__}",
            unit=unit,
        )
    for section, directives in sections.items():
        _check_section_name(section, unit)
        if directives is None:
            continue
        if not isinstance(directives, Mapping):
            raise UnitFileError(
                f"directives must be a mapping of directive to value, not {type(directives).__name__}",
                unit=unit, section=section, value=directives,
            )
        for key, value in directives.items():
            _check_key(section, key, unit)
            _directive_items(section, key, value, unit, allow_reassign)


def _rendered_lines(
    sections: Mapping[str, Mapping[str, Any]], unit: str | None
) -> list[tuple[str, tuple[str, str, Any] | None]]:
    """Each line of the rendered text, with (section, key, element as given) for ``Key=`` lines."""
    check_sections(sections, unit)
    lines: list[tuple[str, tuple[str, str, Any] | None]] = []
    for section, directives in sections.items():
        if lines:
            lines.append(("", None))
        lines.append((f"[{section}]", None))
        for key, value in (directives or {}).items():
            lines.extend((f"{key}={text}", (section, key, item))
                         for item, text in _directive_items(section, key, value, unit, False))
    return lines


def render_unit(sections: Mapping[str, Mapping[str, Any]], unit: str | None = None) -> str:
    """Render sections as unit file text (validated first with :func:`check_sections`).

    A section mapped to ``None`` or to an empty mapping renders as its header alone.
    """
    lines = _rendered_lines(sections, unit)
    return "".join(text + "\n" for text, _source in lines)


def line_sources(sections: Mapping[str, Mapping[str, Any]], unit: str | None = None
                 ) -> dict[int, tuple[str, str, Any]]:
    """Map each ``Key=`` line of ``render_unit(sections)`` (numbered from 1) to its origin.

    The origin is ``(section, key, element)`` with the element as given (``True``, ``720``,
    ``"x"``), so a message of systemd about line N can name what the user wrote.
    """
    return {number: source for number, (_text, source) in enumerate(_rendered_lines(sections, unit), start=1)
            if source is not None}


def _ends_escaped(text: str) -> bool:
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def parse_unit(text: str, unit: str | None = None) -> dict[str, dict[str, str | list[str]]]:
    """Parse unit file text into sections (see the module docstring for the exact rules)."""
    if not isinstance(text, str):
        raise UnitFileError(f"unit text must be a string, not {type(text).__name__}", unit=unit)
    if "\x00" in text:
        raise UnitFileError("unit text contains a NUL byte", unit=unit,
                            line=text.count("\n", 0, text.index("\x00")) + 1)
    if text.startswith("\ufeff"):
        text = text[1:]
    sections: dict[str, dict[str, str | list[str]]] = {}
    current: str | None = None
    pending: str | None = None  # continuation being joined
    pending_line = 0

    def take(logical: str, number: int) -> None:
        nonlocal current
        stripped = logical.strip(_BLANKS)
        if not stripped:
            return
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 2:
                raise UnitFileError("invalid section header", unit=unit, line=number, value=stripped)
            name = stripped[1:-1]
            _check_section_name(name, unit, number)
            current = name
            sections.setdefault(name, {})
            return
        key, sep, value = stripped.partition("=")
        if not sep:
            raise UnitFileError(
                "line is neither a comment, a section header nor Key=value",
                unit=unit, section=current, line=number, value=stripped,
            )
        key = key.strip(_BLANKS)
        value = value.strip(_BLANKS)
        if current is None:
            raise UnitFileError("assignment before the first section header", unit=unit,
                                line=number, value=stripped)
        _check_key(current, key, unit, number)
        directives = sections[current]
        if key not in directives or is_single_valued(current, key):
            directives[key] = value  # systemd keeps only the last assignment of a single-valued directive
        else:
            old = directives[key]
            if isinstance(old, list):
                old.append(value)
            else:
                directives[key] = [old, value]

    lines = _LINE_END_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        if raw.lstrip(_BLANKS)[:1] in tuple(_COMMENT_CHARS):
            continue
        if pending is not None:
            joined = pending + raw
        else:
            joined = raw
            pending_line = number
        if _ends_escaped(joined):
            pending = joined[:-1] + " "
            continue
        pending = None
        take(joined, pending_line)
    if pending is not None:
        take(pending, pending_line)
    return sections


INSTALL_KEYS = ("WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also", "DefaultInstance")


def merge_sections(base: Mapping[str, Mapping[str, Any]], overlay: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
    """Sections as systemd sees them after a drop-in: lists extend, `Key=` resets, single values replace."""
    merged: dict[str, dict[str, Any]] = {s: dict(d) for s, d in base.items()}
    for section, directives in overlay.items():
        target = merged.setdefault(section, {})
        for key, value in directives.items():
            values = values_of(value)
            if is_single_valued(section, key) and values:
                target[key] = values[-1]
                continue
            current = values_of(target.get(key))
            for v in values:
                current = [] if v == "" else current + [v]
            target[key] = current if len(current) != 1 else current[0]
    return merged


def values_of(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def has_install(text: str | None) -> bool:
    """Whether a unit file has anything for `systemctl enable` to act on (else systemd calls it static)."""
    install = install_section(text) or {}
    return any(install.get(key) not in (None, "", []) for key in INSTALL_KEYS)


def install_section(text: str | None) -> Any:
    if not text:
        return None
    try:
        return parse_unit(text).get("Install")
    except UnitFileError:
        return None
