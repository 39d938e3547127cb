# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Another user's services from a root play (`user`, `linger`), and `scope: global`, on real systemd.

The reboot test restarts the session's container: later tests set up what they need themselves.
"""

from __future__ import annotations

import time

from conftest import BenchHost

SERVICE = {"Unit": {"Description": "alice's worker"}, "Service": {"ExecStart": "/bin/sleep infinity"},
           "Install": {"WantedBy": "default.target"}}


def user_task(**args: object) -> dict[str, object]:
    return {"name": "user unit", "unitcraft.systemd.unit": {"scope": "user", "user": "alice", **args}}


def as_alice(host: BenchHost, *argv: str, check: bool = True) -> str:
    uid = host.exec("id", "-u", "alice").stdout.strip()
    return host.exec("runuser", "-u", "alice", "--", "env", f"XDG_RUNTIME_DIR=/run/user/{uid}", *argv,
                     check=check).stdout.strip()


def ensure_alice(host: BenchHost) -> None:
    host.sh("id alice >/dev/null 2>&1 || useradd -m alice; loginctl disable-linger alice || true; "
            "rm -f /var/lib/systemd/linger/alice")
    for _attempt in range(50):  # the manager of a user who no longer lingers goes away
        if host.exec("sh", "-c", "test -e /run/user/$(id -u alice)/systemd/private", check=False).returncode:
            return
        time.sleep(0.2)


def test_without_manager_and_without_linger_the_error_says_so(bench_host: BenchHost) -> None:
    host = bench_host
    ensure_alice(host)
    result = host.play([user_task(name="alice-worker.service", sections=SERVICE, enabled=True, active=True)],
                       expect_failure=True).results[0]
    assert "no running user manager" in result["msg"] and "linger: true" in result["msg"], result["msg"]
    assert host.read_file("/home/alice/.config/systemd/user/alice-worker.service") is None


def test_scope_user_without_the_connecting_users_manager_says_so_and_writes_nothing(bench_host: BenchHost) -> None:
    """alice herself (become) runs a scope: user task where no manager of hers answers: a clear refusal,
    no file. su opens a login session, which starts her manager; a session without one (sudo, cron)
    is stood in for by a runtime directory that holds no manager."""
    host = bench_host
    ensure_alice(host)
    host.sh("mkdir -p /tmp/alice-runtime && chown alice /tmp/alice-runtime")
    task = {"name": "alice's own unit", "become": True, "become_user": "alice", "become_method": "su",
            "environment": {"XDG_RUNTIME_DIR": "/tmp/alice-runtime"},
            "unitcraft.systemd.unit": {"scope": "user", "name": "own-worker.service", "sections": SERVICE,
                                       "active": True}}
    result = host.play([task], expect_failure=True).results[0]
    assert "the connecting user alice has no running user manager" in result["msg"], result["msg"]
    assert "loginctl enable-linger alice" in result["msg"] and "Failed to connect to bus" not in result["msg"]
    assert "/tmp/alice-runtime/systemd/private does not exist" in result["msg"]
    assert host.read_file("/home/alice/.config/systemd/user/own-worker.service") is None


def test_scope_global_validates_as_root(bench_host: BenchHost) -> None:
    host = bench_host
    try:
        result = host.play([{"unitcraft.systemd.unit": {
            "name": "everyone.service", "scope": "global", "enabled": True,
            "sections": {"Service": {"ExecStart": "/bin/sleep infinity"},
                         "Install": {"WantedBy": "default.target"}}}}]).results[0]
        assert result["changed"] is True and result["units"][0]["validation"] == []
        assert host.exec("test", "-L", "/etc/systemd/user/default.target.wants/everyone.service").returncode == 0
    finally:
        host.play([{"unitcraft.systemd.unit": {"name": "everyone.service", "scope": "global", "state": "absent"}}])


def test_scope_global_reloads_the_running_user_managers(bench_host: BenchHost) -> None:
    """alice's manager runs (lingering) and has loaded a global unit; the task changes it: her manager
    runs the new definition without a relogin (NeedDaemonReload=no, the new Environment=)."""
    host = bench_host
    ensure_alice(host)
    host.sh("loginctl enable-linger alice")
    unit = "everyone-env.service"

    def task(version: str) -> dict[str, object]:
        return {"unitcraft.systemd.unit": {"name": unit, "scope": "global", "sections": {
            "Service": {"ExecStart": "/bin/sleep infinity", "Environment": f"VERSION={version}"}}}}

    def alice_show(*props: str) -> dict[str, str]:
        out = as_alice(host, "systemctl", "--user", "show", unit, "--property=" + ",".join(props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    try:
        for _attempt in range(100):
            if host.exec("sh", "-c", "test -e /run/user/$(id -u alice)/systemd/private", check=False).returncode == 0:
                break
            time.sleep(0.2)
        host.play([task("1")])
        assert alice_show("Environment")["Environment"] == "VERSION=1"  # loaded by her manager
        # every manager that runs is reloaded (other tests' users may have one too)
        check = host.play([task("2")], check=True).results[0]
        assert "alice" in check["user_managers_reloaded"] and alice_show("Environment")["Environment"] == "VERSION=1"
        applied = host.play([task("2")]).results[0]
        assert "alice" in applied["user_managers_reloaded"], applied
        seen = alice_show("Environment", "NeedDaemonReload")
        assert seen == {"Environment": "VERSION=2", "NeedDaemonReload": "no"}, seen
        assert host.play([task("2")]).results[0]["user_managers_reloaded"] == [], "nothing changed, nothing reloaded"
    finally:
        host.play([{"unitcraft.systemd.unit": {"name": unit, "scope": "global", "state": "absent"}}])
        ensure_alice(host)


def test_linger_runs_alices_service_in_her_manager_across_a_reboot(bench_host: BenchHost) -> None:
    host = bench_host
    ensure_alice(host)
    task = user_task(name="alice-worker.service", sections=SERVICE, enabled=True, active=True, linger=True)
    first = host.play([task]).results[0]
    assert first["changed"] is True and first["linger"] is True and first["user"] == "alice"
    assert first["units"][0]["active_state"] == "active"
    path = "/home/alice/.config/systemd/user/alice-worker.service"
    assert first["path"] == path
    owners = host.exec("stat", "-c", "%U:%G %n", path, "/home/alice/.config/systemd/user",
                       "/home/alice/.config/systemd", "/home/alice/.config").stdout.split("\n")
    assert all(line.startswith("alice:alice ") for line in owners if line), owners
    assert as_alice(host, "systemctl", "--user", "is-active", "alice-worker.service") == "active"
    assert host.play([task]).results[0]["changed"] is False

    info = host.play([{"unitcraft.systemd.unit_info": {"scope": "user", "user": "alice",
                                                       "names": ["alice-worker.service"]}}]).results[0]
    assert info["units"][0]["ActiveState"] == "active"
    assert info["units"][0]["UnitFileState"] == "enabled"

    host.reboot()
    for _attempt in range(100):
        state = as_alice(host, "systemctl", "--user", "is-active", "alice-worker.service", check=False)
        if state == "active":
            break
        time.sleep(0.3)
    assert state == "active", "alice's service did not come back at boot"

    off = host.play([user_task(name="alice-worker.service", linger=False)]).results[0]
    assert off["changed"] is True and off["linger"] is False
    assert host.read_file("/var/lib/systemd/linger/alice") is None
    assert host.play([user_task(name="alice-worker.service", linger=False)]).results[0]["changed"] is False
