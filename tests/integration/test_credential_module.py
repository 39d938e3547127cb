# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unitcraft.systemd.credential against real systemd (252 and 257) in bench containers.

A service written with unitcraft.systemd.unit loads the credential with
LoadCredentialEncrypted= and logs a hash of what it was given, so the tests see which secret
the service read without the secret itself ever being printed. Every leak check is paired with
a positive control (the place where the secret legitimately is), so that a check that cannot
find anything fails instead of passing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
import yaml

import bench
from bench import run_playbook
from conftest import BenchHost

CREDENTIAL = "/etc/credstore.encrypted/apikey"
UNIT = "uc-cred-reader.service"
READER = "/usr/local/bin/uc-cred-reader"
READER_SCRIPT = """\
#!/bin/sh
# test stand-in for a service that needs an API key: log a hash of the key it was given, stay up
printf 'apikey-sha256=%s\\n' "$(sha256sum < "$CREDENTIALS_DIRECTORY/apikey" | cut -d' ' -f1)"
exec sleep infinity
"""
SERVICE_USER = "credsvc"  # the service's own account; `nobody` plays the unprivileged local user


def new_secret(label: str) -> str:
    return f"uc-{label}-{uuid.uuid4().hex}"


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def credential_task(name: str = "apikey", **args: Any) -> dict[str, Any]:
    return {"name": "credential", "unitcraft.systemd.credential": {"name": name, **args}}


def reader_unit_task() -> dict[str, Any]:
    return {"name": "unit", "unitcraft.systemd.unit": {
        "name": UNIT,
        "sections": {
            "Unit": {"Description": "reads the apikey credential"},
            "Service": {"User": SERVICE_USER, "ExecStart": READER, "LoadCredentialEncrypted": "apikey"},
            "Install": {"WantedBy": "multi-user.target"},
        },
        "enabled": True,
        "active": True,
        "restart_triggers": [CREDENTIAL],
    }}


def started_count(host: BenchHost, unit: str = UNIT) -> int:
    host.exec("journalctl", "--sync")
    out = host.sh(f"journalctl -b -u {unit} -o cat | grep -c '^Started ' || true").stdout
    return int(out.strip() or 0)


def hashes_seen(host: BenchHost, unit: str = UNIT) -> list[str]:
    """The hashes the service logged, one per start, in order."""
    host.exec("journalctl", "--sync")
    out = host.exec("journalctl", "-b", "-u", unit, "-o", "cat").stdout
    return [line.split("=", 1)[1] for line in out.splitlines() if line.startswith("apikey-sha256=")]


def wait_for_hashes(host: BenchHost, count: int) -> list[str]:
    """Hashes once the service has logged `count` of them (its start is not blocking the play's end)."""
    host.sh(f"for i in $(seq 50); do [ $(journalctl -b -u {UNIT} -o cat | grep -c '^apikey-sha256=') -ge {count} ]"
            " && exit 0; sleep 0.1; done; exit 0")
    return hashes_seen(host)


def files_holding(host: BenchHost, secret: str, user: str | None, *dirs: str) -> list[str]:
    """Files under `dirs` whose text holds `secret`, as root or as `user` (unreadable ones are skipped)."""
    runas = ["runuser", "-u", user, "--"] if user else []
    # -D skip: never open sockets and FIFOs under /run; grep exits 2 on unreadable files, which is expected
    proc = host.exec(*runas, "grep", "-rlsF", "-D", "skip", "--", secret, *dirs, check=False)
    return sorted(line for line in proc.stdout.splitlines() if line)


def stat_of(host: BenchHost, path: str) -> str:
    return host.exec("stat", "-c", "%a %U:%G", path).stdout.strip()


@pytest.fixture(scope="module")
def reader(bench_host: BenchHost) -> BenchHost:
    host = bench_host
    host.exec("sh", "-c", f"cat > {READER} && chmod 0755 {READER}", input=READER_SCRIPT)
    host.sh(f"id {SERVICE_USER} >/dev/null 2>&1 || useradd --system --no-create-home {SERVICE_USER}")
    return host


def test_service_reads_the_secret_and_it_leaks_nowhere(reader: BenchHost) -> None:
    host = reader
    secret = new_secret("first")
    play = host.play([credential_task(value=secret), reader_unit_task()], diff=True)
    cred, unit = play.results

    # the module's answer: where, how sealed, and the unit line that loads it
    assert cred["changed"] is True and cred["path"] == CREDENTIAL and cred["sealed_with"] == "host"
    assert (cred["load_directive"], cred["load_value"]) == ("LoadCredentialEncrypted", "apikey")
    assert unit["changed"] is True and unit["active"] is True

    # the service read the right secret at start
    assert wait_for_hashes(host, 1) == [sha(secret)]
    assert started_count(host) == 1

    # the file: 0600 root in a 0700 root store; an unprivileged user cannot read it
    assert stat_of(host, CREDENTIAL) == "600 root:root"
    assert stat_of(host, "/etc/credstore.encrypted") == "700 root:root"
    denied = host.exec("runuser", "-u", "nobody", "--", "cat", CREDENTIAL, check=False)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    # and it is ciphertext, which systemd-creds decrypts to the secret
    assert secret not in host.read_file(CREDENTIAL)
    decrypted = host.exec("systemd-creds", "decrypt", "--name=apikey", CREDENTIAL, "-").stdout
    assert decrypted == secret

    # not in the unit file, nor in anything `systemctl show` says (whose Environment= leak the lint reports)
    assert secret not in host.read_file(f"/etc/systemd/system/{UNIT}")
    shown = host.exec("runuser", "-u", "nobody", "--", "systemctl", "show", "--all", UNIT).stdout
    assert "LoadCredentialEncrypted=" in shown and secret not in shown

    # no file under /etc or /run that an unprivileged user can read holds it; root finds it only in
    # the service's private credentials directory (the positive control: the search works)
    assert files_holding(host, secret, "nobody", "/etc", "/run", "/tmp", "/var/tmp") == []
    assert files_holding(host, secret, None, "/etc", "/run") == [f"/run/credentials/{UNIT}/apikey"]
    assert host.exec("journalctl", "-b", "--no-pager").stdout.count(secret) == 0

    # not in the result, nor in the returned diff, which shows the change redacted
    assert secret not in json.dumps(play.results) and secret not in play.stdout
    assert cred["diff"]["before"] == ""
    assert cred["diff"]["after"] == ("credential: apikey\nsealed_with: host\nmode: 0600\nowner: 0:0\n"
                                     "value: (secret, changed, not shown)\n")


def test_rotation_restarts_once_and_a_rerun_restarts_nothing(reader: BenchHost) -> None:
    host = reader
    first, second = new_secret("before"), new_secret("after")
    host.play([credential_task(value=first), reader_unit_task()])
    starts = started_count(host)
    assert wait_for_hashes(host, starts)[-1] == sha(first)  # one hash per start

    # the same secret again: nothing changes, nothing restarts
    again = host.play([credential_task(value=first), reader_unit_task()])
    assert [r["changed"] for r in again.results] == [False, False]
    assert again.results[0]["systemd_creds_calls"] == 1  # one decrypt, no encrypt
    assert again.results[1]["restarted"] is False
    assert all(s["changed"] == 0 for s in again.stats.values())
    assert started_count(host) == starts

    # a new secret: the credential changes, the unit's restart trigger fires, exactly one restart
    mtime = host.exec("stat", "-c", "%Y.%y", CREDENTIAL).stdout
    rotated = host.play([credential_task(value=second), reader_unit_task()], diff=True)
    cred, unit = rotated.results
    assert cred["changed"] is True and cred["value_changed"] is True and cred["reasons"] == ["the secret differs"]
    assert cred["diff"]["before"].endswith("value: (secret, not shown)\n")
    assert cred["diff"]["after"].endswith("value: (secret, changed, not shown)\n")
    assert unit["restarted"] is True and unit["restart_triggered_by"] == [CREDENTIAL]
    assert host.exec("stat", "-c", "%Y.%y", CREDENTIAL).stdout != mtime
    assert started_count(host) == starts + 1
    hashes = wait_for_hashes(host, starts + 1)
    assert hashes[-1] == sha(second) and len(hashes) == starts + 1
    for secret in (first, second):
        assert secret not in json.dumps(rotated.results) and secret not in rotated.stdout

    # and with the new secret again: changed=0, no restart
    settled = host.play([credential_task(value=second), reader_unit_task()])
    assert all(s["changed"] == 0 for s in settled.stats.values())
    assert settled.results[1]["restarted"] is False
    assert started_count(host) == starts + 1


def test_vvv_output_never_holds_the_secret(reader: BenchHost) -> None:
    """ansible-playbook -vvv --diff, with the default callback as a person would run it.

    The secrets come from variables, as from a vault: ansible-core's error display quotes the
    failing task's source lines, so a secret written literally into a playbook would be shown
    by Ansible itself whatever the module does (seen with ansible-core 2.19).
    """
    host = reader
    first, second, third = new_secret("vvv-one"), new_secret("vvv-two"), new_secret("vvv-three")
    path = "/etc/credstore.encrypted/vvvkey"
    tasks = [
        credential_task("vvvkey", value="{{ vvv_first }}"),  # written (encrypt)
        credential_task("vvvkey", value="{{ vvv_second }}"),  # decrypted, compared, rewritten
        credential_task("vvvkey", value="{{ vvv_second }}"),  # decrypted, unchanged
        {**credential_task("vvvkey", value="{{ vvv_first }}", encrypt="tpm2"), "ignore_errors": True},  # no TPM2
        # the documented loop: over the names, so no loop item holds a secret
        {**credential_task("{{ item }}", value="{{ vvv_many[item] }}"), "loop": "{{ vvv_many.keys() | list }}"},
    ]
    play_dir = host.workdir / f"vvv-{uuid.uuid4().hex[:8]}"
    play_dir.mkdir()
    playbook = play_dir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    secrets_file = play_dir / "secrets.json"
    secrets_file.write_text(json.dumps({"vvv_first": first, "vvv_second": second, "vvv_many": {"vvvloop": third}}))
    result = run_playbook(playbook, host.inventory(), host.collections_path,
                          ["-vvv", "--diff", "--extra-vars", f"@{secrets_file}"], host=host.name,
                          # Ansible's defaults: pipelining off, so the module and its args go as a file
                          env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "ANSIBLE_PIPELINING": "False"})
    output = result.stdout + result.stderr
    assert result.rc == 0, output[-3000:]
    # the run did what it should, and -vvv was really on (the connection's commands and the module args are shown)
    assert "AnsiballZ_credential.py" in output  # the connection's commands: the module file put, then run
    # module args, where shown (ansible-core 2.19 at -vvv), show the value masked
    assert output.count('"value": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"') == output.count('"value": ')
    assert output.count("changed: [") == 3 and "...ignoring" in output and "(item=vvvloop)" in output
    assert "TPM2" in output and "value: (secret, changed, not shown)" in output
    for secret in (first, second, third):
        assert secret not in output
    assert host.exec("systemd-creds", "decrypt", "--name=vvvkey", path, "-").stdout == second
    host.play([credential_task("vvvkey", state="absent"), credential_task("vvvloop", state="absent")])


def test_check_mode_with_a_new_secret_writes_nothing(reader: BenchHost) -> None:
    host = reader
    path = "/etc/credstore.encrypted/checkkey"
    one, two = new_secret("check-one"), new_secret("check-two")
    check = host.play([credential_task("checkkey", value=one)], check=True, diff=True).results[0]
    assert check["changed"] is True and check["value_changed"] is True
    assert host.read_file(path) is None

    host.play([credential_task("checkkey", value=one)])
    before = host.sha256(path)
    stat_before = host.exec("stat", "-c", "%Y %i", path).stdout
    check = host.play([credential_task("checkkey", value=two)], check=True, diff=True).results[0]
    assert check["changed"] is True and check["reasons"] == ["the secret differs"]
    assert host.sha256(path) == before and host.exec("stat", "-c", "%Y %i", path).stdout == stat_before
    assert two not in json.dumps(check) and one not in json.dumps(check)
    assert host.exec("systemd-creds", "decrypt", "--name=checkkey", path, "-").stdout == one

    same = host.play([credential_task("checkkey", value=one)], check=True).results[0]
    assert same["changed"] is False
    host.play([credential_task("checkkey", state="absent")])


def test_state_absent_removes_the_credential_file(reader: BenchHost) -> None:
    host = reader
    path = "/etc/credstore.encrypted/gonekey"
    host.play([credential_task("gonekey", value=new_secret("gone"))])
    assert host.read_file(path) is not None
    check = host.play([credential_task("gonekey", state="absent")], check=True).results[0]
    assert check["changed"] is True and host.read_file(path) is not None
    gone = host.play([credential_task("gonekey", state="absent")]).results[0]
    assert gone["changed"] is True and gone["removed"] == [path]
    assert host.read_file(path) is None
    again = host.play([credential_task("gonekey", state="absent")]).results[0]
    assert again["changed"] is False and again["removed"] == []


def test_encrypt_none_and_switching_to_encryption(reader: BenchHost) -> None:
    host = reader
    secret = new_secret("plain")
    plain, encrypted = "/etc/credstore/plainkey", "/etc/credstore.encrypted/plainkey"
    first = host.play([credential_task("plainkey", value=secret, encrypt="none")]).results[0]
    assert (first["load_directive"], first["load_value"]) == ("LoadCredential", "plainkey")
    assert stat_of(host, plain) == "600 root:root" and stat_of(host, "/etc/credstore") == "700 root:root"
    assert host.exec("runuser", "-u", "nobody", "--", "cat", plain, check=False).returncode != 0
    assert host.play([credential_task("plainkey", value=secret, encrypt="none")]).results[0]["changed"] is False
    # to encryption: the plain copy must not outlive the switch
    switched = host.play([credential_task("plainkey", value=secret, encrypt="host")]).results[0]
    assert switched["changed"] is True and switched["removed"] == [plain]
    assert host.read_file(plain) is None and secret not in host.read_file(encrypted)
    host.play([credential_task("plainkey", state="absent")])


def test_tpm2_fails_with_systemds_words_and_changes_nothing(reader: BenchHost) -> None:
    host = reader
    secret = new_secret("tpm")
    failed = host.play([credential_task("tpmkey", value=secret, encrypt="tpm2")], expect_failure=True)
    msg = failed.results[0]["msg"]
    assert msg.startswith("credential tpmkey: ") and "--with-key=tpm2" in msg
    # 252: "TPM2 support not installed"; 257: "TPM device not usable ..." (both measured in the bench)
    assert "TPM" in msg and "encrypt: host works without one" in msg
    assert secret not in failed.stdout and secret not in failed.stderr
    assert host.read_file("/etc/credstore.encrypted/tpmkey") is None


def test_offline_root_seals_with_the_images_own_host_key(reader: BenchHost) -> None:
    host = reader
    root = f"/srv/uc-image-{uuid.uuid4().hex[:8]}"
    host.exec("mkdir", "-p", f"{root}/etc")
    secret = new_secret("image")
    task = credential_task(value=secret, root=root)
    first = host.play([task]).results[0]
    path = f"{root}/etc/credstore.encrypted/apikey"
    key = f"{root}/var/lib/systemd/credential.secret"
    assert first["changed"] is True and first["path"] == path and first["load_value"] == "apikey"
    assert stat_of(host, key) == "400 root:root"  # created in the image by systemd-creds
    # sealed with the image's key: the image decrypts it, the live host's key does not
    image = host.exec("env", f"SYSTEMD_CREDENTIAL_SECRET={key}", "systemd-creds", "decrypt", "--name=apikey",
                      path, "-")
    assert image.stdout == secret
    # the live host's own key, made here: which earlier test made one depends on the order
    host.exec("systemd-creds", "setup")
    live = host.exec("systemd-creds", "decrypt", "--name=apikey", path, "-", check=False)
    assert live.returncode != 0 and "Decryption failed" in live.stderr
    assert host.play([task]).results[0]["changed"] is False

    refused = host.play([credential_task(value=secret, root=root, encrypt="tpm2")], expect_failure=True)
    assert "encrypt: tpm2 does not work with root" in refused.results[0]["msg"]
    host.exec("rm", "-rf", "--", root)


def test_user_scope_plain_credential_for_a_user_service(reader: BenchHost) -> None:
    host = reader
    host.sh("id ucuser >/dev/null 2>&1 || useradd -m ucuser")
    host.exec("loginctl", "enable-linger", "ucuser")
    uid = host.exec("id", "-u", "ucuser").stdout.strip()
    host.sh(f"for i in $(seq 50); do [ -S /run/user/{uid}/systemd/private ] && exit 0; sleep 0.2; done; exit 1")
    bench.ssh_access().authorize(host.name, "ucuser")  # Ansible logs in as ucuser
    secret = new_secret("user")
    refused = host.play([{**credential_task("ukey", value=secret, scope="user"), "remote_user": "ucuser"}],
                        expect_failure=True).results[0]
    assert "scope: user supports encrypt: none only" in refused["msg"]

    cred = {**credential_task("ukey", value=secret, scope="user", encrypt="none"), "remote_user": "ucuser",
            "register": "ukey"}
    unit = {"name": "user unit", "remote_user": "ucuser", "unitcraft.systemd.unit": {
        "name": "uc-ureader.service", "scope": "user", "active": True,
        "restart_triggers": ["{{ ukey.path }}"],
        "sections": {"Service": {
            "ExecStart": "/bin/sh -c 'sha256sum < \"$${CREDENTIALS_DIRECTORY}/ukey\"; exec sleep infinity'",
            "LoadCredential": "{{ ukey.load_value }}"}}}}
    play = host.play([cred, unit])
    path = "/home/ucuser/.config/credstore/ukey"
    assert play.results[0]["path"] == path and play.results[0]["load_value"] == f"ukey:{path}"
    assert stat_of(host, path) == "600 ucuser:ucuser"
    assert stat_of(host, "/home/ucuser/.config/credstore") == "700 ucuser:ucuser"
    host.sh(f"for i in $(seq 50); do journalctl -b _UID={uid} -o cat | grep -q {sha(secret)} && exit 0; sleep 0.1;"
            " done; exit 1")
    assert host.play([cred, unit]).results[1]["restarted"] is False
    remove_unit = {"name": "uc-ureader.service", "scope": "user", "state": "absent"}
    host.play([{"remote_user": "ucuser", "unitcraft.systemd.unit": remove_unit},
               {**credential_task("ukey", scope="user", encrypt="none", state="absent"), "remote_user": "ucuser"}])


def test_lint_points_a_secret_in_environment_to_credentials(bench_host: BenchHost) -> None:
    host = bench_host
    secret = new_secret("env")
    task = {"name": "unit", "unitcraft.systemd.unit": {
        "name": "uc-envleak.service",
        "sections": {"Service": {"ExecStart": "/usr/bin/sleep infinity", "Environment": f"API_TOKEN={secret}"}}}}
    result = host.play([task], check=True).results[0]
    (finding,) = [f for f in result["lint"] if f["rule"] == "secret-in-environment"]
    assert finding["message"].startswith("Environment=API_TOKEN=... looks like a secret")
    warnings = [w for w in result.get("warnings", []) if "secret-in-environment" in w]
    assert len(warnings) == 1 and secret not in warnings[0] and secret not in finding["message"]


@pytest.fixture(scope="module", autouse=True)
def cleanup(bench_host: BenchHost) -> Any:
    yield
    host = bench_host
    host.play([{"unitcraft.systemd.unit": {"name": UNIT, "state": "absent"}},
               credential_task(state="absent")])
    host.exec("rm", "-f", READER)
