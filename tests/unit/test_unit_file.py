# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    check_sections,
    parse_unit,
    render_unit,
)

# ---------------------------------------------------------------- rendering

RENDER_CASES = [
    pytest.param({}, "", id="empty"),
    pytest.param({"Unit": {"Description": "x"}}, "[Unit]\nDescription=x\n", id="one"),
    pytest.param(
        {"Unit": {"Description": "x"}, "Service": {"ExecStart": "/bin/true"}},
        "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n",
        id="blank-line-between-sections",
    ),
    pytest.param(
        {"Service": {"Z": "1", "A": "2", "M": "3"}}, "[Service]\nZ=1\nA=2\nM=3\n", id="order-kept"
    ),
    pytest.param(
        {"Unit": {"After": ["b.service", "a.service"]}},
        "[Unit]\nAfter=b.service\nAfter=a.service\n",
        id="list-one-line-each",
    ),
    pytest.param({"Service": {"A": True, "B": False}}, "[Service]\nA=yes\nB=no\n", id="bools"),
    pytest.param({"Service": {"A": 5, "B": 1.5, "C": 0}}, "[Service]\nA=5\nB=1.5\nC=0\n", id="numbers"),
    pytest.param({"Service": {"Environment": ""}}, "[Service]\nEnvironment=\n", id="empty-is-reset"),
    pytest.param(
        {"Service": {"ExecStart": ["", "/bin/x"]}},
        "[Service]\nExecStart=\nExecStart=/bin/x\n",
        id="reset-then-set",
    ),
    pytest.param({"Service": {"Nice": None, "A": "1"}}, "[Service]\nA=1\n", id="none-left-out"),
    pytest.param({"Service": {"A": ["1", None, "2"]}}, "[Service]\nA=1\nA=2\n", id="none-in-list"),
    pytest.param({"Install": {}}, "[Install]\n", id="empty-section-header"),
    pytest.param({"Install": {"WantedBy": None}}, "[Install]\n", id="all-none-section-header"),
    pytest.param({"Install": None}, "[Install]\n", id="none-section-header"),
    pytest.param({"Service": {"A": ("x", True)}}, "[Service]\nA=x\nA=yes\n", id="tuple"),
    pytest.param({"Service": {"A": "a\\\\"}}, "[Service]\nA=a\\\\\n", id="even-backslashes"),
    pytest.param({"Service": {"A": "unicode ✓ 字"}}, "[Service]\nA=unicode ✓ 字\n", id="unicode"),
]


@pytest.mark.parametrize(("sections", "text"), RENDER_CASES)
def test_render(sections, text):
    assert render_unit(sections) == text


# Each rejection shows the message naming the offender (unit, section, key, value).
REJECT_CASES = [
    pytest.param(
        {"Service": {"ExecStart": "/bin/true\nExecStartPost=/bin/evil"}},
        "unit huobi.service: [Service] ExecStart: value contains a newline: "
        "'/bin/true\\nExecStartPost=/bin/evil'",
        id="newline-in-value",
    ),
    pytest.param(
        {"Service": {"ExecStart": "/bin/true\r"}},
        "unit huobi.service: [Service] ExecStart: value contains a carriage return: '/bin/true\\r'",
        id="cr-in-value",
    ),
    pytest.param(
        {"Service": {"ExecStart": "/bin/tr\x00ue"}},
        "unit huobi.service: [Service] ExecStart: value contains a NUL byte: '/bin/tr\\x00ue'",
        id="nul-in-value",
    ),
    pytest.param(
        {"Service": {"Environment": ["A=1", "B=2\nC=3"]}},
        "unit huobi.service: [Service] Environment: value contains a newline: 'B=2\\nC=3'",
        id="newline-in-list-element",
    ),
    pytest.param(
        {"Service": {"Exec\nStart": "/bin/true"}},
        "unit huobi.service: [Service]: directive name contains a newline: 'Exec\\nStart'",
        id="newline-in-key",
    ),
    pytest.param(
        {"Service": {"Exec Start": "/bin/true"}},
        "unit huobi.service: [Service]: not a valid directive name "
        "(only letters, digits, '-' and '_' are allowed): 'Exec Start'",
        id="space-in-key",
    ),
    pytest.param(
        {"Service": {"ExecStart=": "/bin/true"}},
        "unit huobi.service: [Service]: not a valid directive name "
        "(only letters, digits, '-' and '_' are allowed): 'ExecStart='",
        id="equals-in-key",
    ),
    pytest.param(
        {"Service": {"": "x"}},
        "unit huobi.service: [Service]: not a valid directive name "
        "(only letters, digits, '-' and '_' are allowed): ''",
        id="empty-key",
    ),
    pytest.param(
        {"Ser\nvice": {"A": "1"}},
        "unit huobi.service: section name contains a newline: 'Ser\\nvice'",
        id="newline-in-section",
    ),
    pytest.param(
        {"Service]\n[Unit": {"A": "1"}},
        "unit huobi.service: section name contains a newline: 'Service]\\n[Unit'",
        id="header-injection",
    ),
    pytest.param(
        {"Ser]vice": {"A": "1"}},
        "unit huobi.service: section name contains '[' or ']': 'Ser]vice'",
        id="bracket-in-section",
    ),
    pytest.param(
        {"[Service": {"A": "1"}},
        "unit huobi.service: section name contains '[' or ']': '[Service'",
        id="open-bracket-in-section",
    ),
    pytest.param({"": {"A": "1"}}, "unit huobi.service: section name is empty: ''", id="empty-section"),
    pytest.param(
        {"Service": {"Environment": {"A": "1"}}},
        "unit huobi.service: [Service] Environment: value must be a string, number, boolean, null "
        "or a list of those, not a mapping: {'A': '1'}",
        id="dict-value",
    ),
    pytest.param(
        {"Service": {"After": ["a", ["b"]]}},
        "unit huobi.service: [Service] After: list elements must be strings, numbers or booleans, "
        "not a nested list: ['a', ['b']]",
        id="nested-list",
    ),
    pytest.param(
        {"Service": {"ExecStart": "/bin/echo \\"}},
        "unit huobi.service: [Service] ExecStart: value ends with a backslash, which systemd reads "
        "as a line continuation: '/bin/echo \\\\'",
        id="trailing-backslash",
    ),
    pytest.param(
        {"Service": "ExecStart=/bin/true"},
        "unit huobi.service: [Service]: directives must be a mapping of directive to value, not str: "
        "'ExecStart=/bin/true'",
        id="section-not-mapping",
    ),
    pytest.param(
        {"Service": {"A": object}},
        "unit huobi.service: [Service] A: value of type type cannot be rendered: <class 'object'>",
        id="object-value",
    ),
]


@pytest.mark.parametrize(("sections", "message"), REJECT_CASES)
def test_render_rejects(sections, message):
    with pytest.raises(UnitFileError) as info:
        render_unit(sections, unit="huobi.service")
    assert str(info.value) == message
    # check_sections is the same validation on its own
    with pytest.raises(UnitFileError) as again:
        check_sections(sections, unit="huobi.service")
    assert str(again.value) == message


def test_error_fields():
    with pytest.raises(UnitFileError) as info:
        check_sections({"Service": {"ExecStart": "a\nb"}}, unit="x.service")
    err = info.value
    assert (err.unit, err.section, err.key, err.value, err.line) == ("x.service", "Service", "ExecStart", "a\nb", None)
    assert isinstance(err, ValueError)


def test_error_without_unit():
    with pytest.raises(UnitFileError, match=r"^\[Unit\] After: value contains a newline"):
        render_unit({"Unit": {"After": "a\nb"}})


def test_sections_must_be_mapping():
    with pytest.raises(UnitFileError, match="sections must be a mapping"):
        render_unit([("Unit", {})])


# ---------------------------------------------------------------- parsing

PARSE_CASES = [
    pytest.param("", {}, id="empty"),
    pytest.param("[Unit]\nDescription=x\n", {"Unit": {"Description": "x"}}, id="simple"),
    pytest.param("[Unit]\nDescription=x", {"Unit": {"Description": "x"}}, id="no-final-newline"),
    pytest.param(
        "# c1\n; c2\n[Unit]\n  # indented comment\nA=1\n;B=2\n", {"Unit": {"A": "1"}}, id="comments"
    ),
    pytest.param("[Unit]\nA=1 # not a comment\n", {"Unit": {"A": "1 # not a comment"}}, id="hash-in-value"),
    pytest.param("[Unit]\n  A  =  x y  \t\n", {"Unit": {"A": "x y"}}, id="surrounding-whitespace"),
    pytest.param("[Unit]\nA=\n", {"Unit": {"A": ""}}, id="empty-assignment"),
    pytest.param("[Unit]\nA=a=b=c\n", {"Unit": {"A": "a=b=c"}}, id="equals-in-value"),
    pytest.param(
        "[Unit]\nAfter=a\nAfter=\nAfter=b\n", {"Unit": {"After": ["a", "", "b"]}}, id="repeated-keys"
    ),
    pytest.param(
        "[Unit]\nA=1\n[Service]\nB=2\n[Unit]\nA=3\nC=4\n",
        {"Unit": {"A": ["1", "3"], "C": "4"}, "Service": {"B": "2"}},
        id="repeated-sections-merge",
    ),
    pytest.param(
        "[Service]\nExecStart=/bin/echo a \\\n    b\n", {"Service": {"ExecStart": "/bin/echo a      b"}},
        id="continuation-keeps-indent",
    ),
    pytest.param(
        "[Service]\nExecStart=/bin/echo a\\\nb\\\nc\n", {"Service": {"ExecStart": "/bin/echo a b c"}},
        id="continuation-several",
    ),
    pytest.param(
        "[Service]\nExecStart=/bin/echo a \\\n# comment\n; other\n  b\n",
        {"Service": {"ExecStart": "/bin/echo a    b"}},
        id="comment-inside-continuation",
    ),
    pytest.param(
        "[Service]\nA=x \\\n\nB=y\n", {"Service": {"A": "x", "B": "y"}}, id="empty-line-ends-continuation"
    ),
    pytest.param("[Service]\nA=x \\", {"Service": {"A": "x"}}, id="continuation-at-eof"),
    pytest.param("[Service]\nA=x\\\\\nB=y\n", {"Service": {"A": "x\\\\", "B": "y"}}, id="escaped-backslash"),
    pytest.param("[Service]\nA=x\\ \nB=y\n", {"Service": {"A": "x\\", "B": "y"}}, id="backslash-then-blank"),
    pytest.param("[Unit]\r\nA=1\r\nB=2\r\n", {"Unit": {"A": "1", "B": "2"}}, id="crlf"),
    pytest.param("\ufeff[Unit]\nA=1\n", {"Unit": {"A": "1"}}, id="bom"),
    pytest.param("[Install]\n", {"Install": {}}, id="empty-section"),
    pytest.param("  [Unit]  \nA=1\n", {"Unit": {"A": "1"}}, id="indented-header"),
    pytest.param("[X-Custom]\nX-Key_1=v\n", {"X-Custom": {"X-Key_1": "v"}}, id="custom-section"),
]


@pytest.mark.parametrize(("text", "sections"), PARSE_CASES)
def test_parse(text, sections):
    result = parse_unit(text)
    assert result == sections
    assert list(result) == list(sections)
    for name in sections:
        assert list(result[name]) == list(sections[name])


PARSE_REJECT_CASES = [
    pytest.param("A=1\n[Unit]\n", "unit u.service: line 1: assignment before the first section header: 'A=1'", id="before-header"),
    pytest.param(
        "[Unit]\nA=1\ngarbage\n",
        "unit u.service: line 3: [Unit]: line is neither a comment, a section header nor Key=value: 'garbage'",
        id="garbage",
    ),
    pytest.param("[Unit\nA=1\n", "unit u.service: line 1: invalid section header: '[Unit'", id="bad-header"),
    pytest.param(
        "[Unit]\n\n[Ser]vice]\n", "unit u.service: line 3: section name contains '[' or ']': 'Ser]vice'",
        id="bracket-header",
    ),
    pytest.param("[]\n", "unit u.service: line 1: section name is empty: ''", id="empty-header"),
    pytest.param(
        "[Unit]\nBad Key=1\n",
        "unit u.service: line 2: [Unit]: not a valid directive name "
        "(only letters, digits, '-' and '_' are allowed): 'Bad Key'",
        id="bad-key",
    ),
    pytest.param(
        "[Unit]\n=1\n",
        "unit u.service: line 2: [Unit]: not a valid directive name "
        "(only letters, digits, '-' and '_' are allowed): ''",
        id="empty-key",
    ),
    pytest.param(
        "[Unit]\nA=x \\\n  still x\ngarbage \\\n more\n",
        "unit u.service: line 4: [Unit]: line is neither a comment, a section header nor Key=value: 'garbage   more'",
        id="line-number-of-continued-line",
    ),
    pytest.param("[Unit]\nA=a\x00b\n", "unit u.service: line 2: unit text contains a NUL byte", id="nul"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_REJECT_CASES)
def test_parse_rejects(text, message):
    with pytest.raises(UnitFileError) as info:
        parse_unit(text, unit="u.service")
    assert str(info.value) == message


ROUND_TRIP_TEXTS = [
    "[Unit]\nDescription=a \\\n  b\nAfter=x\nAfter=\n\n[Service]\nExecStart=/bin/sh -c 'echo %%'\n",
    "[A]\n[B]\nK=v\n[A]\nK=w\n",
    "[Service]\nEnvironment=A=1 B=2\nEnvironment=\nExecStart=-/bin/true\n",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_round_trip(text):
    sections = parse_unit(text)
    assert parse_unit(render_unit(sections)) == sections
    # rendering is a fixed point after one pass
    assert render_unit(parse_unit(render_unit(sections))) == render_unit(sections)


def test_round_trip_host_units():
    """Every unit file on this machine survives parse -> render -> parse (when there are any)."""
    count = 0
    for base in ("/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/system"):
        root = Path(base)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.resolve() == Path("/dev/null"):
                continue
            if not (path.suffix[1:] in {"service", "socket", "target", "timer", "mount", "path", "slice", "conf", "automount", "swap", "scope", "device"}):
                continue
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            sections = parse_unit(text, unit=path.name)
            assert parse_unit(render_unit(sections, unit=path.name)) == sections, path
            count += 1
    if count == 0:
        pytest.skip("no unit files on this machine")
    print(f"round trip over {count} host unit files")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_rendered_unit_verifies(tmp_path):
    sections = {
        "Unit": {"Description": "rendered by unitcraft", "After": ["network-online.target"], "Wants": "network-online.target"},
        "Service": {"Type": "oneshot", "ExecStart": ["/bin/true", "/bin/true --version"], "RemainAfterExit": True,
                    "Environment": ["A=1", '"B=two words"'], "Nice": None, "TimeoutStartSec": 30},
        "Install": {"WantedBy": "multi-user.target"},
    }
    unit = tmp_path / "unitcraft-render.service"
    unit.write_text(render_unit(sections))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stderr, result.stderr
