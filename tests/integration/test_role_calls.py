# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The remote module calls each role makes per host, so that they cannot creep back (issue 11).

A role's first converge makes at most 4 module calls on the host, account creation
included; its unchanged rerun makes at most 2 and changes nothing. The calls are counted
in Ansible's own log (tests/bench/remote_calls.py): every module file the host's Python
ran, each loop item and each module an action plugin runs included. The first test shows
that the counter counts exactly those and nothing the controller does alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import yaml

import bench
from bench import PlayResult, run_playbook
from conftest import BenchHost, selected_flavours
from remote_calls import ROLE_RUNS, counting_env, module_runs

FIRST_CONVERGE_MAX = 4
UNCHANGED_RERUN_MAX = 2


@pytest.fixture(scope="module", params=selected_flavours(), ids=str)
def fresh_host(request: pytest.FixtureRequest, collections_path: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[BenchHost]:
    """A container of its own, on which none of the roles has run yet."""
    name = f"unitcraft-test-rolecalls-{request.param}-{os.getpid()}"
    try:  # a container that does not boot fails the setup; it is removed either way
        container = bench.start_container(name, request.param)
        workdir = tmp_path_factory.mktemp(f"rolecalls-{request.param}")
        yield BenchHost(container.name, container.flavour, container.image)._bind(collections_path, workdir)
    finally:
        bench.stop_container(name)


def counted_play(host: BenchHost, tasks: Sequence[Mapping[str, Any]], label: str) -> tuple[PlayResult, list[str]]:
    """Run the tasks in one play on the host; the result and the modules the host ran."""
    play_dir = host.workdir / label
    play_dir.mkdir()
    playbook = play_dir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": list(tasks)}],
                                       sort_keys=False))
    log = play_dir / "ansible.log"
    result = run_playbook(playbook, host.inventory(), host.collections_path, host=host.name,
                          env=counting_env(log))
    assert result.rc == 0, f"{label} failed:\n{result.failure_summary()}\n{result.stderr[-3000:]}"
    runs = module_runs(log.read_text() if log.exists() else "")
    assert set(runs) <= {host.name}, f"modules ran on hosts outside the play: {runs}"
    return result, runs.get(host.name, [])


def test_counter_counts_each_module_run_on_the_host_and_nothing_the_controller_does_alone(
        fresh_host: BenchHost) -> None:
    tasks = [
        {"name": "one module", "ansible.builtin.ping": {}},
        {"name": "one command", "ansible.builtin.command": "true", "changed_when": False},
        {"name": "two loop items", "ansible.builtin.command": "echo {{ item }}", "loop": [1, 2],
         "changed_when": False},
        {"name": "skipped", "ansible.builtin.command": "false", "when": False},
        {"name": "controller only", "ansible.builtin.assert": {"that": [True], "quiet": True}},
        {"name": "controller only too", "ansible.builtin.set_fact": {"counted": False}},
        {"name": "and this", "ansible.builtin.debug": {"msg": "not on the host"}},
        # an action plugin that runs two modules: stat, then copy (nothing there yet)
        {"name": "stat and copy", "ansible.builtin.copy": {"content": "x\n", "dest": "/tmp/rolecalls-copy",
                                                         "mode": "0644"}},
    ]
    result, modules = counted_play(fresh_host, tasks, "counter-self-check")
    assert modules == ["ping", "command", "command", "command", "stat", "copy"], modules
    assert result.stats[fresh_host.name]["skipped"] == 1


@pytest.mark.parametrize("role", list(ROLE_RUNS))
def test_first_converge_at_most_4_remote_calls_and_unchanged_rerun_at_most_2(
        fresh_host: BenchHost, role: str) -> None:
    tasks = [{"name": f"the {role} role", "ansible.builtin.include_role": {"name": f"unitcraft.systemd.{role}"},
              "vars": ROLE_RUNS[role]}]
    first = counted_play(fresh_host, tasks, f"{role}-first")
    again = counted_play(fresh_host, tasks, f"{role}-again")
    assert_within_budget(fresh_host, role, first, again)


def assert_within_budget(host: BenchHost, label: str, first: tuple[PlayResult, list[str]],
                         again: tuple[PlayResult, list[str]]) -> None:
    """The first converge changed something in at most 4 calls; the rerun changed nothing in at most 2."""
    (first_result, first_modules), (again_result, again_modules) = first, again
    figures = (f"{label} on {host.flavour}: first converge {len(first_modules)} calls {first_modules}, "
               f"unchanged rerun {len(again_modules)} calls {again_modules}")
    print(figures)
    assert first_result.stats[host.name]["changed"] > 0, f"the first converge changed nothing: {figures}"
    assert len(first_modules) <= FIRST_CONVERGE_MAX, figures
    assert again_result.stats[host.name]["changed"] == 0, f"the rerun changed something: {again_result.results}"
    assert len(again_modules) <= UNCHANGED_RERUN_MAX, figures


# ntp_force_sync_set_clock: false without servers on ntpd: the query tool (ntpdig, sntp) reads
# no configuration, and the unit takes the hosts from the daemon's ntp.conf at boot, not the
# role at play time. Per flavour, the ntpd the image can hold: ntpsec as installed on debian13;
# on debian12 (chrony) classic ntp, its programs as stand-ins that never run and an /etc/ntp.conf.
NTPD_QUERY_RUNS: dict[str, dict[str, Any]] = {
    "debian12": {"daemon": "ntp", "config": "/etc/ntp.conf", "stand_ins": ["/usr/sbin/ntpd", "/usr/bin/sntp"]},
    "debian13": {"daemon": "ntpsec", "config": "/etc/ntpsec/ntp.conf", "stand_ins": []},
}
STAND_IN = "#!/bin/sh\n# unitcraft test stand-in: never runs in this test\nexit 0\n"


def test_ntpd_query_without_servers_first_converge_at_most_4_and_unchanged_rerun_at_most_2(
        fresh_host: BenchHost) -> None:
    run = NTPD_QUERY_RUNS[fresh_host.flavour]
    role_vars = {"ntp_force_sync_daemon": run["daemon"], "ntp_force_sync_set_clock": False}
    tasks = [{"name": "the ntp_force_sync role", "vars": role_vars,
              "ansible.builtin.include_role": {"name": "unitcraft.systemd.ntp_force_sync"}}]
    made = [path for path in [*run["stand_ins"], run["config"]]
            if fresh_host.exec("test", "-e", path, check=False).returncode != 0]
    try:
        for path in made:
            text, mode = ("server 127.0.0.1 iburst\n", "0644") if path == run["config"] else (STAND_IN, "0755")
            fresh_host.exec("sh", "-c", f"cat > {path} && chmod {mode} {path}", input=text)
        first = counted_play(fresh_host, tasks, f"ntpd-query-{run['daemon']}-first")
        again = counted_play(fresh_host, tasks, f"ntpd-query-{run['daemon']}-again")
        unit_text = fresh_host.read_file("/etc/systemd/system/ntp-force-sync.service") or ""
    finally:
        fresh_host.play([{**tasks[0], "vars": {**role_vars, "ntp_force_sync_state": "absent"}}])
        if made:
            fresh_host.exec("rm", "-f", *made)
    assert_within_budget(fresh_host, f"ntp_force_sync ({run['daemon']}, set_clock false, no servers)", first, again)
    # and the configuration counted is the one meant: the unit reads the daemon's ntp.conf itself
    exec_start = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    assert len(exec_start) == 1 and exec_start[0].startswith("ExecStart=/bin/sh -c ") \
        and run["config"] in exec_start[0], exec_start


def test_daemon_credentials_add_one_call_each_and_a_move_one_per_moved_file(fresh_host: BenchHost) -> None:
    """Each credential is one credential call, every run; the run that moves one out of the host-wide
    store adds one call for that file, and the run after it is back to one per credential."""
    name = "rolecalls-creds"
    role_vars = {**ROLE_RUNS["daemon"], "daemon_name": name, "daemon_credentials": {"apikey": "{{ key }}"}}
    tasks = [{"name": "the daemon role with a credential", "vars": {**role_vars, "key": "k-rolecalls-0123"},
              "ansible.builtin.include_role": {"name": "unitcraft.systemd.daemon"}}]
    unit_path = f"/etc/systemd/system/{name}.service"
    try:
        first = counted_play(fresh_host, tasks, "daemon-creds-first")
        again = counted_play(fresh_host, tasks, "daemon-creds-again")
        assert first[1] == ["command", "credential", "unit"], first[1]
        assert again[1] == ["command", "credential", "unit"], again[1]
        assert again[0].stats[fresh_host.name]["changed"] == 0, again[0].results
        # the layout before per-unit credentials: the unit loads a host-wide file by name
        fresh_host.sh(f"mkdir -p /etc/credstore.encrypted && printf k | systemd-creds encrypt --name=apikey -"
                      f" /etc/credstore.encrypted/apikey && sed -i 's|^LoadCredentialEncrypted=.*|"
                      f"LoadCredentialEncrypted=apikey|' {unit_path} && systemctl daemon-reload")
        moved = counted_play(fresh_host, tasks, "daemon-creds-move")
        after = counted_play(fresh_host, tasks, "daemon-creds-after-move")
    finally:
        fresh_host.play([{**tasks[0], "vars": {**tasks[0]["vars"], "daemon_state": "absent"}}])
    print(f"daemon with one credential on {fresh_host.flavour}: first {first[1]}, rerun {again[1]},"
          f" move {moved[1]}, after the move {after[1]}")
    assert moved[1] == ["command", "credential", "unit", "credential"], moved[1]
    assert fresh_host.read_file("/etc/credstore.encrypted/apikey") is None
    assert after[1] == ["command", "credential", "unit"], after[1]
    assert after[0].stats[fresh_host.name]["changed"] == 0, after[0].results
