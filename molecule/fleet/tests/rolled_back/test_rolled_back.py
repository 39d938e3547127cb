# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After the rollback (rollback.yml: the rollout playbook again, with version 1.0).

No host is left stopped: every host runs 1.0 and stays up. The rollback restarted the
first batch only; the later hosts still run the process they ran before the rollout.
"""

from __future__ import annotations

import time

import pytest

from conftest import FIRST_BATCH, LATER_BATCH, UNIT, fleet_host, program_file, program_version, record, \
    running_version, show, starts


def test_every_host_runs_1_0_and_stays_up(host) -> None:
    props = show(host, UNIT, "ActiveState", "SubState", "MainPID", "NRestarts")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    assert program_version(host) == "1.0"
    time.sleep(1)
    assert show(host, UNIT, "MainPID", "NRestarts") == {"MainPID": props["MainPID"], "NRestarts": props["NRestarts"]}
    assert running_version(host) == ("1.0", props["MainPID"])


@pytest.mark.parametrize("name", FIRST_BATCH)
def test_rollback_put_1_0_back_on_the_first_batch(name: str) -> None:
    """The copy wrote 1.0 again and the unit task passed (1.0 runs: see the test above).

    The restart onto 1.0 is the unit task's (restart trigger) or, when the crash loop's
    next automatic restart came first, systemd's own; either way the task found it active.
    """
    tasks = {task["action"]: task for task in record("rollout-1.0")["hosts"][name]}
    assert tasks["ansible.builtin.copy"]["changed"], tasks["ansible.builtin.copy"]
    unit_task = tasks["unitcraft.systemd.unit"]
    assert not unit_task.get("failed") and unit_task["active_state"] == "active", unit_task
    assert starts(fleet_host(name)) > record("before")[name]["starts"]


@pytest.mark.parametrize("name", LATER_BATCH)
def test_later_host_runs_its_process_from_before_the_rollout(name: str) -> None:
    """Neither the broken rollout nor the rollback touched it."""
    unit_task = record("rollout-1.0")["hosts"][name][-1]
    assert unit_task["action"] == "unitcraft.systemd.unit" and not unit_task["changed"], unit_task
    host = fleet_host(name)
    before = record("before")[name]
    props = show(host, UNIT, "MainPID", "InvocationID")
    assert (props["MainPID"], props["InvocationID"]) == (before["MainPID"], before["InvocationID"])
    assert starts(host) == before["starts"] and program_file(host) == before["program"]
