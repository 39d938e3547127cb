# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles converged into containers without systemd as PID 1: files and links, nothing running."""

from __future__ import annotations

import pytest

ETC = "/etc/systemd/system"


def test_systemd_is_not_pid_1(host) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "sleep"
    assert not host.file("/run/systemd/system").exists


@pytest.mark.parametrize("unit, wanted_by", [
    ("ntp-force-sync.service", "multi-user.target"),
    ("image-downloader.service", "multi-user.target"),
    ("image-nightly.timer", "timers.target"),
])
def test_unit_is_installed_and_enabled_by_its_link(host, unit: str, wanted_by: str) -> None:
    assert host.file(f"{ETC}/{unit}").is_file
    link = host.file(f"{ETC}/{wanted_by}.wants/{unit}")
    assert link.is_symlink and link.linked_to == f"{ETC}/{unit}"
    # systemctl answers from the files when systemd is not running
    assert host.run(f"systemctl is-enabled {unit}").stdout.strip() == "enabled"


def test_units_are_what_the_roles_render(host) -> None:
    downloader = host.file(f"{ETC}/image-downloader.service").content_string
    assert "ExecStart=/usr/local/bin/image-downloader" in downloader and "Restart=always" in downloader
    assert "OnCalendar=*-*-* 03:00:00" in host.file(f"{ETC}/image-nightly.timer").content_string
    assert "Before=" in host.file(f"{ETC}/ntp-force-sync.service").content_string


def test_the_job_service_itself_is_not_enabled(host) -> None:
    assert host.file(f"{ETC}/image-nightly.service").is_file
    assert not host.file(f"{ETC}/multi-user.target.wants/image-nightly.service").exists
