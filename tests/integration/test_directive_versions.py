# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directive table against systemd's own man pages, and against systemd 252 and 257.

- The committed table (plugins/module_utils/_directive_versions.py) is what
  scripts/gen-directive-versions makes of the man pages in the Debian 13 bench image.
- On Debian 12 (systemd 252), ``RestartSteps: 3`` fails the task while planning, naming 254
  and 252, and nothing is written; on Debian 13 (257) the same task converges. The version
  comes from the name of systemd's library: the task runs no ``systemctl --version``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import bench
from bench import count_daemon_reloads
from conftest import REPO_ROOT, BenchHost, SystemctlCounter

GENERATOR = REPO_ROOT / "scripts" / "gen-directive-versions"
DATA_FILE = REPO_ROOT / "plugins" / "module_utils" / "_directive_versions.py"
UNIT = "versioned.service"
PATH = f"/etc/systemd/system/{UNIT}"


def man_pages(target: Path) -> list[str]:
    """Copy the unit-type man pages out of the Debian 13 image; return their names."""
    image = bench.ensure_image("debian13")
    listing = subprocess.run(["podman", "run", "--rm", "--network", "none", image, "sh", "-c",
                              "cd /usr/share/man/man5 && ls systemd.*.5.gz"],
                             check=True, capture_output=True, text=True).stdout.split()
    pages = subprocess.run(["podman", "run", "--rm", "--network", "none", image, "tar", "-C", "/usr/share/man/man5",
                            "-c", *listing], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=pages.stdout, check=True)
    return listing


def test_the_committed_table_is_what_the_generator_makes_of_the_debian_13_man_pages(tmp_path: Path) -> None:
    pages = man_pages(tmp_path)
    assert {"systemd.unit.5.gz", "systemd.service.5.gz", "systemd.exec.5.gz"} <= set(pages), pages
    run = subprocess.run([sys.executable, str(GENERATOR), "--man-dir", str(tmp_path), "--output", "-"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    committed = DATA_FILE.read_text(encoding="utf-8")
    assert run.stdout == committed, (
        "plugins/module_utils/_directive_versions.py differs from what scripts/gen-directive-versions makes of "
        "the Debian 13 man pages: run scripts/gen-directive-versions and commit the result\n"
        + subprocess.run(["diff", "-u", str(DATA_FILE), "-"], input=run.stdout, capture_output=True,
                         text=True).stdout[:6000])
    assert "'RestartSteps': ((('Service',), 254),)," in run.stdout
    assert "MAN_PAGES_VERSION = 257\n" in run.stdout


def restart_steps_task(**extra: Any) -> dict[str, Any]:
    sections = {"Unit": {"Description": "restarts with a backoff"},
                "Service": {"ExecStart": "/usr/bin/sleep infinity", "Restart": "on-failure", "RestartSec": 1,
                            "RestartSteps": 3, "RestartMaxDelaySec": 30}}
    return {"name": "unit", "unitcraft.systemd.unit": {"name": UNIT, "sections": sections, "active": True, **extra}}


def version_calls(counter: SystemctlCounter) -> list[list[str]]:
    return [args for _ppid, _parent, args in counter.last_calls if "--version" in args]


def test_restart_steps_is_refused_on_252_and_converges_on_257(
        bench_host: BenchHost, systemctl_counter: SystemctlCounter) -> None:
    host = bench_host
    systemd = bench.FLAVOURS[host.flavour].systemd_version
    reloads = count_daemon_reloads(host)
    if systemd < 254:
        for check in (True, False):
            played, processes = systemctl_counter.play([restart_steps_task()], check=check, expect_failure=True)
            result = played.results[0]
            assert result["failed"] is True
            assert result["msg"].startswith(
                f"unit {UNIT}: [Service] RestartSteps= needs systemd 254; this host runs {systemd}; "
                "[Service] RestartMaxDelaySec= needs 254."), result["msg"]
            assert "nothing was changed" in result["msg"]
            assert processes == [], "refused while planning, before any systemctl call: " + systemctl_counter.describe()
        assert host.read_file(PATH) is None, "the refused unit was written"
        assert count_daemon_reloads(host) == reloads
        assert host.systemctl_show(UNIT, "LoadState")["LoadState"] == "not-found"
        return
    steps = []
    for check in (True, False, True, False):
        steps.append(systemctl_counter.play([restart_steps_task()], check=check)[0].results[0])
        assert version_calls(systemctl_counter) == [], "the version came from the library, not from systemctl"
    assert [s["changed"] for s in steps] == [True, True, False, False]
    assert all(s["lint"] == [] for s in steps), steps
    assert "RestartSteps=3\n" in (host.read_file(PATH) or "")
    shown = host.systemctl_show(UNIT, "ActiveState", "RestartSteps", "RestartMaxDelayUSec")
    assert shown == {"ActiveState": "active", "RestartSteps": "3", "RestartMaxDelayUSec": "30s"}, shown
    assert count_daemon_reloads(host) == reloads + 1
    host.play([{"name": "remove", "unitcraft.systemd.unit": {"name": UNIT, "state": "absent", "active": False}}])


def test_the_lint_result_names_a_deprecated_directive_and_its_successor(bench_host: BenchHost) -> None:
    """MemoryLimit= is deprecated since 252: on both hosts the module's lint says to use MemoryMax=."""
    host = bench_host
    task = {"name": "unit", "unitcraft.systemd.unit": {
        "name": "deprecated.service", "validate": "errors",  # systemd-analyze warns about it too
        "sections": {"Service": {"ExecStart": "/usr/bin/sleep infinity", "MemoryLimit": "64M"}}}}
    result = host.play([task], check=True).results[0]
    assert [(f["rule"], f["key"]) for f in result["lint"]] == [("deprecated-directive", "MemoryLimit")]
    assert "use MemoryMax= instead" in result["lint"][0]["message"]
    assert any("please use MemoryMax= instead" in line for line in result["validation"]), result["validation"]
