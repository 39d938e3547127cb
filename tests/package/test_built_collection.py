# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The built collection as Galaxy and execution-environment builders see it.

Run by the build stage of scripts/test after the tarball is built and installed:
UNITCRAFT_COLLECTIONS_PATH names the installed copy (build/collections), the tarball is in
its sibling dist/. The tools come from the .venv-publish virtualenv (scripts/setup).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = Path(os.environ.get("UNITCRAFT_COLLECTIONS_PATH") or REPO_ROOT / "build" / "collections")
PUBLISH_BIN = Path(os.environ.get("UNITCRAFT_VENV_PUBLISH") or REPO_ROOT / ".venv-publish") / "bin"
IMPORTER_CONFIG = Path(__file__).with_name("galaxy-importer.cfg")

# Test-only content: it needs the repository (bench, containers, virtualenvs) to run.
TEST_ONLY = ("molecule/", "tests/bench/", "tests/integration/", "tests/smoke/",
             "tests/requirements/", "tests/package/", ".mypy_cache/")
# What users of the installed collection need beside the plugins and roles.
USER_FILES = ("README.md", "LICENSE", "meta/runtime.yml", "meta/execution-environment.yml",
              "meta/ee-requirements.txt", "docs/docsite/extra-docs.yml", "playbooks/demo.yml",
              "changelogs/changelog.yaml")


def _tool(name: str) -> str:
    path = PUBLISH_BIN / name
    assert path.is_file(), f"{path} missing: run `bash scripts/setup venv-publish`"
    return str(path)


@pytest.fixture(scope="module")
def tarball() -> Path:
    found = sorted((COLLECTIONS.parent / "dist").glob("unitcraft-systemd-*.tar.gz"))
    assert len(found) == 1, f"expected one built tarball in {COLLECTIONS.parent / 'dist'}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def members(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def _is_playbook(text: bytes) -> bool:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, list) and any(
        isinstance(item, dict) and ("hosts" in item or "ansible.builtin.import_playbook" in item
                                    or "import_playbook" in item)
        for item in data)


def test_tarball_ships_no_test_only_files(members: dict[str, bytes]) -> None:
    shipped = sorted(name for name in members if name.startswith(TEST_ONLY))
    assert shipped == []


def test_tarball_ships_playbooks_only_from_playbooks_dir(members: dict[str, bytes]) -> None:
    plays = sorted(name for name, text in members.items()
                   if name.endswith((".yml", ".yaml")) and _is_playbook(text))
    assert plays, "no playbook found at all: the check would prove nothing"
    assert [name for name in plays if not name.startswith("playbooks/")] == []


def test_tarball_ships_what_users_need(members: dict[str, bytes]) -> None:
    assert [name for name in USER_FILES if name not in members] == []
    for role in ("daemon", "timer_job", "ntp_force_sync"):
        assert f"roles/{role}/meta/argument_specs.yml" in members


def test_galaxy_importer_reports_nothing(tarball: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GALAXY_IMPORTER_")}
    # ansible-doc and ansible-lint are found on PATH; without them the importer only warns
    env.update(GALAXY_IMPORTER_CONFIG=str(IMPORTER_CONFIG), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               PATH=f"{PUBLISH_BIN}{os.pathsep}{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    # (it writes importer_result.json into its working directory)
    run = subprocess.run([_tool("python"), "-m", "galaxy_importer.main", str(tarball)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600, check=False)
    output = run.stdout + run.stderr
    print(output)
    assert run.returncode == 0, output
    assert "Importer processing completed successfully" in output
    assert "Linting collection via ansible-lint" in output and "ansible-lint run complete" in output
    reported = [line for line in output.splitlines()
                if line.startswith(("WARNING", "ERROR", "CRITICAL", "Traceback"))]
    assert reported == []


def test_execution_environment_introspection_lists_jmespath_only() -> None:
    installed = COLLECTIONS / "ansible_collections" / "unitcraft" / "systemd"
    assert (installed / "MANIFEST.json").is_file(), f"no installed collection at {installed}"
    run = subprocess.run([_tool("ansible-builder"), "introspect", str(COLLECTIONS)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    print(run.stdout)
    report = yaml.safe_load(run.stdout)
    assert report["python"] == ["jmespath>=1.0.0  # from collection unitcraft.systemd"]
    assert report["system"] == []
