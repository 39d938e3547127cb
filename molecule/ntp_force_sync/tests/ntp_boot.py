# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the NTP scenarios' testinfra tests (ntp_force_sync, ntp_timesyncd): systemctl
show, and real reboots of the container through the test bench."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_repo = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
sys.path.insert(0, str(_repo / "tests" / "bench"))
import bench  # noqa: E402  (the test bench: reboots a container and waits for systemd)


def show(host, unit: str, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {unit} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def reboot(host) -> None:
    bench.Container.attach(host.backend.get_hostname()).reboot()


def boot_start(host) -> int:
    """When this boot's userspace began (monotonic microseconds)."""
    return int(host.check_output("systemctl show -p UserspaceTimestampMonotonic --value"))
