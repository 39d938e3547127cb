# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fleet scenario's tests share: the hosts' batches, the rollout's records, reads.

molecule runs one tests directory after each step (molecule.yml); this file is the
parent of all three, so each imports it as ``conftest``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
# The rollout's batches (serial: 2 over the inventory order of molecule.yml's platforms).
FIRST_BATCH = ("unitcraft-test-fleet-1-debian12", "unitcraft-test-fleet-2-debian13")
LATER_BATCH = ("unitcraft-test-fleet-3-debian12", "unitcraft-test-fleet-4-debian13")
UNIT = "huobi.service"
PROGRAM = "/opt/huobi/downloader.py"
LOG = "/var/log/huobi/huobi.log"


def fleet_host(name: str):
    """A testinfra host by name, for tests that concern one batch only."""
    # the bench's ssh_config (molecule.yml gives testinfra the same one)
    config = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "build" / "ssh" / "config"
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(config))


def show(host, unit: str, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {unit} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def record(name: str) -> dict[str, Any]:
    """A record the side effects kept: fleet-before.json, fleet-rollout-VERSION.json."""
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / f"fleet-{name}.json"
    return json.loads(path.read_text())


def program_version(host) -> str:
    """Which of the scenario's downloader versions is installed, by content."""
    installed = host.file(PROGRAM).sha256sum
    for candidate in sorted((SCENARIO / "files").glob("downloader-*.py")):
        if hashlib.sha256(candidate.read_bytes()).hexdigest() == installed:
            return candidate.stem.split("-", 1)[1]
    return f"unknown (sha256 {installed})"


def starts(host) -> int:
    """How many times PID 1 started the downloader in this boot (one "Started" line each)."""
    host.check_output("journalctl --sync")
    lines = host.check_output(f"journalctl -b -q -o cat _PID=1 UNIT={UNIT}").splitlines()
    return sum(1 for line in lines if line.startswith("Started "))


def program_file(host) -> str:
    """The program file's inode and mtime: a new copy of it changes both."""
    return host.check_output(f"stat -c '%i %Y' {PROGRAM}")


def running_version(host) -> tuple[str, str]:
    """The version and PID of the newest log line, which must be under 2 s old."""
    stamp, version, _market, pid = host.file(LOG).content_string.splitlines()[-1].split()
    assert time.time() - float(stamp) < 2, f"the newest line of {LOG} is {time.time() - float(stamp):.1f}s old"
    return version, pid
