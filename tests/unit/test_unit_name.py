# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import (
    UNIT_TYPES,
    UnitName,
    escape_unit_name_part,
    parse_unit_name,
)

SYSTEMD_ESCAPE = shutil.which("systemd-escape")

VALID_NAMES = [
    ("huobi.service", "huobi", None, "service"),
    ("ntp-force-sync.service", "ntp-force-sync", None, "service"),
    ("foo@.service", "foo", "", "service"),
    ("foo@bar.service", "foo", "bar", "service"),
    ("getty@tty1.service", "getty", "tty1", "service"),
    ("systemd-fsck@dev-disk-by\\x2duuid-1234.service", "systemd-fsck", "dev-disk-by\\x2duuid-1234", "service"),
    ("srv-data.mount", "srv-data", None, "mount"),
    ("a:b_c.d.timer", "a:b_c.d", None, "timer"),
    ("user@1000.service", "user", "1000", "service"),
    ("x@a@b.socket", "x", "a@b", "socket"),  # systemd allows '@' inside an instance
    ("-.slice", "-", None, "slice"),
    ("a" * 247 + ".service", "a" * 247, None, "service"),  # 255 characters
] + [(f"u.{kind}", "u", None, kind) for kind in UNIT_TYPES]


@pytest.mark.parametrize(("name", "prefix", "instance", "kind"), VALID_NAMES)
def test_valid_names(name, prefix, instance, kind):
    parsed = parse_unit_name(name)
    assert parsed == UnitName(name=name, prefix=prefix, instance=instance, type=kind)
    assert parsed.is_template is (instance == "")
    assert parsed.is_instance is bool(instance)
    assert parsed.template == (f"{prefix}@.{kind}" if instance else None)


INVALID_NAMES = [
    ("", "invalid unit name '': it is empty"),
    ("huobi", "invalid unit name 'huobi': it has no type suffix such as .service"),
    (".service", "invalid unit name '.service': it has no type suffix such as .service"),
    ("huobi.servic", "invalid unit name 'huobi.servic': unknown unit type 'servic'"),
    ("huobi.conf", "invalid unit name 'huobi.conf': unknown unit type 'conf'"),
    ("../etc/passwd.service", "invalid unit name '../etc/passwd.service': it contains '/'"),
    ("/etc/systemd/system/x.service", "invalid unit name '/etc/systemd/system/x.service': it contains '/'"),
    ("a b.service", "invalid unit name 'a b.service': it contains whitespace"),
    ("a\tb.service", "invalid unit name 'a\\tb.service': it contains whitespace"),
    ("a\nb.service", "invalid unit name 'a\\nb.service': it contains whitespace"),
    ("..service", "invalid unit name '..service': it contains '..'"),
    ("a..b.service", "invalid unit name 'a..b.service': it contains '..'"),
    ("@foo.service", "invalid unit name '@foo.service': nothing before '@'"),
    ("@.service", "invalid unit name '@.service': nothing before '@'"),
    ("fo$o.service", "invalid unit name 'fo$o.service': it contains '$'"),
    ("fö.service", "invalid unit name 'fö.service': it contains 'ö'"),
    ("a*?.service", "invalid unit name 'a*?.service': it contains '*', '?'"),
    ("a" * 248 + ".service", "invalid unit name '" + "a" * 248 + ".service': it is 256 characters long, the maximum is 255"),
]


@pytest.mark.parametrize(("name", "message"), INVALID_NAMES)
def test_invalid_names(name, message):
    with pytest.raises(UnitFileError) as info:
        parse_unit_name(name)
    assert str(info.value).startswith(message)


def test_non_string_name():
    with pytest.raises(UnitFileError, match="must be a string"):
        parse_unit_name(None)  # type: ignore[arg-type]


# Awkward inputs: spaces, dots, slashes, unicode, leading dots, dashes, backslashes.
ESCAPE_TABLE = [
    # text, escaped, escaped --path (None: systemd-escape --path refuses it)
    ("", "", "-"),
    ("/", "-", "-"),
    ("//", "--", "-"),
    ("/srv/data", "-srv-data", "srv-data"),
    ("/srv/data/", "-srv-data-", "srv-data"),
    ("srv/data", "srv-data", "srv-data"),
    ("/srv//./data//", "-srv--.-data--", "srv-data"),
    ("/srv/../x", "-srv-..-x", None),
    ("x/..", "x-..", None),
    (".", "\\x2e", None),
    ("..", "\\x2e.", None),
    ("./", "\\x2e-", None),
    ("/./", "-.-", "-"),
    ("./x", "\\x2e-x", "x"),
    (".dot", "\\x2edot", "\\x2edot"),
    ("/.dot", "-.dot", "\\x2edot"),
    ("/home/.config/a.b", "-home-.config-a.b", "home-.config-a.b"),
    ("a b", "a\\x20b", "a\\x20b"),
    ("/mnt/my disk", "-mnt-my\\x20disk", "mnt-my\\x20disk"),
    ("a-b", "a\\x2db", "a\\x2db"),
    ("/-", "-\\x2d", "\\x2d"),
    ("a\\b", "a\\x5cb", "a\\x5cb"),
    ("a..b", "a..b", "a..b"),
    ("a:b_c.d", "a:b_c.d", "a:b_c.d"),
    ("ä€", "\\xc3\\xa4\\xe2\\x82\\xac", "\\xc3\\xa4\\xe2\\x82\\xac"),
    ("/srv/数据", "-srv-\\xe6\\x95\\xb0\\xe6\\x8d\\xae", "srv-\\xe6\\x95\\xb0\\xe6\\x8d\\xae"),
    ("emoji 🙂", "emoji\\x20\\xf0\\x9f\\x99\\x82", "emoji\\x20\\xf0\\x9f\\x99\\x82"),
    ("tab\tnl\n", "tab\\x09nl\\x0a", "tab\\x09nl\\x0a"),
    ("a@b%c", "a\\x40b\\x25c", "a\\x40b\\x25c"),
    ("UPPER~lower", "UPPER\\x7elower", "UPPER\\x7elower"),
    ("/" + "a" * 256, "-" + "a" * 256, None),
]


@pytest.mark.parametrize(("text", "plain", "path"), ESCAPE_TABLE)
def test_escape_table(text, plain, path):
    assert escape_unit_name_part(text) == plain
    if path is None:
        with pytest.raises(UnitFileError, match="cannot escape path"):
            escape_unit_name_part(text, path=True)
    else:
        assert escape_unit_name_part(text, path=True) == path


def _systemd_escape(text: str, path: bool) -> str | None:
    argv = [SYSTEMD_ESCAPE] + (["--path"] if path else []) + ["--", text]
    result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        return None
    return result.stdout.decode("utf-8").rstrip("\n")


@pytest.mark.skipif(SYSTEMD_ESCAPE is None, reason="systemd-escape not installed")
@pytest.mark.parametrize("path", [False, True], ids=["plain", "path"])
@pytest.mark.parametrize("text", [row[0] for row in ESCAPE_TABLE])
def test_escape_agrees_with_systemd_escape(text, path):
    expected = _systemd_escape(text, path)
    if expected is None:
        with pytest.raises(UnitFileError):
            escape_unit_name_part(text, path=path)
    else:
        assert escape_unit_name_part(text, path=path) == expected


def test_escape_rejects_non_string():
    with pytest.raises(UnitFileError, match="must be a string"):
        escape_unit_name_part(5)  # type: ignore[arg-type]
