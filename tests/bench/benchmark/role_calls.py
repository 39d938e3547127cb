#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: per role, the remote module calls and the seconds of its first and unchanged run.

Each role runs on a fresh bench container of its own (systemd as PID 1, connection
containers.podman.podman): once on a host where it has never run (the first converge,
account creation included), then --repeat times unchanged (the median is printed). A
one-task ping playbook on the same container (median of --repeat runs, after a warm-up
run) is the floor of what any run costs there. The variables of each role run are those
of tests/integration/test_role_calls.py (remote_calls.ROLE_RUNS).

Remote calls are the module executions Ansible's own log shows on the host
(tests/bench/remote_calls.py), counted in the same runs that are timed.

Checked, not only printed (the exit status is 1 when one fails): every run succeeds, the
first converge changes something, the unchanged runs change nothing and all make the same
calls. The call budgets (first <= 4, unchanged <= 2, issue 11) are printed as met or missed;
tests/integration/test_role_calls.py is what enforces them.

Usage: .venv/bin/python tests/bench/benchmark/role_calls.py [--flavour debian12] [--repeat 3]
       [--role daemon ...]
(with UNITCRAFT_COLLECTIONS_PATH pointing at an installed copy, or it builds one under build/).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402
from converge_50 import CONNECTION, Checks, changed_tasks, inventory_for, timed, verdict  # noqa: E402
from remote_calls import ROLE_RUNS, counting_env, module_runs  # noqa: E402

FIRST_CONVERGE_MAX = 4
UNCHANGED_MAX = 2


@dataclasses.dataclass
class RoleFigures:
    role: str
    ping: list[float]
    first_calls: list[str]
    first_seconds: float
    unchanged_calls: list[str]
    unchanged_seconds: list[float]


def counted_run(playbook: str, inventory: Path, collections: str, extra: dict, log: Path
                ) -> tuple[float, bench.PlayResult, list[str]]:
    """One timed run; also the modules the host ran in it, from a log of this run only."""
    log.unlink(missing_ok=True)
    elapsed, result = timed(playbook, inventory, collections, extra, counting_env(log))
    runs = module_runs(log.read_text() if log.exists() else "")
    return elapsed, result, [module for modules in runs.values() for module in modules]


def measure_role(role: str, args: argparse.Namespace, collections: str, checks: Checks,
                 workdir: Path) -> RoleFigures:
    name = f"unitcraft-test-benchmark-{os.getpid()}-{role.replace('_', '-')}"
    bench.start_container(name, args.flavour)
    try:
        inventory = inventory_for(workdir, name)
        log = workdir / f"{role}.log"
        extra = {"bench_role": role, **ROLE_RUNS[role]}
        timed("ping.yml", inventory, collections, {}, {})  # warm-up: not counted
        ping = [timed("ping.yml", inventory, collections, {}, {})[0] for _run in range(args.repeat)]

        first_seconds, result, first_calls = counted_run("role.yml", inventory, collections, extra, log)
        checks.expect(changed_tasks(result) > 0, f"{role}: the first converge changed nothing")

        unchanged_seconds: list[float] = []
        unchanged_calls: list[list[str]] = []
        for _run in range(args.repeat):
            elapsed, result, calls = counted_run("role.yml", inventory, collections, extra, log)
            unchanged_seconds.append(elapsed)
            unchanged_calls.append(calls)
            checks.expect(changed_tasks(result) == 0, f"{role}: an unchanged run reported a change")
        checks.expect(all(calls == unchanged_calls[0] for calls in unchanged_calls),
                      f"{role}: the unchanged runs made different calls: {unchanged_calls}")
    finally:
        bench.stop_container(name)
    return RoleFigures(role, ping, first_calls, first_seconds, unchanged_calls[0], unchanged_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flavour", default="debian12", choices=list(bench.FLAVOURS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of ping and of the unchanged role run")
    parser.add_argument("--role", action="append", choices=list(ROLE_RUNS),
                        help="measure only this role (repeatable); default: all three")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    collections = os.environ.get("UNITCRAFT_COLLECTIONS_PATH") or str(bench.install_collection())
    checks = Checks()
    with tempfile.TemporaryDirectory() as tmp:
        figures = [measure_role(role, args, collections, checks, Path(tmp)) for role in args.role or ROLE_RUNS]

    print(f"\nper role: a fresh {args.flavour} container each (systemd as PID 1, connection {CONNECTION}, "
          f"{os.cpu_count()} cores shared with the containers, load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"unchanged and ping: median of {args.repeat} runs; first converge: one run; seconds are whole "
          "ansible-playbook runs")
    print(f"{'role':<16}{'first calls':>12}{'first s':>10}{'unchanged calls':>17}{'unchanged s':>13}{'ping s':>9}")
    for f in figures:
        print(f"{f.role:<16}{len(f.first_calls):>12}{f.first_seconds:>10.2f}{len(f.unchanged_calls):>17}"
              f"{statistics.median(f.unchanged_seconds):>13.2f}{statistics.median(f.ping):>9.2f}")
    for f in figures:
        print(f"  {f.role}: first {' '.join(f.first_calls) or '-'}; unchanged {' '.join(f.unchanged_calls) or '-'}; "
              f"unchanged runs {' '.join(f'{t:.2f}' for t in f.unchanged_seconds)} s; "
              f"calls first <= {FIRST_CONVERGE_MAX}: {verdict(len(f.first_calls), FIRST_CONVERGE_MAX)}, "
              f"unchanged <= {UNCHANGED_MAX}: {verdict(len(f.unchanged_calls), UNCHANGED_MAX)}")
    return checks.exit_status("checked: every first converge changed something, every unchanged run changed "
                              "nothing and made the same calls")


if __name__ == "__main__":
    sys.exit(main())
