# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every host of the fleet runs the three roles, with its group's and its own variables."""

from __future__ import annotations

import time

MARKETS = {
    "unitcraft-test-fleet-debian12-1": "huobi",
    "unitcraft-test-fleet-debian12-2": "okex",
    "unitcraft-test-fleet-debian13-1": "binance",
    "unitcraft-test-fleet-debian13-2": "kraken",
}


def show(host, unit: str, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {unit} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_force_sync_is_enabled_before_this_image_s_daemon(host) -> None:
    daemon = "chrony.service" if host.file("/usr/sbin/chronyd").exists else "ntpsec.service"
    props = show(host, "ntp-force-sync.service", "UnitFileState", "Before", "ExecStart")
    assert props["UnitFileState"] == "enabled"
    assert daemon in props["Before"].split()
    server = "127.0.0.1 port 11123" if daemon == "chrony.service" else "127.0.0.2"
    assert server in props["ExecStart"]


def test_downloader_runs_for_this_host_s_market(host) -> None:
    market = MARKETS[host.backend.name]
    props = show(host, "downloader.service", "ActiveState", "Description", "RestartUSec",
                 "ProtectSystem")
    assert props["ActiveState"] == "active"
    assert props["Description"] == f"{market} downloader"
    assert props["ProtectSystem"] == "strict"  # daemon_hardening from group all
    # restart delay: 2 s from group all, 3 s for the one host that overrides it
    expected = "3s" if host.backend.name.endswith("debian13-2") else "2s"
    assert props["RestartUSec"] == expected
    time.sleep(1)
    last = host.file("/var/lib/downloader/lines.log").content_string.splitlines()[-1]
    assert last.split()[2] == market


def test_backup_timer_uses_this_group_s_delay(host) -> None:
    props = show(host, "downloader-backup.timer", "ActiveState", "RandomizedDelayUSec",
                 "TimersCalendar", "NextElapseUSecRealtime")
    assert props["ActiveState"] == "active"
    expected = "15min" if "debian12" in host.backend.name else "5min"
    assert props["RandomizedDelayUSec"] == expected
    assert "03:00:00" in props["TimersCalendar"]
    assert props["NextElapseUSecRealtime"] not in ("", "0")
