# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every host of the fleet runs the three roles, with its group's and its own variables,
and version 1.0 of the huobi downloader from the guide's rollout playbook."""

from __future__ import annotations

import re
import time

from conftest import LOG, SCENARIO, UNIT, program_version, running_version, show

MARKETS = {
    "unitcraft-test-fleet-1-debian12": "huobi",
    "unitcraft-test-fleet-3-debian12": "okex",
    "unitcraft-test-fleet-2-debian13": "binance",
    "unitcraft-test-fleet-4-debian13": "kraken",
}


def test_force_sync_is_enabled_before_this_image_s_daemon(host) -> None:
    daemon = "chrony.service" if host.file("/usr/sbin/chronyd").exists else "ntpsec.service"
    props = show(host, "ntp-force-sync.service", "UnitFileState", "Before", "ExecStart")
    assert props["UnitFileState"] == "enabled"
    assert daemon in props["Before"].split()
    server = "127.0.0.1 port 11123" if daemon == "chrony.service" else "127.0.0.2"
    assert server in props["ExecStart"]


def test_downloader_runs_for_this_host_s_market(host) -> None:
    market = MARKETS[host.backend.get_hostname()]
    props = show(host, "downloader.service", "ActiveState", "Description", "RestartUSec",
                 "ProtectSystem")
    assert props["ActiveState"] == "active"
    assert props["Description"] == f"{market} downloader"
    assert props["ProtectSystem"] == "strict"  # daemon_hardening from group all
    # restart delay: 2 s from group all, 3 s for the one host that overrides it
    expected = "3s" if host.backend.get_hostname().endswith("fleet-4-debian13") else "2s"
    assert props["RestartUSec"] == expected
    time.sleep(1)
    last = host.file("/var/lib/downloader/lines.log").content_string.splitlines()[-1]
    assert last.split()[2] == market


def test_backup_timer_uses_this_group_s_delay(host) -> None:
    props = show(host, "downloader-backup.timer", "ActiveState", "RandomizedDelayUSec",
                 "TimersCalendar", "NextElapseUSecRealtime")
    assert props["ActiveState"] == "active"
    expected = "15min" if "debian12" in host.backend.get_hostname() else "5min"
    assert props["RandomizedDelayUSec"] == expected
    assert "03:00:00" in props["TimersCalendar"]
    assert props["NextElapseUSecRealtime"] not in ("", "0")


def test_huobi_downloader_1_0_runs_enabled(host) -> None:
    props = show(host, UNIT, "ActiveState", "SubState", "UnitFileState", "MainPID", "NRestarts")
    assert (props["ActiveState"], props["SubState"], props["UnitFileState"]) == ("active", "running", "enabled"), props
    assert props["NRestarts"] == "0", props
    assert program_version(host) == "1.0"
    assert running_version(host) == ("1.0", props["MainPID"]), host.file(LOG).content_string[-300:]


def test_rollout_playbook_is_the_one_in_the_guide() -> None:
    """docs/fleets.md shows rollout.yml verbatim (the file without its header comments)."""
    playbook = (SCENARIO / "rollout.yml").read_text()
    body = re.sub(r"\A---\n(#.*\n)*", "", playbook)
    guide = (SCENARIO.parents[1] / "docs" / "fleets.md").read_text()
    assert body.startswith("- name: ") and f"```yaml\n{body}```\n" in guide, \
        "docs/fleets.md no longer shows molecule/fleet/rollout.yml as it is"
