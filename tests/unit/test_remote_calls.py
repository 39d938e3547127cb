# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The counter of remote module calls (tests/bench/remote_calls.py) on log lines as Ansible writes them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from remote_calls import counting_env, module_runs  # noqa: E402

TMP = "/root/.ansible/tmp/ansible-tmp-1796160321.9-31419-23"
PREFIX = "2026-12-01 21:25:22,145 p=31387 u=root n=ansible INFO| "

# One ping over containers.podman.podman: mkdir, PUT, chmod, run, rm. Only the run counts.
PODMAN_PING = [
    f"<web1> RUN [b'/usr/bin/podman', b'exec', b'web1', b'/bin/sh', b'-c', b'( umask 77 && mkdir -p \"{TMP}\" )']",
    f"<web1> PUT /root/.ansible/tmp/ansible-local-1/tmpx TO {TMP}/AnsiballZ_ping.py",
    f"<web1> RUN [b'/usr/bin/podman', b'exec', b'web1', b'/bin/sh', b'-c', b'chmod u+rwx {TMP}/ {TMP}/AnsiballZ_ping.py"
    " && sleep 0']",
    f"<web1> RUN [b'/usr/bin/podman', b'exec', b'web1', b'/bin/sh', b'-c', b'/usr/bin/python3 {TMP}/AnsiballZ_ping.py"
    " && sleep 0']",
    f"<web1> RUN [b'/usr/bin/podman', b'exec', b'web1', b'/bin/sh', b'-c', b'rm -f -r {TMP}/ > /dev/null 2>&1"
    " && sleep 0']",
]
SSH_COMMAND = (f"<db1> SSH: EXEC ssh -C -o ControlMaster=auto db1 '/bin/sh -c '\"'\"'/usr/bin/python3.11 "
               f"{TMP}/AnsiballZ_command.py && sleep 0'\"'\"''")


def log(*lines: str) -> str:
    return "\n".join(PREFIX + line for line in lines) + "\n"


def test_one_module_over_podman_counts_once() -> None:
    assert module_runs(log(*PODMAN_PING)) == {"web1": ["ping"]}


def test_each_run_counts_per_host_in_order() -> None:
    text = log(*PODMAN_PING, SSH_COMMAND, *[line.replace("ping", "stat") for line in PODMAN_PING])
    assert module_runs(text) == {"web1": ["ping", "stat"], "db1": ["command"]}


def test_lines_that_run_no_module_count_nothing() -> None:
    text = log(PODMAN_PING[0], PODMAN_PING[1], PODMAN_PING[2], PODMAN_PING[4],
               "TASK [check the values] *****", "<web1> ESTABLISH PODMAN CONNECTION FOR USER: root")
    assert module_runs(text) == {}


def test_counting_env_logs_at_verbosity_3_without_pipelining(tmp_path: Path) -> None:
    env = counting_env(tmp_path / "ansible.log")
    assert env == {"ANSIBLE_LOG_PATH": str(tmp_path / "ansible.log"), "ANSIBLE_LOG_VERBOSITY": "3",
                   "ANSIBLE_PIPELINING": "False"}
