# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import SINGLE_VALUED, is_single_valued
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    check_sections,
    directive_lines,
    line_sources,
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


# ---------------------------------------------------------------- single-valued directives

# (section, key, value): a list of several values for a directive systemd reads once
SINGLE_VALUED_LISTS = [
    pytest.param("Service", "Type", ["simple", "exec"], id="service-type"),
    pytest.param("Service", "Restart", ["always", "on-failure"], id="restart"),
    pytest.param("Service", "User", ["root", "nobody"], id="user"),
    pytest.param("Service", "RestartSec", [5, 10], id="numbers"),
    pytest.param("Service", "PrivateTmp", [True, False], id="booleans"),
    pytest.param("Service", "WorkingDirectory", ["/a", None, "/b"], id="none-between"),
    pytest.param("Service", "Type", ["", "simple"], id="reset-then-value"),
    pytest.param("Service", "MemoryMax", ("1G", "2G"), id="tuple"),
    pytest.param("Unit", "Description", ["a", "b"], id="description"),
    pytest.param("Unit", "StartLimitBurst", [3, 5], id="start-limit-burst"),
    pytest.param("Timer", "AccuracySec", ["1s", "1min"], id="timer-accuracy"),
    pytest.param("Timer", "Unit", ["a.service", "b.service"], id="timer-unit"),
    pytest.param("Socket", "Accept", [True, False], id="socket-accept"),
    pytest.param("Mount", "Where", ["/a", "/b"], id="mount-where"),
    pytest.param("Install", "DefaultInstance", ["a", "b"], id="default-instance"),
]


@pytest.mark.parametrize(("section", "key", "value"), SINGLE_VALUED_LISTS)
def test_single_valued_list_is_refused(section, key, value):
    sections = {section: {key: value}}
    count = len([v for v in value if v is not None])
    with pytest.raises(UnitFileError) as info:
        render_unit(sections, unit="app.service")
    err = info.value
    assert (err.unit, err.section, err.key, err.value) == ("app.service", section, key, list(value))
    assert str(err).startswith(f"unit app.service: [{section}] {key}: systemd reads {key}= only once")
    assert f"only the last of these {count} values would count): give one value, not a list" in str(err)
    # the same check everywhere sections are checked
    with pytest.raises(UnitFileError):
        check_sections(sections, unit="app.service")
    with pytest.raises(UnitFileError):
        directive_lines(section, key, value, unit="app.service")
    # ... except where several assignments are read from a file (lint, merged drop-ins)
    check_sections(sections, unit="app.service", allow_reassign=True)
    assert len(directive_lines(section, key, value, allow_reassign=True)) == count


# (sections, rendered text): lists that stay allowed
SINGLE_VALUED_ALLOWED = [
    pytest.param({"Service": {"Type": ["simple"]}}, "[Service]\nType=simple\n", id="one-element-list"),
    pytest.param({"Service": {"Type": [None, "exec", None]}}, "[Service]\nType=exec\n", id="one-non-null"),
    pytest.param({"Service": {"Type": []}}, "[Service]\n", id="empty-list"),
    pytest.param({"Timer": {"OnCalendar": ["daily", "Mon 02:00"]}},
                 "[Timer]\nOnCalendar=daily\nOnCalendar=Mon 02:00\n", id="oncalendar-is-a-list"),
    pytest.param({"Service": {"ExecStart": ["", "/bin/x"], "Environment": ["A=1", "B=2"]}},
                 "[Service]\nExecStart=\nExecStart=/bin/x\nEnvironment=A=1\nEnvironment=B=2\n", id="list-directives"),
    pytest.param({"Unit": {"ConditionPathExists": ["/a", "/b"], "Documentation": ["man:a(1)", "man:b(1)"]}},
                 "[Unit]\nConditionPathExists=/a\nConditionPathExists=/b\nDocumentation=man:a(1)\n"
                 "Documentation=man:b(1)\n", id="conditions-add-up"),
    pytest.param({"Install": {"WantedBy": ["a.target", "b.target"]}},
                 "[Install]\nWantedBy=a.target\nWantedBy=b.target\n", id="wantedby"),
    pytest.param({"X-Custom": {"Type": ["a", "b"]}}, "[X-Custom]\nType=a\nType=b\n", id="unknown-section"),
    pytest.param({"Timer": {"Type": ["a", "b"]}}, "[Timer]\nType=a\nType=b\n", id="key-of-another-section"),
]


@pytest.mark.parametrize(("sections", "text"), SINGLE_VALUED_ALLOWED)
def test_single_valued_allowed(sections, text):
    assert render_unit(sections, unit="app.service") == text


@pytest.mark.parametrize(("section", "key", "single"), [
    ("Unit", "Description", True), ("Unit", "SourcePath", True), ("Unit", "DefaultDependencies", True),
    ("Unit", "StartLimitIntervalSec", True), ("Unit", "StartLimitAction", True), ("Unit", "JobTimeoutSec", True),
    ("Service", "Type", True), ("Service", "Restart", True), ("Service", "RestartSec", True),
    ("Service", "User", True), ("Service", "Group", True), ("Service", "WorkingDirectory", True),
    ("Service", "RootDirectory", True), ("Service", "PIDFile", True), ("Service", "RemainAfterExit", True),
    ("Service", "TimeoutStartSec", True), ("Service", "TimeoutStopSec", True), ("Service", "TimeoutSec", True),
    ("Service", "RuntimeMaxSec", True), ("Service", "WatchdogSec", True), ("Service", "KillMode", True),
    ("Service", "KillSignal", True), ("Service", "NotifyAccess", True), ("Service", "UMask", True),
    ("Service", "Nice", True), ("Service", "StandardOutput", True), ("Service", "StandardError", True),
    ("Service", "StandardInput", True), ("Service", "DynamicUser", True), ("Service", "PrivateTmp", True),
    ("Service", "ProtectSystem", True), ("Service", "ProtectHome", True), ("Service", "NoNewPrivileges", True),
    ("Service", "MemoryMax", True), ("Service", "CPUQuota", True),
    ("Timer", "AccuracySec", True), ("Timer", "RandomizedDelaySec", True), ("Timer", "Persistent", True),
    ("Timer", "Unit", True), ("Install", "DefaultInstance", True),
    ("Timer", "OnCalendar", False), ("Timer", "OnBootSec", False), ("Unit", "After", False),
    ("Unit", "Documentation", False), ("Unit", "ConditionPathExists", False), ("Service", "ExecStart", False),
    ("Service", "Environment", False), ("Service", "SupplementaryGroups", False),
    ("Service", "ReadWritePaths", False), ("Service", "CapabilityBoundingSet", False),
    ("Install", "WantedBy", False), ("Install", "Alias", False), ("Socket", "ListenStream", False),
    ("Path", "PathChanged", False), ("Slice", "MemoryMax", True), ("Mount", "User", True),
])
def test_single_valued_table(section, key, single):
    assert is_single_valued(section, key) is single


def test_single_valued_table_holds_real_directive_names():
    for section, keys in SINGLE_VALUED.items():
        assert keys, section
        for key in keys:
            check_sections({section: {key: "x"}})  # a valid directive name


def test_to_unit_filter_refuses_a_list_for_a_single_valued_directive():
    from ansible.errors import AnsibleFilterError

    from ansible_collections.unitcraft.systemd.plugins.filter.unit_filters import FilterModule

    to_unit = FilterModule().filters()["to_unit"]
    refused = r"^to_unit: unit app\.service: \[Service\] Type: systemd reads Type= only once"
    with pytest.raises(AnsibleFilterError, match=refused):
        to_unit({"Service": {"Type": ["simple", "exec"]}}, unit="app.service")
    assert to_unit({"Service": {"Type": ["simple"]}}) == "[Service]\nType=simple\n"


# ---------------------------------------------------------------- line sources


def test_line_sources_map_rendered_lines_to_what_was_given():
    sections = {
        "Unit": {"Description": "x", "After": ["a.service", None, "b.service"]},
        "Service": {"Restart": True, "RestartSec": 5, "ExecStart": "/bin/true", "Nice": None},
        "Install": {},
        "Timer": {"OnCalendar": [720, "daily"]},
    }
    text = render_unit(sections, unit="x.service").split("\n")
    sources = line_sources(sections, unit="x.service")
    assert sources == {
        2: ("Unit", "Description", "x"),
        3: ("Unit", "After", "a.service"),
        4: ("Unit", "After", "b.service"),
        7: ("Service", "Restart", True),
        8: ("Service", "RestartSec", 5),
        9: ("Service", "ExecStart", "/bin/true"),
        14: ("Timer", "OnCalendar", 720),
        15: ("Timer", "OnCalendar", "daily"),
    }
    for number, (_section, key, _value) in sources.items():
        assert text[number - 1].startswith(key + "=")
    assert text[6] == "Restart=yes" and text[13] == "OnCalendar=720"


def test_line_sources_check_like_render():
    with pytest.raises(UnitFileError, match="only once"):
        line_sources({"Service": {"Type": ["a", "b"]}})


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
    # a single-valued directive keeps its last assignment, as systemd does
    pytest.param("[Service]\nNoNewPrivileges=yes\nUser=a\nNoNewPrivileges=no\n",
                 {"Service": {"NoNewPrivileges": "no", "User": "a"}}, id="single-valued-last-wins"),
    pytest.param("[Service]\nType=\nType=simple\n", {"Service": {"Type": "simple"}}, id="single-valued-reset-then-set"),
    pytest.param("[Service]\nType=simple\nType=\n", {"Service": {"Type": ""}}, id="single-valued-reset-last"),
    pytest.param("[Unit]\nDescription=a\n[Service]\nType=exec\n[Unit]\nDescription=b\n",
                 {"Unit": {"Description": "b"}, "Service": {"Type": "exec"}}, id="single-valued-across-headers"),
    pytest.param("[X-Custom]\nType=a\nType=b\n", {"X-Custom": {"Type": ["a", "b"]}}, id="custom-section-keeps-all"),
]


@pytest.mark.parametrize(("text", "sections"), PARSE_CASES)
def test_parse(text, sections):
    result = parse_unit(text)
    assert result == sections
    assert list(result) == list(sections)
    for name in sections:
        assert list(result[name]) == list(sections[name])


PARSE_REJECT_CASES = [
    pytest.param("A=1\n[Unit]\n", "unit u.service: line 1: assignment before the first section header: 'A=1'",
                 id="before-header"),
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
    # Debian 12's chrony.service sets NoNewPrivileges twice; what is parsed renders again
    "[Service]\nNoNewPrivileges=yes\nExecStart=/usr/sbin/chronyd\nNoNewPrivileges=no\n",
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
            if path.suffix[1:] not in {"service", "socket", "target", "timer", "mount", "path", "slice", "conf",
                                       "automount", "swap", "scope", "device"}:
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
        "Unit": {"Description": "rendered by unitcraft", "After": ["network-online.target"],
                 "Wants": "network-online.target"},
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
