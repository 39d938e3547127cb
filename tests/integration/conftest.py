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


class SystemctlCounter:
    """Counts the systemctl processes started on the target, independently of the modules.

    While installed, /usr/local/bin/systemctl (first on PATH, where the modules find
    systemctl) appends one line per process to a log and then runs /usr/bin/systemctl.
    Each line holds the PID and command line of the process that made the call and the
    arguments, so the calls can be grouped by the module process that made them.
    """

    WRAPPER = "/usr/local/bin/systemctl"
    LOG = "/run/unitcraft-test-systemctl.log"
    # The process a call is attributed to: the nearest python ancestor (the module), so
    # that a call made through a shell still counts for the module that made it.
    SCRIPT = (
        "#!/bin/sh\n"
        "# test-only: counts systemctl processes; removed at the end of the test\n"
        "owner=$PPID\n"
        "while [ \"${owner:-0}\" -gt 1 ] 2>/dev/null; do\n"
        "    case \"$(tr '\\0' ' ' < /proc/$owner/cmdline 2>/dev/null)\" in *python*) break ;; esac\n"
        "    owner=$(cut -d' ' -f4 /proc/$owner/stat 2>/dev/null || echo 1)\n"
        "done\n"
        "[ \"${owner:-0}\" -gt 1 ] 2>/dev/null || owner=$PPID\n"
        "parent=$(tr '\\0' ' ' < /proc/$owner/cmdline 2>/dev/null)\n"
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
