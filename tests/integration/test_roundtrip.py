# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The unit-file model against real systemd in the bench containers.

The filters come from the installed collection (fixture ``installed_filters``), the copy
users get, never from the source tree.

- Round trip: every unit file and drop-in shipped in the image parses, and to_unit of the
  result parses back to exactly the same sections.
- Continuations and comments are read the way systemd reads them (more constructs, one
  by one, in test_parser_vs_systemd.py).
- The two seed units, written as sections and rendered, pass ``systemd-analyze verify``.
"""

from __future__ import annotations

import base64
import json
import os

from ansible.errors import AnsibleFilterError


# Trees shipped by packages; on merged-/usr Debian /lib is /usr/lib, and files are deduplicated
# by real path. User units have the same syntax and are included.
SHIPPED_TREES = ("/usr/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/user")

# Runs inside the container (python3 is in every bench image): unit files and drop-ins by
# real path, base64-encoded; symlinks to /dev/null (masks) and dangling links are skipped.
COLLECT_SCRIPT = r"""
import base64, json, os, sys
SUFFIXES = (".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target",
            ".path", ".timer", ".slice", ".scope")
files, skipped = {}, []
for tree in sys.argv[1:]:
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            dropin = os.path.basename(dirpath).endswith(".d") and name.endswith(".conf")
            if not (name.endswith(SUFFIXES) or dropin):
                continue
            real = os.path.realpath(path)
            if real == "/dev/null" or not os.path.isfile(real):
                skipped.append(path)
                continue
            if real not in files:
                with open(real, "rb") as handle:
                    files[real] = base64.b64encode(handle.read()).decode()
json.dump({"files": files, "skipped": skipped}, sys.stdout)
"""


def test_round_trip_shipped_units(bench_host, installed_filters, record_property, capsys):
    from_unit, to_unit = installed_filters["from_unit"], installed_filters["to_unit"]
    proc = bench_host.exec("python3", "-c", COLLECT_SCRIPT, *SHIPPED_TREES)
    collected = json.loads(proc.stdout)
    files = {path: base64.b64decode(data).decode("utf-8") for path, data in collected["files"].items()}
    failures = []
    for path, text in sorted(files.items()):
        name = os.path.basename(path)
        try:
            sections = from_unit(text)
            again = from_unit(to_unit(sections, unit=name))
        except AnsibleFilterError as exc:  # names the offending file's unit, section and key
            failures.append(f"{path}: {exc}")
            continue
        if again != sections:
            failures.append(f"{path}: differs after to_unit -> from_unit")
        elif [list(s) for s in again.values()] != [list(s) for s in sections.values()]:
            failures.append(f"{path}: directive order differs after to_unit -> from_unit")
    record_property("unit_files", len(files))
    record_property("skipped_links", len(collected["skipped"]))
    # reported in the test command's output, not only in captured stdout
    with capsys.disabled():
        print(f"\n{bench_host.flavour}: from_unit/to_unit round trip over {len(files)} shipped unit files "
              f"and drop-ins ({len(collected['skipped'])} masks/dangling links skipped)")
    assert not failures, "\n".join(failures)
    assert len(files) > 200, f"only {len(files)} unit files found in {SHIPPED_TREES}"


CONTINUATION_UNIT = (
    "[Unit]\n"
    "Description=first \\\n"
    "# a comment inside the continuation\n"
    "; and another\n"
    "    second\\\n"
    "third ; not a comment\n"
    "Documentation=man:a(1)\n"
    "Documentation=\n"
    "Documentation=man:b(1) \\\n"
    "  man:c(1)\n"
    "[Service]\n"
    "  ExecStart = /bin/true  \n"
    "[Unit]\n"
    "Documentation=man:d(1)\n"
)


def test_continuation_read_like_systemd(bench_host, installed_filters):
    """systemd itself loads a unit with continuations and comments; compare what it read."""
    name = "unitcraft-test-syntax.service"
    sections = installed_filters["from_unit"](CONTINUATION_UNIT, unit=name)
    assert sections["Unit"]["Description"] == "first      second third ; not a comment"
    path = f"/run/systemd/system/{name}"
    bench_host.exec("sh", "-c", 'cat > "$1"', "write", path, input=CONTINUATION_UNIT)
    try:
        # A unit file new on disk is loaded on demand (no daemon-reload needed, none done).
        shown = bench_host.systemctl_show(name, "Description", "Documentation", "LoadState")
    finally:
        bench_host.exec("rm", "-f", path)
    assert shown["LoadState"] == "loaded", shown
    assert shown["Description"] == sections["Unit"]["Description"]
    # Documentation= empties the list; what is left after it, in order:
    assert shown["Documentation"].split() == ['"man:b(1)"', '"man:c(1)"', '"man:d(1)"'] or \
        shown["Documentation"].split() == ["man:b(1)", "man:c(1)", "man:d(1)"], shown
    assert sections["Unit"]["Documentation"] == ["man:a(1)", "", "man:b(1)    man:c(1)", "man:d(1)"]


def _seed_units(flavour: str) -> dict[str, dict]:
    """The seeds' two units as sections, with commands pointed at programs in the image."""
    huobi = {
        "Unit": {"Description": "huobi downloader", "After": "rc-local.service"},
        "Service": {
            "Type": "simple",
            "User": "root",
            "Group": "root",
            "WorkingDirectory": "/opt/huobi",
            "ExecStart": "/usr/bin/python3 /opt/huobi/downloader.py huobi /var/lib/huobi/huobi.log",
            "Restart": "always",
        },
        "Install": {"WantedBy": "multi-user.target"},
    }
    if flavour == "debian12":  # chrony; a query-only sync (-q) before the daemon
        ntp_service, force_sync = "chrony.service", "/usr/sbin/chronyd -q"
    else:  # debian13: ntpsec, the seed's own ntpd -qg
        ntp_service, force_sync = "ntpsec.service", "/usr/sbin/ntpd -qg"
    ntp = {
        "Unit": {
            "Description": "ntp force synchronization once",
            "Before": ntp_service,
            "Wants": "network-online.target",
            "After": "network.target network-online.target",
        },
        "Service": {"Type": "oneshot", "ExecStart": force_sync, "RemainAfterExit": True},
        "Install": {"WantedBy": "multi-user.target"},
    }
    return {"huobi.service": huobi, "ntp-force-sync.service": ntp}


def test_seed_units_verify(bench_host, installed_filters):
    from_unit, to_unit = installed_filters["from_unit"], installed_filters["to_unit"]
    units = _seed_units(bench_host.flavour)
    workdir = bench_host.exec("mktemp", "-d", "/tmp/unitcraft-verify.XXXXXX").stdout.strip()
    try:
        bench_host.exec("mkdir", "-p", "/opt/huobi")
        bench_host.exec("sh", "-c", 'cat > /opt/huobi/downloader.py', input="print('downloader')\n")
        paths = []
        for name, sections in units.items():
            text = to_unit(sections, unit=name)
            assert from_unit(text, unit=name) == from_unit(to_unit(from_unit(text)))
            path = f"{workdir}/{name}"
            bench_host.exec("sh", "-c", 'cat > "$1"', "write", path, input=text)
            paths.append(path)
        result = bench_host.exec("systemd-analyze", "verify", "--man=no", *paths, check=False)
    finally:
        bench_host.exec("rm", "-rf", workdir, "/opt/huobi")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in units:
        assert name not in output, output
