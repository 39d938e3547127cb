# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import os
import subprocess
import sys
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


def test_lint_unit_for_an_older_systemd():
    sections = {"Service": {"ExecStart": "/bin/true", "Restart": "on-failure", "RestartSec": 1, "RestartSteps": 3}}
    findings = FILTERS["lint_unit"](sections, unit="app.service", systemd_version=252)
    assert [(f["rule"], f["key"]) for f in findings] == [("needs-newer-systemd", "RestartSteps")]
    assert "needs systemd 254" in findings[0]["message"]
    assert FILTERS["lint_unit"](sections, unit="app.service", systemd_version=254) == []
    assert FILTERS["lint_unit"](sections, unit="app.service") == [], "no version: nothing is too new"
    # a version from templating arrives as a string
    assert FILTERS["lint_unit"](sections, systemd_version="252") == findings


def test_lint_unit_deprecated_directive_names_the_successor():
    text = "[Service]\nExecStart=/bin/true\nMemoryLimit=1G\n"
    (finding,) = FILTERS["lint_unit"](text, unit="app.service", systemd_version=257)
    assert finding["rule"] == "deprecated-directive" and finding["key"] == "MemoryLimit"
    assert "MemoryMax=" in finding["message"]


@pytest.mark.parametrize("bad", [True, 25.2, "two-five-two", [252]])
def test_lint_unit_refuses_a_version_that_is_not_an_integer(bad):
    with pytest.raises(AnsibleFilterError, match=r"lint_unit: systemd_version must be an integer such as 252"):
        FILTERS["lint_unit"]({"Service": {"ExecStart": "/bin/true"}}, systemd_version=bad)


def test_lint_unit_examples_run(tmp_path):
    """The EXAMPLES of lint_unit.yml run as written, on the controller (the filter needs no host)."""
    examples = yaml.safe_load(yaml.safe_load((FILTER_DIR / "lint_unit.yml").read_text(encoding="utf-8"))["EXAMPLES"])
    assert len(examples) >= 2 and any("systemd_version=" in str(task) for task in examples)
    collections = tmp_path / "collections" / "ansible_collections" / "unitcraft"
    collections.mkdir(parents=True)
    (collections / "systemd").symlink_to(FILTER_DIR.parents[1])
    playbook = tmp_path / "examples.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": examples}]))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    playbook_command = Path(sys.executable).with_name("ansible-playbook")
    run = subprocess.run([str(playbook_command), "-i", "localhost,", "-c", "local", str(playbook)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"ok={len(examples)}" in run.stdout
