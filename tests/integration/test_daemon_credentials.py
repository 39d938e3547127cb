# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon role's secrets as systemd credentials, on real systemd 252 and 257.

Each credential belongs to the unit that loads it (/etc/unitcraft/credentials/UNIT/NAME):
two services with a credential of the same name never overwrite, restart or remove each
other's. A play written when every credential lived in the host-wide store
(/etc/credstore.encrypted/NAME) moves to that layout on its next run.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml

import bench
from bench import PlayResult, run_playbook
from conftest import REPO_ROOT, BenchHost, start_count

PROGRAM = """\
#!/bin/sh
# what the service saw: a hash of its credential, into its own state directory
sha256sum "$CREDENTIALS_DIRECTORY/apikey" | cut -d' ' -f1 > "$STATE_DIRECTORY/apikey.sha256"
exec sleep infinity
"""
PROGRAM_PATH = "/usr/local/bin/credsd"
SHARED = "/etc/credstore.encrypted/apikey"  # where every credential lived before per-unit files
UNIT_STORE = "/etc/unitcraft/credentials"
SERVICES = ("huobi", "binance")
# The last commit of main whose daemon role kept credentials in the host-wide store: the
# migration test installs the collection as it was there and runs its role first.
LEGACY_COMMIT = "061fde23bdccaea970221df0693c5768259d14c7"


def role(name: str = "credsd", secret_var: str = "secret", state: str = "started") -> list[dict[str, object]]:
    return [{"name": f"daemon {name}", "ansible.builtin.include_role": {"name": "unitcraft.systemd.daemon"},
             "vars": {"daemon_name": name, "daemon_exec": PROGRAM_PATH,
                      "daemon_create_user": True, "daemon_hardening": "strict", "daemon_state": state,
                      "daemon_credentials": {"apikey": "{{ %s }}" % secret_var}}}]


def both_roles() -> list[dict[str, object]]:
    return [task for name in SERVICES for task in role(name, f"secret_{name}")]


def unit_credential(name: str) -> str:
    return f"{UNIT_STORE}/{name}.service/apikey"


def play_verbose(host: BenchHost, tasks: list[dict[str, object]], extra_vars: dict[str, str],
                 collections_path: str | None = None, human: bool = False) -> PlayResult:
    """The play with -vvv and --diff, as an operator debugging it would run it.

    With `human`, Ansible's default output (what a person reads, the module arguments and every
    result included) with pipelining off, so that the module files show in the commands.
    """
    playbook = host.workdir / f"verbose-{len(list(host.workdir.iterdir()))}.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    extra = host.workdir / f"{playbook.stem}-vars.json"
    extra.write_text(json.dumps(extra_vars))
    env = {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "ANSIBLE_PIPELINING": "False"} if human else None
    return run_playbook(playbook, host.inventory(), collections_path or host.collections_path,
                        ["-vvv", "--diff", "-e", f"@{extra}"], host=host.name, env=env)


def seen(host: BenchHost, name: str = "credsd") -> str:
    """The hash the service's current process wrote at its start, waiting for it to be written."""
    path = f"/var/lib/{name}/apikey.sha256"
    host.sh(f"for i in $(seq 100); do [ -s {path} ] && exit 0; sleep 0.1; done; exit 0")
    return (host.read_file(path) or "").strip()


def forget_seen(host: BenchHost, *names: str) -> None:
    host.exec("rm", "-f", *[f"/var/lib/{name}/apikey.sha256" for name in names])


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def decrypted_digest(host: BenchHost, path: str) -> str:
    return host.sh(f"systemd-creds decrypt --name=apikey {path} - | sha256sum | cut -d' ' -f1").stdout.strip()


def install_program(host: BenchHost) -> None:
    host.exec("sh", "-c", f"cat > {PROGRAM_PATH} && chmod 755 {PROGRAM_PATH}", input=PROGRAM)


def remove_services(host: BenchHost, *names: str) -> None:
    units = " ".join(f"{name}.service" for name in names)
    records = " ".join(f"/var/lib/unitcraft/restart-triggers/{name}.service.json" for name in names)
    dirs = " ".join(f"{UNIT_STORE}/{name}.service" for name in names)
    host.sh(f"systemctl stop {units}; systemctl disable {units}; cd /etc/systemd/system && rm -f {units};"
            f" rm -rf {dirs} {records} {SHARED}; systemctl daemon-reload; systemctl reset-failed", check=False)


def ready_for_both(host: BenchHost, label: str) -> dict[str, str]:
    """The program in place, no hash of an earlier run left, and a secret per service (as play variables)."""
    install_program(host)
    forget_seen(host, *SERVICES)
    return {f"secret_{name}": f"{name}-{label}-{digest(name)[:12]}" for name in SERVICES}


@pytest.fixture()
def two_services(bench_host: BenchHost) -> Iterator[dict[str, str]]:
    """huobi and binance, each with a credential apikey of its own secret, run by the daemon role."""
    host = bench_host
    secrets = ready_for_both(host, "s3cr3t")
    try:
        for name in SERVICES:
            host.play(role(name, f"secret_{name}"), extra_vars=secrets)
        yield secrets
    finally:
        remove_services(host, *SERVICES)


def test_the_service_reads_its_secret_and_a_new_one_restarts_it_once(bench_host: BenchHost) -> None:
    host = bench_host
    install_program(host)
    first, second = "s3cr3t-first-0123", "s3cr3t-second-4567"
    path = unit_credential("credsd")
    try:
        done = host.play(role(), extra_vars={"secret": first}, diff=True)
        assert seen(host) == digest(first), "the service did not read the secret it was given"
        unit = host.read_file("/etc/systemd/system/credsd.service")
        assert f"LoadCredentialEncrypted=apikey:{path}\n" in unit and first not in unit
        assert first not in host.exec("systemctl", "show", "credsd.service").stdout
        assert first not in done.stdout, "the secret is in the play's results or diff"
        mode = host.exec("stat", "-c", "%a %U", path, f"{UNIT_STORE}/credsd.service").stdout.split()
        assert mode == ["600", "root", "700", "root"]
        assert host.exec("runuser", "-u", "nobody", "--", "cat", path, check=False).returncode != 0, \
            "an unprivileged user can read the credential"
        assert host.read_file(SHARED) is None, "the credential went to the host-wide store"

        started = start_count(host, "credsd.service")
        same = host.play(role(), extra_vars={"secret": first})
        assert not any(r.get("changed") for r in same.results), "the same secret changed something"
        assert start_count(host, "credsd.service") == started

        forget_seen(host, "credsd")
        rotated = play_verbose(host, role(), {"secret": second})
        assert rotated.rc == 0, rotated.stderr[-2000:]
        assert second not in rotated.stdout + rotated.stderr, "the secret is in the -vvv output of the run"
        assert start_count(host, "credsd.service") == started + 1, "a new secret restarts the service exactly once"
        assert seen(host) == digest(second)
        assert start_count(host, "credsd.service") == started + 1

        host.play(role(state="absent"), extra_vars={"secret": second})
        assert host.read_file(path) is None
        assert host.exec("test", "-e", f"{UNIT_STORE}/credsd.service", check=False).returncode != 0, \
            "state absent left the unit's credential directory behind"
    finally:
        remove_services(host, "credsd")


def test_two_services_with_a_credential_of_the_same_name_each_read_their_own_and_a_rerun_restarts_neither(
        bench_host: BenchHost, two_services: dict[str, str]) -> None:
    host = bench_host
    for name in SERVICES:
        assert seen(host, name) == digest(two_services[f"secret_{name}"]), f"{name} did not read its own secret"
        assert decrypted_digest(host, unit_credential(name)) == digest(two_services[f"secret_{name}"])
        unit = host.read_file(f"/etc/systemd/system/{name}.service")
        assert f"LoadCredentialEncrypted=apikey:{unit_credential(name)}\n" in unit, unit
    assert host.read_file(SHARED) is None

    started = {name: start_count(host, f"{name}.service") for name in SERVICES}
    assert all(count >= 1 for count in started.values()), started
    again = host.play(both_roles(), extra_vars=two_services)
    changed = [(task, r) for task, r in zip(again.tasks, again.results) if r.get("changed")]
    assert changed == [], "a rerun of both services changed something"
    assert all(stats["changed"] == 0 for stats in again.stats.values())
    assert {name: start_count(host, f"{name}.service") for name in SERVICES} == started, \
        "a rerun of both services restarted one of them"
    for name in SERVICES:
        assert seen(host, name) == digest(two_services[f"secret_{name}"])


def test_absent_on_one_service_leaves_the_others_credential_and_service_running(
        bench_host: BenchHost, two_services: dict[str, str]) -> None:
    host = bench_host
    kept = unit_credential("binance")
    before = host.sha256(kept)
    binance_starts = start_count(host, "binance.service")
    binance_pid = host.systemctl_show("binance.service", "MainPID")["MainPID"]

    gone = host.play(role("huobi", "secret_huobi", state="absent"), extra_vars=two_services)
    assert any(r.get("changed") for r in gone.results)
    assert host.read_file(unit_credential("huobi")) is None
    assert host.exec("test", "-e", f"{UNIT_STORE}/huobi.service", check=False).returncode != 0
    assert host.systemctl_show("huobi.service", "LoadState")["LoadState"] == "not-found"

    assert host.sha256(kept) == before, "removing huobi touched binance's credential"
    state = host.systemctl_show("binance.service", "ActiveState", "MainPID")
    assert state == {"ActiveState": "active", "MainPID": binance_pid}, state
    assert start_count(host, "binance.service") == binance_starts, "removing huobi restarted binance"
    assert seen(host, "binance") == digest(two_services["secret_binance"])
    again = host.play(role("binance", "secret_binance"), extra_vars=two_services)
    assert not any(r.get("changed") for r in again.results), "binance's own run found something to change"


@pytest.fixture(scope="module")
def legacy_collections(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The collection as it was at LEGACY_COMMIT, built and installed into a path of its own."""
    work = tmp_path_factory.mktemp("legacy-collection")
    source = work / "source"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", LEGACY_COMMIT], capture_output=True,
                             check=False)
    assert archive.returncode == 0, (f"git archive {LEGACY_COMMIT} failed (this test needs the repository's"
                                     f" history): {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    galaxy = bench.ansible_bin("ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(work / "dist"), str(source)],
                   check=True, capture_output=True, timeout=600)
    (tarball,) = (work / "dist").glob("*.tar.gz")
    # --force: the same version of the collection is already installed where ANSIBLE_COLLECTIONS_PATH
    # points (the test command's build/collections), and ansible-galaxy would then install nothing
    subprocess.run([galaxy, "collection", "install", "--force", "-p", str(work / "collections"), str(tarball)],
                   check=True, capture_output=True, timeout=600)
    return str(work / "collections")


def test_a_play_of_the_host_wide_layout_moves_each_service_to_its_own_file_restarting_it_once(
        bench_host: BenchHost, legacy_collections: str) -> None:
    host = bench_host
    secrets = ready_for_both(host, "old-layout")
    try:
        # the old layout, written by the role as main had it: one file for both, loaded by name
        for name in SERVICES:
            legacy = play_verbose(host, role(name, f"secret_{name}"), secrets, collections_path=legacy_collections)
            assert legacy.rc == 0, legacy.stderr[-3000:]
            assert "LoadCredentialEncrypted=apikey\n" in host.read_file(f"/etc/systemd/system/{name}.service")
        assert host.read_file(f"{UNIT_STORE}/huobi.service/apikey") is None
        # the bug: binance's run overwrote the file that huobi loads at its next start
        assert decrypted_digest(host, SHARED) == digest(secrets["secret_binance"])
        assert seen(host, "huobi") == digest(secrets["secret_huobi"])
        starts = {name: start_count(host, f"{name}.service") for name in SERVICES}

        # huobi moves first: its own file, its unit loads it, one restart; binance still loads the old file
        forget_seen(host, "huobi")
        moved = play_verbose(host, role("huobi", "secret_huobi"), secrets, human=True)
        output = moved.stdout + moved.stderr
        assert moved.rc == 0, output[-3000:]
        assert "AnsiballZ_credential.py" in output, "the run was not verbose (no module file in the output)"
        for secret in secrets.values():
            assert secret not in output, "a secret is in the -vvv output of the move"
        assert start_count(host, "huobi.service") == starts["huobi"] + 1, "the move did not restart huobi exactly once"
        assert seen(host, "huobi") == digest(secrets["secret_huobi"])
        assert decrypted_digest(host, unit_credential("huobi")) == digest(secrets["secret_huobi"])
        assert f"LoadCredentialEncrypted=apikey:{unit_credential('huobi')}\n" in \
            host.read_file("/etc/systemd/system/huobi.service")
        assert host.read_file(SHARED) is not None, "the old file went while binance still loads it"
        assert f"{SHARED} stays: loaded by /etc/systemd/system/binance.service" in output
        assert start_count(host, "binance.service") == starts["binance"], "huobi's move restarted binance"

        # binance moves: the last unit that loaded the old file, so the old file goes
        forget_seen(host, "binance")
        last = play_verbose(host, role("binance", "secret_binance"), secrets, human=True)
        output = last.stdout + last.stderr
        assert last.rc == 0, output[-3000:]
        for secret in secrets.values():
            assert secret not in output, "a secret is in the -vvv output of the move"
        assert start_count(host, "binance.service") == starts["binance"] + 1
        assert seen(host, "binance") == digest(secrets["secret_binance"])
        assert host.read_file(SHARED) is None, "the old file stayed though no unit loads it any more"
        assert start_count(host, "huobi.service") == starts["huobi"] + 1, "binance's move restarted huobi"

        # and then nothing more to do
        settled = {name: start_count(host, f"{name}.service") for name in SERVICES}
        again = host.play(both_roles(), extra_vars=secrets)
        assert all(stats["changed"] == 0 for stats in again.stats.values()), again.results
        assert {name: start_count(host, f"{name}.service") for name in SERVICES} == settled
    finally:
        remove_services(host, *SERVICES)


def test_a_secret_looking_environment_key_points_to_daemon_credentials(bench_host: BenchHost) -> None:
    host = bench_host
    host.exec("sh", "-c", "cat > /usr/local/bin/credsd && chmod 755 /usr/local/bin/credsd",
              input="#!/bin/sh\nexec sleep infinity\n")
    task = {"name": "daemon", "ansible.builtin.include_role": {"name": "unitcraft.systemd.daemon"},
            "vars": {"daemon_name": "envsd", "daemon_exec": "/usr/local/bin/credsd", "daemon_user": "root",
                     "daemon_environment": {"EXCHANGE_API_KEY": "not-a-real-key", "LOG_LEVEL": "info"}}}
    try:
        result = host.play([task])
        pointers = [r["msg"] for r in result.results if "daemon_credentials" in str(r.get("msg", ""))]
        assert pointers and "EXCHANGE_API_KEY" in pointers[0] and "LOG_LEVEL" not in pointers[0], pointers
        unit = [r for r in result.results if "units" in r][0]
        assert "secret-in-environment" in [f["rule"] for f in unit["lint"]]
    finally:
        host.sh("systemctl stop envsd.service; rm -f /etc/systemd/system/envsd.service; systemctl daemon-reload",
                check=False)
