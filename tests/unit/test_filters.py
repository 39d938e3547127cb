# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.unitcraft.systemd.plugins.filter.unit_filters import FilterModule

FILTERS = FilterModule().filters()
FILTER_DIR = Path(__file__).resolve().parents[2] / "plugins" / "filter"


def test_filter_names():
    assert sorted(FILTERS) == ["from_unit", "lint_unit", "systemd_escape", "to_unit"]


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_documented(name):
    doc = yaml.safe_load((FILTER_DIR / f"{name}.yml").read_text(encoding="utf-8"))
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["version_added"] == "0.1.0"
    assert "_input" in doc["DOCUMENTATION"]["options"]
    assert "_value" in doc["RETURN"]
    assert doc["EXAMPLES"].startswith("---")


def test_to_unit():
    sections = {
        "Unit": {"Description": "huobi downloader", "After": ["network-online.target"], "Wants": "network-online.target"},
        "Service": {"ExecStart": "/usr/bin/python3 /opt/huobi/downloader.py", "Restart": "always",
                    "RestartSec": 5, "Nice": None, "Environment": ["A=1", ""]},
        "Install": {"WantedBy": "multi-user.target"},
    }
    assert FILTERS["to_unit"](sections) == (
        "[Unit]\nDescription=huobi downloader\nAfter=network-online.target\nWants=network-online.target\n"
        "\n[Service]\nExecStart=/usr/bin/python3 /opt/huobi/downloader.py\nRestart=always\nRestartSec=5\n"
        "Environment=A=1\nEnvironment=\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def test_to_unit_error_names_offender():
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["to_unit"]({"Service": {"ExecStart": "/bin/true\nExecStartPost=/bin/evil"}}, unit="huobi.service")
    assert str(info.value).startswith(
        "to_unit: unit huobi.service: [Service] ExecStart: value contains a newline: "
        "'/bin/true\\nExecStartPost=/bin/evil'"
    )


def test_from_unit():
    text = "[Unit]\nAfter=a.service\nAfter=b.service\n[Service]\nEnvironment=\nExecStart=/bin/true\n"
    assert FILTERS["from_unit"](text) == {
        "Unit": {"After": ["a.service", "b.service"]},
        "Service": {"Environment": "", "ExecStart": "/bin/true"},
    }


def test_from_unit_error():
    with pytest.raises(AnsibleFilterError, match=r"^from_unit: line 1: assignment before the first section header"):
        FILTERS["from_unit"]("A=1\n")


def test_from_to_round_trip():
    text = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n"
    assert FILTERS["to_unit"](FILTERS["from_unit"](text)) == text


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [("/srv/data", True, "srv-data"), ("/srv/data", False, "-srv-data"), ("my disk", False, "my\\x20disk"),
     ("/", True, "-"), (".hidden", False, "\\x2ehidden")],
)
def test_systemd_escape(text, path, expected):
    assert FILTERS["systemd_escape"](text, path=path) == expected


def test_systemd_escape_errors():
    with pytest.raises(AnsibleFilterError, match=r"^systemd_escape: cannot escape path '/a/\.\./b'"):
        FILTERS["systemd_escape"]("/a/../b", path=True)
    with pytest.raises(AnsibleFilterError, match="must be a string"):
        FILTERS["systemd_escape"](["x"])


def test_lint_unit_sections_and_text_agree():
    text = "[Unit]\nAfter=network-online.target\n[Service]\nExecStart=/bin/true\nRestart=always\n"
    from_text = FILTERS["lint_unit"](text, unit="x.service")
    from_sections = FILTERS["lint_unit"](FILTERS["from_unit"](text), unit="x.service")
    assert from_text == from_sections
    assert [f["rule"] for f in from_text] == ["wants-network-online", "restart-without-restartsec"]


def test_lint_unit_enabled():
    findings = FILTERS["lint_unit"]({"Service": {"ExecStart": "/bin/true"}}, enabled=True)
    assert [f["rule"] for f in findings] == ["enable-without-install"]


def test_lint_unit_errors():
    with pytest.raises(AnsibleFilterError, match="lint_unit: input must be sections"):
        FILTERS["lint_unit"](42)
    with pytest.raises(AnsibleFilterError, match=r"lint_unit: unit x.service: line 2: \[Unit\]: line is neither"):
        FILTERS["lint_unit"]("[Unit]\nnonsense\n", unit="x.service")
