#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the 50-unit converge over real SSH with pipelining, on 1, 4 and 8 hosts, checked.

The bench containers have no network (--network none). Ansible reaches them with its `ssh`
connection anyway: each host's ProxyCommand runs `sshd -i` inside the container through
`podman exec -i`, so ssh speaks to a real sshd over a pipe instead of a socket. The run uses
a key pair made for it, a known_hosts file holding each container's own host key (strict
checking, nothing accepted blindly), ANSIBLE_PIPELINING=True, Ansible's default ssh_args
(ControlMaster=auto, ControlPersist=60s) and its default output callback, which is what users
run (whether a run changed a host is read from its PLAY RECAP).

Every timed run starts without a master connection (the masters of the previous run are
closed), as a user's single ansible-playbook run does; inside the run every task reuses the
one master per host. The script checks that: each host's sshd accepts exactly one
connection per playbook run, also over the loop's hundred-odd tasks.

Measured, forks = hosts, a fresh set of containers per host count:
1. `unitcraft.systemd.unit` with 50 `units`, the first converge (after a warm-up ping);
2. the ping playbook and the unchanged converge, alternating, the median of --repeat runs
   of each;
3. on 1 host, the `ansible.builtin.template` + `ansible.builtin.systemd_service` loop,
   fresh and unchanged.

Controller CPU: user + system CPU of the ansible-playbook process and every process it
waited for (its workers and their ssh clients, from RUSAGE_CHILDREN), plus the CPU of the
ssh master processes, read from /proc before they are closed (ControlPersist detaches them
from ansible-playbook). Not included: the `podman exec` ProxyCommands, which stand in for
the network and do not exist on a real controller (printed apart), and everything on the
targets. On the bench the targets run on the controller's own cores.

Checked (the exit status is 1 when one fails): every unit active and enabled after every
converge on every host; the first converge changed every host and ran exactly one
daemon-reload on each, the unchanged runs changed nothing and ran none; one SSH connection
per host per run; pipelining in effect (no remote temp directory). The acceptance of issue
11: the 50-unit unchanged run on 1 host is at most 1.2x the ping playbook of the same run,
printed as PASS or FAIL.

Usage: .venv/bin/python tests/bench/benchmark/ssh_path.py [--hosts 1,4,8] [--units 50]
       [--repeat 5] [--flavour debian12] [--no-loop]
(with UNITCRAFT_COLLECTIONS_PATH pointing at an installed copy, or it builds one under build/).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from converge_50 import Checks, check_units, timed  # noqa: E402

ACCEPTANCE = 1.2
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"
ACCEPTED = "Accepted publickey for root"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Run:
    """One timed ansible-playbook run."""

    seconds: float
    cpu: float  # controller: ansible-playbook and its children, ssh masters included
    proxy_cpu: float  # the bench's podman exec ProxyCommands, not in cpu


@dataclasses.dataclass
class Row:
    kind: str  # ping, first, unchanged, loop first, loop unchanged
    label: str
    hosts: int
    runs: list[Run]

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(run.cpu for run in self.runs)

    @property
    def proxy_cpu(self) -> float:
        return statistics.median(run.proxy_cpu for run in self.runs)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """utime + stime of a live process and of the children it waited for, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # fields after the parenthesised command name start at field 3 (state)
    fields = stat.rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def proxy_pids(names: Sequence[str]) -> list[int]:
    """PIDs of the `podman exec -i NAME /usr/sbin/sshd -i` ProxyCommands of these hosts."""
    wanted = {("podman", "exec", "-i", name, "/usr/sbin/sshd", "-i") for name in names}
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = tuple((entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1])
        except OSError:
            continue
        if argv in wanted:
            pids.append(int(entry.name))
    return pids


class SshFleet:
    """Bench containers reached over SSH: a key pair, known_hosts, control sockets, inventories.

    A context manager: on exit (an error and Ctrl-C included) it closes the ssh masters and
    removes every container it started.
    """

    def __init__(self, workdir: Path, flavour: str) -> None:
        self.workdir = workdir
        self.flavour = flavour
        self.key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        self.control_dir = workdir / "cp"
        self.control_dir.mkdir()
        self.known_hosts.write_text("")
        self.started: list[str] = []
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "unitcraft-ssh-benchmark",
                        "-f", str(self.key)], check=True)

    def __enter__(self) -> SshFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_masters([])
        self.stop(list(self.started))

    def start(self, names: Sequence[str]) -> list[bench.Container]:
        """Start fresh containers, authorise the key, record their host keys."""
        hosts = []
        for name in names:
            self.started.append(name)  # before starting: a half-started one is removed too
            host = bench.start_container(name, self.flavour)
            host.exec("sh", "-c", "umask 077 && mkdir -p /root/.ssh && cat > /root/.ssh/authorized_keys",
                      input=self.key.with_suffix(".pub").read_text())
            key_type, key = host.exec("cat", HOST_KEY).stdout.split()[:2]
            with self.known_hosts.open("a") as handle:
                handle.write(f"{name} {key_type} {key}\n")
            hosts.append(host)
        return hosts

    def stop(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.started:
                bench.stop_container(name)
                self.started.remove(name)

    def inventory(self, hosts: Sequence[bench.Container], label: str) -> Path:
        proxy = "podman exec -i %h /usr/sbin/sshd -i"
        common = (f'-o ProxyCommand="{proxy}" -o UserKnownHostsFile={self.known_hosts} '
                  "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes")
        lines = ["[bench]", *(host.name for host in hosts), "", "[bench:vars]",
                 "ansible_connection=ssh", "ansible_user=root",
                 "ansible_python_interpreter=/usr/bin/python3",
                 f"ansible_ssh_private_key_file={self.key}",
                 f"ansible_ssh_common_args='{common}'"]
        inventory = self.workdir / f"{label}.ini"
        inventory.write_text("\n".join(lines) + "\n")
        return inventory

    def env(self, forks: int) -> dict[str, str]:
        # bench.run_playbook turns host key checking off and uses the JSON callback: here
        # checking is on, and the output is Ansible's default, what a user runs (the JSON
        # callback serialises every result again, a cost that grows with the result)
        return {"ANSIBLE_PIPELINING": "True", "ANSIBLE_HOST_KEY_CHECKING": "True",
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_dir), "ANSIBLE_FORKS": str(forks),
                "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}

    def close_masters(self, names: Sequence[str]) -> tuple[float, float]:
        """Close every ssh master; return their CPU and that of the hosts' ProxyCommands."""
        proxies = sum(process_cpu(pid) for pid in proxy_pids(names))
        masters = 0.0
        for socket in self.control_dir.iterdir():
            check = subprocess.run(["ssh", "-O", "check", "-o", f"ControlPath={socket}", "unused"],
                                   capture_output=True, text=True, check=False)
            found = re.search(r"pid=(\d+)", check.stderr)
            if found:
                masters += process_cpu(int(found.group(1)))
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "unused"],
                           capture_output=True, check=False)
            socket.unlink(missing_ok=True)
        return masters, proxies


def ssh_connections(host: bench.Container) -> int:
    """How many SSH connections the host's sshd accepted in this boot."""
    host.exec("journalctl", "--sync")
    out = host.exec("journalctl", "--no-pager", "-q", "-b", "-t", "sshd", "-o", "cat").stdout
    return sum(1 for line in out.splitlines() if line.startswith(ACCEPTED))


class Session:
    """The timed runs against one set of hosts."""

    def __init__(self, fleet: SshFleet, hosts: Sequence[bench.Container], collections: str) -> None:
        self.fleet = fleet
        self.hosts = list(hosts)
        self.collections = collections
        self.inventory = fleet.inventory(hosts, f"h{len(hosts)}")
        self.runs = 0

    def run(self, playbook: str, extra: dict) -> tuple[Run, bench.PlayResult]:
        cpu = children_cpu()
        elapsed, result = timed(playbook, self.inventory, self.collections, extra, self.fleet.env(len(self.hosts)))
        cpu = children_cpu() - cpu
        masters, proxies = self.fleet.close_masters([host.name for host in self.hosts])
        self.runs += 1
        return Run(elapsed, cpu + masters, proxies), result

    def check_pipelining(self, checks: Checks) -> None:
        """One untimed verbose ping: pipelining sends the module on stdin, no remote temp dir."""
        env = {**self.fleet.env(len(self.hosts)), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
        result = bench.run_playbook(HERE / "ping.yml", self.inventory, self.collections, ["-vvv"], env=env)
        self.fleet.close_masters([host.name for host in self.hosts])
        self.runs += 1
        checks.expect(result.rc == 0 and "SSH: EXEC" in result.stdout,
                      f"the verbose ping did not run over ssh: rc {result.rc}\n{result.stdout[-1500:]}")
        checks.expect("ansible-tmp-" not in result.stdout,
                      "pipelining not in effect: the ping made a remote temp directory")


RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)", re.MULTILINE)


def changed_hosts(result: bench.PlayResult) -> int:
    """Hosts with a changed task, from the PLAY RECAP of the default callback."""
    recap = {found.group("host"): int(found.group("changed")) for found in RECAP.finditer(result.stdout)}
    if not recap:
        raise SystemExit(f"no PLAY RECAP in the output:\n{result.stdout[-2000:]}")
    return sum(1 for changed in recap.values() if changed)


def measure_converge(args: argparse.Namespace, fleet: SshFleet, count: int, collections: str,
                     checks: Checks) -> list[Row]:
    names = [f"unitcraft-sshbench-{os.getpid()}-h{count}-{index}" for index in range(count)]
    hosts = fleet.start(names)
    try:
        session = Session(fleet, hosts, collections)
        units = [f"bench-ssh-{index:02d}.service" for index in range(args.units)]
        ours = {"bench_units": [{"name": unit} for unit in units]}
        where = f"{count} host(s)"

        session.run("ping.yml", {})  # warm-up: not counted
        if count == 1:
            session.check_pipelining(checks)

        reloads = {host.name: bench.count_daemon_reloads(host) for host in hosts}
        first, result = session.run("collection.yml", ours)
        checks.expect(changed_hosts(result) == count,
                      f"{where}: the first converge changed {changed_hosts(result)} of {count} hosts")
        for host in hosts:
            ran = bench.count_daemon_reloads(host) - reloads[host.name]
            checks.expect(ran == 1, f"{where}: the first converge ran {ran} daemon-reloads on {host.name}, not one")
            check_units(checks, host, units, f"the first converge on {host.name}")

        reloads = {host.name: bench.count_daemon_reloads(host) for host in hosts}
        ping, unchanged = [], []
        for _run in range(args.repeat):
            # ping and unchanged runs alternate, so that a change of the machine's load
            # meets both alike
            ping.append(session.run("ping.yml", {})[0])
            run, result = session.run("collection.yml", ours)
            unchanged.append(run)
            changed = changed_hosts(result)
            checks.expect(changed == 0, f"{where}: an unchanged run changed {changed} hosts")
        for host in hosts:
            ran = bench.count_daemon_reloads(host) - reloads[host.name]
            checks.expect(ran == 0, f"{where}: the unchanged runs ran {ran} daemon-reloads on {host.name}")
            check_units(checks, host, units, f"the unchanged runs on {host.name}")
            connections = ssh_connections(host)
            checks.expect(connections == session.runs,
                          f"{where}: {host.name} accepted {connections} SSH connections in {session.runs} runs")
    finally:
        fleet.stop(names)
    return [
        Row("ping", f"ping playbook (one task), median of {args.repeat}", count, ping),
        Row("first", f"`unit` with {args.units} `units`, first converge", count, [first]),
        Row("unchanged", f"`unit` with {args.units} `units`, unchanged, median of {args.repeat}", count, unchanged),
    ]


def measure_loop(args: argparse.Namespace, fleet: SshFleet, collections: str, checks: Checks
                 ) -> tuple[list[Row], int]:
    name = f"unitcraft-sshbench-{os.getpid()}-loop"
    (host,) = fleet.start([name])
    try:
        session = Session(fleet, [host], collections)
        units = [f"bench-loop-{index:02d}.service" for index in range(args.units)]
        loop = {"bench_loop_units": units}
        session.run("ping.yml", {})  # warm-up: not counted
        reloads = bench.count_daemon_reloads(host)
        first = session.run("template_loop.yml", loop)[0]
        loop_reloads = bench.count_daemon_reloads(host) - reloads
        check_units(checks, host, units, "the loop's first run")
        again, result = session.run("template_loop.yml", loop)
        checks.expect(changed_hosts(result) == 0, "the loop's unchanged run reported a change")
        check_units(checks, host, units, "the loop's unchanged run")
        connections = ssh_connections(host)
        checks.expect(connections == session.runs,
                      f"the loop's host accepted {connections} SSH connections in {session.runs} runs")
    finally:
        fleet.stop([name])
    rows = [Row("loop first", "`template` + `systemd_service` loop, first run", 1, [first]),
            Row("loop unchanged", "`template` + `systemd_service` loop, unchanged", 1, [again])]
    return rows, loop_reloads


def fit(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Least squares a + b * hosts."""
    xs = [x for x, _y in points]
    ys = [y for _x, y in points]
    if len(set(xs)) < 2:
        return 0.0, ys[0] / xs[0]
    slope = statistics.covariance(xs, ys) / statistics.variance(xs)
    return statistics.fmean(ys) - slope * statistics.fmean(xs), slope


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def version_line(argv: Sequence[str]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).splitlines()[0].strip()


def ssh_defaults() -> tuple[str, bool]:
    """The ssh_args Ansible will use here, and whether the ssh plugin can pipeline."""
    from ansible import constants
    from ansible.plugins.loader import connection_loader, init_plugin_loader

    init_plugin_loader([])
    plugin = connection_loader.get("ssh", class_only=True)  # loading it registers its options
    ssh_args = constants.config.get_config_value("ssh_args", plugin_type="connection", plugin_name="ssh")
    return ssh_args, bool(plugin.has_pipelining)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", default="1,4,8", help="host counts, comma-separated; 1 is needed for the acceptance")
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--flavour", default="debian12", choices=list(bench.FLAVOURS))
    parser.add_argument("--repeat", type=int, default=5, help="runs of ping and of the unchanged converge")
    parser.add_argument("--no-loop", action="store_true", help="skip the template loop")
    args = parser.parse_args()
    counts = sorted({int(value) for value in args.hosts.split(",")})
    if 1 not in counts:
        parser.error("--hosts must include 1 (the acceptance is measured on 1 host)")
    # SIGTERM and SIGHUP unwind like Ctrl-C (SIGINT too when started ignoring it, as a
    # background job does), so that the containers are removed
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)

    collections = os.environ.get("UNITCRAFT_COLLECTIONS_PATH") or str(bench.install_collection())
    ssh_args, can_pipeline = ssh_defaults()
    began = datetime.datetime.now(datetime.timezone.utc)
    load_before = load()
    checks = Checks()
    rows: list[Row] = []
    loop_reloads = None
    try:
        with tempfile.TemporaryDirectory(prefix="unitcraft-ssh-") as tmp, SshFleet(Path(tmp), args.flavour) as fleet:
            for count in counts:
                rows += measure_converge(args, fleet, count, collections, checks)
            if not args.no_loop:
                loop_rows, loop_reloads = measure_loop(args, fleet, collections, checks)
                rows += loop_rows
    except KeyboardInterrupt as interrupt:
        print(f"interrupted ({interrupt or 'Ctrl-C'}); the containers of this run are removed", file=sys.stderr)
        return 130
    load_after = load()

    cores = os.cpu_count()
    print(f"\nSSH path: {args.units} services per host on fresh {args.flavour} containers (systemd as PID 1), "
          f"{began:%Y-%m-%d %H:%M} UTC")
    print(f"{version_line([bench.ansible_bin('ansible'), '--version'])}; {version_line(['ssh', '-V'])}")
    print(f"connection ssh (has_pipelining={can_pipeline}), ANSIBLE_PIPELINING=True, ssh_args {ssh_args!r} "
          "(Ansible's default); ProxyCommand podman exec -i HOST /usr/sbin/sshd -i")
    print(f"controller: {cores} cores, shared with the targets (the containers run on the same machine); "
          f"load average (1, 5, 15 min) {load_before} before, {load_after} after")
    print("every run starts without an ssh master and opens one per host; forks = hosts; "
          "controller CPU = ansible-playbook + its children + ssh masters, without the podman exec ProxyCommands\n")
    print("| run | hosts | seconds | controller CPU s | CPU s per host | podman exec CPU s (not included) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.label} | {row.hosts} | {row.seconds:.2f} | {row.cpu:.2f} | {row.cpu / row.hosts:.2f} "
              f"| {row.proxy_cpu:.2f} |")
    print()
    for row in rows:
        if len(row.runs) > 1:
            print(f"  {row.label}, {row.hosts} host(s): "
                  f"{' '.join(f'{run.seconds:.2f}s/{run.cpu:.2f}cpu' for run in row.runs)}")
    if loop_reloads is not None:
        print(f"daemon-reloads in the loop's first run: {loop_reloads}")

    for kind, name in (("first", "first converge"), ("unchanged", "unchanged run")):
        points = [(row.hosts, row.cpu) for row in rows if row.kind == kind]
        fixed, per_host = fit(points)
        predicted = fixed + 100 * per_host
        print(f"controller CPU per {name} ~ {fixed:.2f} s + {per_host:.3f} s x hosts (least squares over "
              f"{', '.join(str(x) for x, _y in points)} hosts); 100 hosts: {predicted:.1f} CPU s, "
              f"at least {predicted / (cores or 1):.1f} s of wall time on {cores} cores")

    ping = next(row for row in rows if row.hosts == 1 and row.kind == "ping")
    unchanged = next(row for row in rows if row.hosts == 1 and row.kind == "unchanged")
    ratio = unchanged.seconds / ping.seconds
    passed = ratio <= ACCEPTANCE
    print(f"acceptance (issue 11): {args.units}-unit unchanged run on 1 host / ping playbook = "
          f"{unchanged.seconds:.2f} / {ping.seconds:.2f} = {ratio:.2f}x (at most {ACCEPTANCE}x): "
          f"{'PASS' if passed else 'FAIL'}")
    checked = checks.exit_status("checked: one daemon-reload per host in each first converge, none in the unchanged "
                                 "runs; every unit active and enabled after every run; one SSH connection per host "
                                 "per run; no remote temp directory")
    return 0 if passed and checked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
