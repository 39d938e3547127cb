# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After the rollout of the broken version 1.1 (rollout_broken.yml), before any rollback.

The first batch (one host of each image) got 1.1, which dies at once: the health gate of
the unit task failed both hosts, and the rollout stopped there. The later hosts were not
touched: same program file, same process, no new start.
"""

from __future__ import annotations

import time

import pytest

from conftest import FIRST_BATCH, LATER_BATCH, LOG, UNIT, fleet_host, program_file, program_version, record, \
    running_version, show, starts

RESTART_WAIT = 30  # seconds: RestartSec of the fleet's unit plus a wide margin for a loaded machine


def test_rollout_failed_and_stopped_after_the_first_batch() -> None:
    rollout = record("rollout-1.1")
    assert rollout["rc"] == 2, rollout
    assert rollout["batches"] == [list(FIRST_BATCH)], rollout["batches"]
    assert not set(LATER_BATCH) & set(rollout["hosts"]), "a later host ran a task of the rollout"


@pytest.mark.parametrize("name", FIRST_BATCH)
def test_first_batch_host_failed_at_the_health_gate(name: str) -> None:
    """The unit task failed this host with systemd's evidence: state and the journal of 1.1."""
    unit_task = record("rollout-1.1")["hosts"][name][-1]
    assert unit_task["action"] == "unitcraft.systemd.unit" and unit_task["failed"], unit_task
    assert UNIT in unit_task["msg"], unit_task["msg"]
    (unit,) = [unit for unit in unit_task["units"] if unit["name"] == UNIT]
    assert unit["problem"], unit
    assert any("/etc/huobi/symbols.json" in line for line in unit["journal"]), unit["journal"]


@pytest.mark.parametrize("name", FIRST_BATCH)
def test_first_batch_host_keeps_failing_on_1_1(name: str) -> None:
    """1.1 is installed and crash-looping under Restart=always: the broken unit is visible."""
    host = fleet_host(name)
    assert program_version(host) == "1.1"
    before = record("before")[name]
    assert starts(host) > before["starts"]
    # systemd restarts it after RestartSec (a few seconds): wait for that restart, not longer
    deadline = time.monotonic() + RESTART_WAIT
    props = show(host, UNIT, "NRestarts", "InvocationID")
    while int(props["NRestarts"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        props = show(host, UNIT, "NRestarts", "InvocationID")
    assert int(props["NRestarts"]) >= 1 and props["InvocationID"] != before["InvocationID"], props
    journal = host.check_output(f"journalctl -b -q -o cat -u {UNIT}")
    assert "downloader 1.1 for huobi, loading /etc/huobi/symbols.json" in journal
    assert "FileNotFoundError" in journal


@pytest.mark.parametrize("name", LATER_BATCH)
def test_later_host_still_runs_the_old_process(name: str) -> None:
    """Same program file (inode and mtime), same main PID and invocation, no new start."""
    host = fleet_host(name)
    before = record("before")[name]
    props = show(host, UNIT, "ActiveState", "SubState", "MainPID", "InvocationID", "NRestarts")
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    assert (props["MainPID"], props["InvocationID"]) == (before["MainPID"], before["InvocationID"]), (props, before)
    assert props["NRestarts"] == "0", props
    assert starts(host) == before["starts"]
    assert program_file(host) == before["program"] and program_version(host) == "1.0"
    assert running_version(host) == ("1.0", before["MainPID"]), host.file(LOG).content_string[-300:]
