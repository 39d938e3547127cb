# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test bench itself: what every other integration test relies on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import bench  # tests/bench is put on sys.path by conftest.py
from bench import count_daemon_reloads

if TYPE_CHECKING:
    from conftest import BenchHost

EXPECTED = {
    # flavour: (systemd major version, NTP daemon binary, its package's unit)
    "debian12": (252, "/usr/sbin/chronyd", "chrony.service"),
    "debian13": (257, "/usr/sbin/ntpd", "ntpsec.service"),
}


def test_systemd_is_pid_1(bench_host: BenchHost) -> None:
    assert bench_host.exec("ps", "-p", "1", "-o", "comm=").stdout.strip() == "systemd"
    assert bench_host.read_file("/proc/1/comm") == "systemd\n"


def test_system_is_running(bench_host: BenchHost) -> None:
    proc = bench_host.exec("systemctl", "is-system-running", check=False)
    assert proc.stdout.strip() == "running", bench_host.failed_units()
    assert bench_host.failed_units() == []


def test_systemd_version(bench_host: BenchHost) -> None:
    first_line = bench_host.exec("systemctl", "--version").stdout.splitlines()[0]
    assert first_line.split()[:2] == ["systemd", str(EXPECTED[bench_host.flavour][0])]


def test_ntp_daemon_installed(bench_host: BenchHost) -> None:
    binary, unit = EXPECTED[bench_host.flavour][1:]
    assert bench_host.exec("test", "-x", binary, check=False).returncode == 0
    assert bench_host.systemctl_show(unit, "LoadState")["LoadState"] == "loaded"
    # no CAP_SYS_TIME in bench containers: Debian's units skip themselves at boot
    show = bench_host.systemctl_show(unit, "ActiveState", "ConditionResult")
    assert show == {"ActiveState": "inactive", "ConditionResult": "no"}


def test_disabled_units_are_not_started_at_boot(bench_host: BenchHost) -> None:
    # ssh.service is in the image for "sshd -i" only; apt's timers cannot work offline
    assert "ssh.service" in bench.DISABLED_UNITS
    for unit in bench.DISABLED_UNITS:
        show = bench_host.systemctl_show(unit, "LoadState", "ActiveState")
        assert show == {"LoadState": "loaded", "ActiveState": "inactive"}, unit
    # the SSH-path benchmark runs "sshd -i" without the service: it needs /run/sshd
    assert bench_host.exec("test", "-d", "/run/sshd", check=False).returncode == 0
    assert bench_host.exec("test", "-x", "/usr/sbin/sshd", check=False).returncode == 0


def test_no_clock_capability(bench_host: BenchHost) -> None:
    # CAP_SYS_TIME is bit 25; a container holding it could move the machine's clock
    cap_eff = next(
        line.split()[1]
        for line in bench_host.read_file("/proc/1/status").splitlines()
        if line.startswith("CapEff:")
    )
    assert not int(cap_eff, 16) & (1 << 25)


def test_file_helpers(bench_host: BenchHost) -> None:
    bench_host.exec("sh", "-c", "cat > /tmp/bench-probe", input="hello\n")
    assert bench_host.read_file("/tmp/bench-probe") == "hello\n"
    assert bench_host.sha256("/tmp/bench-probe") == (
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    )
    assert bench_host.read_file("/tmp/no-such-file") is None
    assert bench_host.sha256("/tmp/no-such-file") is None
    assert bench_host.sh("echo $((6 * 7)) | tr -d '\\n'").stdout == "42"


def test_daemon_reload_is_counted_once(bench_host: BenchHost) -> None:
    before = count_daemon_reloads(bench_host)
    bench_host.exec("systemctl", "daemon-reload")
    assert count_daemon_reloads(bench_host) == before + 1
    # reading the count does not reload
    assert count_daemon_reloads(bench_host) == before + 1


def test_ping_play(bench_host: BenchHost) -> None:
    result = bench_host.play([{"name": "ping", "ansible.builtin.ping": {}}])
    assert result.rc == 0
    assert result.tasks == ["ping"]
    assert result.results[0]["ping"] == "pong"
    assert not result.results[0].get("changed")


def test_failing_play_reports_task(bench_host: BenchHost) -> None:
    result = bench_host.play(
        "- name: must fail\n  ansible.builtin.command: /bin/false\n",
        expect_failure=True,
    )
    assert result.rc != 0
    assert result.results[0]["failed"] is True
    assert result.results[0]["rc"] == 1
    with pytest.raises(AssertionError, match="must fail"):
        bench_host.play([{"name": "must fail", "ansible.builtin.command": "/bin/false"}])


def test_check_mode_and_extra_vars(bench_host: BenchHost) -> None:
    task = {
        "name": "write marker",
        "ansible.builtin.copy": {"content": "{{ marker }}\n", "dest": "/tmp/bench-marker"},
    }
    checked = bench_host.play([task], check=True, diff=True, extra_vars={"marker": "m1"})
    assert checked.results[0]["changed"] is True
    assert bench_host.read_file("/tmp/bench-marker") is None
    applied = bench_host.play([task], extra_vars={"marker": "m1"})
    assert applied.results[0]["changed"] is True
    assert bench_host.read_file("/tmp/bench-marker") == "m1\n"
    again = bench_host.play([task], extra_vars={"marker": "m1"})
    assert again.results[0]["changed"] is False


# Last in the file: a reboot empties /tmp and the journal for later tests of this host.
def test_reboot_is_a_new_boot(bench_host: BenchHost) -> None:
    kernel_boot_id = bench_host.read_file("/proc/sys/kernel/random/boot_id")
    bench_host.exec("systemctl", "daemon-reload")
    assert count_daemon_reloads(bench_host) >= 1
    bench_host.exec("touch", "/run/bench-before-reboot")
    old = bench_host.boot_id()

    assert bench_host.reboot() == "running"

    assert bench_host.boot_id() != old
    assert bench_host.read_file("/run/bench-before-reboot") is None
    # the journal holds only the new boot, which has not reloaded yet
    assert count_daemon_reloads(bench_host) == 0
    # the kernel's boot id is the machine's: a container restart does not change it
    assert bench_host.read_file("/proc/sys/kernel/random/boot_id") == kernel_boot_id


# The mirror comes from the machine's apt configuration; these need no container.
def test_debian_mirror_from_deb822_and_one_line_sources(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("UNITCRAFT_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64] http://third-party.invalid/apt stable main\n"
    )
    (tmp_path / "sources.list.d" / "other.list.disabled").write_text(
        "deb http://disabled.invalid/debian bookworm main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://security.invalid/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb deb-src\n"
        "# a comment inside the stanza\n"
        "URIs: http://archive.invalid/debian/\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
    )
    assert bench.debian_mirror(tmp_path) == "http://archive.invalid/debian"
    (tmp_path / "sources.list").write_text("deb http://one-line.invalid/debian trixie main\n")
    assert bench.debian_mirror(tmp_path) == "http://one-line.invalid/debian"
    monkeypatch.setenv("UNITCRAFT_DEBIAN_MIRROR", "http://override.invalid/debian")
    assert bench.debian_mirror(tmp_path) == "http://override.invalid/debian"


def test_no_debian_mirror_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("UNITCRAFT_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text("deb http://third-party.invalid/apt stable main\n")
    with pytest.raises(bench.BenchError, match="UNITCRAFT_DEBIAN_MIRROR"):
        bench.debian_mirror(tmp_path)


def test_image_ref_follows_the_recipe(monkeypatch) -> None:
    ref = bench.image_ref("debian12")
    assert ref.startswith("localhost/unitcraft-bench:debian12-")
    assert bench.image_ref("debian12") == ref
    monkeypatch.setattr(bench, "RECIPE_VERSION", bench.RECIPE_VERSION + 1)
    assert bench.image_ref("debian12") != ref
    with pytest.raises(bench.BenchError, match="unknown flavour"):
        bench.image_ref("debian99")


def test_xdist_group_is_this_file_and_flavour(bench_host: BenchHost, request: pytest.FixtureRequest) -> None:
    # pytest-xdist (--dist loadgroup) splits a node id at its last "@": the group's name must hold none
    marker = request.node.get_closest_marker("xdist_group")
    assert marker is not None
    assert marker.args[0] == f"tests/integration/test_bench.py:{bench_host.flavour}"
