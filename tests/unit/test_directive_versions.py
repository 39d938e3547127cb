# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The directive table that knows systemd versions: its generator, its look-ups, the target's
version (read once, from the library's file name), and the refusal while planning.

The table's agreement with the man pages of the Debian 13 image is checked in
tests/integration/test_directive_versions.py (it needs the image).
"""

from __future__ import annotations

import gzip
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
# unit_dir is a fixture: the task writes into a test directory
from test_manager import SERVICE, FakeModule, params, unit_dir  # noqa: F401 pylint: disable=unused-import

from ansible_collections.unitcraft.systemd.plugins.module_utils import _directive_versions as data
from ansible_collections.unitcraft.systemd.plugins.module_utils._directives import (
    OLDEST_TARGET,
    Deprecation,
    added_in,
    depends_on_version,
    deprecation,
    deprecation_of,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._file_plan import FilePlanner
from ansible_collections.unitcraft.systemd.plugins.module_utils._manager import TaskError, UnitTask, build_requests
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, SystemctlError
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemd_version import (
    FEATURES,
    TargetSystemd,
    library_version,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "scripts" / "gen-directive-versions"


def load_generator() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gen_directive_versions", str(GENERATOR))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# ---- the data and its look-ups ----------------------------------------------------------------

def test_the_data_comes_from_the_pages_of_debian_13() -> None:
    assert data.MAN_PAGES_VERSION == 257
    assert len(data.ADDED) > 400


@pytest.mark.parametrize(("section", "key", "version"), [
    ("Service", "RestartSteps", 254),
    ("Service", "RestartMaxDelaySec", 254),
    ("Service", "OOMPolicy", 243),
    ("Scope", "OOMPolicy", 253),  # one directive, two sections, two versions
    ("Socket", "PrivatePIDs", 257),  # an exec setting, read by [Socket] too
    ("Slice", "MemoryZSwapWriteback", 256),
    ("Unit", "WantsMountsFor", 256),
    ("Service", "ExecStart", None),  # older than the pages' notes
    ("Service", "NoSuchDirective", None),
    ("Timer", "RestartSteps", None),  # not read in that section
])
def test_added_in(section: str, key: str, version: int | None) -> None:
    assert added_in(section, key) == version


def test_every_replacement_that_names_a_directive_is_in_the_table() -> None:
    for name, (sections, _deprecated, _ignored, instead) in data.DEPRECATED.items():
        if instead.endswith("="):
            for section in sections:
                assert added_in(section, instead[:-1]) is not None, (name, section, instead)


@pytest.mark.parametrize(("dep", "version", "applies"), [
    (Deprecation(252, 258, "MemoryMax="), None, True),
    (Deprecation(252, 258, "MemoryMax="), 251, False),
    (Deprecation(252, 258, "MemoryMax="), 252, True),
    (Deprecation(None, 258, ""), 257, False),
    (Deprecation(None, 258, ""), 258, True),
])
def test_deprecation_applies(dep: Deprecation, version: int | None, applies: bool) -> None:
    assert dep.applies(version) is applies


def test_deprecations() -> None:
    assert deprecation("Service", "MemoryLimit") == Deprecation(252, 258, "MemoryMax=")
    assert deprecation("Timer", "MemoryLimit") is None
    assert deprecation("Service", "MemoryMax") is None
    assert deprecation_of("exec-prefix-!!") == Deprecation(None, 258, "AmbientCapabilities=")
    assert deprecation_of("sysv-scripts").ignored == 260


@pytest.mark.parametrize(("sections", "depends"), [
    ({"Unit": {"Description": "x", "After": "a.service"}, "Service": {"ExecStart": "/bin/true", "Restart": "always"},
      "Install": {"WantedBy": "multi-user.target"}}, False),
    ({"Service": {"ExecStart": "/bin/true", "RestartSteps": 3}}, True),
    ({"Service": {"RestartSteps": None}}, False),
    ({"Service": {"MemoryLimit": "1G"}}, True),
    ({"Service": {"ExecStart": "!!/bin/true"}}, True),
    ({"Unit": {"SourcePath": "/etc/init.d/foo"}}, True),
    ({"Service": None}, False),
])
def test_depends_on_version(sections: dict[str, Any], depends: bool) -> None:
    assert depends_on_version(sections) is depends
    assert OLDEST_TARGET == 239


# ---- the generator on pages written for the test ----------------------------------------------

PAGE = r"""'\" t
.TH "SYSTEMD\&.SERVICE" "5" "" "systemd 257.13" "systemd.service"
.SH "OPTIONS"
.PP
\fIType=\fR
.RS 4
Configures the mechanism\&.
.RE
.PP
\fIRestartMode=\fR
.RS 4
Takes a string value:
.sp
.RS 4
If set to
\fBdebug\fR, the service manager logs at debug level\&.
.sp
Added in version 257\&.
.RE
.sp
Added in version 254\&.
.RE
.PP
\fIFooSec=\fR, \fIBarSec=\fR
.RS 4
Two settings in one entry\&.
.sp
.if n \{\
.RS 4
.\}
.nf
FooSec=5
.fi
.if n \{\
.RE
.\}
.sp
Added in version 250\&.
.RE
.SH "EXAMPLES"
.PP
\fIType=\fR
.RS 4
An example, not a setting\&.
.sp
Added in version 999\&.
.RE
"""


def write_pages(directory: Path, service: str = PAGE) -> None:
    generator = load_generator()
    for page in ["systemd.unit", *generator.PAGE_SECTIONS]:
        text = service if page == "systemd.service" else (
            f'.TH "X" "5" "" "systemd 257.13" "{page}"\n.SH "OPTIONS"\n')
        (directory / f"{page}.5.gz").write_bytes(gzip.compress(text.encode()))


def test_generator_reads_the_entry_level_version_only(tmp_path: Path) -> None:
    write_pages(tmp_path)
    version, added, deprecated = load_generator().collect(tmp_path)
    assert version == 257
    # RestartMode=debug (257) is a value's note, nested deeper: the setting is from 254
    assert added == {"Type": {"Service": None}, "RestartMode": {"Service": 254},
                     "FooSec": {"Service": 250}, "BarSec": {"Service": 250}}
    assert deprecated == {}


def test_generator_refuses_a_heading_it_does_not_know(tmp_path: Path) -> None:
    write_pages(tmp_path, PAGE.replace('.SH "OPTIONS"', '.SH "NEW THINGS"'))
    generator = load_generator()
    with pytest.raises(generator.ManPageError, match="under the heading 'NEW THINGS'"):
        generator.collect(tmp_path)


def test_generator_reads_deprecations_from_history() -> None:
    lines = [".SH \"HISTORY\"", ".PP", "systemd 252", ".RS 4",
             "Options for controlling the Legacy Control Group Hierarchy are now fully deprecated:",
             r"\fICPUShares=\fR\fI\fIweight\fR\fR,", r"\fIMemoryLimit=\fR\fI\fIbytes\fR\fR\&.", ".sp",
             r"Added in version 252\&.", ".RE", ".PP", "systemd 253", ".RS 4", r"\fIOther=\fR was added\&.", ".RE",
             ".SH \"SEE ALSO\""]
    assert load_generator().history(lines) == {"CPUShares": 252, "MemoryLimit": 252}


def test_generated_text_is_the_committed_file_for_the_same_table() -> None:
    """render() of the committed data's own content gives the committed file back (the format is stable)."""
    generator = load_generator()
    added = {name: {section: version for sections, version in rows for section in sections}
             for name, rows in data.ADDED.items()}
    deprecated = {name: (row[0], row[1]) for name, row in data.DEPRECATED.items() if name in generator.CGROUP_V1_INSTEAD}
    text = generator.render(data.MAN_PAGES_VERSION, added, deprecated)
    assert text == Path(data.__file__).read_text(encoding="utf-8")


# ---- the target's version ------------------------------------------------------------------------

def library(top: Path, relative: str) -> None:
    path = top / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.mark.parametrize("relative", [
    "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so",  # Debian 12
    "usr/lib/systemd/libsystemd-shared-252.so",  # Arch
    "usr/lib64/systemd/libsystemd-shared-252.12-1.fc41.so",  # Fedora: the whole version in the name
    "lib/systemd/libsystemd-shared-252.so",  # Ubuntu before merged /usr
])
def test_library_version(tmp_path: Path, relative: str) -> None:
    library(tmp_path, relative)
    assert library_version(str(tmp_path)) == 252


def test_library_version_unknown_when_none_or_several(tmp_path: Path) -> None:
    assert library_version(str(tmp_path)) is None
    library(tmp_path, "usr/lib/systemd/libsystemd-shared-252.so")
    library(tmp_path, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so")
    assert library_version(str(tmp_path)) is None


class VersionModule(FakeModule):
    """Answers `systemctl --version` like systemd 252 does."""

    def run_command(self, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
        if "--version" in argv:
            self.commands.append(argv)
            return 0, "systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT\n", ""
        return super().run_command(argv, **kwargs)


def test_the_version_comes_from_the_library_without_a_process(tmp_path: Path) -> None:
    library(tmp_path, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so")
    module = VersionModule()
    target = TargetSystemd(Systemctl(module), top=str(tmp_path))
    assert target.version() == 257 and target.has("hierarchical-dropins")
    assert module.commands == []


def test_without_a_library_systemctl_is_asked_once(tmp_path: Path) -> None:
    module = VersionModule()
    target = TargetSystemd(Systemctl(module), top=str(tmp_path))
    assert target.version() == 252 and target.version() == 252
    assert module.commands == [["/usr/bin/systemctl", "--system", "--no-pager", "--no-ask-password", "--version"]]


def test_known_for_reads_only_when_the_sections_need_it(tmp_path: Path) -> None:
    module = VersionModule()
    target = TargetSystemd(Systemctl(module), top=str(tmp_path))
    assert target.known_for({"Service": {"ExecStart": "/bin/true"}}) is None
    assert module.commands == []
    assert target.known_for({"Service": {"RestartSteps": 3}}) == 252


def test_offline_under_a_root_the_version_is_not_known(tmp_path: Path) -> None:
    library(tmp_path, "usr/lib/systemd/libsystemd-shared-252.so")
    target = TargetSystemd(Systemctl(VersionModule(), root="/srv/image"), top=str(tmp_path))
    assert target.known_for({"Service": {"RestartSteps": 3}}) is None
    # offline on / (systemd not PID 1): the installed systemd reads the files at the next boot
    target = TargetSystemd(Systemctl(VersionModule(), root="/"), top=str(tmp_path))
    assert target.known_for({"Service": {"RestartSteps": 3}}) == 252


def test_a_version_nobody_can_tell_checks_nothing(tmp_path: Path) -> None:
    class Silent(FakeModule):
        def run_command(self, argv: list[str], **kwargs: Any) -> tuple[int, str, str]:
            return (1, "", "systemctl: not found") if "--version" in argv else super().run_command(argv, **kwargs)

    target = TargetSystemd(Systemctl(Silent()), top=str(tmp_path))
    assert target.known_for({"Service": {"RestartSteps": 3}}) is None
    with pytest.raises(SystemctlError):
        target.version()


def test_features_are_named() -> None:
    assert FEATURES["hierarchical-dropins"] == 245


# ---- refused while planning -----------------------------------------------------------------------

def task_on(module: FakeModule, top: Path, **kw: Any) -> UnitTask:
    p = params(**kw)
    task = UnitTask(module, build_requests(p), scope=p["scope"], root=p["root"], settle=0)
    task.files.systemd.top = str(top)  # type: ignore[union-attr]
    task.gate.sleep = lambda seconds: None
    return task


@pytest.fixture()
def debian12(tmp_path: Path) -> Path:
    top = tmp_path / "host"
    library(top, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so")
    return top


RESTART_STEPS = {"Service": {**SERVICE["Service"], "Restart": "on-failure", "RestartSec": 1, "RestartSteps": 3,
                             "RestartMaxDelaySec": 30}}


def test_a_directive_too_new_for_the_host_is_refused_before_anything_is_written(
        unit_dir: Path, debian12: Path) -> None:  # noqa: F811
    module = FakeModule()
    task = task_on(module, debian12, name="app.service", sections=RESTART_STEPS, validate="strict", active=True)
    with pytest.raises(TaskError) as raised:
        task.run()
    assert raised.value.msg.startswith(
        "unit app.service: [Service] RestartSteps= needs systemd 254; this host runs 252; "
        "[Service] RestartMaxDelaySec= needs 254. systemd 252 would ignore them")
    assert "nothing was changed" in raised.value.msg
    assert not (unit_dir / "app.service").exists()
    assert module.commands == [], "refused while planning: not a single systemctl call"


def test_raw_content_is_checked_too(unit_dir: Path, debian12: Path) -> None:  # noqa: F811
    task = task_on(FakeModule(), debian12, name="app.service", validate="errors",
                   content="[Service]\nExecStart=/bin/true\nRestartSteps=3\n")
    with pytest.raises(TaskError, match=r"RestartSteps= needs systemd 254; this host runs 252\. "):
        task.run()


def test_a_new_enough_host_converges(unit_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    top = tmp_path / "debian13"
    library(top, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so")
    result = task_on(FakeModule(), top, name="app.service", sections=RESTART_STEPS, validate="strict",
                     lint="error").run()
    assert result["changed"] is True and result["units"][0]["lint"] == []
    assert "RestartSteps=3\n" in (unit_dir / "app.service").read_text()


def test_validate_off_writes_it_and_the_lint_says_why_it_is_ignored(unit_dir: Path, debian12: Path) -> None:  # noqa: F811
    result = task_on(FakeModule(), debian12, name="app.service", sections=RESTART_STEPS, validate="off").run()
    assert result["changed"] is True
    assert [(f["rule"], f["key"]) for f in result["units"][0]["lint"]] == [
        ("needs-newer-systemd", "RestartSteps"), ("needs-newer-systemd", "RestartMaxDelaySec")]


def test_an_unchanged_file_is_not_refused(unit_dir: Path, debian12: Path) -> None:  # noqa: F811
    """As validation, the check is for files that change: a rerun of what is there passes."""
    first = task_on(FakeModule(), debian12, name="app.service", sections=RESTART_STEPS, validate="off").run()
    assert first["changed"] is True
    again = task_on(FakeModule(), debian12, name="app.service", sections=RESTART_STEPS, validate="strict").run()
    assert again["units"][0]["file_changed"] is False


def test_the_lint_result_names_deprecations_for_the_hosts_version(unit_dir: Path, debian12: Path) -> None:  # noqa: F811
    sections = {"Service": {**SERVICE["Service"], "MemoryLimit": "1G"}}
    result = task_on(FakeModule(), debian12, name="app.service", sections=sections, validate="off").run()
    (finding,) = result["units"][0]["lint"]
    assert finding["rule"] == "deprecated-directive" and "use MemoryMax= instead" in finding["message"]


def test_a_planner_without_a_target_checks_nothing(tmp_path: Path) -> None:
    planner = FilePlanner("system", None, str(tmp_path))
    (request,) = build_requests(params(name="app.service", sections=RESTART_STEPS, validate="strict"))
    assert planner.plan(request).file_changed is True
