#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: converge N services on one bench container, two ways, and print the figures.

1. `unitcraft.systemd.unit` with `units` (one task),
2. the `ansible.builtin.template` + handler + `ansible.builtin.systemd_service` loop users write today,
each first on a fresh set of units and then again unchanged, plus a one-task `ping` playbook
as the floor of what any run over the podman connection costs.

Targets (issue 3): first converge <= 10 % of the loop's time; unchanged run <= 2x ping.
This prints figures; it is not a timed test and never fails on them.

Usage: .venv/bin/python tests/bench/benchmark/converge_50.py [--units 50] [--flavour debian12]
(with UNITCRAFT_COLLECTIONS_PATH pointing at an installed copy, or it builds one under build/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402


def timed(playbook: str, inventory: Path, collections: str, extra: dict) -> tuple[float, bench.PlayResult]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(extra, f)
    start = time.monotonic()
    result = bench.run_playbook(HERE / playbook, inventory, collections, ["--extra-vars", f"@{f.name}"])
    elapsed = time.monotonic() - start
    os.unlink(f.name)
    if result.rc != 0:
        raise SystemExit(f"{playbook} failed:\n{result.failure_summary()}\n{result.stderr[-2000:]}")
    return elapsed, result


def changed_tasks(result: bench.PlayResult) -> int:
    return sum(1 for r in result.results if r.get("changed"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--flavour", default="debian12", choices=list(bench.FLAVOURS))
    args = parser.parse_args()

    collections = os.environ.get("UNITCRAFT_COLLECTIONS_PATH") or str(bench.install_collection())
    name = f"unitcraft-test-benchmark-{os.getpid()}"
    host = bench.start_container(name, args.flavour)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inventory = Path(tmp) / "inventory.ini"
            inventory.write_text(f"{name} ansible_connection=containers.podman.podman "
                                 "ansible_python_interpreter=/usr/bin/python3\n")
            ours = {"bench_units": [{"name": f"bench-ours-{i:02d}.service"} for i in range(args.units)]}
            loop = {"bench_loop_units": [f"bench-loop-{i:02d}.service" for i in range(args.units)]}
            reloads0 = bench.count_daemon_reloads(host)
            ping = timed("ping.yml", inventory, collections, {})[0]
            first_ours, r1 = timed("collection.yml", inventory, collections, ours)
            reloads_ours = bench.count_daemon_reloads(host) - reloads0
            again_ours, r2 = timed("collection.yml", inventory, collections, ours)
            first_loop, r3 = timed("template_loop.yml", inventory, collections, loop)
            again_loop, r4 = timed("template_loop.yml", inventory, collections, loop)
            active = host.exec("sh", "-c", "systemctl list-units --no-legend --state=active 'bench-*' | wc -l").stdout
    finally:
        bench.stop_container(name)

    n = args.units
    print(f"\nconverging {n} services on one {args.flavour} container (systemd as PID 1, podman connection)")
    print(f"{'run':<44}{'seconds':>9}")
    print(f"{'ping playbook (one task)':<44}{ping:>9.2f}")
    print(f"{'unitcraft.systemd.unit, first converge':<44}{first_ours:>9.2f}")
    print(f"{'unitcraft.systemd.unit, unchanged':<44}{again_ours:>9.2f}")
    print(f"{'template + systemd_service loop, first':<44}{first_loop:>9.2f}")
    print(f"{'template + systemd_service loop, unchanged':<44}{again_loop:>9.2f}")
    print(f"first converge ratio (ours / loop): {first_ours / first_loop:.1%}  (target <= 10%)")
    print(f"unchanged ratio (ours / loop): {again_ours / again_loop:.1%}")
    print(f"unchanged run vs ping: {again_ours / ping:.2f}x  (target <= 2x)")
    print(f"daemon-reloads in our first converge: {reloads_ours}; units active at the end: {active.strip()}")
    print(f"changed tasks: ours {changed_tasks(r1)} then {changed_tasks(r2)}; "
          f"loop {changed_tasks(r3)} then {changed_tasks(r4)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
