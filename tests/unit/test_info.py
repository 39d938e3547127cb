# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unit_info's logic with a fake systemctl: batching, patterns, templates, offline, order."""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._info import (
    InfoError,
    UnitInfo,
    compare_order,
    convert_value,
    describe_paths,
    find_unit_files,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import Systemctl, split_show


class FakeSystemctl:
    """Answers show / list-unit-files / is-enabled like systemd 252 does, from tables."""

    def __init__(self, loaded: dict[str, dict[str, str]], files: dict[str, str] | None = None,
                 check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self.loaded = loaded
        self.files = files or {}
        self.commands: list[list[str]] = []

    def get_bin_path(self, name: str, required: bool = False) -> str:
        return f"/usr/bin/{name}"

    def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
        self.commands.append(argv)
        args = argv[argv.index("--") + 1:] if "--" in argv else []
        if "show" in argv:
            props = next(a for a in argv if a.startswith("--property=")).split("=", 1)[1].split(",")
            plain = [a for a in args if not any(c in a for c in "*?[")]
            if any(n.endswith("@.service") for n in plain):
                return 1, "", f"Failed to get properties: Unit name {plain[0]} is neither a valid invocation ID nor unit name."
            globs = [a for a in args if a not in plain]
            names = plain + [u for u in self.loaded if any(fnmatch.fnmatchcase(u, g) for g in globs)]
            blocks = []
            for name in names:
                state = {"Id": name, "LoadState": "not-found", **self.loaded.get(name, {})}
                blocks.append("\n".join(f"{k}={state.get(k, '')}" for k in props if k in state or k != "MainPID"))
            return 0, "\n\n".join(blocks) + ("\n" if blocks else ""), ""
        if "list-unit-files" in argv:
            rows = [f"{n} {s} -" for n, s in sorted(self.files.items())
                    if not args or any(fnmatch.fnmatchcase(n, p) for p in args)]
            return (0 if rows else 1), "".join(r + "\n" for r in rows), ""
        if "is-enabled" in argv:
            return 0, "enabled\n" * len(args), ""
        return 0, "", ""


def gateway(fake: FakeSystemctl, **kw: Any) -> Systemctl:
    return Systemctl(fake, **kw)


LOADED = {
    "dbus.service": {"LoadState": "loaded", "ActiveState": "active", "MainPID": "43", "NRestarts": "0"},
    "broken.service": {"LoadState": "loaded", "ActiveState": "failed", "MainPID": "0", "NRestarts": "3"},
    "getty@tty1.service": {"LoadState": "loaded", "ActiveState": "active", "MainPID": "77"},
}


def test_fifty_plain_names_are_one_systemctl_process() -> None:
    fake = FakeSystemctl({})
    names = [f"bulk-{i:02d}.service" for i in range(50)]
    result = UnitInfo(gateway(fake), names, None).gather()
    assert result["systemctl_calls"] == 1 == len(fake.commands)
    assert [u["Id"] for u in result["units"]] == names
    argv = fake.commands[0]
    assert argv[1:5] == ["--system", "--no-pager", "--no-ask-password", "show"] and "--all" in argv
    assert argv[-50:] == names


def test_the_gateway_counts_every_process() -> None:
    fake = FakeSystemctl(LOADED, {"getty@.service": "enabled"})
    systemctl = gateway(fake)
    systemctl.show_units(["dbus.service"], ["Id"])
    systemctl.list_unit_files(["getty*"])
    systemctl.run("daemon-reload")
    assert systemctl.calls == len(fake.commands) == 3


def test_no_units_means_no_show_of_the_manager() -> None:
    fake = FakeSystemctl({})
    assert gateway(fake).show_units([], ["Id"]) == []
    assert fake.commands == []


def test_all_loaded_units_use_one_show_with_a_pattern() -> None:
    fake = FakeSystemctl(LOADED)
    result = UnitInfo(gateway(fake), None, ["ActiveState"]).gather()
    assert result["systemctl_calls"] == 1
    assert fake.commands[0][-2:] == ["--", "*"]
    assert [u["Id"] for u in result["units"]] == sorted(LOADED)


def test_patterns_add_unit_files_and_templates_in_two_calls() -> None:
    fake = FakeSystemctl(LOADED, {"getty@.service": "enabled", "getty-static.service": "static",
                                  "dbus.service": "static"})
    result = UnitInfo(gateway(fake), ["dbus", "getty*", "nope"], ["ActiveState", "UnitFileState"]).gather()
    assert result["systemctl_calls"] == 2
    ids = [u["Id"] for u in result["units"]]
    assert ids == ["dbus.service", "getty-static.service", "getty@.service", "getty@tty1.service", "nope.service"]
    template = result["units"][2]
    assert template == {"Id": "getty@.service", "UnitFileState": "enabled"}
    show = fake.commands[1]
    # the file systemd has not loaded is asked by name, the pattern is left to systemctl
    assert show[-4:] == ["dbus.service", "nope.service", "getty-static.service", "getty*"]


def test_a_template_by_name_is_never_given_to_show() -> None:
    fake = FakeSystemctl(LOADED, {"getty@.service": "enabled"})
    result = UnitInfo(gateway(fake), ["getty@.service", "dbus.service", "gone@.service"], None).gather()
    assert all("@." not in a for argv in fake.commands if "show" in argv for a in argv)
    by_id = {u["Id"]: u for u in result["units"]}
    assert by_id["getty@.service"]["UnitFileState"] == "enabled"
    assert by_id["gone@.service"]["UnitFileState"] == "not-found"
    assert result["systemctl_calls"] == 2


def test_values_are_converted() -> None:
    fake = FakeSystemctl(LOADED)
    unit = UnitInfo(gateway(fake), ["broken.service"], ["MainPID", "NRestarts", "ActiveState"]).gather()["units"][0]
    assert unit == {"Id": "broken.service", "MainPID": 0, "NRestarts": 3, "ActiveState": "failed"}


@pytest.mark.parametrize("prop, value, expected", [
    ("MainPID", "4242", 4242),
    ("ActiveEnterTimestampMonotonic", "0", 0),
    ("MemoryCurrent", "18446744073709551615", None),
    ("MemoryCurrent", "[not set]", None),
    ("DropInPaths", "/etc/a.d/x.conf /etc/a.d/y.conf", ["/etc/a.d/x.conf", "/etc/a.d/y.conf"]),
    ("DropInPaths", "", []),
    ("ActiveState", "active", "active"),
    ("ExecMainStatus", "", ""),
])
def test_convert_value(prop: str, value: str, expected: Any) -> None:
    assert convert_value(prop, value) == expected


@pytest.mark.parametrize("names, properties, order, message", [
    (["bad/name"], None, None, "bad/name"),
    (["a b.service"], None, None, "whitespace"),
    (["dbus.service"], ["Active=State"], None, "invalid property names"),
    (["dbus.service"], None, ["a.service"], "exactly two"),
    (["dbus.service"], None, ["a*.service", "b.service"], "exactly two"),
    (["dbus.service"], None, ["a@.service", "b.service"], "templates"),
])
def test_bad_input_is_refused_before_any_call(names: list[str], properties: Any, order: Any, message: str) -> None:
    fake = FakeSystemctl(LOADED)
    with pytest.raises(InfoError, match=message):
        UnitInfo(gateway(fake), names, properties, order)
    assert fake.commands == []


def test_order_is_refused_offline(tmp_path: Path) -> None:
    with pytest.raises(InfoError, match="running manager"):
        UnitInfo(gateway(FakeSystemctl({}), root=str(tmp_path)), None, None, ["a.service", "b.service"])


def test_order_units_ride_along_in_the_same_show_but_are_not_reported() -> None:
    loaded = {
        "a.service": {"Result": "success", "InactiveExitTimestampMonotonic": "100",
                      "ActiveEnterTimestampMonotonic": "200", "InactiveEnterTimestampMonotonic": "0"},
        "b.service": {"Result": "success", "InactiveExitTimestampMonotonic": "250",
                      "ActiveEnterTimestampMonotonic": "300", "InactiveEnterTimestampMonotonic": "0"},
    }
    fake = FakeSystemctl(loaded)
    result = UnitInfo(gateway(fake), ["dbus.service"], ["ActiveState"], ["a", "b.service"]).gather()
    assert result["systemctl_calls"] == 1
    assert [u["Id"] for u in result["units"]] == ["dbus.service"]
    assert result["ordered"] is True
    assert result["order_detail"]["first_finished"] == 200 and result["order_detail"]["second_started"] == 250


def block(start: int, active: int, inactive: int = 0, result: str = "success", unit: str = "a.service") -> dict[str, str]:
    return {"Id": unit, "Result": result, "InactiveExitTimestampMonotonic": str(start),
            "ActiveEnterTimestampMonotonic": str(active), "InactiveEnterTimestampMonotonic": str(inactive)}


@pytest.mark.parametrize("a, b, ordered, prop, reason", [
    (block(100, 200), block(250, 300, unit="b.service"), True, "ActiveEnterTimestampMonotonic", "before"),
    (block(100, 200), block(200, 300, unit="b.service"), True, "ActiveEnterTimestampMonotonic", "before"),
    (block(100, 400), block(250, 300, unit="b.service"), False, "ActiveEnterTimestampMonotonic", "after"),
    # a oneshot without RemainAfterExit: finished when it went back to inactive
    (block(100, 0, 180), block(250, 0, unit="b.service"), True, "InactiveEnterTimestampMonotonic", "before"),
    # started, failed: never finished starting
    (block(100, 0, 180, result="exit-code"), block(250, 300, unit="b.service"), False, None, "Result=exit-code"),
    # restarted after B started, still activating: its last start has not finished
    (block(500, 200), block(250, 300, unit="b.service"), False, None, "not finished"),
    (block(0, 0), block(250, 300, unit="b.service"), False, None, "a.service has not started"),
    (block(100, 200), block(0, 0, unit="b.service"), False, "ActiveEnterTimestampMonotonic", "b.service has not started"),
])
def test_compare_order(a: dict[str, str], b: dict[str, str], ordered: bool, prop: str | None, reason: str) -> None:
    answer, detail = compare_order("a.service", a, "b.service", b)
    assert answer is ordered
    assert detail["first_finished_property"] == prop
    assert reason in detail["reason"]
    assert detail["second_started_property"] == "InactiveExitTimestampMonotonic"


def test_offline_reports_unit_files_in_one_call(tmp_path: Path) -> None:
    root = tmp_path
    (root / "usr/lib/systemd/system/x.service.d").mkdir(parents=True)
    (root / "etc/systemd/system/x.service.d").mkdir(parents=True)
    (root / "usr/lib/systemd/system/x.service").write_text("[Service]\n")
    (root / "etc/systemd/system/x.service").symlink_to("/dev/null")
    (root / "usr/lib/systemd/system/x.service.d/10-a.conf").write_text("")
    (root / "usr/lib/systemd/system/x.service.d/20-b.conf").write_text("")
    (root / "etc/systemd/system/x.service.d/10-a.conf").write_text("")  # hides the vendor one
    (root / "usr/lib/systemd/system/w@.service").write_text("[Service]\n")
    fake = FakeSystemctl({}, {"x.service": "masked", "w@.service": "static"})
    result = UnitInfo(gateway(fake, root=str(root)), ["x", "w@3.service", "w*", "none.service"], None).gather()
    assert result["units"] == [
        {"Id": "x.service", "UnitFileState": "masked", "UnitFilePreset": "", "FragmentPath": "/dev/null",
         "DropInPaths": ["/etc/systemd/system/x.service.d/10-a.conf", "/usr/lib/systemd/system/x.service.d/20-b.conf"]},
        {"Id": "w@3.service", "UnitFileState": "enabled", "UnitFilePreset": "",
         "FragmentPath": "/usr/lib/systemd/system/w@.service", "DropInPaths": []},
        {"Id": "w@.service", "UnitFileState": "static", "UnitFilePreset": "",
         "FragmentPath": "/usr/lib/systemd/system/w@.service", "DropInPaths": []},
        {"Id": "none.service", "UnitFileState": "not-found", "UnitFilePreset": "", "FragmentPath": "", "DropInPaths": []},
    ]
    # one list-unit-files, and is-enabled only for the instance asked by name
    assert [a for a in fake.commands[0] if not a.startswith("--") and "/" not in a][:1] == ["list-unit-files"]
    assert "is-enabled" in fake.commands[1] and fake.commands[1][-1] == "w@3.service"
    assert result["systemctl_calls"] == 2
    assert all(f"--root={root}" in argv for argv in fake.commands)


def test_dropins_of_type_prefix_and_template(tmp_path: Path) -> None:
    base = tmp_path / "etc/systemd/system"
    for folder in ("service.d", "foo-.service.d", "foo-bar@.service.d", "foo-bar@1.service.d"):
        (base / folder).mkdir(parents=True)
        (base / folder / f"{folder[:3]}-{len(folder)}.conf").write_text("")
    _fragment, dropins = find_unit_files("foo-bar@1.service", "system", str(tmp_path))
    assert sorted(p.rsplit("/", 2)[1] for p in dropins) == sorted(
        ["service.d", "foo-.service.d", "foo-bar@.service.d", "foo-bar@1.service.d"])


def test_split_show_keeps_any_number_of_blocks() -> None:
    assert split_show("") == []
    assert split_show("Id=a.service\nX=1\n\nId=b.service\n\n\n") == [{"Id": "a.service", "X": "1"}, {"Id": "b.service"}]


def test_a_failing_show_names_the_command() -> None:
    from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import SystemctlError

    class Failing(FakeSystemctl):
        def run_command(self, argv: list[str], **_: Any) -> tuple[int, str, str]:
            self.commands.append(argv)
            return 1, "", "Failed to connect to bus: No such file or directory"

    with pytest.raises(SystemctlError, match="Failed to connect to bus"):
        UnitInfo(gateway(Failing({})), ["dbus.service"], None).gather()


def test_paths_report_existence_kind_and_the_sha1_of_files(tmp_path: Path) -> None:
    (tmp_path / "usr/sbin").mkdir(parents=True)
    (tmp_path / "usr/sbin/chronyd").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "usr/bin").symlink_to("sbin", target_is_directory=True)
    described = describe_paths(["/usr/sbin/chronyd", "/usr/bin/chronyd", "/usr/sbin", "/usr/sbin/ntpd",
                                "/usr/sbin/chronyd/not-a-dir"], str(tmp_path))
    sha1 = hashlib.sha1(b"#!/bin/sh\n").hexdigest()
    assert described == {
        "/usr/sbin/chronyd": {"exists": True, "type": "file", "checksum": sha1},
        "/usr/bin/chronyd": {"exists": True, "type": "file", "checksum": sha1},  # through the symlink
        "/usr/sbin": {"exists": True, "type": "directory", "checksum": None},
        "/usr/sbin/ntpd": {"exists": False, "type": None, "checksum": None},
        "/usr/sbin/chronyd/not-a-dir": {"exists": False, "type": None, "checksum": None},
    }


def test_relative_paths_are_refused() -> None:
    with pytest.raises(InfoError, match=r"paths must be absolute paths, got \['usr/sbin/ntpd'\]"):
        describe_paths(["/usr/sbin/chronyd", "usr/sbin/ntpd"], None)
