# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._lint import RULES, lint_sections
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError, parse_unit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lint-rules.md"

# rule id -> (triggering unit, clean unit, lint kwargs, expected (section, key) of the finding)
RULE_TABLE = {
    "wants-network-online": (
        {"Unit": {"After": "network-online.target"}, "Service": {"ExecStart": "/bin/true"}},
        {"Unit": {"After": "network-online.target", "Wants": "network-online.target"},
         "Service": {"ExecStart": "/bin/true"}},
        {},
        ("Unit", "After"),
    ),
    "requires-without-after": (
        {"Unit": {"Requires": "db.service"}, "Service": {"ExecStart": "/bin/true"}},
        {"Unit": {"Requires": "db.service", "After": "db.service"}, "Service": {"ExecStart": "/bin/true"}},
        {},
        ("Unit", "Requires"),
    ),
    "passive-network-target": (
        {"Unit": {"Wants": "network.target"}, "Service": {"ExecStart": "/bin/true"}},
        {"Unit": {"After": "network.target"}, "Service": {"ExecStart": "/bin/true"}},
        {},
        ("Unit", "Wants"),
    ),
    "oneshot-before-without-remain": (
        {"Unit": {"Before": "ntp.service"}, "Service": {"Type": "oneshot", "ExecStart": "/bin/true"}},
        {"Unit": {"Before": "ntp.service"},
         "Service": {"Type": "oneshot", "ExecStart": "/bin/true", "RemainAfterExit": True}},
        {},
        ("Service", "RemainAfterExit"),
    ),
    "oneshot-restart": (
        {"Service": {"Type": "oneshot", "ExecStart": "/bin/true", "Restart": "on-success"}},
        {"Service": {"Type": "oneshot", "ExecStart": "/bin/true", "Restart": "on-failure"}},
        {},
        ("Service", "Restart"),
    ),
    "restart-without-restartsec": (
        {"Service": {"ExecStart": "/bin/true", "Restart": "always"}},
        {"Service": {"ExecStart": "/bin/true", "Restart": "always", "RestartSec": 5}},
        {},
        ("Service", "Restart"),
    ),
    "start-limit-in-service": (
        {"Service": {"ExecStart": "/bin/true", "StartLimitIntervalSec": 60}},
        {"Unit": {"StartLimitIntervalSec": 60, "StartLimitBurst": 3}, "Service": {"ExecStart": "/bin/true"}},
        {},
        ("Service", "StartLimitIntervalSec"),
    ),
    "forking-without-pidfile": (
        {"Service": {"Type": "forking", "ExecStart": "/usr/sbin/daemon"}},
        {"Service": {"Type": "forking", "ExecStart": "/usr/sbin/daemon", "PIDFile": "/run/daemon.pid"}},
        {},
        ("Service", "Type"),
    ),
    "enable-without-install": (
        {"Service": {"ExecStart": "/bin/true"}},
        {"Service": {"ExecStart": "/bin/true"}, "Install": {"WantedBy": "multi-user.target"}},
        {"enabled": True},
        ("Install", None),
    ),
    "unknown-specifier": (
        {"Service": {"ExecStart": "/bin/sh -c 'date +%F'"}},
        {"Service": {"ExecStart": "/bin/sh -c 'date +%%F; echo %n %i'"}},
        {},
        ("Service", "ExecStart"),
    ),
    "date-format-specifier": (
        {"Service": {"ExecStart": "/bin/sh -c 'date +%Y-%m-%d'"}},
        {"Service": {"ExecStart": "/bin/sh -c 'date +%%Y-%%m-%%d'"}},
        {},
        ("Service", "ExecStart"),
    ),
    "secret-in-environment": (
        {"Service": {"ExecStart": "/bin/true", "Environment": "HUOBI_API_KEY=k-123"}},
        {"Service": {"ExecStart": "/bin/true", "Environment": "HUOBI_API_KEY_FILE=%d/apikey",
                     "LoadCredentialEncrypted": "apikey"}},
        {},
        ("Service", "Environment"),
    ),
    "needs-newer-systemd": (
        {"Service": {"ExecStart": "/bin/true", "RestartSteps": 3}},
        {"Service": {"ExecStart": "/bin/true", "RestartSteps": 3}},  # clean for 254 (see the kwargs below)
        {"systemd_version": 252},
        ("Service", "RestartSteps"),
    ),
    "deprecated-directive": (
        {"Service": {"ExecStart": "/bin/true", "MemoryLimit": "1G"}},
        {"Service": {"ExecStart": "/bin/true", "MemoryMax": "1G"}},
        {},
        ("Service", "MemoryLimit"),
    ),
}
# the clean unit of a rule, when it is clean for other lint kwargs than the triggering one
CLEAN_KWARGS = {"needs-newer-systemd": {"systemd_version": 254}}


def test_table_covers_every_rule():
    assert set(RULE_TABLE) == set(RULES)


@pytest.mark.parametrize("rule", sorted(RULE_TABLE))
def test_rule_triggers(rule):
    bad, kwargs, (section, key) = RULE_TABLE[rule][0], RULE_TABLE[rule][2], RULE_TABLE[rule][3]
    findings = lint_sections(bad, **kwargs)
    assert [f["rule"] for f in findings] == [rule], findings
    finding = findings[0]
    assert (finding["section"], finding["key"]) == (section, key)
    assert set(finding) == {"rule", "section", "key", "message"}
    message = finding["message"]
    assert "\n" not in message and ":" in message  # one line: reason, then the fix


@pytest.mark.parametrize("rule", sorted(RULE_TABLE))
def test_rule_clean(rule):
    good, kwargs = RULE_TABLE[rule][1], CLEAN_KWARGS.get(rule, RULE_TABLE[rule][2])
    assert lint_sections(good, **kwargs) == []


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_documented(rule):
    text = DOCS.read_text(encoding="utf-8")
    assert f"## `{rule}`" in text


# More cases per rule: (sections, lint kwargs, expected rule ids in order).
EXTRA_CASES = [
    pytest.param({"Unit": {"After": "network-online.target", "Requires": "network-online.target"}},
                 {}, [], id="requires-pulls-online"),
    pytest.param({"Unit": {"After": "a.service", "Requires": "network-online.target"}},
                 {}, ["requires-without-after"], id="requires-online-without-after"),
    pytest.param({"Unit": {"After": "network-online.target", "BindsTo": "network-online.target"}},
                 {}, [], id="bindsto-pulls"),
    pytest.param({"Unit": {"After": ["network-online.target"], "Wants": ["x.service", ""]}},
                 {}, ["wants-network-online"], id="reset-of-wants"),
    pytest.param({"Unit": {"Requires": "a.service b.service", "After": "a.service"}},
                 {}, ["requires-without-after"], id="second-of-two-requires"),
    pytest.param({"Unit": {"Requires": "a.service", "Before": "a.service"}},
                 {}, [], id="requires-ordered-before-is-no-race"),
    pytest.param({"Unit": {"BindsTo": "dev-sda.device"}}, {}, ["requires-without-after"], id="bindsto"),
    pytest.param({"Unit": {"Wants": "network.target", "Before": "network.target"}},
                 {}, [], id="network-manager-pattern"),
    pytest.param({"Unit": {"Requires": "network.target", "After": "network.target"}},
                 {}, ["passive-network-target"], id="requires-network-target"),
    pytest.param({"Unit": {"Wants": "network.target"}}, {"unit": "foo.target"}, [], id="not-a-service"),
    pytest.param({"Service": {"Restart": "always", "RestartSec": 5}, "Unit": {}},
                 {"unit": "x.timer"}, [], id="service-rules-skip-timers"),
    pytest.param({"Service": {"Type": "oneshot", "ExecStart": "/bin/true", "Restart": "always"}},
                 {}, ["oneshot-restart", "restart-without-restartsec"], id="oneshot-always"),
    pytest.param({"Service": {"Restart": "always"}}, {}, ["restart-without-restartsec"],
                 id="type-not-guessed"),
    pytest.param({"Service": {"Type": "oneshot", "ExecStart": "/bin/true", "Restart": ["always", "no"]}},
                 {}, [], id="last-restart-wins"),
    pytest.param({"Service": {"ExecStart": "/bin/true", "StartLimitBurst": 3, "StartLimitInterval": 10}},
                 {}, ["start-limit-in-service", "start-limit-in-service"], id="both-start-limits"),
    pytest.param({"Service": {"Type": "forking", "ExecStart": "/bin/d", "PIDFile": ""}},
                 {}, ["forking-without-pidfile"], id="pidfile-reset"),
    pytest.param({"Service": {"ExecStart": "/bin/true"}, "Install": {}}, {"enabled": True},
                 ["enable-without-install"], id="empty-install"),
    pytest.param({"Service": {"ExecStart": "/bin/true"}}, {"enabled": False}, [], id="not-enabled"),
    pytest.param({"Service": {"ExecStart": "/bin/true"}}, {"enabled": None}, [], id="enabled-unknown"),
    pytest.param({"Service": {"ExecStart": "/bin/echo 100%"}}, {}, ["unknown-specifier"], id="percent-at-end"),
    pytest.param({"Service": {"Environment": ["A=%h/%u", "B=%y %Y %q %D"]}}, {}, [], id="known-specifiers"),
    pytest.param({"Unit": {"Description": "50% %Z"}}, {}, ["unknown-specifier", "unknown-specifier"],
                 id="two-bad-specifiers"),
    pytest.param({"Service": {"ExecStart": "/bin/true", "Type": "oneshot", "RemainAfterExit": "true"},
                  "Unit": {"Before": "x.service"}}, {}, [], id="remain-true-spelling"),
    pytest.param({"Service": {"Type": ["simple", "oneshot"], "ExecStart": "/bin/true", "Restart": "always",
                              "RestartSec": 1}}, {}, ["oneshot-restart"], id="last-type-wins"),
]

# Date formats: (value of ExecStart=, expected rule ids in order)
DATE_FORMAT_CASES = [
    pytest.param("/bin/date +%Y-%m-%d", ["date-format-specifier"], id="date-plus-format"),
    pytest.param("/bin/sh -c 'date +%Y-%m-%d'", ["date-format-specifier"], id="inside-sh-c"),
    pytest.param("/bin/date +%s", ["date-format-specifier"], id="plus-one-conversion"),
    pytest.param("/bin/date '+%H %M'", ["date-format-specifier"], id="quoted-with-blank"),
    pytest.param("/usr/bin/backup --name db-%Y%m%dT%H%M%S", ["date-format-specifier"], id="compact-iso"),
    pytest.param("/usr/bin/logrotate --suffix %Y.%m.%d", ["date-format-specifier"], id="dots"),
    pytest.param("/usr/bin/x --at %H:%M", ["date-format-specifier"], id="colon"),
    pytest.param("/usr/bin/x --dir /srv/%Y/%m", ["date-format-specifier"], id="slashes"),
    pytest.param("/usr/bin/x FMT=+%n", ["date-format-specifier"], id="plus-after-equals"),
    pytest.param("/bin/date +%Y-%m-%dT%H:%M:%S%z", ["unknown-specifier", "date-format-specifier"],
                 id="with-an-unknown-one"),
    pytest.param("/bin/date +%F", ["unknown-specifier"], id="only-unknown-is-the-other-rule"),
    pytest.param("/bin/date +%%Y-%%m-%%d", [], id="escaped"),
    pytest.param("/usr/bin/x --name %p-%i --sock %t/%n", [], id="specifiers-in-names"),
    pytest.param("/usr/bin/x %h/%p %u:%g %U:%G %d/%N", [], id="specifiers-in-paths"),
    pytest.param("/usr/bin/x %Y %m", [], id="separate-words"),
    pytest.param("/usr/bin/x a+%s", [], id="plus-inside-a-word"),
    pytest.param("/usr/bin/x %H", [], id="single-conversion"),
]


@pytest.mark.parametrize(("value", "rules"), DATE_FORMAT_CASES)
def test_date_format_cases(value, rules):
    assert [f["rule"] for f in lint_sections({"Service": {"ExecStart": value}})] == rules


def test_date_format_message_names_the_specifiers_and_the_fix():
    (finding,) = lint_sections({"Service": {"ExecStart": "/bin/sh -c 'date +%Y-%m-%d'"}}, unit="x.service")
    assert finding["message"] == (
        "'+%Y-%m-%d' in \"/bin/sh -c 'date +%Y-%m-%d'\" looks like a date format, but systemd expands %Y, %m,"
        " %d as unit specifiers (systemd.unit(5)) before the program sees them: write every '%' as '%%'"
        " ('+%%Y-%%m-%%d')"
    )


def test_date_format_in_every_unit_type_and_section():
    findings = lint_sections({"Timer": {"OnCalendar": "daily"}, "Unit": {"Description": "backup %Y-%m-%d"}},
                             unit="backup.timer")
    assert [(f["rule"], f["section"], f["key"]) for f in findings] == [
        ("date-format-specifier", "Unit", "Description")]


def test_trailing_percent_message_says_what_systemd_does():
    (finding,) = lint_sections({"Service": {"Environment": "LIMIT=50%"}})
    assert finding["rule"] == "unknown-specifier"
    # measured on systemd 252 and 257: the unit loads and runs, the value keeps its '%'
    assert "is kept as a literal '%'" in finding["message"]
    assert "drops the setting" not in finding["message"]
    assert finding["message"].endswith("write '%%'")


def test_unknown_specifier_message():
    (finding,) = lint_sections({"Service": {"ExecStart": "/bin/date +%F"}})
    assert "'%F' in '/bin/date +%F' is not a systemd specifier" in finding["message"]


def test_enable_without_install_message_says_the_unit_stays_static():
    (finding,) = lint_sections({"Service": {"ExecStart": "/bin/true"}}, enabled=True)
    message = finding["message"]
    # measured on systemd 252 and 257: `systemctl enable` exits 0 and the unit stays static
    assert "does not fail" in message and "'static'" in message and "fails:" not in message


@pytest.mark.parametrize(("sections", "kwargs", "rules"), EXTRA_CASES)
def test_extra_cases(sections, kwargs, rules):
    assert [f["rule"] for f in lint_sections(sections, **kwargs)] == rules


def test_invalid_sections_raise():
    with pytest.raises(UnitFileError, match=r"\[Service\] ExecStart: value contains a newline"):
        lint_sections({"Service": {"ExecStart": "a\nb"}}, unit="x.service")


def test_invalid_unit_name_raises():
    with pytest.raises(UnitFileError, match="invalid unit name"):
        lint_sections({"Service": {}}, unit="x/y.service")


# The two units of the seeds, exactly as written there.
HUOBI_SEED = """\
[Unit]
Description=huobi downloader
After=rc-local.service

[Service]
Type=simple
User=root
Group=root
WorkingDirectory=/usr/lib/code/atom
ExecStart=/home/ubuntu/anaconda3/bin/python3.6 exchange/downloader.py huobi /data2/huobi/huobi.log
Restart=always

[Install]
WantedBy=multi-user.target
"""

NTP_SEED = """\
[Unit]
Description=ntp force synchronization once
Before=ntp.service
Wants=network-online.target
After=network.target network-online.target

[Service]
Type=oneshot
ExecStart=/usr/sbin/ntpd -qg
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def test_seed_huobi_has_the_restart_pitfall():
    # Seed 000 restarts forever with the default 100ms RestartSec: the one pitfall it has.
    findings = lint_sections(parse_unit(HUOBI_SEED), unit="huobi.service", enabled=True)
    assert [(f["rule"], f["section"], f["key"]) for f in findings] == [
        ("restart-without-restartsec", "Service", "Restart")
    ]


def test_seed_ntp_is_clean():
    # Seed 002 already pairs After= with Wants=network-online.target and sets RemainAfterExit=yes.
    assert lint_sections(parse_unit(NTP_SEED), unit="ntp-force-sync.service", enabled=True) == []


def test_seed_huobi_fixed_is_clean():
    sections = parse_unit(HUOBI_SEED)
    sections["Service"]["RestartSec"] = "5"
    assert lint_sections(sections, unit="huobi.service", enabled=True) == []


# Environment= names: (value of Environment=, names reported in order)
SECRET_ENVIRONMENT_CASES = [
    pytest.param("API_KEY=k", ["API_KEY"], id="suffix-key"),
    pytest.param("api_key=k", ["api_key"], id="lower-case"),
    pytest.param("GITHUB_TOKEN=t", ["GITHUB_TOKEN"], id="token"),
    pytest.param("TOKENS_URL=https://x", ["TOKENS_URL"], id="token-inside"),
    pytest.param("DB_PASSWORD=p", ["DB_PASSWORD"], id="password"),
    pytest.param("CLIENT_SECRET_V2=s", ["CLIENT_SECRET_V2"], id="secret-inside"),
    pytest.param("LEVEL=debug 'REPO_PASSWORD=two words' B=1", ["REPO_PASSWORD"], id="quoted-among-others"),
    pytest.param('"X_TOKEN=a b"', ["X_TOKEN"], id="double-quoted"),
    pytest.param("KEYBOARD=us KEYS=1 KEY=1", [], id="key-not-as-suffix"),
    pytest.param("API_KEY=", [], id="empty-value"),
    pytest.param("API_KEY_FILE=/etc/app/key API_TOKEN_PATH=/x SECRET_DIR=/y", [], id="names-of-places"),
    pytest.param("API_KEY=%d/apikey", [], id="credentials-specifier"),
    pytest.param("API_TOKEN=${CREDENTIALS_DIRECTORY}/token", [], id="credentials-variable"),
    pytest.param("API_KEY='unbalanced", ["API_KEY"], id="unbalanced-quote"),
]


@pytest.mark.parametrize(("value", "names"), SECRET_ENVIRONMENT_CASES)
def test_secret_in_environment_names(value, names):
    findings = lint_sections({"Service": {"ExecStart": "/bin/true", "Environment": value}})
    assert [f["rule"] for f in findings] == ["secret-in-environment"] * len(names)
    assert [f["message"].split("=", 2)[1] for f in findings] == names


def test_secret_in_environment_message_never_holds_the_value():
    (finding,) = lint_sections({"Service": {"Environment": ["A=1", "HUOBI_API_KEY=k-9f8e7d"]}}, unit="huobi.service")
    message = finding["message"]
    assert "k-9f8e7d" not in message
    assert message.startswith("Environment=HUOBI_API_KEY=... looks like a secret")
    assert "systemctl show -p Environment" in message  # the reason
    assert "LoadCredentialEncrypted=" in message and "unitcraft.systemd.credential" in message  # the fix


def test_secret_in_environment_in_any_section_and_unit_type():
    findings = lint_sections({"Socket": {"ListenStream": "80", "Environment": "TOKEN=x"}}, unit="web.socket")
    assert [(f["rule"], f["section"], f["key"]) for f in findings] == [
        ("secret-in-environment", "Socket", "Environment")]


# ---- needs-newer-systemd and deprecated-directive --------------------------------------------

VERSION_CASES = [
    pytest.param({"Service": {"RestartSteps": 3, "RestartMaxDelaySec": "1min"}}, 253,
                 [("needs-newer-systemd", "RestartSteps"), ("needs-newer-systemd", "RestartMaxDelaySec")],
                 id="two-too-new"),
    pytest.param({"Service": {"RestartSteps": 3}}, 254, [], id="just-new-enough"),
    pytest.param({"Service": {"RestartSteps": 3}}, None, [], id="no-version-nothing-too-new"),
    pytest.param({"Service": {"RestartSteps": None}}, 252, [], id="left-out"),
    pytest.param({"Service": {"RestartSteps": ""}}, 252, [("needs-newer-systemd", "RestartSteps")],
                 id="a-reset-is-still-an-unknown-key"),
    # OOMPolicy= came to [Service] in 243 and to [Scope] in 253: the section decides
    pytest.param({"Scope": {"OOMPolicy": "stop"}}, 252, [("needs-newer-systemd", "OOMPolicy")],
                 id="per-section-scope"),
    pytest.param({"Service": {"OOMPolicy": "stop"}}, 252, [], id="per-section-service"),
    # the exec settings are read in [Socket] too
    pytest.param({"Socket": {"ListenStream": "80", "PrivatePIDs": True}}, 252,
                 [("needs-newer-systemd", "PrivatePIDs")], id="exec-setting-in-a-socket"),
    pytest.param({"Service": {"NoSuchThing": 1}}, 200, [], id="unknown-directive-is-validations"),
    pytest.param({"Service": {"MemoryLimit": "1G"}}, 252, [("deprecated-directive", "MemoryLimit")],
                 id="deprecated-in-252"),
    pytest.param({"Service": {"MemoryLimit": "1G"}}, 251, [], id="not-yet-deprecated"),
    pytest.param({"Service": {"CPUShares": 100}}, 262, [("deprecated-directive", "CPUShares")],
                 id="ignored-from-258"),
    pytest.param({"Service": {"CPUAccounting": True}}, 257, [], id="cpu-accounting-deprecated-only-from-258"),
    pytest.param({"Service": {"CPUAccounting": True}}, None, [("deprecated-directive", "CPUAccounting")],
                 id="no-version-every-deprecation"),
    pytest.param({"Service": {"ExecStart": "!!/usr/bin/x"}}, 257, [], id="bang-bang-fine-before-258"),
    pytest.param({"Service": {"ExecStart": "-!!/usr/bin/x"}}, 258, [("deprecated-directive", "ExecStart")],
                 id="bang-bang-ignored-from-258"),
    pytest.param({"Service": {"ExecStart": "/usr/bin/x !!"}}, 258, [], id="bang-bang-in-the-arguments"),
    pytest.param({"Service": {"ExecStart": "!/usr/bin/x"}}, 258, [], id="one-bang-is-fine"),
    pytest.param({"Unit": {"SourcePath": "/etc/init.d/foo"}, "Service": {"ExecStart": "/etc/init.d/foo start"}},
                 254, [("deprecated-directive", "SourcePath")], id="sysv-generated-unit"),
    pytest.param({"Unit": {"SourcePath": "/etc/init.d/foo"}}, 253, [], id="sysv-before-254"),
    pytest.param({"Unit": {"SourcePath": "/etc/fstab"}}, 257, [], id="fstab-source-path"),
]


@pytest.mark.parametrize(("sections", "version", "expected"), VERSION_CASES)
def test_version_rules(sections, version, expected):
    findings = lint_sections(sections, systemd_version=version)
    assert [(f["rule"], f["key"]) for f in findings] == expected


def test_needs_newer_systemd_names_both_versions():
    (finding,) = lint_sections({"Service": {"RestartSteps": 3}}, systemd_version=252)
    assert finding["message"].startswith("RestartSteps= needs systemd 254; systemd 252 does not know it")


def test_deprecated_directive_says_what_to_use_instead():
    (finding,) = lint_sections({"Service": {"MemoryLimit": "1G"}}, systemd_version=252)
    assert finding["message"] == ("MemoryLimit= is deprecated since systemd 252 and ignored by systemd 258 and"
                                  " later: use MemoryMax= instead")
    (finding,) = lint_sections({"Service": {"MemoryLimit": "1G"}}, systemd_version=262)
    assert finding["message"] == "MemoryLimit= is ignored by systemd 258 and later (262 included): use MemoryMax= instead"


@pytest.mark.parametrize(("old", "new"), [
    ("CPUShares", "CPUWeight="), ("StartupCPUShares", "StartupCPUWeight="), ("BlockIOAccounting", "IOAccounting="),
    ("BlockIOWeight", "IOWeight="), ("StartupBlockIOWeight", "StartupIOWeight="),
    ("BlockIODeviceWeight", "IODeviceWeight="), ("BlockIOReadBandwidth", "IOReadBandwidthMax="),
    ("BlockIOWriteBandwidth", "IOWriteBandwidthMax="),
])
def test_every_cgroup_v1_setting_names_its_successor(old, new):
    (finding,) = lint_sections({"Slice": {old: "x"}}, unit="a.slice", systemd_version=252)
    assert finding["rule"] == "deprecated-directive" and finding["message"].endswith(f"use {new} instead")
