# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for integration tests: bench containers with systemd as PID 1, and plays.

``bench_host`` runs each test once per Debian flavour (restrict with
``UNITCRAFT_FLAVOURS=debian12``). It is a ``bench.Container`` with a ``play()``
method that runs tasks with the *installed* collection against that container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "bench"))

import bench  # noqa: E402  (the path above makes it importable)
from bench import PlayResult, run_playbook  # noqa: E402,F401  (re-exported for tests)

ALL_FLAVOURS = list(bench.FLAVOURS)


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
        return self

    def inventory(self) -> Path:
        path = self.workdir / "inventory.yml"
        if not path.exists():
            hostvars = {
                "ansible_connection": "containers.podman.podman",
                "ansible_host": self.name,
                "ansible_python_interpreter": "/usr/bin/python3",
            }
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
