# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon role's secrets as systemd credentials, on real systemd 252 and 257."""

from __future__ import annotations

import hashlib
import json

import yaml

from bench import PlayResult, run_playbook
from conftest import BenchHost, start_count

PROGRAM = """\
#!/bin/sh
# what the service saw: a hash of its credential, into its state directory (root-only 0700)
sha256sum "$CREDENTIALS_DIRECTORY/apikey" | cut -d' ' -f1 > /var/lib/credsd/apikey.sha256
exec sleep infinity
"""


def role(secret_var: str = "secret", state: str = "started") -> list[dict[str, object]]:
    return [{"name": "daemon", "ansible.builtin.include_role": {"name": "unitcraft.systemd.daemon"},
             "vars": {"daemon_name": "credsd", "daemon_exec": "/usr/local/bin/credsd",
                      "daemon_create_user": True, "daemon_hardening": "strict", "daemon_state": state,
                      "daemon_credentials": {"apikey": "{{ %s }}" % secret_var}}}]


def play_verbose(host: BenchHost, tasks: list[dict[str, object]], extra_vars: dict[str, str]) -> PlayResult:
    """The play with -vvv and --diff, as an operator debugging it would run it."""
    playbook = host.workdir / f"verbose-{len(list(host.workdir.iterdir()))}.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    extra = host.workdir / "verbose-vars.json"
    extra.write_text(json.dumps(extra_vars))
    return run_playbook(playbook, host.inventory(), host.collections_path, ["-vvv", "--diff", "-e", f"@{extra}"],
                        host=host.name)


def seen(host: BenchHost) -> str:
    return (host.read_file("/var/lib/credsd/apikey.sha256") or "").strip()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_the_service_reads_its_secret_and_a_new_one_restarts_it_once(bench_host: BenchHost) -> None:
    host = bench_host
    host.exec("sh", "-c", "cat > /usr/local/bin/credsd && chmod 755 /usr/local/bin/credsd", input=PROGRAM)
    first, second = "s3cr3t-first-0123", "s3cr3t-second-4567"
    try:
        done = host.play(role(), extra_vars={"secret": first}, diff=True)
        assert seen(host) == digest(first), "the service did not read the secret it was given"
        unit = host.read_file("/etc/systemd/system/credsd.service")
        assert "LoadCredentialEncrypted=apikey" in unit and first not in unit
        assert first not in host.exec("systemctl", "show", "credsd.service").stdout
        assert first not in done.stdout, "the secret is in the play's results or diff"
        mode = host.exec("stat", "-c", "%a %U", "/etc/credstore.encrypted/apikey").stdout.split()
        assert mode == ["600", "root"]
        assert host.exec("runuser", "-u", "nobody", "--", "cat", "/etc/credstore.encrypted/apikey",
                         check=False).returncode != 0, "an unprivileged user can read the credential"

        started = start_count(host, "credsd.service")
        same = host.play(role(), extra_vars={"secret": first})
        assert not any(r.get("changed") for r in same.results), "the same secret changed something"
        assert start_count(host, "credsd.service") == started

        rotated = play_verbose(host, role(), {"secret": second})
        assert rotated.rc == 0, rotated.stderr[-2000:]
        assert second not in rotated.stdout + rotated.stderr, "the secret is in the -vvv output of the run"
        assert start_count(host, "credsd.service") == started + 1, "a new secret restarts the service exactly once"
        assert seen(host) == digest(second)
        assert start_count(host, "credsd.service") == started + 1

        host.play(role(state="absent"), extra_vars={"secret": second})
        assert host.read_file("/etc/credstore.encrypted/apikey") is None
    finally:
        host.sh("systemctl stop credsd.service; rm -f /etc/systemd/system/credsd.service "
                "/etc/credstore.encrypted/apikey; systemctl daemon-reload", check=False)


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
