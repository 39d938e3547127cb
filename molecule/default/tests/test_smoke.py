# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a person would check by hand after converge, over testinfra's ssh:// backend."""

from __future__ import annotations

UNIT = "unitcraft-smoke.service"


def _show(host, *props: str) -> dict[str, str]:
    argv = " ".join(f"-p {prop}" for prop in props)
    out = host.check_output(f"systemctl show {UNIT} {argv}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_unit_is_loaded_from_etc(host) -> None:
    show = _show(host, "LoadState", "FragmentPath")
    assert show == {"LoadState": "loaded", "FragmentPath": f"/etc/systemd/system/{UNIT}"}


def test_unit_is_enabled_and_active(host) -> None:
    service = host.service(UNIT)
    assert service.is_enabled
    assert service.is_running
    show = _show(host, "UnitFileState", "ActiveState", "SubState", "ExecMainPID")
    assert show["UnitFileState"] == "enabled"
    assert (show["ActiveState"], show["SubState"]) == ("active", "running")
    assert host.process.get(pid=int(show["ExecMainPID"])).args == "/usr/bin/sleep infinity"


def test_unit_file_is_the_rendered_text(host) -> None:
    unit_file = host.file(f"/etc/systemd/system/{UNIT}")
    assert unit_file.user == "root"
    assert unit_file.mode == 0o644
    assert unit_file.content_string == (
        "[Unit]\n"
        "Description=unitcraft molecule smoke service\n"
        "Documentation=man:systemd.service(5)\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        "ExecStart=/usr/bin/sleep infinity\n"
        "Restart=on-failure\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def test_enabled_through_multi_user_target(host) -> None:
    link = host.file(f"/etc/systemd/system/multi-user.target.wants/{UNIT}")
    assert link.is_symlink
    assert link.linked_to == f"/etc/systemd/system/{UNIT}"


def test_dropin_is_merged(host) -> None:
    show = _show(host, "Nice", "DropInPaths")
    assert show["Nice"] == "5"
    assert show["DropInPaths"] == f"/etc/systemd/system/{UNIT}.d/nice.conf"
