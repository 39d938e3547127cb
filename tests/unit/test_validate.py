# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Validator with a fake systemd-analyze: YAML-coercion hints and check-mode advisories.

The canned outputs are the lines systemd 252 and 257 print (measured in the bench
containers); ``{path}`` stands for the path the Validator staged the file under.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import render_unit
from ansible_collections.unitcraft.systemd.plugins.module_utils._validate import (
    Candidate,
    Validator,
    Verdict,
    yaml_hint,
)

ETC = "/etc/systemd/system"

# systemd-analyze verify, per systemd version: (exit status, lines)
RESTART_YES = {
    "252": (0, ["{path}:{line}: Failed to parse service restart specifier, ignoring: yes"]),
    "257": (0, ["{path}:{line}: Failed to parse Restart=yes, ignoring: Invalid argument"]),
}
CALENDAR_720 = (1, ["{path}:{line}: Failed to parse calendar specification, ignoring: 720",
                    "{unit}: Timer unit lacks value setting. Refusing.",
                    "Unit {unit} has a bad unit file setting."])
UMASK_18 = (0, ["{path}:{line}: Failed to parse mode value, ignoring: 18"])


def missing(*commands: str) -> tuple[int, list[str]]:
    """What both versions print for commands that do not exist (verify exits 1)."""
    return 1, [f"{{unit}}: Command {cmd} is not executable: No such file or directory" for cmd in commands]


class FakeAnalyze:
    """A module whose run_command answers systemd-analyze from canned outputs.

    ``verify[unit] = (rc, lines)``; lines may use {path} (the staged file that holds the
    directive), {line} (set per unit in ``lines``) and {unit}. A batch answers with the
    worst status of its units and all their lines.
    """

    def __init__(self, verify: dict[str, tuple[int, list[str]]] | None = None,
                 calendar: dict[str, tuple[int, str, str]] | None = None, check_mode: bool = False,
                 at_line: dict[str, int] | None = None, in_dropin: dict[str, str] | None = None) -> None:
        self.verify = verify or {}
        self.calendar = calendar or {}
        self.check_mode = check_mode
        self.at_line = at_line or {}
        self.in_dropin = in_dropin or {}
        self.calls: list[list[str]] = []
        self.staged: dict[str, str] = {}

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return f"/usr/bin/{name}"

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[1] == "calendar":
            return self.calendar.get(argv[2], (0, f"  Original form: {argv[2]}\n", ""))
        assert argv[1:3] == ["verify", "--man=no"], argv
        status, lines = 0, []
        for staged in argv[3:]:
            unit = os.path.basename(staged)
            if os.path.exists(staged):
                self.staged[unit] = Path(staged).read_text()
            rc, unit_lines = self.verify.get(unit, (0, []))
            path = staged + ".d/" + self.in_dropin[unit] + ".conf" if unit in self.in_dropin else staged
            status = max(status, rc)
            lines += [ln.format(path=path, unit=unit, line=self.at_line.get(unit, 0)) for ln in unit_lines]
        return status, "", "\n".join(lines) + ("\n" if lines else "")

    def verify_calls(self) -> int:
        return sum(1 for argv in self.calls if argv[1] == "verify")


def unit_candidate(name: str, sections: dict[str, Any] | None, text: str | None = None, **kw: Any) -> Candidate:
    """A candidate as the orchestrator builds it for a unit written from sections (or content)."""
    fragment = text if text is not None else render_unit(sections or {}, unit=name)
    return Candidate(name=name, fragment=fragment, fragment_path=f"{ETC}/{name}", sections=sections, **kw)


def check(module: FakeAnalyze, *candidates: Candidate, root: str | None = None) -> dict[str, Verdict]:
    return Validator(module, root=root).check(list(candidates))


# ---------------------------------------------------------------- YAML coercion


@pytest.mark.parametrize("version", ["252", "257"])
def test_boolean_restart_gets_the_quoting_hint(version: str) -> None:
    sections = {"Unit": {"Description": "app"}, "Service": {"ExecStart": "/bin/true", "Restart": True}}
    module = FakeAnalyze({"app.service": RESTART_YES[version]}, at_line={"app.service": 6})
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert module.staged["app.service"].split("\n")[5] == "Restart=yes"
    assert verdict.errors == [] and verdict.advisories == []
    (warning,) = verdict.warnings
    assert warning.startswith(f"{ETC}/app.service:6: Failed to parse ")
    assert warning.endswith("; YAML read the value of Restart as the boolean true, rendered Restart=yes:"
                            " quote the value in YAML to pass the word as written")


@pytest.mark.parametrize("message", [
    "{path}:{line}: Unknown key name 'RemainAfterExitt' in section 'Service', ignoring.",  # 252
    "{path}:{line}: Unknown key 'RemainAfterExitt' in section [Service], ignoring.",  # 257
])
def test_a_misspelt_directive_with_a_boolean_value_is_named_unknown_not_yaml(message: str) -> None:
    sections = {"Service": {"Type": "oneshot", "ExecStart": "/bin/true", "RemainAfterExitt": True}}
    module = FakeAnalyze({"app.service": (0, [message])}, at_line={"app.service": 4})
    (warning,) = check(module, unit_candidate("app.service", sections))["app.service"].warnings
    assert warning.endswith("; RemainAfterExitt is not a directive systemd knows in [Service]: a typo?"), warning
    assert "YAML" not in warning


def test_same_value_given_as_a_string_gets_no_hint() -> None:
    sections = {"Unit": {"Description": "app"}, "Service": {"ExecStart": "/bin/true", "Restart": "yes"}}
    module = FakeAnalyze({"app.service": RESTART_YES["252"]}, at_line={"app.service": 6})
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.warnings == [f"{ETC}/app.service:6: Failed to parse service restart specifier, ignoring: yes"]


def test_raw_content_gets_no_hint() -> None:
    text = "[Unit]\nDescription=app\n\n[Service]\nRestart=yes\nExecStart=/bin/true\n"
    module = FakeAnalyze({"app.service": RESTART_YES["252"]}, at_line={"app.service": 5})
    verdict = check(module, unit_candidate("app.service", None, text=text))["app.service"]
    assert verdict.warnings == [f"{ETC}/app.service:5: Failed to parse service restart specifier, ignoring: yes"]


def test_hint_only_for_the_line_systemd_names() -> None:
    sections = {"Service": {"ExecStart": "/bin/true", "RemainAfterExit": True, "Restart": "bogus"}}
    module = FakeAnalyze({"app.service": (0, ["{path}:4: Failed to parse service restart specifier, ignoring: bogus"])})
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.warnings == [f"{ETC}/app.service:4: Failed to parse service restart specifier, ignoring: bogus"]


def test_text_that_is_not_the_rendered_sections_gets_no_hint() -> None:
    # the orchestrator hands the sections the file was rendered from; anything else is not mapped
    sections = {"Service": {"ExecStart": "/bin/true", "Restart": True}}
    text = "[Service]\nRestart=yes\nExecStart=/bin/true\n"
    module = FakeAnalyze({"app.service": RESTART_YES["257"]}, at_line={"app.service": 3})
    verdict = check(module, unit_candidate("app.service", sections, text=text))["app.service"]
    assert verdict.warnings == [f"{ETC}/app.service:3: Failed to parse Restart=yes, ignoring: Invalid argument"]


def test_sexagesimal_oncalendar_hint_in_verify_and_calendar() -> None:
    sections = {"Unit": {"Description": "job"}, "Timer": {"OnCalendar": 720}}
    module = FakeAnalyze({"job.timer": CALENDAR_720}, at_line={"job.timer": 5}, calendar={
        "720": (1, "", "Failed to parse calendar specification '720': Invalid argument\n"
                       "Hint: this expression is a valid timespan. Use 'systemd-analyze timespan \"720\"' instead?\n")})
    verdict = check(module, unit_candidate("job.timer", sections, calendars=["720"]))["job.timer"]
    hint = ('YAML read the value of OnCalendar as the number 720, as unquoted YAML 1.1 reads 12:00 (base 60):'
            ' quote the value in YAML, e.g. OnCalendar: "12:00"')
    assert verdict.warnings == [f"{ETC}/job.timer:5: Failed to parse calendar specification, ignoring: 720; {hint}"]
    assert verdict.errors == [
        "job.timer: Timer unit lacks value setting. Refusing.",
        "job.timer: [Timer] OnCalendar: Failed to parse calendar specification '720': Invalid argument"
        " (systemd calendar syntax, e.g. 'daily' or '*-*-* 02:00:00', see systemd.time(7)); " + hint,
    ]
    assert "timespan" not in " ".join(verdict.errors), "systemd's own hint points the wrong way here"


def test_calendar_error_of_a_string_keeps_systemds_words() -> None:
    sections = {"Timer": {"OnCalendar": "5min"}}
    refused = ("Failed to parse calendar specification '5min': Invalid argument\n"
               "Hint: this expression is a valid timespan.\n")
    module = FakeAnalyze(calendar={"5min": (1, "", refused)})
    verdict = check(module, unit_candidate("job.timer", sections, calendars=["5min"]))["job.timer"]
    assert verdict.errors == [
        "job.timer: [Timer] OnCalendar: Failed to parse calendar specification '5min': Invalid argument"
        " Hint: this expression is a valid timespan. (systemd calendar syntax, e.g. 'daily' or '*-*-* 02:00:00',"
        " see systemd.time(7))"]


def test_hint_for_a_dropin_points_at_the_dropin() -> None:
    base = "[Unit]\nDescription=app\n\n[Service]\nExecStart=/bin/true\n"
    overlay = {"Service": {"UMask": 18}}
    cand = Candidate(name="app.service", fragment=base, dropins={"override": render_unit(overlay)},
                     dropin_paths={"override": f"{ETC}/app.service.d/override.conf"}, sections=overlay)
    module = FakeAnalyze({"app.service": UMASK_18}, at_line={"app.service": 2}, in_dropin={"app.service": "override"})
    verdict = check(module, cand)["app.service"]
    assert verdict.warnings == [f"{ETC}/app.service.d/override.conf:2: Failed to parse mode value, ignoring: 18;"
                                " YAML read the value of UMask as the number 18: quote the value in YAML"]


def test_line_of_the_base_fragment_is_not_mapped_to_the_dropin_sections() -> None:
    base = "[Unit]\nDescription=app\n\n[Service]\nExecStart=/bin/true\n"
    overlay = {"Service": {"UMask": 18}}
    cand = Candidate(name="app.service", fragment=base, dropins={"override": render_unit(overlay)},
                     dropin_paths={"override": f"{ETC}/app.service.d/override.conf"},
                     fragment_path=f"{ETC}/app.service", sections=overlay)
    module = FakeAnalyze({"app.service": (0, ["{path}:2: Unknown key name 'X', ignoring."])}, at_line={})
    verdict = check(module, cand)["app.service"]
    # the unit says this without its drop-in too: it is set apart, and carries no YAML hint
    assert verdict.warnings == [] and verdict.errors == []
    assert verdict.inherited == [f"{ETC}/app.service:2: Unknown key name 'X', ignoring."]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("Restart", True, "YAML read the value of Restart as the boolean true, rendered Restart=yes: quote the value"
                      " in YAML to pass the word as written"),
    ("RemainAfterExit", False, "YAML read the value of RemainAfterExit as the boolean false, rendered"
                               " RemainAfterExit=no: quote the value in YAML to pass the word as written"),
    ("OnCalendar", 720, 'YAML read the value of OnCalendar as the number 720, as unquoted YAML 1.1 reads 12:00'
                        ' (base 60): quote the value in YAML, e.g. OnCalendar: "12:00"'),
    ("OnCalendar", 43230, 'YAML read the value of OnCalendar as the number 43230, as unquoted YAML 1.1 reads'
                          ' 12:00:30 (base 60): quote the value in YAML, e.g. OnCalendar: "12:00:30"'),
    ("UMask", 18, "YAML read the value of UMask as the number 18: quote the value in YAML"),
    ("CPUQuota", 1.5, "YAML read the value of CPUQuota as the number 1.5: quote the value in YAML"),
    ("Restart", "yes", None),
    ("Restart", None, None),
])
def test_yaml_hint(key: str, value: Any, expected: str | None) -> None:
    assert yaml_hint(key, value) == expected


# ---------------------------------------------------------------- check mode: programs not there yet


def test_missing_program_is_an_advisory_in_check_mode() -> None:
    sections = {"Service": {"ExecStartPre": "/opt/values-app/bin/prepare", "ExecStart": "/opt/values-app/bin/app"}}
    module = FakeAnalyze({"app.service": missing("/opt/values-app/bin/prepare", "/opt/values-app/bin/app")},
                         check_mode=True)
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.errors == [] and verdict.warnings == []
    assert verdict.advisories == [
        f"app.service: Command /opt/values-app/bin/{prog} is not executable: No such file or directory (check mode:"
        " the program does not exist yet, so an earlier task must install it; a run without check mode fails here"
        " if it is still missing)" for prog in ("prepare", "app")]


def test_missing_program_fails_a_real_run() -> None:
    sections = {"Service": {"ExecStart": "/opt/values-app/bin/app"}}
    module = FakeAnalyze({"app.service": missing("/opt/values-app/bin/app")})
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.errors == [
        "app.service: Command /opt/values-app/bin/app is not executable: No such file or directory"]
    assert verdict.advisories == []


def test_missing_program_by_bare_name_is_an_advisory_in_check_mode() -> None:
    module = FakeAnalyze({"app.service": missing("values-app")}, check_mode=True)
    verdict = check(module, unit_candidate("app.service", {"Service": {"ExecStart": "values-app --x"}}))["app.service"]
    assert verdict.errors == [] and len(verdict.advisories) == 1


def test_existing_file_that_is_not_executable_still_fails_in_check_mode(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    module = FakeAnalyze({"app.service": (1, [f"{{unit}}: Command {script} is not executable: Permission denied"])},
                         check_mode=True)
    verdict = check(module, unit_candidate("app.service", {"Service": {"ExecStart": str(script)}}))["app.service"]
    assert verdict.errors == [f"app.service: Command {script} is not executable: Permission denied"]
    assert verdict.advisories == []


def test_other_errors_still_fail_in_check_mode() -> None:
    lines = ["{path}:2: Failed to resolve unit specifiers in date +%F: Invalid slot",
             "{unit}: Unit configuration has fatal error, unit will not be started.",
             "{unit}: Command /opt/values-app/bin/app is not executable: No such file or directory"]
    module = FakeAnalyze({"app.service": (1, lines)}, check_mode=True)
    sections = {"Service": {"ExecStart": ["/bin/sh -c 'date +%F'", "/opt/values-app/bin/app"]}}
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.errors == [f"{ETC}/app.service:2: Failed to resolve unit specifiers in date +%F: Invalid slot",
                              "app.service: Unit configuration has fatal error, unit will not be started."]
    assert len(verdict.advisories) == 1


def test_warnings_stay_warnings_next_to_a_missing_program_in_check_mode() -> None:
    lines = ["{path}:3: Failed to parse service restart specifier, ignoring: yes",
             "{unit}: Command /opt/values-app/bin/app is not executable: No such file or directory"]
    module = FakeAnalyze({"app.service": (1, lines)}, check_mode=True)
    sections = {"Service": {"ExecStart": "/opt/values-app/bin/app", "Restart": True}}
    verdict = check(module, unit_candidate("app.service", sections))["app.service"]
    assert verdict.errors == []
    assert verdict.warnings == [f"{ETC}/app.service:3: Failed to parse service restart specifier, ignoring: yes; YAML"
                                " read the value of Restart as the boolean true, rendered Restart=yes: quote the"
                                " value in YAML to pass the word as written"]
    assert len(verdict.advisories) == 1


def test_batch_with_a_missing_program_in_check_mode_pins_it_on_its_unit() -> None:
    module = FakeAnalyze({"app.service": missing("/opt/values-app/bin/app")}, check_mode=True)
    verdicts = check(module, unit_candidate("app.service", {"Service": {"ExecStart": "/opt/values-app/bin/app"}}),
                     unit_candidate("ok.service", {"Service": {"ExecStart": "/bin/true"}}))
    assert module.verify_calls() == 3, "one batch, then one call per unit to pin the failure"
    assert verdicts["ok.service"] == Verdict()
    assert verdicts["app.service"].errors == [] and len(verdicts["app.service"].advisories) == 1


def test_under_root_an_existing_program_is_excused_and_a_missing_one_advised(tmp_path: Path) -> None:
    program = tmp_path / "usr" / "bin" / "values-app"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    sections = {"Service": {"ExecStart": ["/usr/bin/values-app", "/opt/not-there/app"]}}
    lines = missing("/usr/bin/values-app", "/opt/not-there/app")
    real = check(FakeAnalyze({"app.service": lines}), unit_candidate("app.service", sections), root=str(tmp_path))
    assert real["app.service"].errors == [
        "app.service: Command /opt/not-there/app is not executable: No such file or directory"]
    checked = check(FakeAnalyze({"app.service": lines}, check_mode=True), unit_candidate("app.service", sections),
                    root=str(tmp_path))
    assert checked["app.service"].errors == []
    assert [a.split(" is not")[0] for a in checked["app.service"].advisories] == [
        "app.service: Command /opt/not-there/app"]


def test_failure_without_a_line_about_the_unit_is_still_an_error_in_check_mode() -> None:
    module = FakeAnalyze({"app.service": (1, ["Failed to load something else: Bad message"])}, check_mode=True)
    verdict = check(module, unit_candidate("app.service", {"Service": {"ExecStart": "/bin/true"}}))["app.service"]
    assert verdict.errors == ["Failed to load something else: Bad message"]


# ---------------------------------------------------------------- drop-ins judged on their own


class FlawedVendorUnit(FakeAnalyze):
    """The unit itself fails verify (a missing program, as rc-local.service without /etc/rc.local);
    the drop-in may add a problem of its own, said only when the drop-in is staged."""

    def __init__(self, dropin_problem: bool) -> None:
        super().__init__()
        self.dropin_problem = dropin_problem

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.calls.append(argv)
        staged = argv[-1]
        lines = [f"{os.path.basename(staged)}: Command /etc/rc.local is not executable: No such file or directory"]
        if self.dropin_problem and os.path.isdir(staged + ".d"):
            lines.append(f"{staged}.d/order.conf:3: Unknown key name 'Afterr' in section 'Unit', ignoring.")
        return 1, "", "\n".join(lines) + "\n"


@pytest.mark.parametrize("dropin_problem", [False, True])
def test_a_dropin_answers_only_for_the_problems_it_brings(dropin_problem: bool) -> None:
    cand = Candidate(name="rc-local.service", fragment="[Service]\nExecStart=/etc/rc.local start\n",
                     dropins={"order": "[Unit]\nAfter=network-online.target\n"},
                     dropin_paths={"order": f"{ETC}/rc-local.service.d/order.conf"},
                     fragment_path="/lib/systemd/system/rc-local.service")
    module = FlawedVendorUnit(dropin_problem)
    verdict = check(module, cand)["rc-local.service"]
    assert verdict.inherited == ["rc-local.service: Command /etc/rc.local is not executable: No such file or "
                                 "directory"]
    if dropin_problem:
        assert verdict.warnings == [f"{ETC}/rc-local.service.d/order.conf:3: Unknown key name 'Afterr' in section "
                                    "'Unit', ignoring."]
    else:
        assert verdict.errors == [] and verdict.warnings == []
    assert module.verify_calls() == 2, "the unit is verified once more without the drop-in, only on a finding"
