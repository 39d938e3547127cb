# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private module_utils: not a public API of the collection, may change without notice.
"""Lint: pitfalls that ``systemd-analyze verify`` does not report (ordering, restarts, specifiers).

:func:`lint_sections` takes sections (as rendered by _unit_file) and returns findings,
each a dict ``{"rule", "section", "key", "message"}``; the message is one line with the
reason and the fix. Rule ids are stable; docs/lint-rules.md explains each of them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import (
    EXEC_COMMANDS,
    Deprecation,
    added_in,
    deprecation,
    deprecation_of,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import check_sections, directive_lines
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import UNIT_TYPES, parse_unit_name

__all__ = ["KNOWN_SPECIFIERS", "RULES", "lint_sections", "newer_directives"]

# Specifiers of systemd.unit(5), union over systemd 252-257 ("%%" is a literal "%").
KNOWN_SPECIFIERS = frozenset("aAbBCdDEfgGhHiIjJlLmMnNoPpqsStTuUvVwWyY%")

RULES: dict[str, str] = {
    "wants-network-online": "After=network-online.target without Wants= or Requires= of it",
    "requires-without-after": "Requires=/BindsTo= a unit without ordering After= it",
    "passive-network-target": "a service pulls in the passive network.target",
    "oneshot-before-without-remain": "Type=oneshot ordered Before= a unit without RemainAfterExit=yes",
    "oneshot-restart": "Restart=always or Restart=on-success on a Type=oneshot service",
    "restart-without-restartsec": "Restart=always without RestartSec=",
    "start-limit-in-service": "StartLimitIntervalSec=/StartLimitBurst= in [Service]",
    "forking-without-pidfile": "Type=forking without PIDFile=",
    "enable-without-install": "enabled: true for a unit without an [Install] section",
    "unknown-specifier": "a % that is not a known specifier",
    "date-format-specifier": "a date format (date +%Y-%m-%d) whose % conversions systemd expands as specifiers",
    "secret-in-environment": "Environment= with a secret-looking name (*_KEY, *TOKEN*, *PASSWORD*, *SECRET*)",
    "needs-newer-systemd": "a directive added in a later systemd than the target's (or systemd_version)",
    "deprecated-directive": "a directive, Exec prefix or SysV script that systemd deprecated or ignores, with what to use instead",
}

_PULLING = ("Wants", "Requires", "BindsTo", "Upholds")
_START_LIMIT_KEYS = ("StartLimitIntervalSec", "StartLimitInterval", "StartLimitBurst", "StartLimitAction")
_TRUE = ("1", "yes", "y", "true", "t", "on")
# strftime(3) conversions for date and time fields; the specifiers that are mostly combined
# with others in paths and names (%p %i %n %t %h %u %g %U %G...) are left out on purpose.
_DATE_FIELDS = frozenset("aAbBcdDeFHIjmMrRsSTVxXyYzZ")
# what may join the conversions of one date format: `%Y-%m-%d`, `%H:%M`, `%Y%m%d`, `%dT%H`
_FORMAT_GAP = re.compile(r"[-:/._, \t]{0,3}|T")
# characters after which a `+` starts a word (`date +%s`, `'+%s'`, `FORMAT=+%s`)
_WORD_START = " \t'\"="


class _Unit:
    """Read-only view of sections as systemd would read them."""

    def __init__(self, sections: Mapping[str, Mapping[str, Any]], unit: str | None) -> None:
        self.sections = sections
        self.unit = unit

    def lines(self, section: str, key: str) -> list[str]:
        directives = self.sections.get(section) or {}
        if key not in directives:
            return []
        return directive_lines(section, key, directives[key], self.unit, allow_reassign=True)

    def has(self, section: str, key: str) -> bool:
        return bool(self.lines(section, key))

    def last(self, section: str, key: str, default: str | None = None) -> str | None:
        """Value of a single-valued setting: the last assignment wins, ``Key=`` resets."""
        lines = self.lines(section, key)
        if not lines or lines[-1] == "":
            return default
        return lines[-1].strip()

    def names(self, section: str, key: str) -> list[str]:
        """Items of a space-separated list setting; ``Key=`` empties the list so far."""
        items: list[str] = []
        for line in self.lines(section, key):
            if line.strip() == "":
                items = []
            else:
                items.extend(line.split())
        return items


def _finding(rule: str, section: str | None, key: str | None, message: str) -> dict[str, Any]:
    return {"rule": rule, "section": section, "key": key, "message": message}


def _unit_type(unit: str | None) -> str:
    if unit is None:
        return "service"
    if unit in UNIT_TYPES:
        return unit  # a type-wide drop-in (service.d/) is named by its type
    return parse_unit_name(unit).type


def _lint_dependencies(view: _Unit) -> list[dict[str, Any]]:
    findings = []
    after = set(view.names("Unit", "After"))
    before = set(view.names("Unit", "Before"))
    pulled = {name: key for key in _PULLING for name in view.names("Unit", key)}
    if "network-online.target" in after and "network-online.target" not in pulled:
        findings.append(_finding(
            "wants-network-online", "Unit", "After",
            "After=network-online.target only orders; nothing pulls the target in, so the unit may"
            " start before the network is up: add Wants=network-online.target",
        ))
    for key in ("Requires", "BindsTo"):
        for name in view.names("Unit", key):
            if name not in after and name not in before:
                findings.append(_finding(
                    "requires-without-after", "Unit", key,
                    f"{key}={name} without After={name}: both start in parallel (a race), so this"
                    f" unit can run before {name} is up: add After={name}",
                ))
    return findings


def _lint_service(view: _Unit) -> list[dict[str, Any]]:
    findings = []
    before = view.names("Unit", "Before")
    for key in ("Wants", "Requires"):
        if "network.target" in view.names("Unit", key) and "network.target" not in before:
            findings.append(_finding(
                "passive-network-target", "Unit", key,
                f"{key}=network.target: network.target is a passive target that only network"
                " managers pull in; to wait for the network use Wants= and After="
                "network-online.target, to order against it After=network.target alone",
            ))
    # Only an explicit Type= counts: a drop-in or partial unit may get Type= from elsewhere.
    service_type = view.last("Service", "Type")
    restart = view.last("Service", "Restart", "no")
    if service_type == "oneshot":
        remain = (view.last("Service", "RemainAfterExit", "no") or "no").lower() in _TRUE
        targets = view.names("Unit", "Before")
        if targets and not remain:
            findings.append(_finding(
                "oneshot-before-without-remain", "Service", "RemainAfterExit",
                f"Type=oneshot ordered Before={' '.join(targets)} goes inactive as soon as it has"
                " run, so it runs again whenever it is pulled in and does not show as done:"
                " add RemainAfterExit=yes",
            ))
        if restart in ("always", "on-success"):
            findings.append(_finding(
                "oneshot-restart", "Service", "Restart",
                f"Restart={restart} is refused for Type=oneshot (systemd will not start the"
                " unit): use Restart=on-failure or Restart=no",
            ))
    if restart == "always" and not view.has("Service", "RestartSec"):
        findings.append(_finding(
            "restart-without-restartsec", "Service", "Restart",
            "Restart=always without RestartSec= restarts after 100ms, so a crash loop hits the"
            " start limit and systemd gives up on the unit: add RestartSec= (e.g. RestartSec=5)",
        ))
    for key in _START_LIMIT_KEYS:
        if view.has("Service", key):
            target = "StartLimitIntervalSec" if key == "StartLimitInterval" else key
            findings.append(_finding(
                "start-limit-in-service", "Service", key,
                f"{key}= belongs in [Unit], not [Service] (systemd ignores or only tolerates it"
                f" there): move it to [Unit] as {target}=",
            ))
    if service_type == "forking" and view.last("Service", "PIDFile") is None:
        findings.append(_finding(
            "forking-without-pidfile", "Service", "Type",
            "Type=forking without PIDFile=: systemd has to guess the main process and may track"
            " the wrong one: set PIDFile= to the daemon's pid file, or run it in the foreground"
            " with Type=simple/exec/notify",
        ))
    return findings


def _conversions(text: str) -> list[tuple[int, str]]:
    """Each ``%`` of a value that starts a specifier, with the character after it ("" at the end).

    ``%%`` is a literal percent sign and is not returned.
    """
    found = []
    index = text.find("%")
    while index >= 0:
        spec = text[index + 1:index + 2]
        if spec != "%":
            found.append((index, spec))
        index = text.find("%", index + 2)
    return found


def _words(text: str) -> list[tuple[int, int]]:
    """Spans of the words of a value: blanks separate them, except inside '...' or "..." quotes."""
    spans = []
    start: int | None = None
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
            start = index if start is None else start
        elif char in " \t":
            if start is not None:
                spans.append((start, index))
                start = None
        elif start is None:
            start = index
    if start is not None:
        spans.append((start, len(text)))
    return spans


def _after_word_plus(text: str, index: int) -> bool:
    """Whether the ``%`` at ``index`` follows a ``+`` that starts a word (``date +%s``)."""
    return index > 0 and text[index - 1] == "+" and (index == 1 or text[index - 2] in _WORD_START)


def _date_formats(text: str) -> list[tuple[int, int]]:
    """Spans of what reads as a date/time format (strftime, ``date +FORMAT``) in a value.

    A format is a run of two or more date-field conversions (``%Y %m %d %H %M %S``...) in one
    word, joined by nothing or by ``-`` ``:`` ``/`` ``.`` ``_`` ``,`` blanks or ``T``; or any
    letter conversion right after a ``+`` that starts a word (``date +%s``), with its run.
    """
    spans = []
    conversions = _conversions(text)
    for word_start, word_end in _words(text):
        runs: list[list[int]] = []
        for index, spec in conversions:
            if not word_start <= index < word_end:
                continue
            if spec in _DATE_FIELDS and runs and _FORMAT_GAP.fullmatch(text, runs[-1][-1] + 2, index):
                runs[-1].append(index)
            elif spec in _DATE_FIELDS or (spec.isalpha() and _after_word_plus(text, index)):
                runs.append([index])
        for run in runs:
            if _after_word_plus(text, run[0]):
                spans.append((run[0] - 1, run[-1] + 2))
            elif len(run) >= 2:
                spans.append((run[0], run[-1] + 2))
    return spans


def _lint_specifiers(sections: Mapping[str, Mapping[str, Any]], unit: str | None) -> list[dict[str, Any]]:
    findings = []
    for section, directives in sections.items():
        for key, value in (directives or {}).items():
            for text in directive_lines(section, key, value, unit, allow_reassign=True):
                for index, spec in _conversions(text):
                    if spec == "":
                        findings.append(_finding(
                            "unknown-specifier", section, key,
                            f"'%' at the end of {text!r} is kept as a literal '%' (systemd 252 to 257 load"
                            " and run the unit), but only '%%' is documented for that and anything appended"
                            " after it would make it a specifier: write '%%'",
                        ))
                    elif spec not in KNOWN_SPECIFIERS:
                        findings.append(_finding(
                            "unknown-specifier", section, key,
                            f"'%{spec}' in {text!r} is not a systemd specifier, so systemd drops the"
                            f" setting or refuses the unit: write a literal percent sign as '%%'",
                        ))
                for start, end in _date_formats(text):
                    fmt = text[start:end]
                    expanded = list(dict.fromkeys(
                        f"%{spec}" for index, spec in _conversions(fmt) if spec in KNOWN_SPECIFIERS))
                    if not expanded:
                        continue  # only unknown specifiers: unknown-specifier reports them
                    findings.append(_finding(
                        "date-format-specifier", section, key,
                        f"{fmt!r} in {text!r} looks like a date format, but systemd expands"
                        f" {', '.join(expanded)} as unit specifiers (systemd.unit(5)) before the"
                        f" program sees them: write every '%' as '%%' ({fmt.replace('%', '%%')!r})",
                    ))
    return findings


# Variable names that usually hold a secret; names that say where one is kept (*_FILE...) do not.
_SECRET_NAME = re.compile(r"_KEY$|TOKEN|PASSWORD|SECRET", re.IGNORECASE)
_SECRET_REFERENCE_NAME = re.compile(r"_(FILE|PATH|DIR)$", re.IGNORECASE)
# a value that points into the credentials directory names the secret's file, not the secret
_CREDENTIALS_REFERENCE = re.compile(r"^(%d|\$\{?CREDENTIALS_DIRECTORY\}?)(/|$)")


def _environment_assignments(text: str) -> list[tuple[str, str]]:
    """(name, value) of each assignment of an Environment= line (blanks separate them, quotes group)."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote: systemd ignores such a line, the names still tell
        words = text.split()
    assignments = []
    for word in words:
        name, sep, value = word.partition("=")
        if sep and name:
            assignments.append((name, value))
    return assignments


def _lint_environment(sections: Mapping[str, Mapping[str, Any]], unit: str | None) -> list[dict[str, Any]]:
    findings = []
    for section, directives in sections.items():
        if "Environment" not in (directives or {}):
            continue
        for text in directive_lines(section, "Environment", directives["Environment"], unit, allow_reassign=True):
            for name, value in _environment_assignments(text):
                if (not value or not _SECRET_NAME.search(name) or _SECRET_REFERENCE_NAME.search(name)
                        or _CREDENTIALS_REFERENCE.match(value)):
                    continue
                # the message names the variable only: findings become warnings, the value must not
                findings.append(_finding(
                    "secret-in-environment", section, "Environment",
                    f"Environment={name}=... looks like a secret, and every local user can read it with"
                    f" 'systemctl show -p Environment' (unit files are world-readable too): install it with"
                    f" unitcraft.systemd.credential, load it with LoadCredentialEncrypted= and let the program"
                    f" read $CREDENTIALS_DIRECTORY/NAME (or pass the path, e.g. {name}_FILE=%d/NAME)",
                ))
    return findings


# a command line's prefixes (systemd.service(5), "Command lines"); `|` is new in 257
_EXEC_PREFIX = re.compile(r"[-@:+!|]*")
# what systemd-sysv-generator writes into the units it makes from init scripts
_SYSV_SCRIPT = re.compile(r"^/etc/(rc\.d/)?init\.d/")


def newer_directives(
    sections: Mapping[str, Mapping[str, Any]], unit: str | None, systemd_version: int
) -> list[tuple[str, str, int]]:
    """(section, key, version that added it) of each directive set in ``sections`` that
    ``systemd_version`` does not have yet (by the table generated from systemd's man pages)."""
    view = _Unit(sections, unit)
    found = []
    for section, directives in sections.items():
        for key in directives or {}:
            added = added_in(section, key)
            if added is not None and added > systemd_version and view.lines(section, key):
                found.append((section, key, added))
    return found


def _fate(dep: Deprecation, version: int | None, ignored: str) -> str:
    """What systemd does with a deprecated thing, for ``version`` when known: "is deprecated since ...".

    ``ignored`` says what "ignored" means for it ("ignored", "no longer read").
    """
    if dep.ignored is not None and version is not None and version >= dep.ignored:
        return f"is {ignored} by systemd {dep.ignored} and later ({version} included)"
    if dep.deprecated is not None:
        return f"is deprecated since systemd {dep.deprecated}" + (
            f" and {ignored} by systemd {dep.ignored} and later" if dep.ignored is not None else "")
    return f"is {ignored} by systemd {dep.ignored} and later"


def _lint_versions(view: _Unit, systemd_version: int | None) -> list[dict[str, Any]]:
    findings = []
    if systemd_version is not None:
        for section, key, added in newer_directives(view.sections, view.unit, systemd_version):
            findings.append(_finding(
                "needs-newer-systemd", section, key,
                f"{key}= needs systemd {added}; systemd {systemd_version} does not know it, ignores the line"
                f" (\"Unknown key\") and runs the unit without the setting: leave it out where systemd is older"
                f" than {added}, or set it in a drop-in only on hosts with systemd {added} or later",
            ))
    for section, directives in view.sections.items():
        for key in directives or {}:
            dep = deprecation(section, key)
            if dep is None or not dep.applies(systemd_version) or not view.has(section, key):
                continue
            fix = f"use {dep.instead} instead" if dep.instead else "drop it, nothing replaces it"
            findings.append(_finding("deprecated-directive", section, key,
                                     f"{key}= {_fate(dep, systemd_version, 'ignored')}: {fix}"))
    prefix = deprecation_of("exec-prefix-!!")
    if prefix.applies(systemd_version):
        for section, directives in view.sections.items():
            for key in directives or {}:
                if key not in EXEC_COMMANDS:
                    continue
                for line in view.lines(section, key):
                    if "!!" in _EXEC_PREFIX.match(line.lstrip()).group():  # type: ignore[union-attr]
                        findings.append(_finding(
                            "deprecated-directive", section, key,
                            f"the '!!' prefix of {key}={line} {_fate(prefix, systemd_version, 'ignored')}: drop"
                            " it (with ambient capabilities, Linux 4.3 and later, it already changes nothing)"
                            f" and give the program its privileges with {prefix.instead}"))
    source = view.last("Unit", "SourcePath")
    scripts = deprecation_of("sysv-scripts")
    if source and _SYSV_SCRIPT.match(source) and scripts.applies(systemd_version):
        findings.append(_finding(
            "deprecated-directive", "Unit", "SourcePath",
            f"SourcePath={source}: the unit is made by systemd-sysv-generator from a SysV init script, and a"
            f" SysV script {_fate(scripts, systemd_version, 'no longer read')}: write {scripts.instead}"
            " (a service) for the program"))
    return findings


def lint_sections(
    sections: Mapping[str, Mapping[str, Any]],
    unit: str | None = None,
    enabled: bool | None = None,
    systemd_version: int | None = None,
) -> list[dict[str, Any]]:
    """Return the lint findings for one unit (or drop-in) given as sections.

    ``unit`` is the unit name (its type decides which rules apply; None means a service);
    ``enabled`` is the requested enablement (only ``True`` is checked against [Install]);
    ``systemd_version`` is the systemd the unit is for (None: not known, so every
    deprecation is reported and no directive is too new).
    Raises UnitFileError when the sections are not valid.
    """
    check_sections(sections, unit, allow_reassign=True)  # as read from files: a later assignment wins
    unit_type = _unit_type(unit)
    view = _Unit(sections, unit)
    findings = _lint_dependencies(view)
    if unit_type == "service":
        findings.extend(_lint_service(view))
    if enabled is True:
        install = sections.get("Install")
        if not install or all(value is None for value in install.values()):
            findings.append(_finding(
                "enable-without-install", "Install", None,
                "enabled: true but the unit has no [Install] section: systemctl enable does not fail,"
                " it creates no link and the unit stays 'static', so nothing starts it at boot:"
                " add [Install] with WantedBy= (e.g. WantedBy=multi-user.target), or drop enabled",
            ))
    findings.extend(_lint_specifiers(sections, unit))
    findings.extend(_lint_environment(sections, unit))
    findings.extend(_lint_versions(view, systemd_version))
    return findings
