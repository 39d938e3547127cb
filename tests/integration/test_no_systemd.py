# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The modules on a container whose PID 1 is not systemd (a plain molecule platform, an image build).

The bench images are started with `sleep infinity` as PID 1: systemctl and systemd-analyze are
installed, /run/systemd/system does not exist. Files, enablement and masks work offline on /,
runtime requests fail while planning, and unit_info answers from the unit files.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

import bench
from conftest import BenchHost, selected_flavours

SECTIONS = {"Service": {"ExecStart": "/bin/sleep infinity"}, "Install": {"WantedBy": "multi-user.target"}}


@pytest.fixture(scope="module", params=selected_flavours(), ids=str)
def plain_host(request: pytest.FixtureRequest, collections_path: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchHost]:
    flavour: str = request.param
    name = f"unitcraft-nosd-{flavour}-{os.getpid()}"
    image = bench.ensure_image(flavour)
    env = {**os.environ, "CONTAINERS_CONF": str(bench.BENCH_DIR / "containers.conf")}
    subprocess.run(["podman", "rm", "-f", "--ignore", name], check=True, capture_output=True, env=env)
    subprocess.run(["podman", "run", "-d", "--name", name, "--network", "none", image, "sleep", "infinity"],
                   check=True, capture_output=True, env=env)
    host = BenchHost(name, flavour, image)
    host._bind(collections_path, tmp_path_factory.mktemp(f"nosd-{flavour}"))
    try:
        assert host.exec("test", "-d", "/run/systemd/system", check=False).returncode != 0
        assert host.exec("cat", "/proc/1/comm").stdout.strip() == "sleep"
        yield host
    finally:
        subprocess.run(["podman", "rm", "-f", "--ignore", name], check=False, capture_output=True, env=env)


def test_enable_only_task_works_offline_with_a_warning(plain_host: BenchHost) -> None:
    host = plain_host
    task = {"unitcraft.systemd.unit": {"name": "offline.service", "sections": SECTIONS, "enabled": True}}
    first = host.play([task]).results[0]
    assert first["changed"] is True and first["unit_file_state"] == "enabled"
    assert any("PID 1 is not systemd" in w for w in first["warnings"]), first.get("warnings")
    link = "/etc/systemd/system/multi-user.target.wants/offline.service"
    assert host.exec("readlink", link).stdout.strip() == "/etc/systemd/system/offline.service"
    again = host.play([task]).results[0]
    assert again["changed"] is False
    info = host.play([{"unitcraft.systemd.unit_info": {"names": ["offline.service"]}}]).results[0]
    unit = info["units"][0]
    assert unit["Id"] == "offline.service" and unit["UnitFileState"] == "enabled"


def test_masked_and_absent_work_offline(plain_host: BenchHost) -> None:
    host = plain_host
    host.play([{"unitcraft.systemd.unit": {"name": "gone.service", "sections": SECTIONS, "enabled": True}}])
    removed = host.play([{"unitcraft.systemd.unit": {"name": "gone.service", "state": "absent",
                                                     "masked": True}}]).results[0]
    assert removed["changed"] is True and removed["unit_file_state"] == "masked"
    assert host.exec("readlink", "/etc/systemd/system/gone.service").stdout.strip() == "/dev/null"
    assert host.exec("test", "-e", "/etc/systemd/system/multi-user.target.wants/gone.service",
                     check=False).returncode != 0


def test_active_fails_while_planning_before_any_file_is_written(plain_host: BenchHost) -> None:
    host = plain_host
    before = host.sh("find /etc/systemd -newer /etc/hostname | sort; ls -la /etc/systemd/system").stdout
    result = host.play([{"unitcraft.systemd.unit": {"name": "wants-running.service", "sections": SECTIONS,
                                                    "enabled": True, "active": True}}],
                       expect_failure=True).results[0]
    assert "PID 1 is not systemd" in result["msg"] and "Leave active out" in result["msg"]
    assert host.read_file("/etc/systemd/system/wants-running.service") is None
    assert host.sh("find /etc/systemd -newer /etc/hostname | sort; ls -la /etc/systemd/system").stdout == before


def test_unit_info_names_the_offline_answer(plain_host: BenchHost) -> None:
    result = plain_host.play([{"unitcraft.systemd.unit_info": {"names": ["missing-offline.service"]}}]).results[0]
    assert any("PID 1 is not systemd" in w for w in result["warnings"])


def test_the_daemon_role_refuses_started_naming_daemon_state_enabled_and_creates_no_account(
        plain_host: BenchHost) -> None:
    host = plain_host
    role = {"name": "daemon", "ansible.builtin.include_role": {"name": "unitcraft.systemd.daemon"},
            "vars": {"daemon_name": "offlined", "daemon_exec": "/bin/sleep infinity"}}
    accounts = host.exec("sh", "-c", "cat /etc/passwd /etc/group | md5sum").stdout
    result = host.play([role], expect_failure=True)
    failed = [r for r in result.results if r.get("failed")]
    assert failed, result.results
    msg = failed[-1]["msg"]
    assert "daemon_state: started needs systemd running as PID 1" in msg and "daemon_state: enabled" in msg, msg
    assert "active" not in msg.replace("daemon_state", ""), "the module's option, which the role user never set"
    assert host.exec("sh", "-c", "cat /etc/passwd /etc/group | md5sum").stdout == accounts, "an account was made"
    assert host.read_file("/etc/systemd/system/offlined.service") is None
    enabled = host.play([{**role, "vars": {**role["vars"], "daemon_state": "enabled"}}]).results
    assert host.exec("getent", "passwd", "offlined", check=False).returncode == 0
    assert host.exec("test", "-L", "/etc/systemd/system/multi-user.target.wants/offlined.service",
                     check=False).returncode == 0, enabled
