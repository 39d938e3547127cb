# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Values users really write, against real systemd (252 and 257) in bench containers.

- a list for a directive systemd reads once is refused, naming unit, section and key;
- YAML that turns `Restart: yes` into a boolean or `OnCalendar: 12:00` into 720 makes
  validation fail with a hint to quote the value (tasks are given as YAML text, so YAML
  really does the coercion);
- a strftime format in `ExecStart=` gets the date-format-specifier lint warning, and the
  unit really prints paths instead of a date until the `%` are doubled;
- check mode accepts a program that does not exist yet (an earlier task installs it) with a
  warning; the same task without check mode fails.
"""

from __future__ import annotations

import re
from typing import Any

from conftest import BenchHost

ETC = "/etc/systemd/system"


def unit_task(**args: Any) -> dict[str, Any]:
    return {"name": "unit", "unitcraft.systemd.unit": args}


def clean(host: BenchHost, *units: str) -> None:
    """Remove units a test made, whatever state the test left them in."""
    script = "; ".join(f"systemctl stop {u} 2>/dev/null; rm -rf {ETC}/{u} {ETC}/{u}.d" for u in units)
    host.sh(script + "; systemctl daemon-reload; systemctl reset-failed", check=False)


def test_list_for_a_single_valued_directive_is_refused(bench_host: BenchHost) -> None:
    host = bench_host
    name = "values-type.service"
    sections = {"Service": {"Type": ["simple", "exec"], "ExecStart": "/bin/sleep infinity"}}
    try:
        result = host.play([unit_task(name=name, sections=sections)], expect_failure=True).results[0]
        assert result["msg"].startswith(f"unit {name}: [Service] Type: systemd reads Type= only once"), result["msg"]
        assert "['simple', 'exec']" in result["msg"]
        assert host.read_file(f"{ETC}/{name}") is None, "a refused unit was written"
        # the filter refuses it the same way
        render = {"name": "render", "ansible.builtin.debug": {
            "msg": "{{ sections | unitcraft.systemd.to_unit(unit='" + name + "') }}"}, "vars": {"sections": sections}}
        filtered = host.play([render], expect_failure=True).results[0]
        assert f"to_unit: unit {name}: [Service] Type: systemd reads Type= only once" in filtered["msg"]
        # one value in a list is fine
        single = {"Service": {"Type": ["exec"], "ExecStart": "/bin/sleep infinity"}}
        written = host.play([unit_task(name=name, sections=single)]).results[0]
        assert written["changed"] is True
        assert host.read_file(f"{ETC}/{name}") == "[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"
    finally:
        clean(host, name)


RESTART_YES = """
- name: unit
  unitcraft.systemd.unit:
    name: values-restart.service
    sections:
      Unit:
        Description: restart written as yes
      Service:
        ExecStart: /bin/sleep infinity
        Restart: yes
"""


def test_unquoted_yes_fails_validation_with_the_quoting_hint(bench_host: BenchHost) -> None:
    host = bench_host
    name = "values-restart.service"
    try:
        result = host.play(RESTART_YES, expect_failure=True).results[0]
        msg = result["msg"]
        assert msg.startswith("validation failed, nothing was changed"), msg
        # systemd's own words (252: "restart specifier", 257: "Restart=yes") about line 6, then the hint
        said = rf"{ETC}/{name}:6: Failed to parse (service restart specifier|Restart=yes), ignoring"
        assert re.search(said, msg), msg
        assert ("YAML read the value of Restart as the boolean true, rendered Restart=yes: quote the value in YAML"
                in msg), msg
        assert host.read_file(f"{ETC}/{name}") is None
    finally:
        clean(host, name)


ONCALENDAR_NOON = """
- name: unit
  unitcraft.systemd.unit:
    units:
      - name: values-noon.service
        sections:
          Service:
            Type: oneshot
            ExecStart: /bin/true
      - name: values-noon.timer
        sections:
          Unit:
            Description: every day at noon
          Timer:
            OnCalendar: 12:00
"""


def test_unquoted_time_on_a_timer_fails_validation_with_the_quoting_hint(bench_host: BenchHost) -> None:
    host = bench_host
    try:
        result = host.play(ONCALENDAR_NOON, expect_failure=True).results[0]
        msg = result["msg"]
        hint = ('YAML read the value of OnCalendar as the number 720, as unquoted YAML 1.1 reads 12:00 (base 60):'
                ' quote the value in YAML, e.g. OnCalendar: "12:00"')
        # systemd-analyze verify about the line, and systemd-analyze calendar about the value
        assert f"{ETC}/values-noon.timer:5: Failed to parse calendar specification, ignoring: 720; {hint}" in msg, msg
        assert ("values-noon.timer: [Timer] OnCalendar: Failed to parse calendar specification '720': Invalid"
                " argument") in msg, msg
        assert msg.count(hint) == 2, msg
        assert host.read_file(f"{ETC}/values-noon.timer") is None
        assert host.read_file(f"{ETC}/values-noon.service") is None
    finally:
        clean(host, "values-noon.timer", "values-noon.service")


DATE_FORMAT = """
- name: unit
  unitcraft.systemd.unit:
    name: values-date.service
    active: true
    sections:
      Service:
        Type: oneshot
        RemainAfterExit: true
        StandardOutput: truncate:/run/values-date.out
        ExecStart: /bin/sh -c 'date +%Y-%m-%d'
"""


def test_date_format_in_execstart_is_a_lint_warning_and_really_expanded(bench_host: BenchHost) -> None:
    host = bench_host
    name = "values-date.service"
    try:
        result = host.play(DATE_FORMAT).results[0]
        assert [f["rule"] for f in result["lint"]] == ["date-format-specifier"], result["lint"]
        warnings = [w for w in result.get("warnings", []) if "date-format-specifier" in w]
        assert len(warnings) == 1, result.get("warnings")
        assert "systemd expands %Y, %m, %d as unit specifiers" in warnings[0]
        assert "write every '%' as '%%' ('+%%Y-%%m-%%d')" in warnings[0]
        # what the lint says is what systemd does: the command never saw a date format
        printed = (host.read_file("/run/values-date.out") or "").strip()
        # %Y is the unit file's directory, %m the machine ID, %d the credentials directory
        assert printed.startswith("/etc/systemd/system-") and "-/run/credentials/" in printed, printed
        assert not re.fullmatch(r"\d{4}-\d\d-\d\d", printed)

        # doubled, the `%` reach the program: the changed unit is restarted and prints today's date
        fixed = host.play(DATE_FORMAT.replace("+%Y-%m-%d", "+%%Y-%%m-%%d")).results[0]
        assert fixed["lint"] == [] and fixed["restarted"] is True
        today = host.exec("date", "+%Y-%m-%d").stdout.strip()
        assert (host.read_file("/run/values-date.out") or "").strip() == today
    finally:
        clean(host, name)
        host.exec("rm", "-f", "/run/values-date.out")


def test_check_mode_accepts_a_program_that_does_not_exist_yet(bench_host: BenchHost) -> None:
    host = bench_host
    name = "values-later.service"
    task = unit_task(name=name, sections={"Service": {"ExecStart": "/opt/values-later/bin/app --serve"}})
    try:
        checked = host.play([task], check=True).results[0]
        assert checked["changed"] is True and checked["file_changed"] is True
        advised = [w for w in checked.get("warnings", []) if "earlier task must install it" in w]
        assert len(advised) == 1, checked.get("warnings")
        assert "/opt/values-later/bin/app" in advised[0]
        assert host.read_file(f"{ETC}/{name}") is None, "check mode wrote the file"

        failed = host.play([task], expect_failure=True).results[0]
        assert "Command /opt/values-later/bin/app is not executable: No such file or directory" in failed["msg"]
        assert "earlier task" not in failed["msg"]
        assert host.read_file(f"{ETC}/{name}") is None
    finally:
        clean(host, name)
