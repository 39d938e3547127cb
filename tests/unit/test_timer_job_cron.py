# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""timer_job's controller-side reading of a cron line: is it one, and which systemd form to suggest.

The role's own variables (roles/timer_job/vars/main.yml) are templated by ansible-playbook on
localhost, nothing else runs. Every suggestion shown below was checked with
`systemd-analyze calendar` (systemd 252); those refused there are the ones the role does not
show (month names, steps over weekdays), and `None` in the table says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# cron line (or calendar event) -> (cron-like?, suggestion shown, or None when none is shown)
TABLE: dict[str, tuple[bool, str | None]] = {
    "*/5 * * * *": (True, "*-*-* *:0/5:00"),
    "30 4 * * 1-5": (True, "Mon..Fri *-*-* 4:30:00"),
    "0 0 * * mon-fri": (True, "Mon..Fri *-*-* 0:0:00"),
    "0 0 * * 0,6": (True, "Sun,Sat *-*-* 0:0:00"),
    "0 0 * * 7": (True, "Sun *-*-* 0:0:00"),
    "0 12 1,15 * *": (True, "*-*-1,15 12:0:00"),
    "0 0 1 */3 *": (True, "*-1/3-1 0:0:00"),
    "1-10/2 * * * *": (True, "*-*-* *:1..10/2:00"),
    "@hourly": (True, "hourly"),
    "@midnight": (True, "daily"),
    "0 0 1 jan *": (True, None),
    "0 0 * * */2": (True, None),
    "@reboot": (True, None),
    "Mon..Fri *-*-* 04:30:00": (False, None),
    "daily": (False, None),
    "*-*-* *:0/15:00": (False, None),
}


def test_cron_lines_are_recognised_and_only_valid_systemd_forms_are_suggested(tmp_path: Path) -> None:
    playbook = tmp_path / "cron.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROOT / "roles/timer_job/vars/main.yml")],
        "tasks": [{
            "name": "read",
            "ansible.builtin.debug": {"msg": {
                "cron_like": "{{ _timer_job_cron_like | bool }}",
                # as the role does: a suggestion only for a cron line, and only of a valid shape
                "suggestion": "{{ _timer_job_cron_suggestion if _timer_job_cron_like | bool and "
                              "_timer_job_cron_suggestion is match(_timer_job_calendar_shape) else None }}"}},
            "vars": {"timer_job_on_calendar": "{{ item }}", "timer_job_name": "x"},
            "loop": list(TABLE),
        }],
    }]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(playbook)], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["results"]
    seen = {r["item"]: (r["msg"]["cron_like"], r["msg"]["suggestion"]) for r in results}
    assert seen == TABLE
