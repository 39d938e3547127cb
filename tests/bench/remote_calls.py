# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Count the module executions an ansible-playbook run sends to each host, from Ansible's log.

Every module that runs on a host runs as one `AnsiballZ_<module>.py` file: without
pipelining, Ansible copies that file to the host and then runs it with the host's Python,
and the connection plugin logs the command at verbosity 3 (`<HOST> RUN [...]` for
containers.podman.podman, `<HOST> SSH: EXEC ...` for ssh). Counting those commands counts
what really went to the host: each loop item and each module an action plugin runs (the
`stat` of `template`, the `setup` of `service`), while controller-only actions (assert,
set_fact, debug, fail, include_*) and skipped tasks run nothing there.

`counting_env(log)` is the environment for one ansible-playbook run: it logs at verbosity 3
into LOG (the terminal output stays as it is) and turns pipelining off, since a pipelined
module is fed to Python on stdin and its file name never appears in the log.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# `<host> RUN ...` / `<host> SSH: EXEC ...`: a command sent to a host by the connection plugin
_COMMAND = re.compile(r"\| <(?P<host>[^>]+)> (?:RUN|SSH: EXEC|EXEC) (?P<command>.*)$")
# the host's Python running a module file (not the chmod or rm of that file)
_MODULE_RUN = re.compile(r"(?:^|[\s'\"])\S*python[0-9.]*\s+\S*/AnsiballZ_(?P<module>\w+)\.py\b")

# Per role, the variables of one run as a user would give them, for a bench container on
# which the role has not run yet (the programs named exist in every bench image). Used by
# tests/integration/test_role_calls.py and tests/bench/benchmark/role_calls.py.
ROLE_RUNS: dict[str, dict[str, Any]] = {
    "daemon": {
        "daemon_name": "rolecalls-daemon",  # its own system user and group: made by the first run
        "daemon_exec": "/usr/bin/sleep infinity",
        # basic (the default) with a non-root user does not start on systemd 257 in the bench
        # containers, which lack CAP_SYS_ADMIN ("Failed to keep CAP_SYS_ADMIN", 217/USER);
        # strict starts there, as molecule/daemon shows
        "daemon_hardening": "strict",
    },
    "timer_job": {
        "timer_job_name": "rolecalls-job",
        "timer_job_command": "/usr/bin/true",
        "timer_job_on_calendar": "Mon..Fri *-*-* 04:30:00",
    },
    "ntp_force_sync": {
        "ntp_force_sync_servers": ["127.0.0.1 iburst"],
    },
}


def counting_env(log: Path) -> dict[str, str]:
    """Environment additions for an ansible-playbook run whose module executions are counted."""
    return {
        "ANSIBLE_LOG_PATH": str(log),
        "ANSIBLE_LOG_VERBOSITY": "3",
        "ANSIBLE_PIPELINING": "False",
    }


def module_runs(log_text: str) -> dict[str, list[str]]:
    """Per host, the modules run there, in order (one entry per execution)."""
    runs: dict[str, list[str]] = {}
    for line in log_text.splitlines():
        command = _COMMAND.search(line)
        if not command:
            continue
        module = _MODULE_RUN.search(command.group("command"))
        if module:
            runs.setdefault(command.group("host"), []).append(module.group("module"))
    return runs
