# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every YAML example of the documentation runs against a bench container.

Sources: the ``yaml`` code blocks of README.md, docs/*.md and roles/*/README.md, and
the EXAMPLES of plugins/modules/*.py (read with ``ast``, without importing Ansible).
Each example is run as a reader would paste it: a playbook as a playbook (the container
is in every inventory group the examples name), tasks as the tasks of one play. It runs
twice, unless it only reads; the second run must change nothing, and the host must then
be in the state the example promises (PROMISES).

What a reader has on the host before an example (the program an ``ExecStart=`` names,
the file a ``copy: src:`` names, what an earlier example of the same page left) comes
from PREPARE, so that every example can also run alone; the example text itself is never
changed. Examples run in the sources' order, and the units they made are removed between
source files. An example that cannot run on the bench is in EXEMPT with its reason; an
example that shows output is compared with the real output (OUTPUTS). The tables are
checked against the examples found: nothing may be left out, nothing may be stale.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import bench
from bench import BenchCommandError, run_playbook
from conftest import REPO_ROOT, BenchHost

# ---------------------------------------------------------------------------
# Finding the examples
# ---------------------------------------------------------------------------

# README.md first, then the guides, the role READMEs and the modules' EXAMPLES: the
# order in which the examples run in one container.
SOURCE_GLOBS = ("README.md", "docs/*.md", "roles/*/README.md", "plugins/modules/*.py")

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```yaml[ \t]*$")
FENCE_CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
# Task keys that are not the task's action.
TASK_KEYWORDS = frozenset({
    "name", "register", "vars", "when", "loop", "loop_control", "with_items", "tags",
    "become", "become_user", "check_mode", "diff", "changed_when", "failed_when",
    "ignore_errors", "notify", "delegate_to", "run_once", "environment", "no_log",
    "until", "retries", "delay", "args", "listen", "any_errors_fatal",
})
PLAY_KEYS = frozenset({"hosts", "import_playbook", "ansible.builtin.import_playbook"})


@dataclasses.dataclass(frozen=True)
class Example:
    """One example: its id, where it is, its verbatim text and its YAML data."""

    id: str
    source: str
    line: int
    text: str
    data: Any = None
    error: str = ""

    @property
    def kind(self) -> str:
        """``playbook``, ``tasks`` or ``other`` (output or data shown in the docs)."""
        if self.error or not isinstance(self.data, list) or not self.data:
            return "other"
        if all(isinstance(item, dict) and PLAY_KEYS & item.keys() for item in self.data):
            return "playbook"
        if all(isinstance(item, dict) and _task_action(item) for item in self.data):
            return "tasks"
        return "other"

    @property
    def hosts_patterns(self) -> list[str]:
        if self.kind != "playbook":
            return []
        return [str(play["hosts"]) for play in self.data if "hosts" in play]


def _task_action(task: Mapping[str, Any]) -> str:
    """The action of a task (an FQCN or a block); empty when it does not look like a task."""
    actions = [key for key in task if key not in TASK_KEYWORDS]
    if len(actions) != 1:
        return ""
    action = actions[0]
    if action in ("block", "rescue", "always") or "." in action:
        return action
    return ""


def _parsed(example_id: str, source: str, line: int, text: str) -> Example:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return Example(example_id, source, line, text, error=f"not valid YAML: {exc}")
    return Example(example_id, source, line, text, data)


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: ``## `to_unit`: a -> b`` is ``to_unit-a---b``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def markdown_examples(path: Path) -> list[Example]:
    """The ```yaml blocks of a Markdown file.

    An example's id is the file and the anchor of the heading it is under, so that ids
    stay when blocks are added to other sections; the second block of a section gets
    `` (2)``, and so on.
    """
    source = path.relative_to(REPO_ROOT).as_posix()
    examples: list[Example] = []
    lines = path.read_text().splitlines()
    anchor = ""
    in_section = 0
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        heading = re.match(r"^#{1,6} +(.*)$", line)
        if heading:
            anchor, in_section = heading_anchor(heading.group(1)), 0
            continue
        opened = FENCE_OPEN.match(line)
        if not opened:
            if FENCE_CLOSE.match(line) or line.lstrip().startswith("```"):
                # another language's block: skip it, its "# lines" are no headings
                while index < len(lines) and not FENCE_CLOSE.match(lines[index]):
                    index += 1
                index += 1
            continue
        start = index
        while index < len(lines) and not FENCE_CLOSE.match(lines[index]):
            index += 1
        indent = len(opened.group("indent"))
        body = "\n".join(text[indent:] for text in lines[start:index]) + "\n"
        index += 1
        in_section += 1
        example_id = f"{source}#{anchor}" + (f" ({in_section})" if in_section > 1 else "")
        examples.append(_parsed(example_id, source, start + 1, body))
    return examples


def module_examples_text(path: Path) -> tuple[str, int]:
    """The raw string assigned to EXAMPLES in a module, and its first line number."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and any(isinstance(target, ast.Name) and target.id == "EXAMPLES" for target in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value, node.lineno
    raise AssertionError(f"{path}: no EXAMPLES string")


def module_examples(path: Path) -> list[Example]:
    """A module's EXAMPLES, one example per task, id ``FILE: task name``.

    A task that uses a variable an earlier task registered belongs to that task's
    example (``register: failed`` and the ``assert`` on ``failed`` run together).
    """
    source = path.relative_to(REPO_ROOT).as_posix()
    text, first_line = module_examples_text(path)
    chunks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=first_line):
        if line.startswith("- "):
            chunks.append((number, [line]))
        elif chunks:
            chunks[-1][1].append(line)
    groups: list[tuple[int, str, list[str], set[str]]] = []
    for number, chunk in chunks:
        body = "\n".join(chunk).rstrip() + "\n"
        try:
            task = (yaml.safe_load(body) or [None])[0]
        except yaml.YAMLError:
            task = None  # reported by _parsed below
        if not isinstance(task, dict):
            groups.append((number, f"line {number}", [body], set()))
            continue
        registered = {task["register"]} if "register" in task else set()
        # what the task does, without its name (a name may say "failed" without using it)
        action = json.dumps({key: value for key, value in task.items() if key != "name"})
        if groups and any(re.search(rf"\b{re.escape(name)}\b", action) for name in groups[-1][3]):
            groups[-1][2].append(body)
            groups[-1][3].update(registered)
        else:
            groups.append((number, str(task.get("name", f"line {number}")), [body], registered))
    return [_parsed(f"{source}: {name}", source, number, "\n".join(bodies)) for number, name, bodies, _registered in groups]


def find_examples() -> list[Example]:
    examples: list[Example] = []
    for pattern in SOURCE_GLOBS:
        for path in sorted(REPO_ROOT.glob(pattern)):
            examples += module_examples(path) if path.suffix == ".py" else markdown_examples(path)
    return examples


EXAMPLES = find_examples()
BY_ID = {example.id: example for example in EXAMPLES}

# ---------------------------------------------------------------------------
# What the host needs before an example (stand-ins a reader would have)
# ---------------------------------------------------------------------------

# The seed's market-data downloader, stood in for by a loop that writes to its log
# (the log given as its second argument, else /var/log/huobi/huobi.log). With
# --api-key-file=PATH it reads the key first and fails when it cannot.
DOWNLOADER = '''\
#!/usr/bin/python3
"""Stand-in for the market-data downloader: appends a line a second to its log."""
import os
import sys
import time

args = [arg for arg in sys.argv[1:] if not arg.startswith("--api-key-file=")]
key_files = [arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--api-key-file=")]
key = open(key_files[0]).read() if key_files else ""
market = args[0] if args else "huobi"
log = args[1] if len(args) > 1 else f"/var/log/huobi/{market}.log"
os.makedirs(os.path.dirname(log), exist_ok=True)
with open(log, "a", buffering=1) as out:
    while True:
        out.write(f"{time.time():.0f} {market} key of {len(key)} bytes\\n")
        time.sleep(1)
'''

WORKER = """\
#!/bin/sh
# Stand-in for the reader's worker program: stays in the foreground until stopped.
exec /usr/bin/sleep infinity
"""

# debian12 has chrony, not ntpd: a harmless ntpd for units that name /usr/sbin/ntpd.
NTPD = """\
#!/bin/sh
# Stand-in for ntpd (the debian12 bench image has chrony): sets nothing, exits.
exit 0
"""

# A vendor unit as the ntp package would ship it (debian12 has chrony.service only).
NTP_UNIT = """\
[Unit]
Description=Network Time Service (bench stand-in for the ntp package)

[Service]
ExecStart=/usr/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

# debian13: ntp.service is ntpsec.service (an alias). Let ntpd run without
# CAP_SYS_TIME, as root, on loopback only (it then never sets the clock).
NTPSEC_DROPIN = """\
[Unit]
ConditionCapability=

[Service]
ExecStart=
ExecStart=/usr/sbin/ntpd -p /run/ntpd.pid -c /etc/ntpsec/unitcraft-examples.conf -g
"""
NTPSEC_CONF = """\
driftfile /var/lib/ntpsec/ntp.drift
interface ignore wildcard
interface listen 127.0.0.1
restrict default kod nomodify noquery limited
restrict 127.0.0.1
"""

SSH_UNIT = """\
[Unit]
Description=OpenBSD Secure Shell server (bench stand-in: openssh is not in the image)

[Service]
ExecStart=/usr/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

# A unit kept as an old vendor wrote it: ControlGroup= was removed from systemd long ago.
LEGACY_UNIT = """\
[Unit]
Description=legacy daemon, unit file kept as its vendor wrote it

[Service]
ExecStart=/usr/bin/sleep infinity
ControlGroup=cpu:/legacy
"""

# A job that takes a while to start (for no_block).
REINDEX_UNIT = """\
[Unit]
Description=rebuild the search index (bench stand-in, takes 2 s)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/sleep 2
"""

# A force-sync unit that has run at boot before the NTP daemon (for unit_info's order).
FORCE_SYNC_UNIT = """\
[Unit]
Description=ntp force synchronization once (bench stand-in)
Before=ntp.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
"""

HUOBI_UNIT = """\
[Unit]
Description=huobi downloader

[Service]
ExecStart=/usr/bin/python3 /opt/huobi/downloader.py huobi /var/log/huobi/huobi.log
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""

WORKER_TEMPLATE = """\
[Service]
ExecStart=/usr/local/bin/worker --id %i

[Install]
WantedBy=multi-user.target
"""

# A backup job, a feed service: units the reader already has, for drop-ins.
BACKUP_UNIT = """\
[Unit]
Description=backup job (bench stand-in)

[Service]
Type=oneshot
ExecStart=/bin/true
"""
FEED_UNIT = """\
[Unit]
Description=market feed %N (bench stand-in)

[Service]
ExecStart=/usr/bin/sleep infinity
"""

HostText = str | Mapping[str, str]  # one text, or flavour -> text (none: not on that flavour)


@dataclasses.dataclass(frozen=True)
class Prepare:
    """What a reader has before pasting the example.

    ``host_files``: path -> text on the host (mode 0755 when it starts with ``#!``);
    ``controller_files``: name -> text beside the playbook; ``script``: shell run on
    the host after the files are written; ``vars``: play variables the snippet refers
    to (tasks only), or a function that returns them.
    """

    host_files: Mapping[str, HostText] = dataclasses.field(default_factory=dict)
    controller_files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    script: str = ""
    vars: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def __add__(self, other: Prepare) -> Prepare:
        return Prepare({**self.host_files, **other.host_files}, {**self.controller_files, **other.controller_files},
                       "\n".join(script for script in (self.script, other.script) if script),
                       other.vars or self.vars)


def _for_flavour(text: HostText, flavour: str) -> str | None:
    return text if isinstance(text, str) else text.get(flavour)


DOWNLOADER_IN_ATOM = Prepare(host_files={"/usr/lib/code/atom/exchange/downloader.py": DOWNLOADER})
DOWNLOADER_IN_OPT = Prepare(host_files={"/opt/huobi/downloader.py": DOWNLOADER})
WORKER_PROGRAM = Prepare(host_files={"/usr/local/bin/worker": WORKER})
# ntp.service, the NTP daemon's unit, able to run in the container.
NTP_DAEMON = Prepare(
    host_files={
        "/usr/lib/systemd/system/ntp.service": {"debian12": NTP_UNIT},
        "/etc/systemd/system/ntpsec.service.d/unitcraft-examples.conf": {"debian13": NTPSEC_DROPIN},
        "/etc/ntpsec/unitcraft-examples.conf": {"debian13": NTPSEC_CONF},
    },
    script="systemctl daemon-reload",
)
NTPD_PROGRAM = Prepare(host_files={"/usr/sbin/ntpd": {"debian12": NTPD}})
# The force-sync ran before the NTP daemon in this boot: as after a boot, or by hand
# (the README of ntp_force_sync: stop the daemon, start the force-sync, start the daemon).
FORCE_SYNC_RAN_FIRST = NTP_DAEMON + Prepare(
    host_files={"/etc/systemd/system/ntp-force-sync.service": FORCE_SYNC_UNIT},
    script="systemctl daemon-reload && systemctl stop ntp.service && systemctl start ntp-force-sync.service"
           " && systemctl start ntp.service",
)
HUOBI_RUNNING = DOWNLOADER_IN_OPT + Prepare(
    host_files={"/etc/systemd/system/huobi.service": HUOBI_UNIT},
    script="systemctl daemon-reload && systemctl start huobi.service",
)
WORKERS = WORKER_PROGRAM + Prepare(
    host_files={"/etc/systemd/system/worker@.service": WORKER_TEMPLATE},
    script="systemctl daemon-reload && systemctl enable --now worker@1.service",
)
# An image tree being built offline: a unit enabled in it and a vendor unit.
IMAGE_ROOT = Prepare(
    host_files={
        "/srv/images/rootfs/etc/systemd/system/huobi.service": HUOBI_UNIT,
        "/srv/images/rootfs/usr/lib/systemd/system/ssh.service": SSH_UNIT,
    },
    script="mkdir -p /srv/images/rootfs/etc/systemd/system/multi-user.target.wants"
           " && ln -sfn /etc/systemd/system/huobi.service"
           " /srv/images/rootfs/etc/systemd/system/multi-user.target.wants/huobi.service",
)
EMPTY_IMAGE_ROOT = Prepare(script="mkdir -p /srv/images/rootfs/etc/systemd/system /srv/images/rootfs/usr/lib/systemd/system")
NO_FAILED_UNITS = Prepare(script="systemctl reset-failed")
SSH_VENDOR_UNIT = Prepare(
    host_files={"/usr/lib/systemd/system/ssh.service": SSH_UNIT},
    script="systemctl daemon-reload && systemctl start ssh.service",
)
# What the example before it leaves: the vendor unit with the restart drop-in.
SSH_WITH_RESTART_DROPIN = SSH_VENDOR_UNIT + Prepare(
    host_files={"/etc/systemd/system/ssh.service.d/restart.conf": "[Service]\nRestart=on-failure\nRestartSec=5\n"},
    script="systemctl daemon-reload && systemctl restart ssh.service",
)

# The reader's secrets, kept in their vault.
VAULT = Prepare(vars={"vault_huobi_apikey": "k-0123456789abcdef", "vault_backup_password": "correct horse",
                      "vault_token": "t-0123456789", "vault_proxy_token": "p-0123456789",
                      "huobi_secrets": {"apikey": "k-0123456789abcdef", "apisecret": "s-fedcba9876543210"}})
# Both default stores hold the credential apikey (what the install example leaves, and more).
APIKEY_IN_BOTH_STORES = Prepare(script="mkdir -p /etc/credstore /etc/credstore.encrypted"
                                " && printf key > /etc/credstore/apikey && chmod 0600 /etc/credstore/apikey"
                                " && printf key | systemd-creds encrypt --name=apikey - /etc/credstore.encrypted/apikey")
# A host-wide credential that a unit loads by name, as a proxy would (for keep_if_loaded).
PROXY_TOKEN_LOADED = Prepare(
    host_files={"/etc/systemd/system/proxy.service": "[Service]\nExecStart=/usr/bin/sleep infinity\n"
                                                     "LoadCredentialEncrypted=proxy-token\n"},
    script="mkdir -p /etc/credstore.encrypted && printf token | systemd-creds encrypt --name=proxy-token -"
           " /etc/credstore.encrypted/proxy-token && systemctl daemon-reload")
# huobi.service and binance.service each have their own credential apikey.
TWO_UNIT_APIKEYS = Prepare(script="rm -rf /etc/unitcraft/credentials && for unit in huobi.service binance.service; do"
                                  " mkdir -p /etc/unitcraft/credentials/$unit && printf key | systemd-creds encrypt"
                                  " --name=apikey - /etc/unitcraft/credentials/$unit/apikey; done")
FEEDS = Prepare(host_files={"/etc/systemd/system/feed-btc.service": FEED_UNIT,
                            "/etc/systemd/system/feed-eth.service": FEED_UNIT},
                script="systemctl daemon-reload && systemctl start feed-btc.service feed-eth.service")

TO_UNIT_EXAMPLE = "docs/filters.md#unitcraftsystemdto_unit-sections---unit-text"
LINT_EXAMPLE = "docs/filters.md#unitcraftsystemdlint_unit-sections-or-text---findings"
MODULES_GUIDE = "docs/modules.md#the-unit-and-dropin-modules-a-guide"
CHRONY_DROPIN_GUIDE = "docs/modules.md#drop-ins"
CHRONY_DROPIN_MODULE = ("plugins/modules/dropin.py: Let chrony run in a container without CAP_SYS_TIME"
                        " (serve time, never set the clock)")
UNIT_PY = "plugins/modules/unit.py: "
DROPIN_PY = "plugins/modules/dropin.py: "
UNIT_INFO_PY = "plugins/modules/unit_info.py: "
CREDENTIAL_PY = "plugins/modules/credential.py: "
CREDENTIAL_INSTALL = ("Install the exchange API key of huobi.service, for that unit alone, encrypted with the host key"
                      " (or the TPM2)")
CREDENTIAL_HOST_WIDE = ("A credential every unit may load by name - one file, /etc/credstore.encrypted/proxy-token,"
                        " for the host")
CREDENTIAL_KEEP_IF_LOADED = "Remove that host-wide credential, unless a unit file still loads it (loaded_by names them)"
CREDENTIAL_UNIT_ABSENT = ("Remove huobi.service's own credential (and its directory with the last one); other units'"
                          " apikey stay")


def _filters_huobi_sections() -> dict[str, Any]:
    """The sections of filters.md's to_unit example, which its lint example refers to."""
    return {"huobi_sections": BY_ID[TO_UNIT_EXAMPLE].data[0]["vars"]["huobi_sections"]}


PREPARE: dict[str, Prepare] = {
    "README.md#quickstart": DOWNLOADER_IN_OPT,
    LINT_EXAMPLE: Prepare(vars=_filters_huobi_sections),
    f"{MODULES_GUIDE} (2)": DOWNLOADER_IN_ATOM,
    # the reader's program next to the playbook, and the directory it goes into
    "docs/modules.md#what-a-task-guarantees": Prepare(controller_files={"downloader.py": DOWNLOADER},
                                                      script="mkdir -p /opt/huobi"),
    "docs/modules.md#many-units-in-one-task": WORKER_PROGRAM,
    "docs/modules.md#units-the-module-did-not-write": NTP_DAEMON,
    "docs/unit_info.md#query-failed-units-jmespath-on-the-controller": NO_FAILED_UNITS,
    "docs/unit_info.md#restarts-of-a-crashing-service": HUOBI_RUNNING,
    "docs/unit_info.md#boot-order-the-ntp-force-sync-before-the-ntp-daemon": FORCE_SYNC_RAN_FIRST,
    "docs/unit_info.md#offline-an-image-being-built": IMAGE_ROOT,
    "roles/daemon/README.md#example-playbook": Prepare(controller_files={"downloader.py": DOWNLOADER}),
    "roles/daemon/README.md#secrets": Prepare(controller_files={"downloader.py": DOWNLOADER}) + VAULT,
    # the data the job backs up (the daemon's state directory)
    "roles/timer_job/README.md#example-playbook": Prepare(script="mkdir -p /var/lib/huobi"),
    f"{DROPIN_PY}Raise the restart delay of a vendor service": SSH_VENDOR_UNIT,
    f"{DROPIN_PY}Remove the drop-in again, restoring the vendor setting": SSH_WITH_RESTART_DROPIN,
    f"{UNIT_PY}Run the market-data downloader as a service that is restarted when it dies": DOWNLOADER_IN_ATOM,
    f"{UNIT_PY}Step the clock once at boot, after the network is up and before the NTP daemon": NTPD_PROGRAM,
    f"{UNIT_PY}Many units in one task - one daemon-reload, one systemctl call per kind of action": WORKER_PROGRAM,
    f"{UNIT_PY}Restart the downloader once whenever its program or its settings change":
        DOWNLOADER_IN_OPT + Prepare(host_files={"/etc/default/huobi": "MARKET=huobi\n"}),
    f"{UNIT_PY}Queue a slow start and go on without waiting for it":
        Prepare(host_files={"/usr/lib/systemd/system/reindex.service": REINDEX_UNIT}, script="systemctl daemon-reload"),
    f"{UNIT_PY}Manage only the runtime state of a unit this module did not write": NTP_DAEMON,
    f"{UNIT_PY}Install a unit whose unknown keys should only warn": Prepare(controller_files={"legacy.service": LEGACY_UNIT}),
    f"{UNIT_PY}Build an image offline - render and enable into a directory tree": EMPTY_IMAGE_ROOT,
    f"{UNIT_PY}Remove a unit - stop, disable, delete the file, reload": HUOBI_RUNNING,
    "docs/modules.md#scopes-other-users-and-offline-roots": Prepare(script="id alice >/dev/null 2>&1 || useradd -m alice"),
    # the rollout's program, version 1.0, next to the playbook (a one-host fleet: molecule/fleet runs it on four)
    "docs/fleets.md#the-rollout-playbook": Prepare(controller_files={"downloader-1.0.py": DOWNLOADER}),
    "docs/secrets.md#installing-a-credential": DOWNLOADER_IN_OPT + VAULT,
    f"{CREDENTIAL_PY}{CREDENTIAL_INSTALL}": DOWNLOADER_IN_OPT + VAULT,
    f"{CREDENTIAL_PY}{CREDENTIAL_HOST_WIDE}": VAULT,
    f"{CREDENTIAL_PY}{CREDENTIAL_KEEP_IF_LOADED}": PROXY_TOKEN_LOADED,
    f"{CREDENTIAL_PY}{CREDENTIAL_UNIT_ABSENT}": TWO_UNIT_APIKEYS,
    f"{CREDENTIAL_PY}A credential kept elsewhere - the unit names the path (load_directive and load_value give the line)":
        VAULT + Prepare(host_files={"/etc/systemd/system/backup.service": BACKUP_UNIT}, script="systemctl daemon-reload"),
    f"{CREDENTIAL_PY}Build an image offline - sealed with the image's own host key, created under root when missing":
        VAULT + EMPTY_IMAGE_ROOT,
    f"{CREDENTIAL_PY}A secret for a user service (plain 0600 file in ~/.config/credstore; see the scope option)": VAULT,
    f"{CREDENTIAL_PY}Remove the credential from both default stores": APIKEY_IN_BOTH_STORES,
    "docs/secrets.md#installing-a-credential (2)": VAULT,
    f"{CREDENTIAL_PY}Several secrets from a dict - loop over the names, so that no loop item (shown with -v) holds a secret":
        VAULT,
    f"{DROPIN_PY}Lower the priority of every feed-*.service at once (a prefix drop-in)": FEEDS,
    f"{UNIT_INFO_PY}Names of the failed units": NO_FAILED_UNITS,
    f"{UNIT_INFO_PY}How often the downloader was restarted, and its PID": HUOBI_RUNNING,
    f"{UNIT_INFO_PY}The clock was stepped once before the NTP daemon started, in this boot": FORCE_SYNC_RAN_FIRST,
    f"{UNIT_INFO_PY}Enabled workers among the units matching a pattern": WORKERS,
    f"{UNIT_INFO_PY}Enablement inside an image built offline": IMAGE_ROOT,
}

# ---------------------------------------------------------------------------
# Examples that do not run, with the reason
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Exemption:
    """Why an example does not run; ``flavours`` limits it to those bench flavours.

    ``holds`` checks on the host that the reason is still true (for flavour exemptions).
    """

    reason: str
    flavours: tuple[str, ...] = ()
    holds: Callable[[BenchHost], None] | None = None


def _chrony_is_not_installed(host: BenchHost) -> None:
    assert host.exec("test", "-e", "/usr/sbin/chronyd", check=False).returncode != 0, \
        "chronyd is installed now: run the chrony example on this flavour too"
    assert host.systemctl_show("chrony.service", "LoadState")["LoadState"] == "not-found"


CHRONY_ON_DEBIAN13 = Exemption(
    "chrony is not installed on debian13: the image has ntpsec, and the two conflict (both"
    " provide time-daemon); the drop-in's ExecStart would name a program that is not there",
    flavours=("debian13",),
    holds=_chrony_is_not_installed,
)

EXEMPT: dict[str, Exemption] = {
    MODULES_GUIDE: Exemption(
        "the 'before' picture of the old way, not a recommendation: its template"
        " huobi.service.j2 and its handler 'reload systemd' are the reader's own"),
    CHRONY_DROPIN_GUIDE: CHRONY_ON_DEBIAN13,
    CHRONY_DROPIN_MODULE: CHRONY_ON_DEBIAN13,
}

# ---------------------------------------------------------------------------
# Running an example
# ---------------------------------------------------------------------------

# Actions that only read: an example made of these runs once (a second run proves nothing).
READ_ONLY_ACTIONS = frozenset({
    "unitcraft.systemd.unit_info", "ansible.builtin.debug", "ansible.builtin.assert", "ansible.builtin.slurp",
})

EXAMPLE_UNITS = (
    "huobi.service", "worker@1.service", "worker@2.service", "worker@.service", "ntp-force-sync.service",
    "legacy.service", "huobi-backup.timer", "huobi-backup.service", "ssh.service", "reindex.service",
    "backup.service", "feed-btc.service", "feed-eth.service", "proxy.service",
)
# Back to the image's state: the units and files that examples and PREPARE made go away.
# ntp.service is left alone on debian13, where it is the image's alias of ntpsec.service.
CLEANUP = f"""
units="{' '.join(EXAMPLE_UNITS)}"
[ -e /usr/lib/systemd/system/ntp.service ] && units="$units ntp.service"
systemctl stop $units chrony.service ntpsec.service 2>/dev/null
systemctl disable --no-reload $units 2>/dev/null
cd /etc/systemd/system && rm -rf $units chrony.service.d ntpsec.service.d ssh.service.d feed-.service.d \
    rc-local.service.d backup.service.d
if id alice >/dev/null 2>&1; then
    loginctl disable-linger alice; loginctl terminate-user alice 2>/dev/null; userdel -r alice 2>/dev/null
fi
rm -rf /etc/credstore /etc/credstore.encrypted /etc/unitcraft/credentials /srv/secrets /root/.config/credstore /root/.config/systemd
rm -f /usr/lib/systemd/system/ntp.service /usr/lib/systemd/system/ssh.service
rm -f /usr/lib/systemd/system/reindex.service /usr/local/bin/worker /etc/default/huobi
rm -f /etc/ntpsec/unitcraft-examples.conf /etc/ntp-force-sync.conf
[ -e /usr/sbin/chronyd ] && rm -f /usr/sbin/ntpd
rm -rf /srv/images /opt/huobi /usr/lib/code /data2 /var/log/huobi /usr/local/lib/downloader
systemctl daemon-reload
systemctl reset-failed
exit 0
"""

# Writes the files of a Prepare in one podman exec: JSON {path: [mode, text]} on stdin.
WRITE_FILES = (
    "import json, os, sys\n"
    "for path, (mode, text) in json.load(sys.stdin).items():\n"
    "    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
    "    with open(path, 'w') as out:\n"
    "        out.write(text)\n"
    "    os.chmod(path, int(mode, 8))\n"
)


@dataclasses.dataclass
class Converged:
    """Results of an example's runs: ``runs[i]`` lists (task name, result) of run i."""

    example: Example
    runs: list[list[tuple[str, dict[str, Any]]]]

    def result(self, task_name: str | None = None, run: int = 0) -> dict[str, Any]:
        """The result of the task with that name (default: the only task) in a run."""
        rows = [(name, result) for name, result in self.runs[run] if name != "Gathering Facts"]
        if task_name is None:
            assert len(rows) == 1, f"{self.example.id} has {len(rows)} tasks"
            return rows[0][1]
        for name, result in rows:
            if name == task_name or name.endswith(f" : {task_name}"):  # "ROLE : task" in a role
                return result
        raise AssertionError(f"no task {task_name!r} in {[name for name, _result in rows]}")


class ExampleBench:
    """Runs examples in one bench container, cleaning up between source files."""

    def __init__(self, host: BenchHost, workdir: Path) -> None:
        self.host = host
        self.workdir = workdir
        self.source = ""
        self.count = 0
        self.failed_units: set[str] | None = None
        self.inventory = workdir / "inventory.yml"
        groups = sorted({pattern for example in EXAMPLES for pattern in example.hosts_patterns
                         if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", pattern) and pattern != "all"})
        hostvars = {
            **bench.ssh_access().hostvars(host.name),
            # the bench image has no sudo; root becomes root with su
            "ansible_become_method": "su",
        }
        # the container is in every group an example names (hosts: downloaders, ...)
        self.inventory.write_text(yaml.safe_dump({"all": {
            "hosts": {host.name: hostvars},
            "children": {group: {"hosts": {host.name: {}}} for group in groups},
        }}))
        # Facts are gathered once per container, not by every run of every playbook
        # example: a controller setting; the examples' text is unchanged.
        self.env = {
            "ANSIBLE_GATHERING": "smart",
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(workdir / "facts"),
        }

    def begin(self, example: Example) -> None:
        if example.source != self.source:
            self.cleanup()
            self.source = example.source

    def cleanup(self) -> None:
        self.host.sh(CLEANUP)
        self.failed_units = None

    def new_failed_units(self) -> list[str]:
        """Units that failed since the last call."""
        before = self.failed_units
        now = set(self.host.failed_units())
        self.failed_units = now
        return sorted(now - before) if before is not None else []

    def prepare(self, prepare: Prepare, directory: Path) -> Mapping[str, Any]:
        files = {}
        for path, text in prepare.host_files.items():
            content = _for_flavour(text, self.host.flavour)
            if content is not None:
                files[path] = ["0755" if content.startswith("#!") else "0644", content]
        try:
            if files:
                self.host.exec("python3", "-c", WRITE_FILES, input=json.dumps(files))
            if prepare.script:
                self.host.sh(f"set -e\n{prepare.script}")
        except BenchCommandError as exc:
            raise AssertionError(f"preparing the host failed: {exc}") from None
        for name, text in prepare.controller_files.items():
            (directory / name).write_text(text)
        return prepare.vars() if callable(prepare.vars) else prepare.vars

    def converge(self, example: Example, runs: int | None = None, prepare: Prepare | None = None) -> Converged:
        """Run the example (twice unless it only reads) in one ansible-playbook call.

        Every run after the first must change nothing. `prepare` replaces the example's PREPARE entry
        (a promise that ships a new version of what the reader had).
        """
        if runs is None:
            runs = 1 if self.read_only(example) else 2
        self.count += 1
        directory = self.workdir / f"example-{self.count:03d}"
        directory.mkdir()
        play_vars = self.prepare(prepare if prepare is not None else PREPARE.get(example.id, Prepare()), directory)
        (directory / "example.yml").write_text(example.text)
        if example.kind == "playbook":
            imported: dict[str, Any] = {"ansible.builtin.import_playbook": "example.yml"}
            if play_vars:
                imported["vars"] = dict(play_vars)  # what a reader keeps in a vault or group_vars
            plays: list[dict[str, Any]] = [imported] * runs
            plays_per_run = len(example.data)
        else:
            plays = [{"name": f"{example.id} (run {run})", "hosts": "all", "gather_facts": False,
                      "vars": dict(play_vars), "tasks": [{"ansible.builtin.import_tasks": "example.yml"}]}
                     for run in range(1, runs + 1)]
            plays_per_run = 1
        site = directory / "site.yml"
        site.write_text(yaml.safe_dump(plays, sort_keys=False))
        result = run_playbook(site, self.inventory, self.host.collections_path, host=self.host.name, env=self.env)
        start = result.stdout.find("{")
        data = json.loads(result.stdout[start:]) if start >= 0 and result.rc in (0, 2) else {}
        by_run: list[list[tuple[str, dict[str, Any]]]] = [[] for _run in range(runs)]
        for index, play in enumerate(data.get("plays", [])):
            for task in play.get("tasks", []):
                outcome = task.get("hosts", {}).get(self.host.name)
                if outcome is not None:
                    by_run[min(index // plays_per_run, runs - 1)].append((task["task"]["name"], outcome))
        if result.rc != 0:
            raise AssertionError(
                f"example {example.id} ({example.source}:{example.line}) failed on {self.host.flavour}"
                f" (rc {result.rc}):\n{result.failure_summary() or result.stdout[-3000:]}\n"
                f"--- stderr ---\n{result.stderr[-3000:]}\n--- example ---\n{example.text}")
        for run in range(1, runs):
            changed = [(name, outcome) for name, outcome in by_run[run] if outcome.get("changed")]
            assert not changed, (
                f"example {example.id} changed something when run again on {self.host.flavour}:"
                f" {[name for name, _outcome in changed]}\n"
                + json.dumps([outcome for _name, outcome in changed], indent=1)[:4000])
        return Converged(example, by_run)

    @staticmethod
    def read_only(example: Example) -> bool:
        return example.kind == "tasks" and all(_task_action(task) in READ_ONLY_ACTIONS for task in example.data)


# ---------------------------------------------------------------------------
# What an example promises, checked on the host after it ran
# ---------------------------------------------------------------------------


def _state(host: BenchHost, unit: str) -> dict[str, str]:
    return host.systemctl_show(unit, "LoadState", "ActiveState", "SubState", "UnitFileState", "MainPID",
                               "Before", "User", "ExecStart", "NRestarts")


def _assert_running(host: BenchHost, *units: str, enabled: bool = True) -> None:
    for unit in units:
        state = _state(host, unit)
        assert state["ActiveState"] == "active", f"{unit} is not active: {state}\n{host.journal(unit)[-3000:]}"
        if enabled:
            assert state["UnitFileState"] == "enabled", f"{unit} is not enabled: {state}"


def _assert_logs(host: BenchHost, log: str) -> None:
    """The downloader writes its log (a line a second): within 5 s the file has lines."""
    host.sh(f"for i in $(seq 50); do [ -s {log} ] && exit 0; sleep 0.1; done; echo no lines in {log}; exit 1")


def _downloader_runs(log: str) -> Callable[[ExampleBench, Converged], None]:
    def check(bench: ExampleBench, converged: Converged) -> None:
        _assert_running(bench.host, "huobi.service")
        _assert_logs(bench.host, log)
    return check


def _to_unit_file(bench: ExampleBench, converged: Converged) -> None:
    text = bench.host.read_file("/etc/systemd/system/huobi.service")
    assert text is not None and text.startswith("[Unit]\nDescription=huobi downloader\n"), text
    assert "\nRestartSec=5\n" in text and text.endswith("[Install]\nWantedBy=multi-user.target\n"), text


def _from_unit_after(bench: ExampleBench, converged: Converged) -> None:
    shown = converged.result("Show what it is ordered after")["msg"]
    shown_units = shown if isinstance(shown, list) else str(shown).split()
    after = bench.host.systemctl_show("systemd-journald.service", "After")["After"].split()
    assert shown_units and set(shown_units) <= set(after), (shown, after)


def _escape(bench: ExampleBench, converged: Converged) -> None:
    assert converged.result()["msg"] == "srv-data.mount"


def _restart_trigger(bench: ExampleBench, converged: Converged) -> None:
    """A new version of the program restarts the unit once; the run after that restarts nothing.

    The new version comes the way the reader ships it (the example's copy task, or on the host);
    a program only touched is the same program (restart triggers compare content) and restarts nothing.
    """
    host = bench.host
    _assert_running(host, "huobi.service", enabled=False)
    pid = _state(host, "huobi.service")["MainPID"]
    host.exec("touch", "/opt/huobi/downloader.py")
    touched = bench.converge(converged.example)
    assert not [r for _name, r in touched.runs[0] if r.get("restarted")], "a touched program restarted huobi"
    assert _state(host, "huobi.service")["MainPID"] == pid
    new_version = DOWNLOADER + "# a new version of the program\n"
    prepare = PREPARE.get(converged.example.id, Prepare())
    shipped = Prepare({path: new_version for path, text in prepare.host_files.items() if text == DOWNLOADER},
                      {name: new_version for name, text in prepare.controller_files.items() if text == DOWNLOADER})
    assert shipped.host_files or shipped.controller_files, "the example's preparation ships no downloader"
    again = bench.converge(converged.example, prepare=prepare + shipped)
    restarted = [result for _name, result in again.runs[0] if result.get("restarted")]
    assert restarted, f"a new /opt/huobi/downloader.py did not restart huobi.service: {again.runs[0]}"
    assert _state(host, "huobi.service")["MainPID"] != pid


def _workers(second_active: bool) -> Callable[[ExampleBench, Converged], None]:
    def check(bench: ExampleBench, converged: Converged) -> None:
        _assert_running(bench.host, "worker@1.service")
        if second_active:
            _assert_running(bench.host, "worker@2.service")
        else:
            second = _state(bench.host, "worker@2.service")
            assert second["ActiveState"] == "inactive" and second["UnitFileState"] == "enabled", second
    return check


def _ntp_runs(bench: ExampleBench, converged: Converged) -> None:
    # debian13: ntp.service is an alias of ntpsec.service, which is the unit enabled
    _assert_running(bench.host, "ntp.service", enabled=bench.host.flavour == "debian12")
    if bench.host.flavour == "debian13":
        assert _state(bench.host, "ntpsec.service")["UnitFileState"] == "enabled"


def _chrony_keeps_running(bench: ExampleBench, converged: Converged) -> None:
    """With the drop-in, Debian's chrony.service starts here and stays up, as _chrony.

    chrony.service skipped itself at boot (no CAP_SYS_TIME): start it as a boot would,
    then restart it as the dropin module does when the drop-in changes on a running unit.
    """
    host = bench.host
    for verb in ("start", "restart"):
        host.exec("systemctl", verb, "chrony.service", check=False)
        state = _state(host, "chrony.service")
        assert state["ActiveState"] == "active" and state["SubState"] == "running", (
            f"after systemctl {verb}, chrony.service is {state['ActiveState']}/{state['SubState']}:\n"
            + host.journal("chrony.service")[-3000:])
    assert state["User"] == "_chrony" and " -x" in state["ExecStart"], state
    owner = host.exec("ps", "-o", "user=", "-p", state["MainPID"]).stdout.strip()
    assert owner == "_chrony", f"chronyd runs as {owner!r}"


def _force_sync_enabled_not_started(daemon: str) -> Callable[[ExampleBench, Converged], None]:
    def check(bench: ExampleBench, converged: Converged) -> None:
        state = _state(bench.host, "ntp-force-sync.service")
        assert state["UnitFileState"] == "enabled" and state["ActiveState"] == "inactive", state
        expected = daemon or ("chrony.service" if bench.host.flavour == "debian12" else "ntpsec.service")
        if expected == "ntp.service" and bench.host.flavour == "debian13":
            expected = "ntpsec.service"  # systemd shows the unit that the alias ntp.service names
        assert expected in state["Before"].split(), state
    return check


def _queued_start(bench: ExampleBench, converged: Converged) -> None:
    # queued, not waited for: it gets there by itself within its 2 s
    bench.host.sh("for i in $(seq 100); do [ $(systemctl is-active reindex.service) = active ] && exit 0;"
                  " sleep 0.1; done; systemctl status reindex.service; exit 1")


def _daemon_readme(bench: ExampleBench, converged: Converged) -> None:
    host = bench.host
    _assert_running(host, "huobi.service")
    state = host.systemctl_show("huobi.service", "User", "ProtectSystem", "WorkingDirectory", "Environment")
    assert state["User"] == "huobi" and state["ProtectSystem"] == "strict", state
    assert state["WorkingDirectory"] == "/usr/local/lib/downloader" and state["Environment"] == "PYTHONUNBUFFERED=1"
    _assert_logs(host, "/var/lib/huobi/huobi.log")
    # a new program (here: the script the interpreter runs) restarts the service once
    unit_task = converged.result("Install the unit and set its runtime state for huobi.service")
    assert unit_task["invocation"]["module_args"]["restart_triggers"] == [
        "/usr/bin/python3", "/usr/local/lib/downloader/downloader.py"], unit_task["invocation"]


def _daemon_readme_secrets(bench: ExampleBench, converged: Converged) -> None:
    host = bench.host
    _assert_running(host, "huobi.service")
    unit = host.read_file("/etc/systemd/system/huobi.service")
    own = "/etc/unitcraft/credentials/huobi.service/apikey"
    assert f"LoadCredentialEncrypted=apikey:{own}\n" in unit and "--api-key-file=%d/apikey" in unit, unit
    key = "k-0123456789abcdef"  # the example's vault_huobi_apikey
    shown = host.exec("systemctl", "show", "huobi.service").stdout
    assert key not in shown and key not in unit
    assert host.exec("stat", "-c", "%a %U", own).stdout.split() == ["600", "root"]
    assert host.read_file("/etc/credstore.encrypted/apikey") is None, "the key went to the host-wide store"
    _assert_logs(host, "/var/lib/huobi/huobi.log")


def _timer_job_readme(bench: ExampleBench, converged: Converged) -> None:
    host = bench.host
    timer = _state(host, "huobi-backup.timer")
    assert timer["ActiveState"] == "active" and timer["UnitFileState"] == "enabled", timer
    job = _state(host, "huobi-backup.service")
    assert job["ActiveState"] == "inactive" and job["UnitFileState"] == "static", job
    # "systemctl start huobi-backup.service runs it now"
    host.exec("systemctl", "start", "huobi-backup.service")
    assert host.exec("tar", "-tzf", "/var/backups/huobi.tar.gz").stdout.startswith("huobi/")


def _ssh_restart_dropin(bench: ExampleBench, converged: Converged) -> None:
    state = bench.host.systemctl_show("ssh.service", "Restart", "RestartUSec", "ActiveState")
    assert state == {"Restart": "on-failure", "RestartUSec": "5s", "ActiveState": "active"}, state


def _ssh_dropin_removed(bench: ExampleBench, converged: Converged) -> None:
    state = bench.host.systemctl_show("ssh.service", "Restart", "DropInPaths", "ActiveState")
    assert state == {"Restart": "no", "DropInPaths": "", "ActiveState": "active"}, state


def _legacy_installed_with_warning(bench: ExampleBench, converged: Converged) -> None:
    assert bench.host.read_file("/etc/systemd/system/legacy.service") == LEGACY_UNIT
    assert "ControlGroup" in json.dumps(converged.result().get("validation")), converged.result()


def _image_unit_enabled(bench: ExampleBench, converged: Converged) -> None:
    root = "/srv/images/rootfs/etc/systemd/system"
    text = bench.host.read_file(f"{root}/huobi.service") or ""
    assert "ExecStart=/usr/bin/python3 /opt/huobi/downloader.py" in text, text
    link = bench.host.exec("readlink", f"{root}/multi-user.target.wants/huobi.service").stdout.strip()
    assert link.endswith("/huobi.service"), link


def _huobi_removed(bench: ExampleBench, converged: Converged) -> None:
    state = _state(bench.host, "huobi.service")
    assert state["LoadState"] == "not-found" and state["ActiveState"] == "inactive", state
    assert bench.host.read_file("/etc/systemd/system/huobi.service") is None


def _rc_local_after_network(bench: ExampleBench, converged: Converged) -> None:
    state = bench.host.systemctl_show("rc-local.service", "After", "Wants")
    assert "network-online.target" in state["After"].split() and state["Wants"] == "network-online.target", state


def _alice_worker(bench: ExampleBench, converged: Converged) -> None:
    host = bench.host
    assert host.exec("test", "-e", "/var/lib/systemd/linger/alice", check=False).returncode == 0, "no linger for alice"
    # alice's own manager, asked as alice (systemctl -M needs machined, not in the image)
    states = host.sh("runuser -u alice -- env XDG_RUNTIME_DIR=/run/user/$(id -u alice)"
                     " systemctl --user is-active alice-worker.service; runuser -u alice --"
                     " env XDG_RUNTIME_DIR=/run/user/$(id -u alice) systemctl --user is-enabled alice-worker.service",
                     check=False).stdout.split()
    assert states == ["active", "enabled"], states


def _downloader_reads_its_key(bench: ExampleBench, converged: Converged) -> None:
    _assert_running(bench.host, "huobi.service")
    key = "k-0123456789abcdef"
    bench.host.sh(f"for i in $(seq 50); do grep -q 'key of {len(key)} bytes' /var/log/huobi/huobi.log && exit 0;"
                  " sleep 0.1; done; exit 1")
    unit = bench.host.read_file("/etc/systemd/system/huobi.service") or ""
    assert key not in unit and key not in json.dumps(converged.runs), "the secret leaked into the unit or the output"


def _backup_loads_credential(bench: ExampleBench, converged: Converged) -> None:
    state = bench.host.systemctl_show("backup.service", "DropInPaths", "LoadCredentialEncrypted")
    assert state["DropInPaths"] == "/etc/systemd/system/backup.service.d/credentials.conf", state
    assert bench.host.exec("test", "-s", "/srv/secrets/backup-password.cred", check=False).returncode == 0
    # the job can start and gets its credential
    bench.host.exec("systemctl", "start", "backup.service")


def _image_credential(bench: ExampleBench, converged: Converged) -> None:
    assert bench.host.exec("test", "-s", "/srv/images/rootfs/etc/credstore.encrypted/apikey",
                           check=False).returncode == 0, bench.host.sh("find /srv/images -ls").stdout


def _user_credential(bench: ExampleBench, converged: Converged) -> None:
    mode = bench.host.exec("stat", "-c", "%a %s", "/root/.config/credstore/token").stdout.split()
    assert mode == ["600", str(len("t-0123456789"))], mode


def _secrets_installed(bench: ExampleBench, converged: Converged) -> None:
    for name in ("apikey", "apisecret"):
        path = f"/etc/unitcraft/credentials/huobi.service/{name}"
        assert bench.host.exec("test", "-s", path, check=False).returncode == 0, name
    assert "-0123456789abcdef" not in json.dumps(converged.runs), "a secret is in the task output"


def _apikey_removed(bench: ExampleBench, converged: Converged) -> None:
    left = bench.host.sh("ls /etc/credstore/apikey /etc/credstore.encrypted/apikey 2>/dev/null", check=False).stdout
    assert not left.strip(), left


def _host_wide_credential(bench: ExampleBench, converged: Converged) -> None:
    result = converged.result()
    assert result["path"] == "/etc/credstore.encrypted/proxy-token" and result["load_value"] == "proxy-token", result
    assert bench.host.exec("test", "-s", result["path"], check=False).returncode == 0


def _kept_while_loaded(bench: ExampleBench, converged: Converged) -> None:
    result = converged.result()
    assert result["loaded_by"] == ["/etc/systemd/system/proxy.service"] and result["removed"] == [], result
    assert bench.host.exec("test", "-s", "/etc/credstore.encrypted/proxy-token", check=False).returncode == 0


def _only_huobis_apikey_removed(bench: ExampleBench, converged: Converged) -> None:
    assert converged.result(run=0)["removed"] == ["/etc/unitcraft/credentials/huobi.service/apikey",
                                                  "/etc/unitcraft/credentials/huobi.service"]
    assert bench.host.exec("test", "-e", "/etc/unitcraft/credentials/huobi.service", check=False).returncode != 0
    assert bench.host.exec("test", "-s", "/etc/unitcraft/credentials/binance.service/apikey",
                           check=False).returncode == 0


def _feeds_niced(bench: ExampleBench, converged: Converged) -> None:
    for unit in ("feed-btc.service", "feed-eth.service"):
        assert bench.host.systemctl_show(unit, "Nice")["Nice"] == "10", unit


def _ordered(bench: ExampleBench, converged: Converged) -> None:
    results = [result for _name, result in converged.runs[0] if "ordered" in result]
    assert results and all(result["ordered"] is True for result in results), results


def _enabled_workers(bench: ExampleBench, converged: Converged) -> None:
    assert "worker@1.service" in converged.result()["query_result"], converged.result()


def _image_units(bench: ExampleBench, converged: Converged) -> None:
    units = {unit["Id"]: unit for unit in converged.result()["units"]}
    assert units["huobi.service"]["UnitFileState"] == "enabled", units
    assert "ssh.service" in units, units


PROMISES: dict[str, Callable[[ExampleBench, Converged], None]] = {
    "README.md#quickstart": _downloader_runs("/var/log/huobi/huobi.log"),
    TO_UNIT_EXAMPLE: _to_unit_file,
    "docs/filters.md#unitcraftsystemdfrom_unit-unit-text---sections": _from_unit_after,
    "docs/filters.md#unitcraftsystemdsystemd_escape-string---unit-name-part": _escape,
    f"{MODULES_GUIDE} (2)": _downloader_runs("/data2/huobi/huobi.log"),
    "docs/modules.md#what-a-task-guarantees": _restart_trigger,
    "docs/modules.md#many-units-in-one-task": _workers(second_active=False),
    "docs/modules.md#units-the-module-did-not-write": _ntp_runs,
    CHRONY_DROPIN_GUIDE: _chrony_keeps_running,
    "docs/unit_info.md#boot-order-the-ntp-force-sync-before-the-ntp-daemon": _ordered,
    "docs/unit_info.md#offline-an-image-being-built": _image_units,
    "roles/daemon/README.md#example-playbook": _daemon_readme,
    "roles/daemon/README.md#secrets": _daemon_readme_secrets,
    "roles/ntp_force_sync/README.md#example-playbook": _force_sync_enabled_not_started(""),
    "roles/timer_job/README.md#example-playbook": _timer_job_readme,
    CHRONY_DROPIN_MODULE: _chrony_keeps_running,
    f"{DROPIN_PY}Raise the restart delay of a vendor service": _ssh_restart_dropin,
    f"{DROPIN_PY}Remove the drop-in again, restoring the vendor setting": _ssh_dropin_removed,
    f"{UNIT_PY}Run the market-data downloader as a service that is restarted when it dies":
        _downloader_runs("/data2/huobi/huobi.log"),
    f"{UNIT_PY}Step the clock once at boot, after the network is up and before the NTP daemon":
        _force_sync_enabled_not_started("ntp.service"),
    f"{UNIT_PY}Many units in one task - one daemon-reload, one systemctl call per kind of action":
        _workers(second_active=True),
    f"{UNIT_PY}Restart the downloader once whenever its program or its settings change": _restart_trigger,
    f"{UNIT_PY}Queue a slow start and go on without waiting for it": _queued_start,
    f"{UNIT_PY}Manage only the runtime state of a unit this module did not write": _ntp_runs,
    f"{UNIT_PY}Install a unit whose unknown keys should only warn": _legacy_installed_with_warning,
    f"{UNIT_PY}Build an image offline - render and enable into a directory tree": _image_unit_enabled,
    f"{UNIT_PY}Remove a unit - stop, disable, delete the file, reload": _huobi_removed,
    "docs/modules.md#drop-ins (2)": _rc_local_after_network,
    "docs/modules.md#scopes-other-users-and-offline-roots": _alice_worker,
    "docs/fleets.md#the-rollout-playbook": _downloader_runs("/var/log/huobi/huobi.log"),
    "docs/secrets.md#installing-a-credential": _downloader_reads_its_key,
    f"{CREDENTIAL_PY}{CREDENTIAL_INSTALL}": _downloader_reads_its_key,
    f"{CREDENTIAL_PY}{CREDENTIAL_HOST_WIDE}": _host_wide_credential,
    f"{CREDENTIAL_PY}{CREDENTIAL_KEEP_IF_LOADED}": _kept_while_loaded,
    f"{CREDENTIAL_PY}{CREDENTIAL_UNIT_ABSENT}": _only_huobis_apikey_removed,
    f"{CREDENTIAL_PY}A credential kept elsewhere - the unit names the path (load_directive and load_value give the line)":
        _backup_loads_credential,
    f"{CREDENTIAL_PY}Build an image offline - sealed with the image's own host key, created under root when missing":
        _image_credential,
    f"{CREDENTIAL_PY}A secret for a user service (plain 0600 file in ~/.config/credstore; see the scope option)":
        _user_credential,
    f"{CREDENTIAL_PY}Remove the credential from both default stores": _apikey_removed,
    "docs/secrets.md#installing-a-credential (2)": _secrets_installed,
    f"{CREDENTIAL_PY}Several secrets from a dict - loop over the names, so that no loop item (shown with -v) holds a secret":
        _secrets_installed,
    f"{DROPIN_PY}Lower the priority of every feed-*.service at once (a prefix drop-in)": _feeds_niced,
    f"{UNIT_INFO_PY}The clock was stepped once before the NTP daemon started, in this boot": _ordered,
    f"{UNIT_INFO_PY}Enabled workers among the units matching a pattern": _enabled_workers,
    f"{UNIT_INFO_PY}Enablement inside an image built offline": _image_units,
}

# ---------------------------------------------------------------------------
# Examples that show output: compared with what the code really returns
# ---------------------------------------------------------------------------


def _lint_finding_of_seed_000(bench: ExampleBench, example: Example) -> None:
    """filters.md: "For seed 000 as written (no RestartSec=) this gives one finding"."""
    seed = json.loads(json.dumps(_filters_huobi_sections()["huobi_sections"]))
    del seed["Service"]["RestartSec"]
    task = {"ansible.builtin.debug": {
        "msg": "{{ seed | unitcraft.systemd.lint_unit(unit='huobi.service', enabled=true) }}"}}
    findings = bench.host.play([task], extra_vars={"seed": seed}).results[0]["msg"]
    assert findings == example.data


OUTPUTS: dict[str, Callable[[ExampleBench, Example], None]] = {
    f"{LINT_EXAMPLE} (2)": _lint_finding_of_seed_000,
}


@pytest.fixture(scope="module")
def example_bench(bench_host: BenchHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleBench]:
    examples = ExampleBench(bench_host, tmp_path_factory.mktemp(f"examples-{bench_host.flavour}"))
    examples.cleanup()
    try:
        yield examples
    finally:
        examples.cleanup()


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

# Every example that is not exempt on all flavours, in the sources' order.
RUN_IDS = [example.id for example in EXAMPLES if not (example.id in EXEMPT and not EXEMPT[example.id].flavours)]


def test_every_example_is_run_or_exempt() -> None:
    """Every example found runs, is exempt with a reason, or is output checked; no table is stale."""
    assert EXAMPLES, "no examples found"
    sources = {example.source for example in EXAMPLES}
    for expected in ("README.md", "docs/modules.md", "roles/daemon/README.md", "plugins/modules/unit.py"):
        assert expected in sources, f"no example found in {expected}"
    ids = [example.id for example in EXAMPLES]
    problems = [f"two examples share the id {i!r}" for i in sorted(set(ids)) if ids.count(i) > 1]
    problems += [f"{example.id}: {example.error}" for example in EXAMPLES if example.error]
    for example in EXAMPLES:
        if example.kind == "other" and example.id not in EXEMPT and example.id not in OUTPUTS:
            problems.append(f"{example.id} ({example.source}:{example.line}) is neither a playbook nor tasks:"
                            " add it to OUTPUTS (with a check) or to EXEMPT (with a reason)")
    for table_name, table in (("EXEMPT", EXEMPT), ("PREPARE", PREPARE), ("PROMISES", PROMISES), ("OUTPUTS", OUTPUTS)):
        stale = sorted(set(table) - set(BY_ID))
        if stale:
            problems.append(f"{table_name} names examples that no longer exist: {stale}")
    for example_id, exemption in EXEMPT.items():
        if not exemption.reason.strip():
            problems.append(f"EXEMPT[{example_id!r}] gives no reason")
        if exemption.flavours and exemption.holds is None:
            problems.append(f"EXEMPT[{example_id!r}] is for some flavours only and must check its reason (holds)")
        if not exemption.flavours and example_id in {*PREPARE, *PROMISES, *OUTPUTS}:
            problems.append(f"{example_id} is exempt and yet prepared or checked")
    assert not problems, "\n".join(problems)


def test_examples_are_read_verbatim() -> None:
    """The extraction itself: fenced yaml blocks as written, module EXAMPLES split by task."""
    after = BY_ID[f"{MODULES_GUIDE} (2)"]
    assert after.text.startswith("# after: one task\n- name: Run the market-data downloader")
    assert after.kind == "tasks" and BY_ID["roles/daemon/README.md#example-playbook"].kind == "playbook"
    failed = BY_ID[f"{UNIT_INFO_PY}Names of the failed units"]
    assert [task["name"] for task in failed.data] == ["Names of the failed units", "Fail when any unit failed"]
    assert f"{UNIT_INFO_PY}Fail when any unit failed" not in BY_ID
    assert heading_anchor("`unitcraft.systemd.to_unit`: sections -> unit text") == \
        "unitcraftsystemdto_unit-sections---unit-text"


@pytest.mark.parametrize("example_id", RUN_IDS, ids=str)
def test_example_converges(example_bench: ExampleBench, example_id: str) -> None:
    """The example runs verbatim, again without change, and the host is as it promises.

    An example exempt on this flavour only does not run here; the test checks that its
    reason still holds instead.
    """
    example = BY_ID[example_id]
    host = example_bench.host
    example_bench.begin(example)
    exemption = EXEMPT.get(example_id)
    if exemption is not None and host.flavour in exemption.flavours:
        assert exemption.holds is not None
        exemption.holds(host)
        return
    if example_id in OUTPUTS:
        OUTPUTS[example_id](example_bench, example)
        return
    example_bench.new_failed_units()
    converged = example_bench.converge(example)
    promise = PROMISES.get(example_id)
    if promise is not None:
        promise(example_bench, converged)
    failed = example_bench.new_failed_units()
    assert not failed, f"after {example_id}: failed units {failed}"
