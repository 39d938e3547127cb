# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The from_unit parser against systemd's own reading of the same file, construct by construct.

Each row of CASES is a unit file with one tricky construct. systemd loads it (written to
/run/systemd/system, loaded on demand by `systemctl show`, no daemon-reload) and reports
its properties; the installed from_unit filter parses the same text. For each property,
what from_unit returned, read with systemd's documented meaning of that directive (the
last assignment wins, `Key=` empties a list, dependencies only add, specifiers expand,
quotes and escapes are undone where the directive says so), must equal what systemd
reports. Each row also states what systemd reports, so that a change of systemd's own
behaviour shows up as such.

Rows about directive names use the warnings of `systemd-analyze verify` instead of
properties: systemd names each unknown key and section it read.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from conftest import BenchHost

RUN_DIR = "/run/systemd/system"
PREFIX = "unitcraft-parse-"
SERVICE = "[Service]\nExecStart=/bin/true\n"


@dataclasses.dataclass(frozen=True)
class Case:
    """One construct: the unit file text and what systemd reports for it."""

    id: str
    text: str
    systemd: Mapping[str, Any]  # property (or "verify") -> what systemd reports
    instance: str | None = None  # for a template: the instance loaded

    @property
    def file_name(self) -> str:
        return f"{PREFIX}{self.id}{'@' if self.instance is not None else ''}.service"

    @property
    def unit(self) -> str:
        if self.instance is None:
            return self.file_name
        return f"{PREFIX}{self.id}@{self.instance}.service"


CASES = [
    # --- continuations -----------------------------------------------------------------
    Case("continuation",
         "[Unit]\nDescription=first \\\nsecond\n" + SERVICE,
         {"Description": "first  second"}),
    Case("continuation-keeps-leading-blanks",
         "[Unit]\nDescription=first\\\n    second\n" + SERVICE,
         {"Description": "first     second"}),
    Case("comments-inside-continuation",
         "[Unit]\nDescription=first \\\n# hash comment\n; semicolon comment\n   # indented\n"
         "\t; after a tab\nsecond\n" + SERVICE,
         {"Description": "first  second"}),
    Case("comment-ending-in-a-backslash-continues-nothing",
         "[Unit]\n# a comment \\\nDescription=after the comment\n" + SERVICE,
         {"Description": "after the comment"}),
    Case("odd-backslashes-continue-over-a-key",
         "[Unit]\nDescription=three \\\\\\\nAfter=dep-swallowed.service\n" + SERVICE,
         {"Description": "three \\\\ After=dep-swallowed.service", "After": set()}),
    Case("even-backslashes-end-the-line",
         "[Unit]\nDescription=two \\\\\nAfter=dep-kept.service\n" + SERVICE,
         {"Description": "two \\\\", "After": {"dep-kept.service"}}),
    Case("empty-line-ends-a-continuation",
         "[Unit]\nDescription=open \\\n\nAfter=dep-after-blank.service\n" + SERVICE,
         {"Description": "open", "After": {"dep-after-blank.service"}}),
    Case("continuation-open-at-end-of-file",
         SERVICE + "[Unit]\nDescription=last \\",
         {"Description": "last"}),
    # --- line ends, byte order mark, blanks, comments --------------------------------------
    Case("crlf-line-ends",
         "[Unit]\r\nDescription=crlf \\\r\n more\r\n[Service]\r\nExecStart=/bin/true\r\n",
         {"Description": "crlf   more"}),
    Case("cr-line-ends",
         "[Unit]\rDescription=cr only\r[Service]\rExecStart=/bin/true\r",
         {"Description": "cr only"}),
    Case("byte-order-mark",
         "\ufeff[Unit]\nDescription=after a BOM\n" + SERVICE,
         {"Description": "after a BOM"}),
    Case("blanks-around-equals-and-no-inline-comment",
         "[Unit]\n\tDescription \t=\t a # not a comment ; nor this \t\n" + SERVICE,
         {"Description": "a # not a comment ; nor this"}),
    Case("equals-in-the-value",
         "[Unit]\nDescription=a=b=c\n" + SERVICE,
         {"Description": "a=b=c"}),
    # --- quotes and escapes -------------------------------------------------------------------
    Case("quotes-kept-in-a-plain-string",
         '[Unit]\nDescription="quoted  value"\n' + SERVICE,
         {"Description": '"quoted  value"'}),
    Case("escapes-kept-in-a-plain-string",
         '[Unit]\nDescription=tab\\there \\x41 \\\\ "q"\n' + SERVICE,
         {"Description": 'tab\\there \\x41 \\\\ "q"'}),
    Case("quotes-and-escapes-in-environment",
         "[Service]\nExecStart=/bin/true\n"
         "Environment=\"A=one two\" B=three 'C=x y'\n"
         'Environment=E1=\\x41\\x42 "E2=say \\"hi\\"" E3=a\\nb\n',
         {"Environment": ["A=one two", "B=three", "C=x y", "E1=AB", 'E2=say "hi"', "E3=a\nb"]}),
    Case("quotes-in-a-command-line",
         "[Service]\nExecStart=/bin/echo \"a  b\" c\\x41 'd e'\n",
         {"ExecStart": ["/bin/echo a  b cA d e"]}),
    # --- repeated keys and resets -----------------------------------------------------------
    Case("repeated-string-last-wins",
         "[Unit]\nDescription=one\nDescription=two\n" + SERVICE,
         {"Description": "two"}),
    Case("empty-string-resets",
         "[Unit]\nDescription=one\nDescription=\n" + SERVICE,
         {"Description": f"{PREFIX}empty-string-resets.service"}),  # systemd shows the name
    Case("list-reset-in-the-middle",
         "[Unit]\nDocumentation=man:a(1)\nDocumentation=\nDocumentation=man:b(1) man:c(1)\n"
         "Documentation=man:d(1)\n" + SERVICE,
         {"Documentation": ["man:b(1)", "man:c(1)", "man:d(1)"]}),
    Case("environment-reset-and-override",
         "[Service]\nExecStart=/bin/true\nEnvironment=A=1 B=2\nEnvironment=\nEnvironment=C=3\n"
         'Environment=C=4 "D=x y"\n',
         {"Environment": ["C=4", "D=x y"]}),
    Case("command-list-reset",
         "[Service]\nType=oneshot\nExecStart=/bin/echo zero\nExecStart=\nExecStart=/bin/echo one\n"
         "ExecStart=/bin/echo two\n",
         {"ExecStart": ["/bin/echo one", "/bin/echo two"]}),
    Case("dependencies-only-add",
         "[Unit]\nAfter=dep-a.service dep-b.service\nAfter=\nAfter=dep-c.service\n" + SERVICE,
         {"After": {"dep-a.service", "dep-b.service", "dep-c.service"}}),
    Case("section-header-repeated",
         "[Unit]\nDescription=first part\n[Service]\nExecStart=/bin/true\n[Unit]\nDocumentation=man:z(1)\n",
         {"Description": "first part", "Documentation": ["man:z(1)"]}),
    # --- specifiers -------------------------------------------------------------------------
    Case("specifiers",
         "[Unit]\nDescription=%n|%N|%p|%P|%i|%I|%j|%%\n[Service]\nExecStart=/bin/true\n"
         "Environment=INSTANCE=%i \"NAME=%N\"\n",
         {"Description": f"{PREFIX}specifiers@a-b\\x2dc.service|{PREFIX}specifiers@a-b\\x2dc|"
                         f"{PREFIX}specifiers|unitcraft/parse/specifiers|a-b\\x2dc|a/b-c|specifiers|%",
          "Environment": ["INSTANCE=a-b\\x2dc", f"NAME={PREFIX}specifiers@a-b\\x2dc"]},
         instance="a-b\\x2dc"),
    # --- directive and section names, as systemd-analyze verify names them --------------------
    Case("names-of-keys-and-sections",
         "[Unit]\nDescription=x\n[FrobSection]\nA=1\n[Service]\nExecStart=/bin/true\nFrobOne=a \\\n"
         "FrobHidden=b\nFrobTwo=c\n  FrobThree \t= d\n",
         {"verify": {("Service", "FrobOne"), ("Service", "FrobTwo"), ("Service", "FrobThree"),
                     ("FrobSection", None)}}),
]


# ---------------------------------------------------------------------------
# systemd's rules, applied to what from_unit returned
# ---------------------------------------------------------------------------

_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "s": " "}


def systemd_words(text: str) -> list[str]:
    """Split like systemd's extract_first_word(UNQUOTE|CUNESCAPE): quotes and C escapes undone."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\n":
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = None
        while i < n and (quote or text[i] not in " \t\n"):
            char = text[i]
            if char == "\\":
                escape = text[i + 1:i + 2]
                if escape == "x":
                    word.append(chr(int(text[i + 2:i + 4], 16)))
                    i += 4
                    continue
                if escape not in _ESCAPES:
                    raise ValueError(f"escape \\{escape} is not modelled here: {text!r}")
                word.append(_ESCAPES[escape])
                i += 2
                continue
            if quote and char == quote:
                quote = None
            elif not quote and char in "'\"":
                quote = char
            else:
                word.append(char)
            i += 1
        if quote:
            raise ValueError(f"unterminated quote in {text!r}")
        words.append("".join(word))


def unescape_name(text: str) -> str:
    """systemd's unit-name unescaping (%I, %P): "-" is "/", "\\xNN" is a byte."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text.replace("-", "/"))


def expand_specifiers(text: str, unit: str) -> str:
    """The unit-name specifiers that the table uses (systemd.unit(5), "Specifiers")."""
    stem = unit.rsplit(".", 1)[0]
    prefix, at, instance = stem.partition("@")
    values = {"n": unit, "N": stem, "p": prefix, "P": unescape_name(prefix), "i": instance if at else "",
              "I": unescape_name(instance) if at else "", "j": prefix.rsplit("-", 1)[-1], "%": "%"}

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ValueError(f"specifier %{match.group(1)} is not modelled here")
        return values[match.group(1)]

    return re.sub(r"%(.)", one, text)


def assignments(sections: Mapping[str, Any], section: str, key: str) -> list[str]:
    """The values of every `key=` line of the section, in file order."""
    value = sections.get(section, {}).get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def after_last_reset(values: list[str]) -> list[str]:
    """A list setting: `Key=` (an empty value) drops everything assigned before it."""
    if "" in values:
        values = values[len(values) - values[::-1].index(""):]
    return values


def description(sections: Mapping[str, Any], unit: str) -> str:
    values = assignments(sections, "Unit", "Description")
    text = expand_specifiers(values[-1], unit) if values else ""
    return text or unit  # no description: systemd shows the unit's name


def documentation(sections: Mapping[str, Any], unit: str) -> list[str]:
    return [expand_specifiers(word, unit) for value in after_last_reset(assignments(sections, "Unit", "Documentation"))
            for word in systemd_words(value)]


def environment(sections: Mapping[str, Any], unit: str) -> list[str]:
    merged: dict[str, str] = {}  # a later assignment of a variable replaces the earlier one
    for value in after_last_reset(assignments(sections, "Service", "Environment")):
        for word in systemd_words(value):
            word = expand_specifiers(word, unit)
            merged[word.partition("=")[0]] = word
    return list(merged.values())


def exec_start(sections: Mapping[str, Any], unit: str) -> list[str]:
    return [" ".join(systemd_words(value)) for value in after_last_reset(assignments(sections, "Service", "ExecStart"))]


def after(sections: Mapping[str, Any], unit: str) -> set[str]:
    # systemd adds its default dependencies; the table's own all start with "dep-"
    return {word for value in assignments(sections, "Unit", "After") for word in value.split()
            if word.startswith("dep-")}


MODEL: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "Description": description, "Documentation": documentation, "Environment": environment,
    "ExecStart": exec_start, "After": after,
}


# ---------------------------------------------------------------------------
# What systemd reports
# ---------------------------------------------------------------------------


def systemd_reports(host: BenchHost, unit: str, prop: str) -> Any:
    out = host.exec("systemctl", "show", "--no-pager", unit, "-p", prop).stdout
    lines = [line.partition("=")[2] for line in out.splitlines() if line.startswith(f"{prop}=")]
    if prop == "Description":
        return lines[0]
    if prop in ("Documentation", "Environment"):
        return systemd_words(lines[0]) if lines else []
    if prop == "ExecStart":  # one "{ path=... ; argv[]=... ; ... }" line per command
        return [re.search(r"argv\[\]=(.*?) ; ", line).group(1) for line in lines]
    if prop == "After":
        return {word for word in lines[0].split() if word.startswith("dep-")}
    raise AssertionError(f"no reader for {prop}")


def verify_names(host: BenchHost, path: str) -> set[tuple[str, str | None]]:
    """(section, key) of every unknown key, (section, None) of every unknown section."""
    proc = host.exec("systemd-analyze", "verify", "--man=no", path, check=False)
    text = proc.stdout + proc.stderr
    keys = {(s, k) for k, s in re.findall(r"Unknown key '([^']+)' in section \[([^\]]+)\]", text)}
    sections = {(s, None) for s in re.findall(r"Unknown section '([^']+)'", text)}
    return keys | sections


def from_unit_names(sections: Mapping[str, Any]) -> set[tuple[str, str | None]]:
    """The same, from from_unit's result: the table's unknown names all start with "Frob"."""
    names: set[tuple[str, str | None]] = set()
    for section, directives in sections.items():
        if section.startswith("Frob"):
            names.add((section, None))
            continue
        names |= {(section, key) for key in directives if key.startswith("Frob")}
    return names


@pytest.fixture(scope="module")
def loaded(bench_host: BenchHost) -> Iterator[BenchHost]:
    """Every row's file in /run/systemd/system of the bench host (removed afterwards)."""
    for case in CASES:
        bench_host.exec("sh", "-c", 'cat > "$1"', "write", f"{RUN_DIR}/{case.file_name}", input=case.text)
    try:
        yield bench_host
    finally:
        bench_host.exec("sh", "-c", f"rm -f {RUN_DIR}/{PREFIX}*")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_from_unit_reads_what_systemd_reads(loaded: BenchHost, installed_filters: dict[str, Any], case: Case) -> None:
    host = loaded
    sections = installed_filters["from_unit"](case.text, unit=case.unit)
    for prop, reported_by_the_table in case.systemd.items():
        if prop == "verify":
            reported = verify_names(host, f"{RUN_DIR}/{case.file_name}")
            assert reported == reported_by_the_table, f"systemd-analyze verify named {reported}"
            assert from_unit_names(sections) == reported, sections
            continue
        assert host.systemctl_show(case.unit, "LoadState")["LoadState"] == "loaded"
        reported = systemd_reports(host, case.unit, prop)
        assert reported == reported_by_the_table, f"systemd reports {prop}={reported!r}"
        parsed = MODEL[prop](sections, case.unit)
        assert parsed == reported, f"{prop}: from_unit gave {sections}"


# What systemd skips with a warning, from_unit refuses: a parse that silently drops a line
# would hide a mistake. Both sides are asserted, so a change on either shows up.
REFUSED = [
    ("assignment-outside-a-section", "Description=outside\n[Unit]\nDescription=x\n" + SERVICE,
     ":1: Assignment outside of section. Ignoring.", "before the first section header"),
    ("line-without-equals", "[Unit]\nDescription=x\nNoEqualsHere\n" + SERVICE,
     ":3: Missing '=', ignoring line.", "neither a comment, a section header nor Key=value"),
]


@pytest.mark.parametrize("name, text, systemd_warning, refusal", REFUSED, ids=[r[0] for r in REFUSED])
def test_from_unit_refuses_what_systemd_skips_with_a_warning(
        bench_host: BenchHost, installed_filters: dict[str, Any], name: str, text: str,
        systemd_warning: str, refusal: str) -> None:
    unit = f"{PREFIX}{name}.service"
    path = f"/tmp/{unit}"
    bench_host.exec("sh", "-c", 'cat > "$1"', "write", path, input=text)
    try:
        proc = bench_host.exec("systemd-analyze", "verify", "--man=no", path, check=False)
    finally:
        bench_host.exec("rm", "-f", path)
    assert f"{path}{systemd_warning}" in proc.stdout + proc.stderr
    with pytest.raises(AnsibleFilterError, match=re.escape(refusal)):
        installed_filters["from_unit"](text, unit=unit)
