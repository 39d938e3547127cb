# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the guide's rollout playbook as a user would, and keep what happened on each host.

Usage: run_rollout.py VERSION RECORD -i INVENTORY [-i INVENTORY...]

Runs ``ansible-playbook rollout.yml -e downloader_version=VERSION`` (the environment is
molecule's: its ansible.cfg and collections) with the JSON stdout callback, writes RECORD
and prints it: the return code, the hosts of each batch in the order they ran, and per
host the result of every task that ran there. The side effects assert on it, and the
tests read it. Exits 0 whatever the playbook's outcome: judging it is the caller's job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROLLOUT = Path(__file__).resolve().parent / "rollout.yml"


def summarise(rc: int, output: dict[str, Any], version: str) -> dict[str, Any]:
    """The record: one play entry of the JSON callback per batch, results per host."""
    batches: list[list[str]] = []
    hosts: dict[str, list[dict[str, Any]]] = {}
    for play in output.get("plays", []):
        batch: list[str] = []
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if host not in batch:
                    batch.append(host)
                hosts.setdefault(host, []).append({"task": task["task"]["name"], **result})
        batches.append(batch)
    return {"version": version, "rc": rc, "batches": batches, "hosts": hosts, "stats": output.get("stats", {})}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("version")
    parser.add_argument("record", type=Path)
    parser.add_argument("-i", "--inventory", action="append", required=True)
    args = parser.parse_args()
    playbook = Path(sys.executable).parent / "ansible-playbook"
    argv = [str(playbook)]
    for inventory in args.inventory:
        argv += ["-i", inventory]
    argv += ["-e", f"downloader_version={args.version}", str(ROLLOUT)]
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    # the callback's one JSON document; a callback enabled by the environment may add text after it
    start = proc.stdout.find("{")
    try:
        output = json.JSONDecoder().raw_decode(proc.stdout[start:])[0] if start >= 0 else {}
    except json.JSONDecodeError:
        output = {}
    record = summarise(proc.returncode, output, args.version)
    if not output:
        record["unparsed"] = {"stdout": proc.stdout[-4000:], "stderr": proc.stderr[-4000:]}
    args.record.write_text(json.dumps(record, indent=1))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
