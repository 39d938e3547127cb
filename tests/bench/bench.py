#!/usr/bin/env python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unitcraft test bench: Debian containers that boot real systemd as PID 1.

Importable (tests/integration/conftest.py, molecule, scripts) and a command line::

    python tests/bench/bench.py image debian12|debian13|all
    python tests/bench/bench.py start NAME --flavour debian12
    python tests/bench/bench.py wait NAME
    python tests/bench/bench.py reboot NAME
    python tests/bench/bench.py stop NAME
    python tests/bench/bench.py authorize NAME   (SSH for Ansible and testinfra, see SshAccess)

Images are built from Debian packages with debootstrap (no container registry is
needed) and reused while their recipe is unchanged. Containers run without
--privileged, without CAP_SYS_TIME and with --network none: the kernel clock and the
network are the machine's own, and no test may touch them.
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
IMAGES_DIR = BENCH_DIR / "images"

# Podman must use the bench's runtime and ulimits (see containers.conf) for every call,
# including those made by Ansible's podman connection in child processes.
os.environ["CONTAINERS_CONF"] = str(BENCH_DIR / "containers.conf")

IMAGE_REPOSITORY = "localhost/unitcraft-bench"
# Names of containers this bench may replace or remove; it never touches others.
CONTAINER_PREFIX = "unitcraft-"
FLAVOUR_LABEL = "unitcraft.bench.flavour"
# Bump when the build steps change in a way the hashed data below does not show.
RECIPE_VERSION = 2

# libpam-systemd: lets a lingering user start its own manager, for scope: user tests.
# openssh-server: for the SSH-path benchmark, which runs "sshd -i" through podman exec
# (its service stays disabled, see DISABLED_UNITS: no daemon listens in the bench).
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "procps", "libpam-systemd", "openssh-server",
)


@dataclasses.dataclass(frozen=True)
class Flavour:
    """What goes into one bench image."""

    name: str
    suite: str
    packages: tuple[str, ...]
    systemd_version: int
    # In the test matrix: every integration test that takes bench_host runs on it. A
    # flavour outside the matrix is booted only by the tests and scenarios that name it.
    matrix: bool = True


FLAVOURS: dict[str, Flavour] = {
    # chrony and ntpsec conflict (both provide time-daemon): one NTP daemon per image.
    "debian12": Flavour("debian12", "bookworm", (*BASE_PACKAGES, "chrony"), 252),
    "debian13": Flavour("debian13", "trixie", (*BASE_PACKAGES, "ntpsec", "ntpsec-ntpdate"), 257),
    # A host whose time sync is systemd-timesyncd (the default of many Debian and Ubuntu
    # hosts), for the ntp_force_sync tests on timesyncd; it conflicts with chrony and ntpsec.
    "debian13-timesyncd": Flavour(
        "debian13-timesyncd", "trixie", (*BASE_PACKAGES, "systemd-timesyncd"), 257, matrix=False
    ),
}
# The flavours every integration test runs on.
MATRIX_FLAVOURS: tuple[str, ...] = tuple(name for name, flavour in FLAVOURS.items() if flavour.matrix)

# Files written into the image before import, to make it boot cleanly in a container.
# Their text is part of the image hash, so editing one rebuilds the image.
IMAGE_FILES: dict[str, str] = {
    # sshd -i (the SSH-path benchmark) needs its privilege separation directory, which
    # the disabled ssh.service would otherwise create.
    "etc/tmpfiles.d/unitcraft-bench-sshd.conf": "d /run/sshd 0755 root root -\n",
}
# No journald setting is needed: podman's --systemd=always mounts a tmpfs on
# /var/log/journal, so each container start begins with an empty journal.

# Units disabled in the image (their .wants/ links removed, the units stay installed).
# Keep this list short and say why for every entry.
DISABLED_UNITS: tuple[str, ...] = (
    # apt's download/upgrade timers cannot work with --network none; left on, they
    # may fire during a long test run and write failures to the journal.
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    # openssh-server is in the image for "sshd -i" only: no SSH daemon listens.
    "ssh.service",
    "ssh.socket",
)


class BenchError(RuntimeError):
    """The bench could not do what was asked (build, boot, find a container)."""


class BenchCommandError(subprocess.CalledProcessError):
    """A command failed; unlike CalledProcessError, str() shows its output."""

    def __str__(self) -> str:
        return (
            f"{super().__str__()}\n--- stdout ---\n{self.stdout or ''}"
            f"\n--- stderr ---\n{self.stderr or ''}"
        )


def _run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        input=input,
        text=True,
        errors="replace",
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        stdin=None if input is not None else subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise BenchCommandError(proc.returncode, list(argv), proc.stdout, proc.stderr)
    return proc


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------


def _apt_source_entries(apt_dir: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """Yield (uri, suites, components) for each binary apt source under apt_dir."""
    list_files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in list_files:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            # drop "[arch=amd64 signed-by=...]" options
            line = re.sub(r"\[[^\]]*\]", " ", line)
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb":
                yield fields[1], [fields[2]], fields[3:]
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for raw in stanza.splitlines():
                if raw.lstrip().startswith("#") or not raw.strip():
                    continue
                if raw[0] in " \t" and key is not None:
                    fields[key] += " " + raw.strip()
                    continue
                key, value = raw.split(":", 1) if ":" in raw else (raw, "")
                key = key.strip().lower()
                fields[key] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                yield uri, fields.get("suites", "").split(), fields.get("components", "").split()


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive this machine's apt uses, read from its apt configuration.

    The environment variable UNITCRAFT_DEBIAN_MIRROR overrides it.
    """
    override = os.environ.get("UNITCRAFT_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    release_suites = {flavour.suite for flavour in FLAVOURS.values()}
    candidates = []
    for uri, suites, components in _apt_source_entries(apt_dir):
        if not uri.startswith(("http://", "https://", "file:/")) or "main" not in components:
            continue
        # the main archive carries the plain release suite ("bookworm"), not only
        # "-security" or "-updates" pockets, and no third-party suite names
        if any(suite in release_suites for suite in suites):
            candidates.append(uri)
    if not candidates:
        raise BenchError(
            f"no Debian archive found in {apt_dir}/sources.list or {apt_dir}/sources.list.d/; "
            "set UNITCRAFT_DEBIAN_MIRROR to one"
        )
    return candidates[0].rstrip("/")


def recipe_hash(flavour: Flavour) -> str:
    """A short hash of everything that decides what goes into the image."""
    recipe = {
        "recipe_version": RECIPE_VERSION,
        "suite": flavour.suite,
        "variant": "minbase",
        "packages": sorted(flavour.packages),
        "files": IMAGE_FILES,
        "disabled": sorted(DISABLED_UNITS),
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return digest[:12]


def image_ref(flavour_name: str) -> str:
    flavour = _flavour(flavour_name)
    return f"{IMAGE_REPOSITORY}:{flavour.name}-{recipe_hash(flavour)}"


def _flavour(name: str) -> Flavour:
    try:
        return FLAVOURS[name]
    except KeyError:
        raise BenchError(f"unknown flavour {name!r}; known: {', '.join(FLAVOURS)}") from None


def image_exists(ref: str) -> bool:
    return _run(["podman", "image", "exists", ref], check=False).returncode == 0


@contextmanager
def _lock(name: str) -> Iterator[None]:
    """Serialise builds and container replacement across processes (xdist, helpers)."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    with open(IMAGES_DIR / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_rootfs(rootfs: Path) -> None:
    """Make a debootstrapped tree suitable for booting as a container."""
    # An empty machine-id makes systemd generate a transient one at each boot, so
    # every container (and every reboot) gets its own instead of the build's.
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    if dbus_id.is_file() and not dbus_id.is_symlink():
        dbus_id.unlink()
    for relative, text in IMAGE_FILES.items():
        target = rootfs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    # The links point into the image (/lib/systemd/...): seen from the build host they may
    # dangle, which Path.glob would skip, so each wants directory is looked into by name.
    for wants in (rootfs / "etc/systemd/system").glob("*.wants"):
        for unit in DISABLED_UNITS:
            if (wants / unit).is_symlink():
                (wants / unit).unlink()
    # Package indexes and caches are useless offline and only make the image bigger.
    for relative in ("var/lib/apt/lists", "var/cache/apt"):
        directory = rootfs / relative
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def build_image(flavour_name: str) -> str:
    """Build the image of a flavour (even if it exists) and return its reference."""
    flavour = _flavour(flavour_name)
    ref = image_ref(flavour.name)
    for tool in ("debootstrap", "podman", "tar"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (apt-get install {tool})")
    mirror = debian_mirror()
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    cache_dir = IMAGES_DIR / "cache" / flavour.suite
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{flavour.name}-", dir=IMAGES_DIR))
    rootfs = work / "rootfs"
    started = time.monotonic()
    try:
        _log(f"debootstrap {flavour.suite} from {mirror} into {rootfs}")
        bootstrap = _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(flavour.packages)}",
                f"--cache-dir={cache_dir}",
                flavour.suite,
                str(rootfs),
                mirror,
            ],
            check=False,
            timeout=1800,
        )
        if bootstrap.returncode != 0:
            log_file = rootfs / "debootstrap/debootstrap.log"
            detail = log_file.read_text(errors="replace")[-3000:] if log_file.is_file() else ""
            raise BenchError(
                f"debootstrap of {flavour.suite} failed (rc {bootstrap.returncode}):\n"
                f"{bootstrap.stderr[-3000:]}\n{detail}"
            )
        _prepare_rootfs(rootfs)
        _log(f"debootstrap done after {time.monotonic() - started:.0f}s; importing {ref}")
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."],
            stdout=subprocess.PIPE,
        )
        try:
            imported = subprocess.run(
                [
                    "podman", "import",
                    "--change", 'CMD ["/sbin/init"]',
                    "--change", "STOPSIGNAL SIGRTMIN+3",
                    "--change", f"LABEL {FLAVOUR_LABEL}={flavour.name}",
                    "-", ref,
                ],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar_rc = tar.wait()
        if imported.returncode != 0 or tar_rc != 0:
            raise BenchError(
                f"importing {ref} failed (tar rc {tar_rc}, podman rc {imported.returncode}):\n"
                f"{imported.stderr}"
            )
        _log(f"built {ref} in {time.monotonic() - started:.0f}s")
        return ref
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_image(flavour_name: str) -> str:
    """Return the reference of the flavour's image, building it when it is missing."""
    ref = image_ref(flavour_name)
    if image_exists(ref):
        return ref
    with _lock(f"image-{flavour_name}"):
        # another process may have built it while we waited for the lock
        if image_exists(ref):
            return ref
        return build_image(flavour_name)


def bench_images() -> list[str]:
    """All references of images in the bench's repository, current or not."""
    out = _run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPOSITORY]
    ).stdout
    return [line for line in out.split() if line.startswith(IMAGE_REPOSITORY + ":")]


def prune_images() -> list[str]:
    """Remove bench images whose recipe is no longer current; return what was removed."""
    current = {image_ref(name) for name in FLAVOURS}
    removed = []
    for ref in bench_images():
        if ref not in current:
            if _run(["podman", "rmi", ref], check=False).returncode == 0:
                removed.append(ref)
    return removed


# ---------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name.startswith(CONTAINER_PREFIX):
        raise BenchError(f"bench containers are named {CONTAINER_PREFIX}*, not {name!r}")


def container_exists(name: str) -> bool:
    return _run(["podman", "container", "exists", name], check=False).returncode == 0


def wait_running(name: str, timeout: float = 180.0) -> str:
    """Wait until systemd in the container has booted; return 'running' or 'degraded'."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchError(f"{name}: systemd did not finish booting in {timeout:.0f}s: {last}")
        try:
            proc = _run(
                ["podman", "exec", name, "systemctl", "is-system-running", "--wait"],
                check=False,
                timeout=remaining,
            )
        except subprocess.TimeoutExpired:
            continue
        state = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if state in ("running", "degraded"):
            return state
        last = (proc.stdout + proc.stderr).strip()
        # right after a (re)start the bus is not there yet; a stopped container is final
        status = _run(
            ["podman", "container", "inspect", "--format", "{{.State.Status}}", name],
            check=False,
        ).stdout.strip()
        if status not in ("running", "created", "configured", "initialized", "stopping"):
            logs = _run(["podman", "logs", "--tail", "40", name], check=False)
            raise BenchError(
                f"{name}: container is {status or 'gone'} while waiting for systemd: "
                f"{last}\n{logs.stdout}{logs.stderr}"
            )
        time.sleep(0.3)


@dataclasses.dataclass
class Container:
    """A running bench container with systemd as PID 1."""

    name: str
    flavour: str
    image: str

    @classmethod
    def attach(cls, name: str) -> Container:
        """The Container object of an existing bench container."""
        _check_name(name)
        proc = _run(["podman", "container", "inspect", name], check=False)
        if proc.returncode != 0:
            raise BenchError(f"no container named {name}")
        data = json.loads(proc.stdout)[0]
        labels = (data.get("Config") or {}).get("Labels") or {}
        return cls(name, labels.get(FLAVOUR_LABEL, ""), data.get("ImageName", ""))

    def exec(
        self,
        *argv: str,
        check: bool = True,
        input: str | None = None,
        timeout: float | None = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the container as root; stdout/stderr are captured text.

        Over the container's SSH master connection once Ansible may reach it over SSH
        (SshAccess.authorize): a few milliseconds instead of a `podman exec`.
        """
        if _SSH is not None and self.name in _SSH.hosts:
            command = _SSH.command(self.name, argv)
        else:
            command = ["podman", "exec", *(["-i"] if input is not None else []), self.name, *argv]
        return _run(
            command,
            check=check,
            input=input,
            timeout=timeout,
        )

    def sh(
        self, script: str, check: bool = True, timeout: float | None = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a bash script in the container."""
        return self.exec("bash", "-c", script, check=check, timeout=timeout)

    def systemctl_show(self, unit: str, *props: str) -> dict[str, str]:
        """`systemctl show UNIT` as a dict; only the given properties when some are named."""
        argv = ["systemctl", "show", "--no-pager", unit]
        for prop in props:
            argv += ["-p", prop]
        out = self.exec(*argv).stdout
        result: dict[str, str] = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                result[key] = value
        return result

    def read_file(self, path: str) -> str | None:
        """The text of a file in the container, or None when it does not exist."""
        proc = self.exec(
            "sh", "-c", '[ -e "$1" ] || exit 3; exec cat -- "$1"', "read_file", path,
            check=False,
        )
        if proc.returncode == 3:
            return None
        if proc.returncode != 0:
            raise BenchCommandError(proc.returncode, ["cat", path], proc.stdout, proc.stderr)
        return proc.stdout

    def sha256(self, path: str) -> str | None:
        """The sha256 of a file in the container, or None when it does not exist."""
        proc = self.exec(
            "sh", "-c", '[ -e "$1" ] || exit 3; exec sha256sum -- "$1"', "sha256", path,
            check=False,
        )
        if proc.returncode == 3:
            return None
        if proc.returncode != 0:
            raise BenchCommandError(proc.returncode, ["sha256sum", path], proc.stdout, proc.stderr)
        return proc.stdout.split()[0]

    def journal(self, unit: str | None = None, boot: bool = True) -> str:
        """The journal (of one unit, of the current boot by default) as text."""
        argv = ["journalctl", "--no-pager", "-q"]
        if boot:
            argv.append("-b")
        if unit:
            argv += ["-u", unit]
        return self.exec(*argv).stdout

    def boot_id(self) -> str:
        """An id of the container's current boot, new after every reboot().

        Not /proc/sys/kernel/random/boot_id: that is the machine kernel's and stays the
        same across container restarts. PID 1's start time (clock ticks since the kernel
        booted, field 22 of /proc/1/stat) changes with every start of the container.
        """
        stat = self.exec("cat", "/proc/1/stat").stdout
        # the command name (field 2) is in parentheses and may hold spaces
        start_ticks = stat.rpartition(")")[2].split()[19]
        return f"{self.name}-{start_ticks}"

    def daemon_reload_count(self) -> int:
        return count_daemon_reloads(self)

    def failed_units(self) -> list[str]:
        out = self.exec("systemctl", "list-units", "--failed", "--plain", "--no-legend").stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def wait(self, timeout: float = 180.0) -> str:
        return wait_running(self.name, timeout)

    def reboot(self, timeout: float = 180.0) -> str:
        """Restart the container: systemd boots afresh (new boot id, empty journal)."""
        close_ssh(self.name)
        _run(["podman", "restart", "--time", "20", self.name], timeout=120)
        return wait_running(self.name, timeout)

    def remove(self) -> None:
        stop_container(self.name)


# What PID 1 logs once per daemon-reload: systemd 252 "Reloading.", 257 "Reloading...".
RELOAD_MESSAGES = frozenset({"Reloading.", "Reloading..."})


def count_daemon_reloads(container: Container) -> int:
    """How many daemon-reloads PID 1 of the container logged in the current boot."""
    # --sync: everything logged before this call is in the journal when it returns
    container.exec("journalctl", "--sync")
    out = container.exec("journalctl", "--no-pager", "-q", "-b", "_PID=1", "-o", "cat").stdout
    return sum(1 for line in out.splitlines() if line.strip() in RELOAD_MESSAGES)


def start_container(name: str, flavour: str, *, timeout: float = 180.0) -> Container:
    """Start a fresh container of the flavour (replacing a stale one) and wait for boot."""
    _check_name(name)
    image = ensure_image(flavour)
    stop_container(name)
    started = time.monotonic()
    _run(
        [
            "podman", "run", "-d",
            "--name", name,
            "--hostname", name,
            "--systemd=always",
            "--network", "none",
            "--label", f"{FLAVOUR_LABEL}={flavour}",
            image,
            "/sbin/init",
        ],
        timeout=120,
    )
    state = wait_running(name, timeout)
    container = Container(name, flavour, image)
    if state != "running":
        _log(f"{name}: systemd is {state}; failed units: {' '.join(container.failed_units())}")
    _log(f"{name}: {state} after {time.monotonic() - started:.1f}s")
    return container


def stop_container(name: str) -> None:
    """Remove a bench container if it exists (stopping it first)."""
    _check_name(name)
    close_ssh(name, forget=True)
    if container_exists(name):
        _run(["podman", "rm", "--force", "--time", "10", name], timeout=120)


# ---------------------------------------------------------------------------
# Ansible over SSH without a network
# ---------------------------------------------------------------------------

# `sshd -i` speaks SSH on its stdin and stdout, so `podman exec -i` is the wire: Ansible's
# ssh connection, with pipelining and one master connection per host and play, reaches a
# container that has no network. A task costs one command over the master instead of the
# podman connection's several `podman exec` calls (a temporary directory, a copy, the run,
# the clean-up). Measured on the bench, a play of five pings cost the machine 2.6 CPU seconds
# against 6.7, and a check through Container.exec 12 ms against 170 ms.
# UsePAM=no: no login session and no user manager for root per connection, as with
# podman exec. /run/sshd is made at boot by tmpfiles; a container without systemd lacks it.
SSHD_PROXY = "podman exec -i %h sh -c 'mkdir -p /run/sshd && exec /usr/sbin/sshd -i -o UsePAM=no'"


class SshAccess:
    """A key pair that opens every bench container of this process, and its control sockets.

    Host keys are not checked: the only wire is `podman exec` into a container the bench
    started, and containers of one name are replaced by new ones with new keys.
    """

    def __init__(self, directory: Path | None = None) -> None:
        # Control sockets live in a short directory under /tmp: a socket's path must fit in
        # a sockaddr_un (108 bytes) with ssh's temporary suffix, wherever the checkout is.
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="ucssh-", dir="/tmp"))
            self.sockets = directory
        else:
            self.sockets = _socket_dir(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sockets.mkdir(mode=0o700, exist_ok=True)
        self.directory = directory
        self.key = directory / "id_ed25519"
        with open(directory / ".lock", "w") as lock:  # molecule scenarios start side by side
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.key.exists():
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "unitcraft-bench", "-f", str(self.key)])
            self.config = directory / "config"
            self.config.write_text(self._config_text())
        self.public_key = self.key.with_suffix(".pub").read_text()
        self.hosts: set[str] = set()  # containers whose root the key opens

    def _config_text(self) -> str:
        """An ssh_config for tools that take one (testinfra's ssh:// backend, `ssh -F`)."""
        lines = ["Host unitcraft-*", "    User root", f"    IdentityFile {self.key}",
                 f"    ControlPath {self.sockets}/%n-%r", "    ControlMaster auto", "    ControlPersist 60s"]
        options = self._options()
        lines += [f"    {options[i + 1].replace('=', ' ', 1)}" for i in range(0, len(options), 2)]
        return "\n".join(lines) + "\n"

    def authorize(self, name: str, user: str = "root") -> None:
        """Let the key log in as USER (root by default) in the container.

        sshd without PAM refuses an account whose password is locked (`!`, as useradd
        leaves it): such a password becomes `*`, which no password matches either.
        """
        script = ('set -e; home=$(getent passwd "$1" | cut -d: -f6); umask 077; mkdir -p "$home/.ssh"; '
                  'cat > "$home/.ssh/authorized_keys"; chown -R "$1:" "$home/.ssh"; '
                  'case $(getent shadow "$1" | cut -d: -f2) in "!"*) usermod -p "*" "$1";; esac')
        _run(["podman", "exec", "-i", name, "sh", "-c", script, "authorize", user], input=self.public_key)
        self.hosts.add(name)

    def _options(self) -> list[str]:
        # podman must use the bench's settings, also when ssh runs from a tool without them
        proxy = f"env CONTAINERS_CONF={shlex.quote(os.environ['CONTAINERS_CONF'])} {SSHD_PROXY}"
        return ["-o", f"ProxyCommand={proxy}", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes"]

    def command(self, name: str, argv: Sequence[str]) -> list[str]:
        """An ssh command line that runs ARGV as root in the container over the host's master
        connection (shared with Ansible's; made when there is none)."""
        return ["ssh", "-i", str(self.key), *self._options(), "-o", "ControlMaster=auto",
                "-o", "ControlPersist=60s", "-o", f"ControlPath={self.control_path(name)}",
                "-l", "root", name, "--", shlex.join(argv)]

    def control_path(self, name: str) -> str:
        """The host's control socket, per remote user (%r): the one the config file names too."""
        return str(self.sockets / f"{name}-%r")

    def hostvars(self, name: str) -> dict[str, Any]:
        """Inventory variables of a host reached over SSH.

        Pipelining and the user (root) come from run_playbook's environment: as inventory
        variables they would override what a play or task says (`remote_user`).
        """
        common = shlex.join(self._options())
        return {
            "ansible_connection": "ssh",
            "ansible_host": name,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": common,
            # Ansible formats the path with %: %%r reaches ssh as %r (the remote user)
            "ansible_control_path": self.control_path(name).replace("%r", "%%r"),
        }

    def close(self, name: str) -> None:
        """Close the host's master connections (before a restart or a removal)."""
        _close_masters(self.sockets, name)

    def remove(self) -> None:
        """Close every master connection and remove the key (at the end of the process)."""
        _close_masters(self.sockets, "*")
        shutil.rmtree(self.directory, ignore_errors=True)


def _socket_dir(directory: Path) -> Path:
    """The control socket directory of a key kept in DIRECTORY: short, whatever DIRECTORY is."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:10]
    return Path("/tmp") / f"ucssh-{digest}"


def _close_masters(sockets: Path, name: str) -> None:
    """Close the master connections to host NAME (a glob) whose sockets are in SOCKETS."""
    for socket in sockets.glob(f"{name}-*"):
        if socket.is_socket():
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "bench"],
                           capture_output=True, check=False, timeout=30)
        socket.unlink(missing_ok=True)


_SSH: SshAccess | None = None


def ssh_access() -> SshAccess:
    """The process's SshAccess (made on first use)."""
    global _SSH
    if _SSH is None:
        _SSH = SshAccess()
        atexit.register(_SSH.remove)
    return _SSH


# The key of the command line (bench.py start/authorize) and of molecule: it outlives a
# process, as molecule's create, converge and verify are processes of their own.
SSH_DIR = REPO_ROOT / "build" / "ssh"


def shared_ssh_access() -> SshAccess:
    return SshAccess(SSH_DIR)


def close_ssh(name: str, *, forget: bool = False) -> None:
    """Close the container's master connections; with forget, run its commands with podman exec again."""
    if _SSH is not None:
        _SSH.close(name)
        if forget:
            _SSH.hosts.discard(name)
    _close_masters(_socket_dir(SSH_DIR), name)  # those of molecule's tools (the config file)


# ---------------------------------------------------------------------------
# Playbooks
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class PlayResult:
    """The outcome of one ansible-playbook run with the JSON stdout callback.

    ``results[i]`` is the result dict of task i on ``host`` (the only or first host);
    ``tasks[i]`` is that task's name; ``by_host`` holds every host's results.
    """

    rc: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]]
    tasks: list[str] = dataclasses.field(default_factory=list)
    by_host: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.rc != 0

    def failure_summary(self) -> str:
        lines = []
        for host, results in self.by_host.items():
            for name, result in zip(self.tasks, results):
                if result.get("failed") or result.get("unreachable"):
                    lines.append(f"{host}: task {name!r}: {result.get('msg', result)}")
        return "\n".join(lines)


def ansible_bin(tool: str) -> str:
    """An Ansible executable of the running interpreter's environment (the venv)."""
    candidate = Path(sys.executable).parent / tool
    if candidate.exists():
        return str(candidate)
    found = shutil.which(tool)
    if found is None:
        raise BenchError(f"{tool} not found next to {sys.executable} nor on PATH")
    return found


def _parse_json_callback(stdout: str) -> dict[str, Any] | None:
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        return json.loads(stdout[start:])
    except json.JSONDecodeError:
        return None


def run_playbook(
    playbook_path: str | os.PathLike[str],
    inventory_path: str | os.PathLike[str],
    collections_path: str | os.PathLike[str] | None,
    extra_args: Sequence[str] = (),
    *,
    host: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 1800,
) -> PlayResult:
    """Run ansible-playbook with the JSON callback and return the parsed results."""
    run_env = dict(os.environ)
    run_env.update(
        {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            # the ssh connection pipelines (the podman connection cannot, and ignores it)
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_REMOTE_USER": "root",
        }
    )
    if collections_path:
        run_env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_path)
    if env:
        run_env.update(env)
    argv = [
        ansible_bin("ansible-playbook"),
        "-i", str(inventory_path),
        *extra_args,
        str(playbook_path),
    ]
    proc = subprocess.run(
        argv,
        env=run_env,
        cwd=str(Path(playbook_path).resolve().parent),
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    data = _parse_json_callback(proc.stdout) or {}
    tasks: list[str] = []
    by_host: dict[str, list[dict[str, Any]]] = {}
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            tasks.append(task.get("task", {}).get("name", ""))
            index = len(tasks) - 1
            for name, result in task.get("hosts", {}).items():
                rows = by_host.setdefault(name, [])
                # a host that skipped earlier tasks still lines up by task index
                rows.extend([{}] * (index - len(rows)))
                rows.append(result)
    if host is None:
        host = next(iter(by_host), None)
    results = by_host.get(host, []) if host is not None else []
    return PlayResult(proc.returncode, proc.stdout, proc.stderr, results, tasks, by_host,
                      data.get("stats", {}))


def _files_json_of(tarball: Path) -> bytes:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("FILES.json")
        return member.read() if member else b""


def install_collection(build_dir: Path | None = None) -> Path:
    """Build the collection from the repo root and install it into BUILD_DIR/collections.

    Returns the path to use as ANSIBLE_COLLECTIONS_PATH. An install whose files match
    the new build is kept as it is.
    """
    build_dir = build_dir or REPO_ROOT / "build"
    galaxy = ansible_bin("ansible-galaxy")
    install_path = build_dir / "collections"
    build_dir.mkdir(parents=True, exist_ok=True)
    # several processes (pytest-xdist workers, molecule) may get here at once
    with open(build_dir / ".collection.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(dir=build_dir) as out:
            _run([galaxy, "collection", "build", "--force", "--output-path", out,
                  str(REPO_ROOT)], timeout=600)
            (tarball,) = Path(out).glob("*.tar.gz")
            installed = install_path / "ansible_collections" / "unitcraft" / "systemd"
            # FILES.json lists a checksum of every file: equal means nothing changed
            current = installed / "FILES.json"
            if not current.is_file() or current.read_bytes() != _files_json_of(tarball):
                _run([galaxy, "collection", "install", "--force", "-p", str(install_path),
                      str(tarball)], timeout=600)
            shutil.copy2(tarball, build_dir / tarball.name)
    return install_path


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    image = sub.add_parser("image", help="build or reuse an image, print its reference")
    image.add_argument("flavour", choices=[*FLAVOURS, "all"])
    image.add_argument("--rebuild", action="store_true", help="build even if it exists")
    start = sub.add_parser("start", help="start a fresh container and wait for systemd")
    start.add_argument("name")
    start.add_argument("--flavour", choices=list(FLAVOURS), required=True)
    for command, text in (
        ("stop", "remove a container"),
        ("reboot", "restart a container and wait for systemd"),
        ("wait", "wait until systemd in a container has booted"),
    ):
        sub.add_parser(command, help=text).add_argument("name")
    sub.add_parser("authorize", help=f"let the key in {SSH_DIR} log in as root in a container, "
                   "print its ssh_config").add_argument("name")
    sub.add_parser("prune", help="remove bench images of outdated recipes")
    sub.add_parser("collection", help="build and install the collection into build/collections")
    sub.add_parser("mirror", help="print the Debian mirror the build would use")
    args = parser.parse_args(argv)

    try:
        if args.command == "image":
            names = list(FLAVOURS) if args.flavour == "all" else [args.flavour]
            for name in names:
                began = time.monotonic()
                ref = build_image(name) if args.rebuild else ensure_image(name)
                _log(f"{ref} ready in {time.monotonic() - began:.1f}s")
                print(ref)
        elif args.command == "start":
            container = start_container(args.name, args.flavour)
            shared_ssh_access().authorize(container.name)
            print(container.name)
        elif args.command == "authorize":
            _check_name(args.name)
            access = shared_ssh_access()
            access.authorize(args.name)
            print(access.config)
        elif args.command == "stop":
            stop_container(args.name)
        elif args.command == "reboot":
            print(Container.attach(args.name).reboot())
        elif args.command == "wait":
            _check_name(args.name)
            print(wait_running(args.name))
        elif args.command == "prune":
            for ref in prune_images():
                print(ref)
        elif args.command == "collection":
            print(install_collection())
        elif args.command == "mirror":
            print(debian_mirror())
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
