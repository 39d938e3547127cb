# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.dropin against real systemd in bench containers."""

from __future__ import annotations

from typing import Any

from bench import count_daemon_reloads
from conftest import BenchHost, invocation_id, journal_cursor, started_lines

VENDOR = "systemd-tmpfiles-clean.service"  # shipped in /usr/lib by systemd in both images


def dropin_task(**args: Any) -> dict[str, Any]:
    return {"name": "dropin", "unitcraft.systemd.dropin": args}


def test_dropin_on_a_vendor_unit_changes_the_effective_setting_and_removal_restores_it(
        bench_host: BenchHost) -> None:
    host = bench_host
    fragment = host.systemctl_show(VENDOR, "FragmentPath")["FragmentPath"]
    assert fragment.startswith(("/usr/lib/systemd/system/", "/lib/systemd/system/"))
    vendor_digest = host.sha256(fragment)
    original = host.systemctl_show(VENDOR, "Nice", "ExecStart", "DropInPaths")
    task = dropin_task(name=VENDOR, dropin="50-unitcraft",
                       sections={"Service": {"Nice": 7, "ExecStart": ["", "/usr/bin/true"]}})
    path = f"/etc/systemd/system/{VENDOR}.d/50-unitcraft.conf"

    reloads = count_daemon_reloads(host)
    check = host.play([task], check=True, diff=True).results[0]
    assert check["changed"] is True and check["diff"]["after"] == "[Service]\nNice=7\nExecStart=\nExecStart=/usr/bin/true\n"
    assert host.read_file(path) is None and count_daemon_reloads(host) == reloads

    applied = host.play([task]).results[0]
    assert applied["changed"] is True and applied["daemon_reloaded"] is True and applied["path"] == path
    assert count_daemon_reloads(host) == reloads + 1
    effective = host.systemctl_show(VENDOR, "Nice", "ExecStart", "DropInPaths")
    assert effective["Nice"] == "7"
    assert "path=/usr/bin/true" in effective["ExecStart"] and "tmpfiles" not in effective["ExecStart"]
    assert path in effective["DropInPaths"]

    again = host.play([task]).results[0]
    assert again["changed"] is False and again["daemon_reloaded"] is False
    assert count_daemon_reloads(host) == reloads + 1

    removed = host.play([dropin_task(name=VENDOR, dropin="50-unitcraft", state="absent")]).results[0]
    assert removed["changed"] is True and removed["daemon_reloaded"] is True
    assert host.systemctl_show(VENDOR, "Nice", "ExecStart", "DropInPaths") == original
    assert host.exec("test", "-e", f"/etc/systemd/system/{VENDOR}.d", check=False).returncode != 0, \
        "the empty drop-in directory was left behind"
    assert host.sha256(fragment) == vendor_digest, "the vendor unit file was touched"


def test_dropin_change_restarts_an_active_unit_once(bench_host: BenchHost) -> None:
    host = bench_host
    host.play([{"unitcraft.systemd.unit": {
        "name": "dropped.service", "active": True,
        "sections": {"Service": {"ExecStart": "/usr/bin/sleep infinity"}}}}])
    before = host.systemctl_show("dropped.service", "MainPID", "InvocationID", "NRestarts")
    task = dropin_task(name="dropped.service", sections={"Service": {"Environment": "MODE=fast"}})
    cursor = journal_cursor(host)
    result = host.play([task]).results[0]
    assert result["restarted"] is True
    after = host.systemctl_show("dropped.service", "Environment", "MainPID", "InvocationID", "NRestarts")
    assert after["Environment"] == "MODE=fast"
    assert after["MainPID"] != before["MainPID"] and after["InvocationID"] != before["InvocationID"]
    assert after["NRestarts"] == before["NRestarts"], "systemd restarted it by itself (a crash)"
    # once: one start in the journal since the change (two restarts would log two)
    starts = started_lines(host, "dropped.service", cursor)
    assert len(starts) == 1, f"restarted {len(starts)} times: {starts}"

    cursor = journal_cursor(host)
    assert host.play([task]).results[0]["changed"] is False
    assert host.systemctl_show("dropped.service", "MainPID")["MainPID"] == after["MainPID"]
    assert invocation_id(host, "dropped.service") == after["InvocationID"]
    assert started_lines(host, "dropped.service", cursor) == []
    host.play([{"unitcraft.systemd.unit": {"name": "dropped.service", "state": "absent"}}])
    # the unit is gone, but its drop-in directory is not empty: it stays
    assert host.read_file("/etc/systemd/system/dropped.service.d/override.conf") == "[Service]\nEnvironment=MODE=fast\n"
    host.play([dropin_task(name="dropped.service", state="absent", validate="off")])
    assert host.exec("test", "-e", "/etc/systemd/system/dropped.service.d", check=False).returncode != 0


def test_dropin_validation_sees_the_merged_unit(bench_host: BenchHost) -> None:
    host = bench_host
    bad = dropin_task(name=VENDOR, dropin="broken", sections={"Service": {"ExecStart": ["", "/usr/bin/missing-x"]}})
    result = host.play([bad], expect_failure=True).results[0]
    assert "missing-x" in result["msg"]
    assert host.read_file(f"/etc/systemd/system/{VENDOR}.d/broken.conf") is None

    typo = dropin_task(name=VENDOR, dropin="typo", sections={"Service": {"Nicee": 3}})
    result = host.play([typo], expect_failure=True).results[0]
    assert f"/etc/systemd/system/{VENDOR}.d/typo.conf:2:" in result["msg"] and "Nicee" in result["msg"]


def test_dropin_for_a_missing_unit_cannot_be_validated(bench_host: BenchHost) -> None:
    result = bench_host.play([dropin_task(name="ghost.service", sections={"Service": {"Nice": 1}})],
                             expect_failure=True).results[0]
    assert "ghost.service" in result["msg"] and "validate: off" in result["msg"]
