# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for integration tests: bench containers with systemd as PID 1, and plays.

``bench_host`` runs each test once per Debian flavour (restrict with
``UNITCRAFT_FLAVOURS=debian12``). It is a ``bench.Container`` with a ``play()``
method that runs tasks with the *installed* collection against that container.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "bench"))

import bench  # noqa: E402  (the path above makes it importable)
from bench import PlayResult, run_playbook  # noqa: E402,F401  (re-exported for tests)

ALL_FLAVOURS = list(bench.MATRIX_FLAVOURS)


def selected_flavours() -> list[str]:
    """Flavours to test: all, or those named in UNITCRAFT_FLAVOURS (comma list)."""
    wanted = os.environ.get("UNITCRAFT_FLAVOURS", "").strip()
    if not wanted:
        return ALL_FLAVOURS
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in bench.FLAVOURS]
    if unknown:
        raise pytest.UsageError(
            f"UNITCRAFT_FLAVOURS names unknown flavours {unknown}; known: {ALL_FLAVOURS}"
        )
    return names


def count_daemon_reloads(host: bench.Container) -> int:
    """How many daemon-reloads PID 1 of the container logged in the current boot.

    systemd 252 logs "Reloading." and 257 logs "Reloading..." once per reload.
    """
    return bench.count_daemon_reloads(host)


# ---------------------------------------------------------------------------
# The collection under test, installed from a locally built tarball
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def collections_path() -> str:
    """ANSIBLE_COLLECTIONS_PATH holding unitcraft.systemd as a user would install it."""
    given = os.environ.get("UNITCRAFT_COLLECTIONS_PATH")
    if given:
        return given
    try:
        return str(bench.install_collection())
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"building/installing the collection failed:\n{exc.stdout}\n{exc.stderr}")


# ---------------------------------------------------------------------------
# Bench hosts
# ---------------------------------------------------------------------------


class BenchHost(bench.Container):
    """A bench container that can also run plays with the installed collection."""

    collections_path: str
    workdir: Path

    def _bind(self, collections_path: str, workdir: Path) -> BenchHost:
        self.collections_path = collections_path
        self.workdir = workdir
        self._plays = 0
        # Ansible and exec() reach the container over SSH from here on (see bench.SshAccess)
        bench.ssh_access().authorize(self.name)
        return self

    def inventory(self) -> Path:
        """The host's inventory: Ansible's ssh connection with pipelining, through `sshd -i` (bench.SshAccess)."""
        path = self.workdir / "inventory.yml"
        if not path.exists():
            hostvars = bench.ssh_access().hostvars(self.name)
            path.write_text(yaml.safe_dump({"all": {"hosts": {self.name: hostvars}}}))
        return path

    def play(
        self,
        tasks: Sequence[Mapping[str, Any]] | str,
        *,
        check: bool = False,
        diff: bool = False,
        extra_vars: Mapping[str, Any] | None = None,
        expect_failure: bool = False,
    ) -> PlayResult:
        """Run tasks (a list of task dicts or a YAML string) in one play on this host.

        ``results[i]`` of the returned PlayResult is the result of task i. A failed
        play raises AssertionError unless expect_failure; with expect_failure, a
        play that succeeds raises it.
        """
        task_list = yaml.safe_load(tasks) if isinstance(tasks, str) else list(tasks)
        if not isinstance(task_list, list):
            raise TypeError(f"tasks must be a list of task dicts, got {type(task_list)}")
        self._plays += 1
        play_dir = self.workdir / f"play-{self._plays:03d}"
        play_dir.mkdir()
        playbook = play_dir / "playbook.yml"
        playbook.write_text(
            yaml.safe_dump(
                [{"hosts": "all", "gather_facts": False, "tasks": task_list}],
                sort_keys=False,
            )
        )
        args: list[str] = []
        if check:
            args.append("--check")
        if diff:
            args.append("--diff")
        if extra_vars:
            vars_file = play_dir / "extra_vars.json"
            vars_file.write_text(json.dumps(dict(extra_vars)))
            args += ["--extra-vars", f"@{vars_file}"]
        result = run_playbook(
            playbook, self.inventory(), self.collections_path, args, host=self.name
        )
        if result.rc != 0 and not expect_failure:
            raise AssertionError(
                f"play failed (rc {result.rc}) on {self.name}:\n{result.failure_summary()}\n"
                f"--- stderr ---\n{result.stderr[-4000:]}\n"
                f"--- playbook {playbook} ---\n{playbook.read_text()}"
            )
        if result.rc == 0 and expect_failure:
            raise AssertionError(
                f"play was expected to fail on {self.name} but succeeded:\n"
                f"{json.dumps(result.results, indent=1)[:4000]}"
            )
        return result


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist (``--dist loadgroup``): one group per file and flavour.

    A group runs on one worker, in the file's order, against that worker's container of
    the flavour: tests of a file may build on each other (a reboot last, a unit installed
    by an earlier test), while the two flavours of a long file run on different workers.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        flavour = callspec.params.get("bench_host") if callspec is not None else None
        # no "@" in the name: xdist appends "@GROUP" to the node id and splits at the last "@"
        group = item.nodeid.split("::", 1)[0] + (f":{flavour}" if flavour else "")
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session", params=selected_flavours(), ids=str)
def bench_host(
    request: pytest.FixtureRequest,
    collections_path: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BenchHost]:
    """One booted container per flavour for the whole session (removed at the end)."""
    flavour: str = request.param
    name = f"unitcraft-test-{flavour}-{os.getpid()}"
    try:
        container = bench.start_container(name, flavour)
    except bench.BenchError as exc:
        bench.stop_container(name)
        pytest.fail(f"could not start the {flavour} bench container: {exc}")
    host = BenchHost(container.name, container.flavour, container.image)
    host._bind(collections_path, tmp_path_factory.mktemp(f"plays-{flavour}"))
    try:
        yield host
    finally:
        bench.stop_container(name)


@pytest.fixture()
def daemon_reloads() -> Any:
    """The count_daemon_reloads function, for tests that prefer a fixture to an import."""
    return count_daemon_reloads


# ---------------------------------------------------------------------------
# Evidence taken on the target, independent of what the modules report
# ---------------------------------------------------------------------------


def journal_cursor(host: bench.Container) -> str:
    """A cursor at the end of the container's journal: later lines come after it."""
    host.exec("journalctl", "--sync")
    out = host.exec("journalctl", "-q", "-n", "0", "--show-cursor").stdout
    marker = "-- cursor: "
    lines = [line for line in out.splitlines() if line.startswith(marker)]
    if not lines:
        raise AssertionError(f"journalctl printed no cursor: {out!r}")
    return lines[-1][len(marker):].strip()


def journal_barrier(host: bench.Container, timeout: float = 30) -> None:
    """Wait until journald has stored every message sent to its native socket before this call.

    PID 1 logs through that socket, whose datagrams journald reads in order: a marker sent
    through it now is stored after all of them. `journalctl --sync` alone once left a
    unit's "Started" line out of the journal on a machine at load 16 (systemd 252) although
    the unit ran its new process; a message still queued in the socket would explain it.
    """
    script = ('m="unitcraft-barrier-$$-$(date +%s%N)"; printf "MESSAGE=%s\\n" "$m" | logger --journald || exit 2; '
              f'end=$(( $(date +%s) + {int(timeout)} )); '
              'until journalctl -q -o cat "MESSAGE=$m" | grep -q .; do '
              '[ "$(date +%s)" -lt "$end" ] || exit 1; sleep 0.05; done')
    proc = host.exec("sh", "-c", script, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"journald did not store a marker within {timeout} s (rc {proc.returncode}): "
                             f"{proc.stderr.strip()}")


def manager_messages(host: bench.Container, unit: str, cursor: str | None) -> list[str]:
    """What PID 1 logged about the unit after the cursor (its UNIT= field), in order.

    Without a cursor: what it logged in the current boot.

    The whole journal after the cursor is read and filtered here: journalctl 252 combined
    with a match (`-u UNIT --after-cursor=C`) skips the first matching entry when the
    cursor's own entry does not match, which would hide a start.
    """
    host.exec("journalctl", "--sync")
    since = f"--after-cursor={cursor}" if cursor is not None else "--boot"
    out = host.exec("journalctl", "-q", "-o", "json", "--output-fields=MESSAGE,UNIT,_PID", since).stdout
    messages = []
    for line in out.splitlines():
        entry = json.loads(line)
        message = entry.get("MESSAGE")
        if entry.get("_PID") == "1" and entry.get("UNIT") == unit and isinstance(message, str):
            messages.append(message)
    return messages


def started_lines(host: bench.Container, unit: str, cursor: str | None) -> list[str]:
    """The "Started ..." lines PID 1 logged for the unit after the cursor: one per start.

    Both images write "Started UNIT - DESCRIPTION." ("Started UNIT." without a description),
    older systemd "Started DESCRIPTION."; a restart writes one as well.
    """
    return [line for line in manager_messages(host, unit, cursor) if line.startswith("Started ")]


def start_count(host: bench.Container, unit: str) -> int:
    """How many times PID 1 started the unit in the current boot."""
    return len(started_lines(host, unit, None))


def invocation_id(host: bench.Container, unit: str) -> str:
    """The unit's InvocationID: a new one for every start of the unit."""
    return host.systemctl_show(unit, "InvocationID")["InvocationID"]


def unit_task(ignore_errors: bool = False, **args: Any) -> dict[str, Any]:
    """A task of the unit module with these arguments (ignore_errors: the play goes on when it fails)."""
    task: dict[str, Any] = {"name": "unit", "unitcraft.systemd.unit": args}
    if ignore_errors:
        task["ignore_errors"] = True
    return task


def dropin_task(**args: Any) -> dict[str, Any]:
    """A task of the dropin module with these arguments."""
    return {"name": "dropin", "unitcraft.systemd.dropin": args}


def show(host: bench.Container, unit: str, *props: str) -> dict[str, str]:
    """`systemctl show` of the unit: the given properties, or its runtime state."""
    return host.systemctl_show(unit, *(props or ("ActiveState", "SubState", "MainPID", "InvocationID",
                                                 "NRestarts", "UnitFileState", "LoadState")))


def clean(host: bench.Container, *units: str) -> None:
    """Remove units a test made, whatever state the test left them in."""
    script = "; ".join(
        f"systemctl stop {u} 2>/dev/null; systemctl disable {u} 2>/dev/null; systemctl unmask {u} 2>/dev/null; "
        f"rm -rf /etc/systemd/system/{u} /etc/systemd/system/{u}.d" for u in units)
    host.sh(script + "; systemctl daemon-reload; systemctl reset-failed", check=False)


def put_program(host: bench.Container, path: str, body: str) -> None:
    """Put a shell program in place the way Ansible's copy does: a temporary file, then a rename."""
    host.sh(f"mkdir -p $(dirname {path}) && printf '#!/bin/sh\\n%s\\n' '{body}' > {path}.tmp "
            f"&& chmod 0755 {path}.tmp && mv {path}.tmp {path}")


def wait_for(host: bench.Container, unit: str, prop: str, value: str, seconds: float = 30) -> dict[str, str]:
    """Poll `systemctl show` until the unit's property has the value; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    props = show(host, unit, prop)
    while props[prop] != value and time.monotonic() < deadline:
        time.sleep(0.2)
        props = show(host, unit, prop)
    assert props[prop] == value, f"{unit}: {prop}={props[prop]} after {seconds}s, not {value}"
    return props


# The process a systemctl call is attributed to (shell lines for the test wrappers below):
# the nearest python ancestor (the module), so that a call made through a shell still
# counts for the module that made it; $PPID when there is none. Sets owner and parent.
FIND_OWNER = (
    "owner=$PPID\n"
    "while [ \"${owner:-0}\" -gt 1 ] 2>/dev/null; do\n"
    "    case \"$(tr '\\0' ' ' < /proc/$owner/cmdline 2>/dev/null)\" in *python*) break ;; esac\n"
    "    owner=$(cut -d' ' -f4 /proc/$owner/stat 2>/dev/null || echo 1)\n"
    "done\n"
    "[ \"${owner:-0}\" -gt 1 ] 2>/dev/null || owner=$PPID\n"
    "parent=$(tr '\\0' ' ' < /proc/$owner/cmdline 2>/dev/null)\n"
)


class SystemctlCounter:
    """Counts the systemctl processes started on the target, independently of the modules.

    While installed, /usr/local/bin/systemctl (first on PATH, where the modules find
    systemctl) appends one line per process to a log and then runs /usr/bin/systemctl.
    Each line holds the PID and command line of the process that made the call and the
    arguments, so the calls can be grouped by the module process that made them.
    """

    WRAPPER = "/usr/local/bin/systemctl"
    LOG = "/run/unitcraft-test-systemctl.log"
    SCRIPT = (
        "#!/bin/sh\n"
        "# test-only: counts systemctl processes; removed at the end of the test\n"
        + FIND_OWNER +
        f"printf '%s\\t%s\\t%s\\n' \"$owner\" \"$parent\" \"$*\" >> {LOG}\n"
        "exec /usr/bin/systemctl \"$@\"\n"
    )

    def __init__(self, host: bench.Container) -> None:
        self.host = host

    def install(self) -> None:
        present = self.host.exec("test", "-e", self.WRAPPER, check=False).returncode == 0
        if present:
            raise AssertionError(f"{self.WRAPPER} already exists on {self.host.name}: not replacing it")
        self.host.exec("sh", "-c", f"cat > {self.WRAPPER}.tmp && chmod 0755 {self.WRAPPER}.tmp && "
                       f": > {self.LOG} && chmod 0666 {self.LOG} && mv {self.WRAPPER}.tmp {self.WRAPPER}",
                       input=self.SCRIPT)
        # the same PATH lookup as the modules: the wrapper must be the systemctl found first
        found = self.host.exec("sh", "-c", "command -v systemctl").stdout.strip()
        if found != self.WRAPPER:
            raise AssertionError(f"systemctl resolves to {found} on {self.host.name}, not the counting wrapper")

    def remove(self) -> None:
        self.host.exec("rm", "-f", self.WRAPPER, f"{self.WRAPPER}.tmp", self.LOG)

    def reset(self) -> None:
        self.host.exec("sh", "-c", f": > {self.LOG}")

    def calls(self) -> list[tuple[str, str, list[str]]]:
        """(owner pid, owner command line, systemctl arguments) of each process since reset()."""
        text = self.host.read_file(self.LOG) or ""
        rows = []
        for line in text.splitlines():
            ppid, parent, args = line.split("\t", 2)
            rows.append((ppid, parent, shlex.split(args) if args else []))
        return rows

    def play(self, tasks: Sequence[Mapping[str, Any]], **kwargs: Any) -> tuple[PlayResult, list[list[str]]]:
        """Run a play (BenchHost.play) and return its result and the systemctl processes it ran.

        The processes are grouped per module process, in order: group i holds the argument
        lists of the systemctl calls made by the i-th task that called systemctl at all.
        """
        self.reset()
        result = self.host.play(tasks, **kwargs)  # type: ignore[attr-defined]
        self.last_calls = self.calls()
        groups: dict[str, list[list[str]]] = {}
        for ppid, _parent, args in self.last_calls:
            groups.setdefault(ppid, []).append(args)
        return result, list(groups.values())

    def describe(self) -> str:
        """The processes of the last play, for assertion messages."""
        return "\n".join(f"parent {ppid} ({parent.strip()[:120]}): systemctl {' '.join(args)[:200]}"
                         for ppid, parent, args in getattr(self, "last_calls", []))


@pytest.fixture()
def systemctl_counter(bench_host: BenchHost) -> Iterator[SystemctlCounter]:
    """A SystemctlCounter installed on the bench host for one test, removed afterwards."""
    counter = SystemctlCounter(bench_host)
    counter.install()
    try:
        yield counter
    finally:
        counter.remove()


class SystemctlFaults(SystemctlCounter):
    """Kills the module that makes the N-th systemctl process: a converge interrupted at a chosen point.

    While installed, /usr/local/bin/systemctl (first on PATH, where the modules find
    systemctl) numbers the systemctl processes whose caller has a python ancestor (a module;
    the test's own checks run systemctl without one and pass straight through) and logs
    each, as SystemctlCounter does. Disarmed, every call then runs /usr/bin/systemctl.
    Armed with N (`arm(n)`), the N-th call sends SIGKILL to the module's Python process and
    exits without running systemctl: the calls before it were made, it and the rest were
    not. Armed with N and `after` (`arm(n, after=True)`), the N-th call runs systemctl and
    then kills the module before it reads the answer: the call took effect, the module never
    knew. Armed with N and a delay (`arm(n, delay=R)`), the N-th call starts a detached
    `sleep R; kill -9 MODULE` and runs: the module dies R seconds later, wherever it is
    (waiting for its jobs, settling). The killer checks that the PID is still the module
    (its start time) before it kills; it holds none of the call's pipes or locks, so the
    call returns at once. What happened is in `events()`.
    """

    STATE = "/run/unitcraft-test-faults"
    LOG = f"{STATE}/log"
    EVENTS = f"{STATE}/events"  # N, what (killed, delay, missed), module PID, detail
    ARMED = f"{STATE}/armed"  # "N kill", "N after" or "N delay SECONDS"
    SCRIPT = (
        "#!/bin/sh\n"
        "# test-only: kills the calling module at a chosen systemctl process; removed at the end of the test\n"
        + FIND_OWNER +
        "case \"$parent\" in *python*) ;; *) exec /usr/bin/systemctl \"$@\" ;; esac\n"
        f"state={STATE}\n"
        "exec 9>>\"$state/lock\"\n"
        "flock 9\n"
        "n=$(( $(cat \"$state/count\" 2>/dev/null || echo 0) + 1 ))\n"
        "echo \"$n\" > \"$state/count\"\n"
        "printf '%s\\t%s\\t%s\\n' \"$owner\" \"$parent\" \"$*\" >> \"$state/log\"\n"
        "at='' mode='' delay=''\n"
        "[ -r \"$state/armed\" ] && read -r at mode delay < \"$state/armed\"\n"
        "if [ \"$n\" = \"$at\" ] && [ \"$mode\" = kill ]; then\n"
        "    kill -KILL \"$owner\" && printf '%s\\tkilled\\t%s\\tat the call\\n' \"$n\" \"$owner\" >> \"$state/events\"\n"
        "    exit 137\n"
        "fi\n"
        "if [ \"$n\" = \"$at\" ] && [ \"$mode\" = after ]; then\n"
        "    exec 9>&-\n"
        "    /usr/bin/systemctl \"$@\"; rc=$?\n"
        "    kill -KILL \"$owner\" && printf '%s\\tkilled\\t%s\\tright after the call (rc %s)\\n' \"$n\" \"$owner\" \"$rc\" >> \"$state/events\"\n"
        "    exit \"$rc\"\n"
        "fi\n"
        "if [ \"$n\" = \"$at\" ] && [ \"$mode\" = delay ]; then\n"
        "    started=$(cut -d' ' -f22 /proc/$owner/stat)\n"
        "    setsid sh -c 'sleep \"$1\"\n"
        "        if [ \"$(cut -d\" \" -f22 /proc/$2/stat 2>/dev/null)\" = \"$3\" ] && kill -KILL \"$2\" 2>/dev/null; then\n"
        "            what=killed; else what=missed; fi\n"
        "        printf \"%s\\t%s\\t%s\\tafter %ss\\n\" \"$4\" \"$what\" \"$2\" \"$1\" >> \"$5/events\"' \\\n"
        "        unitcraft-test-killer \"$delay\" \"$owner\" \"$started\" \"$n\" \"$state\" </dev/null >/dev/null 2>&1 9>&- &\n"
        "    printf '%s\\tdelay\\t%s\\t%s\\n' \"$n\" \"$owner\" \"$!\" >> \"$state/events\"\n"
        "fi\n"
        "exec 9>&-\n"
        "exec /usr/bin/systemctl \"$@\"\n"
    )

    def install(self) -> None:
        self.host.exec("mkdir", "-p", self.STATE)
        super().install()

    def remove(self) -> None:
        self._end_killers()
        super().remove()
        self.host.exec("rm", "-rf", self.STATE)

    def arm(self, n: int, delay: float | None = None, after: bool = False) -> None:
        """Kill the module at its n-th systemctl process (counted from the last reset) instead of
        running it; `delay` s after the process began; or, `after`, once it has run, before the
        module reads its answer."""
        self.reset()
        plan = f"{n} delay {delay:.3f}" if delay is not None else f"{n} after" if after else f"{n} kill"
        self.host.exec("sh", "-c", f"echo '{plan}' > {self.ARMED}")

    def disarm_task(self) -> dict[str, Any]:
        """A task that disarms the wrapper: a play can rerun its killed task right after it."""
        return {"name": "disarm the systemctl fault", "ansible.builtin.file": {"path": self.ARMED, "state": "absent"}}

    def calls_by_module(self) -> list[list[list[str]]]:
        """The systemctl arguments of each call since reset(), one list per module process, in order."""
        groups: dict[str, list[list[str]]] = {}
        for owner, _parent, args in self.calls():
            groups.setdefault(owner, []).append(args)
        return list(groups.values())

    def disarm(self) -> None:
        """Let every call run again; waits for a delayed killer to be done first."""
        self.wait_killers()
        self.host.exec("rm", "-f", self.ARMED)

    def reset(self) -> None:
        self.host.exec("sh", "-c", f": > {self.LOG}; : > {self.EVENTS}; echo 0 > {self.STATE}/count")

    def events(self) -> list[tuple[int, str, str, str]]:
        """(N, what, module PID, detail) of what the wrapper and its killers did since reset()."""
        rows = []
        for line in (self.host.read_file(self.EVENTS) or "").splitlines():
            n, what, pid, detail = (line.split("\t", 3) + [""])[:4]
            rows.append((int(n), what, pid, detail))
        return rows

    def killed(self) -> tuple[int, str, str] | None:
        """(N, module PID, detail) of the kill since reset(), None when no module was killed."""
        return next(((n, pid, detail) for n, what, pid, detail in self.events() if what == "killed"), None)

    def wait_killers(self, timeout: float = 60) -> None:
        """Wait until every delayed killer has killed or missed (each writes one line when done)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            pending = {n for n, what, _pid, _detail in events if what == "delay"} \
                - {n for n, what, _pid, _detail in events if what in ("killed", "missed")}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"delayed killer(s) for call(s) {sorted(pending)} did not finish in {timeout} s")
            time.sleep(0.1)

    def _end_killers(self) -> None:
        """Stop the delayed killers this harness started that are still waiting (their own process groups)."""
        pids = [detail for _n, what, _pid, detail in self.events() if what == "delay" and detail.isdigit()]
        for pid in pids:
            self.host.exec("sh", "-c", f'grep -q unitcraft-test-killer /proc/{pid}/cmdline 2>/dev/null '
                           f'&& kill -KILL -- -{pid}', check=False)


@pytest.fixture()
def systemctl_faults(bench_host: BenchHost) -> Iterator[SystemctlFaults]:
    """A SystemctlFaults wrapper installed (disarmed) on the bench host for one test, removed afterwards."""
    faults = SystemctlFaults(bench_host)
    faults.install()
    try:
        faults.reset()
        yield faults
    finally:
        faults.remove()


# ---------------------------------------------------------------------------
# The filters of the installed collection, for tests that run them in-process
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def installed_filters(collections_path: str) -> dict[str, Callable[..., Any]]:
    """The filters of unitcraft.systemd as installed under collections_path (never the source tree)."""
    root = str(Path(collections_path).resolve())
    installed = Path(root) / "ansible_collections" / "unitcraft" / "systemd"
    if not (installed / "MANIFEST.json").is_file():
        pytest.fail(f"no installed collection at {installed}")
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module("ansible_collections.unitcraft.systemd.plugins.filter.unit_filters")
    loaded_from = Path(module.__file__ or "").resolve()
    if installed not in loaded_from.parents:
        pytest.fail(f"unit_filters was imported from {loaded_from}, not from the installed copy {installed}")
    return module.FilterModule().filters()
