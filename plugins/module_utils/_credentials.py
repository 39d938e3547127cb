# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""systemd credentials installed idempotently: plan what to write, then write it once.

`CredentialTask.run` reads what is installed (decrypting it through the systemd-creds
gateway), compares it with the wanted secret, and only then writes, fixes attributes or
removes, so check mode is exact. The secret never goes into a result, a diff, a message or a
command line: it travels to systemd-creds on stdin and back on stdout.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import os
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import TARGET_OPTIONS
from ansible_collections.unitcraft.systemd.plugins.module_utils._credential_loaders import (
    EXEC_UNIT_TYPES,
    SYSTEM_STORE_DIRS,
    SYSTEM_UNIT_DIRS,
    CredentialLoaders,
    user_unit_dirs,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._creds_gateway import CredsError, SystemdCreds
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import UnitFileError
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_name import parse_unit_name

ENCRYPT_CHOICES = ("auto", "host", "tpm2", "none")

CREDENTIAL_OPTIONS: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "value": {"type": "str", "no_log": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "encrypt": {"type": "str", "default": "auto", "choices": list(ENCRYPT_CHOICES)},
    "path": {"type": "path"},
    "unit": {"type": "str"},
    "keep_if_loaded": {"type": "bool", "default": False},
    # credentials have no global scope: the shared option with the choices systemd supports here
    "scope": {**TARGET_OPTIONS["scope"], "choices": ["system", "user"]},
    "root": dict(TARGET_OPTIONS["root"]),
}

# Where LoadCredentialEncrypted=NAME and LoadCredential=NAME look first (system manager).
ENCRYPTED_STORE = "/etc/credstore.encrypted"
PLAIN_STORE = "/etc/credstore"
# The credentials of one unit: UNIT_STORE/UNIT/NAME, a directory systemd never searches by itself
# (inside a store, a directory or a prefixed name breaks units that import globs there, on 257).
UNIT_STORE = "/etc/unitcraft/credentials"
FILE_MODE = 0o600
DIR_MODE = 0o700
SYSTEM_OWNER = (0, 0)  # uid, gid of system credentials: root

# First 16 bytes of an encrypted credential: the kind of key that seals it (measured with
# systemd-creds 252 and 257, which write the same ids). The other kinds those versions write
# (tpm2, host+tpm2, and their public-key variants) all involve the TPM2.
_KEY_IDS = {
    bytes.fromhex("5a1c6a86df9d4096b1d5a65e0862f19a"): "host",
    bytes.fromhex("058469daf6f54324800549da0f8ea2fb"): "null",
    bytes.fromhex("55b9ed1d38594d43a8319d2ebb332ac6"): "user",
}
# which installed kinds satisfy which `encrypt` choice
_ACCEPTED = {"host": {"host"}, "tpm2": {"tpm2"}, "auto": {"host", "tpm2"}}

# what to try when systemd-creds cannot encrypt with the key asked for
_ENCRYPT_HINTS = {
    "tpm2": " (encrypt: tpm2 needs a usable TPM2, see `systemd-creds has-tpm2`; encrypt: host works without one)",
    "auto": " (without a usable TPM2, encrypt: auto needs the host key on persistent storage; encrypt: host uses it"
            " wherever it is)",
}

USER_SCOPE_ENCRYPTION = (
    "scope: user supports encrypt: none only. Measured: systemd 252 has no user-scoped credentials"
    " and a user cannot read the host key; systemd 257 encrypts them (systemd-creds --user), but its"
    " user manager cannot load them with LoadCredentialEncrypted= (\"Failed to determine local credential"
    " key: Permission denied\"). Use encrypt: none (a 0600 file in the user's ~/.config/credstore, loaded"
    " with LoadCredential=NAME:PATH), or run the service in the system manager with User= and scope: system"
)


class CredentialError(Exception):
    """Input or host state the task cannot work with; the message says what to change, never the secret."""


def check_credential_name(name: str) -> None:
    """systemd's rules for a credential name (measured with systemd-creds 252 and 257), plus no edge blanks."""
    if not name:
        raise CredentialError("credential name is empty")
    if len(name) > 255:
        raise CredentialError(f"credential name {name[:40]!r}... is {len(name)} characters long; systemd allows 255")
    if name in (".", ".."):
        raise CredentialError(f"credential name {name!r} is not allowed by systemd")
    bad = sorted({c for c in name if c in "/:" or not " " <= c <= "~"})
    if bad:
        raise CredentialError(f"credential name {name!r} contains {', '.join(repr(c) for c in bad)}: systemd allows"
                              " printable ASCII without '/' and ':'")
    if name != name.strip():
        raise CredentialError(f"credential name {name!r} starts or ends with a blank, which a unit file cannot"
                              " express (systemd strips it from LoadCredential= values)")


def sealed_with(ciphertext: bytes) -> str:
    """The kind of key an encrypted credential names in its header: host, tpm2, null, user; unknown if unparsable."""
    try:
        raw = base64.b64decode(b"".join(ciphertext.split()), validate=True)
    except (binascii.Error, ValueError):
        return "unknown"
    if len(raw) < 16:
        return "unknown"
    return _KEY_IDS.get(raw[:16], "tpm2")


def escape_specifiers(text: str) -> str:
    """A literal value for a unit file: systemd expands `%` as a specifier."""
    return text.replace("%", "%%")


@dataclasses.dataclass
class FileState:
    """What is at a path: nothing, a regular file (with mode and owner), or something else."""

    exists: bool
    regular: bool = False
    mode: int = 0
    uid: int = -1
    gid: int = -1

    @classmethod
    def of(cls, path: str) -> FileState:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return cls(False)
        return cls(True, stat.S_ISREG(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    def describe(self) -> str:
        return f"mode {self.mode:04o}, owner {self.uid}:{self.gid}"


@dataclasses.dataclass
class CredentialPlan:
    """Everything the task will do, decided before anything is touched."""

    path: str
    directory: str
    manage_directory: bool
    load_directive: str
    load_value: str
    file: FileState
    installed_kind: str | None = None  # host, tpm2, null, user, none (plain), unknown; None when absent
    remove_directory: str | None = None  # the unit's own directory, emptied by state: absent
    shared_files: list[str] = dataclasses.field(default_factory=list)
    loaded_by: list[str] = dataclasses.field(default_factory=list)
    value_differs: bool = False
    write: bool = False
    fix_file: bool = False
    fix_directory: bool = False
    create_directory: bool = False
    remove: list[str] = dataclasses.field(default_factory=list)
    reasons: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.write or self.fix_file or self.fix_directory or self.create_directory or self.gone)

    @property
    def gone(self) -> list[str]:
        """What the task removes: files, then the unit's emptied directory."""
        return [*self.remove, *([self.remove_directory] if self.remove_directory else [])]


class CredentialTask:
    """One credential: plan, then apply once (unless check mode), then the result."""

    def __init__(self, module: Any, params: Mapping[str, Any], creds: SystemdCreds | None = None,
                 owner: tuple[int, int] | None = None) -> None:
        self.module = module
        self.check_mode = bool(getattr(module, "check_mode", False))
        self.diff_mode = bool(getattr(module, "_diff", False))
        self.name: str = params["name"]
        self.state: str = params["state"]
        self.encrypt: str = params["encrypt"]
        self.scope: str = params["scope"]
        self.root: str | None = params.get("root")
        self.path_given: str | None = params.get("path")
        self.unit: str | None = params.get("unit")
        self.keep_if_loaded = bool(params.get("keep_if_loaded"))
        value = params.get("value")
        self.secret: bytes | None = value.encode("utf-8", errors="surrogateescape") if value is not None else None
        self._check_input()
        self.creds = creds or SystemdCreds(module, root=self.root)
        # the file belongs to root for the system, to the user for scope: user
        self.owner = owner or ((os.getuid(), os.getgid()) if self.scope == "user" else SYSTEM_OWNER)
        self.sealed: str | None = None
        self.plan: CredentialPlan | None = None
        self.touched = False  # whether the host was changed, for a result after a failure

    # --- input -------------------------------------------------------------------------------

    def _check_input(self) -> None:
        check_credential_name(self.name)
        if self.state == "present" and not self.secret:
            raise CredentialError(f"credential {self.name}: value is empty; give the secret, or state: absent"
                                  " to remove the credential")
        if self.path_given is not None and not os.path.isabs(self.path_given):
            raise CredentialError(f"credential {self.name}: path {self.path_given!r} is not absolute")
        if self.unit is not None:
            self._check_unit(self.unit)
        if self.keep_if_loaded and self.state != "absent":
            raise CredentialError(f"credential {self.name}: keep_if_loaded works with state: absent only")
        if self.scope == "user":
            if self.root:
                raise CredentialError(f"credential {self.name}: root works with scope: system only (an image's"
                                      " host key belongs to its system manager)")
            if self.encrypt != "none" and self.state == "present":
                raise CredentialError(f"credential {self.name}: encrypt: {self.encrypt} refused. "
                                      + USER_SCOPE_ENCRYPTION)
        if self.root and self.encrypt == "tpm2" and self.state == "present":
            raise CredentialError(
                f"credential {self.name}: encrypt: tpm2 does not work with root: the TPM2 of this machine is not"
                " the one of the machine that will boot the image. Use encrypt: host (the image's own host key,"
                " created under root when missing) or encrypt: none, or encrypt on the booted machine")

    def _check_unit(self, unit: str) -> None:
        if self.path_given is not None:
            raise CredentialError(f"credential {self.name}: give path or unit, not both (unit places the file at"
                                  f" {UNIT_STORE}/UNIT/NAME)")
        try:
            kind = parse_unit_name(unit).type
        except UnitFileError as exc:
            raise CredentialError(f"credential {self.name}: unit: {exc}") from None
        if kind not in EXEC_UNIT_TYPES:
            raise CredentialError(f"credential {self.name}: unit {unit}: a {kind} unit runs no process and loads no"
                                  f" credential (units that do: {', '.join(EXEC_UNIT_TYPES)})")
        if "\\" in unit:
            raise CredentialError(f"credential {self.name}: unit {unit}: a backslash in the credential's path is read"
                                  " as written by systemd 252 and unescaped by 257 (measured), so no LoadCredential="
                                  " line works on both; give path instead")

    @property
    def key(self) -> str:
        """The --with-key of systemd-creds: offline, auto means the image's host key."""
        return "host" if self.root and self.encrypt == "auto" else self.encrypt

    # --- paths -------------------------------------------------------------------------------

    def _under_root(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/")) if self.root else path

    def _stores(self) -> dict[str, str]:
        """The default store directory for each kind of file, as the booted system sees it."""
        if self.scope == "user":
            config_home = self._config_home()
            return {"encrypted": os.path.join(config_home, "credstore.encrypted"),
                    "plain": os.path.join(config_home, "credstore")}
        return {"encrypted": ENCRYPTED_STORE, "plain": PLAIN_STORE}

    def _config_home(self) -> str:
        return os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")

    def _unit_directory(self, unit: str) -> str:
        """The directory of one unit's credentials, as the booted system sees it."""
        base = os.path.join(self._config_home(), "unitcraft", "credentials") if self.scope == "user" else UNIT_STORE
        return os.path.join(base, unit)

    def loaders(self) -> CredentialLoaders:
        """The unit files of this scope's manager, to see which of them load a file."""
        if self.scope == "user":
            home = os.path.expanduser("~")
            dirs = user_unit_dirs(home, self._config_home(), os.environ.get("XDG_RUNTIME_DIR", ""))
            # the user manager looks nothing up by name (measured); the user's stores count all the same
            return CredentialLoaders(dirs, tuple(self._stores().values()))
        return CredentialLoaders(SYSTEM_UNIT_DIRS, SYSTEM_STORE_DIRS, root=self.root)

    def _new_plan(self) -> CredentialPlan:
        stores = self._stores()
        kind = "plain" if self.encrypt == "none" else "encrypted"
        if self.unit:
            system_path = os.path.join(self._unit_directory(self.unit), self.name)
        else:
            system_path = self.path_given or os.path.join(stores[kind], self.name)
        path = self._under_root(system_path)
        directive = "LoadCredential" if self.encrypt == "none" else "LoadCredentialEncrypted"
        # the system manager searches its stores by name; anything else needs the path spelled out
        searched = self.path_given is None and self.unit is None and self.scope == "system"
        load_value = escape_specifiers(self.name if searched else f"{self.name}:{system_path}")
        plan = CredentialPlan(path=path, directory=os.path.dirname(path), manage_directory=self.path_given is None,
                              load_directive=directive, load_value=load_value, file=FileState.of(path))
        if plan.file.exists and not plan.file.regular:
            raise CredentialError(f"credential {self.name}: {path} exists and is not a regular file (a symlink or a"
                                  " directory): refusing to write a secret through it")
        if self.unit:
            self._plan_unit_files(plan, stores, self.unit)
        elif self.path_given is None:
            # one credential per name: a copy in the other store (left by an earlier encrypt) goes
            others = [os.path.join(stores[k], self.name) for k in ("encrypted", "plain")]
            wanted = [] if self.state == "absent" else [system_path]
            for other in others:
                real = self._under_root(other)
                if other not in wanted and os.path.lexists(real):
                    plan.remove.append(real)
        elif self.state == "absent" and plan.file.exists:
            plan.remove.append(path)
        return plan

    def _plan_unit_files(self, plan: CredentialPlan, stores: Mapping[str, str], unit: str) -> None:
        """One unit's credential: its directory goes with its last file; the host-wide files it loads are reported."""
        if self.state == "absent":
            if plan.file.exists:
                plan.remove.append(plan.path)
            try:
                left = set(os.listdir(plan.directory))
            except OSError:
                left = None
            if left is not None and left <= {self.name}:
                plan.remove_directory = plan.directory
        # what the unit loads from the host-wide stores now (where a credential without unit lives)
        shared = [self._under_root(os.path.join(stores[k], self.name)) for k in ("encrypted", "plain")]
        shared = [real for real in shared if os.path.lexists(real)]
        if shared:
            template = parse_unit_name(unit).template
            names = {unit, *([template] if template else [])}
            loaders = self.loaders()
            plan.shared_files = [real for real in shared if loaders.unit_loads(names, self._booted_view(real))]

    def _booted_view(self, path: str) -> str:
        """A path on the target as the booted system sees it (without root)."""
        if not self.root:
            return path
        return "/" + os.path.relpath(path, self.root)

    def _keep_loaded(self, plan: CredentialPlan) -> None:
        """keep_if_loaded: leave each file that a unit file still loads, and say which."""
        loaders = self.loaders()
        for path in list(plan.remove):
            sources = loaders.loaded_by(self._booted_view(path))
            if sources:
                plan.remove.remove(path)
                plan.loaded_by.extend(s for s in sources if s not in plan.loaded_by)
                plan.reasons.append(f"{path} stays: loaded by {', '.join(sources)}")
        if plan.remove_directory and plan.path not in plan.remove and plan.file.exists:
            plan.remove_directory = None

    # --- planning ------------------------------------------------------------------------------

    def _read_installed(self, plan: CredentialPlan) -> bytes | None:
        """The installed secret, or None when it cannot be read (the reason goes to the plan)."""
        with open(plan.path, "rb") as f:
            data = f.read()
        if self.encrypt == "none":
            plan.installed_kind = "none"
            return data
        plan.installed_kind = sealed_with(data)
        plaintext, why = self.creds.decrypt(self.name, plan.path)
        if plaintext is None:
            plan.reasons.append(f"the installed file cannot be decrypted: {why}")
            return None
        return plaintext

    def _plan_present(self, plan: CredentialPlan) -> None:
        secret = self.secret or b""
        if not plan.file.exists:
            plan.write = True
            plan.reasons.append("the credential file is missing")
        else:
            installed = self._read_installed(plan)
            if installed is None:
                plan.write = True
            else:
                if installed:
                    # defence in depth: should the old secret ever reach a message, Ansible masks it
                    self.module.no_log_values.add(installed.decode("utf-8", errors="surrogateescape"))
                if not hmac.compare_digest(installed, secret):
                    plan.write = plan.value_differs = True
                    plan.reasons.append("the secret differs")
                elif self.encrypt != "none" and plan.installed_kind not in _ACCEPTED[self.key]:
                    plan.write = True
                    plan.reasons.append(f"the file is sealed with the {plan.installed_kind} key, encrypt: "
                                        f"{self.encrypt} asks for {'/'.join(sorted(_ACCEPTED[self.key]))}")
            if not plan.write and (plan.file.mode != FILE_MODE or (plan.file.uid, plan.file.gid) != self.owner):
                plan.fix_file = True
                plan.reasons.append(f"the file has {plan.file.describe()}, wanted mode {FILE_MODE:04o}, owner"
                                    f" {self.owner[0]}:{self.owner[1]}")
        directory = FileState.of(plan.directory)
        if not directory.exists:
            plan.create_directory = True
        elif plan.manage_directory and (directory.mode != DIR_MODE or (directory.uid, directory.gid) != self.owner):
            plan.fix_directory = True
            plan.reasons.append(f"the directory {plan.directory} has {directory.describe()}, wanted mode"
                                f" {DIR_MODE:04o}, owner {self.owner[0]}:{self.owner[1]}")
        if plan.remove:
            plan.reasons.append(f"a copy in the other store goes: {', '.join(plan.remove)}")

    def make_plan(self) -> CredentialPlan:
        plan = self._new_plan()
        if self.state == "present":
            self._plan_present(plan)
            return plan
        if self.keep_if_loaded:
            self._keep_loaded(plan)
        if plan.remove:
            plan.reasons.append(f"state: absent removes {', '.join(plan.remove)}")
        if plan.remove_directory:
            plan.reasons.append(f"the unit's credential directory {plan.remove_directory} is left empty and goes")
        return plan

    # --- applying --------------------------------------------------------------------------------

    def _apply(self, plan: CredentialPlan) -> None:
        data = b""
        if plan.write:
            # encrypt before touching anything: a failure leaves the host as it was
            secret = self.secret or b""
            data = secret if self.encrypt == "none" else self._encrypt(secret)
            if self.encrypt != "none":
                self.sealed = sealed_with(data)
        if plan.create_directory or plan.fix_directory:
            self.touched = True
            make_private_directory(plan.directory, self.owner, fix=plan.manage_directory)
        if plan.write:
            self.touched = True
            write_secret_file(self.module, plan.path, data, self.owner)
        elif plan.fix_file:
            self.touched = True
            os.chown(plan.path, *self.owner)
            os.chmod(plan.path, FILE_MODE)
        for path in plan.remove:
            self.touched = True
            os.unlink(path)
        if plan.remove_directory:
            self.touched = True
            os.rmdir(plan.remove_directory)

    def _encrypt(self, secret: bytes) -> bytes:
        try:
            return self.creds.encrypt(self.name, secret, self.key)
        except CredsError as exc:
            hint = _ENCRYPT_HINTS.get(self.key, "")
            raise CredentialError(f"credential {self.name}: {exc}{hint}") from None

    def run(self) -> dict[str, Any]:
        self.plan = plan = self.make_plan()
        if plan.changed and not self.check_mode:
            self._apply(plan)
        return self.result(plan)

    # --- result -------------------------------------------------------------------------------

    def _sealed_after(self, plan: CredentialPlan) -> str | None:
        if self.state == "absent":
            return None
        if self.encrypt == "none":
            return "none"
        if self.sealed:
            return self.sealed
        if plan.write:  # check mode: what the key asked for will be, auto is systemd's choice
            return None if self.key == "auto" else self.key
        return plan.installed_kind

    def _diff(self, plan: CredentialPlan) -> dict[str, str]:
        """Before and after of the credential, the secret redacted: which file, which key, whether it changed."""
        def describe(present: bool, sealed: str | None, mode: int, owner: tuple[int, int], secret: str) -> str:
            if not present:
                return ""
            return (f"credential: {self.name}\nsealed_with: {sealed or 'unknown'}\nmode: {mode:04o}\n"
                    f"owner: {owner[0]}:{owner[1]}\nvalue: {secret}\n")

        before = describe(plan.file.exists, plan.installed_kind, plan.file.mode, (plan.file.uid, plan.file.gid),
                          "(secret, not shown)")
        after_secret = "(secret, changed, not shown)" if plan.write else "(secret, not shown)"
        after_sealed = self._sealed_after(plan) or self.key
        after = describe(self.state == "present", after_sealed, FILE_MODE, self.owner, after_secret)
        removed = "".join(f"removed: {path}\n" for path in plan.gone)
        return {"before": before, "after": after + removed,
                "before_header": plan.path if plan.file.exists else f"{plan.path} (absent)",
                "after_header": plan.path if self.state == "present" else f"{plan.path} (absent)"}

    def result(self, plan: CredentialPlan) -> dict[str, Any]:
        result: dict[str, Any] = {
            "changed": plan.changed,
            "name": self.name,
            "state": self.state,
            "path": plan.path,
            "value_changed": plan.write,
            "sealed_with": self._sealed_after(plan),
            "removed": plan.gone,
            "reasons": list(plan.reasons),
            "load_directive": plan.load_directive,
            "load_value": plan.load_value,
            "systemd_creds_calls": self.creds.calls,
        }
        if self.unit:
            result["shared_files"] = list(plan.shared_files)
        if self.keep_if_loaded:
            result["loaded_by"] = list(plan.loaded_by)
        if self.diff_mode and plan.changed:
            result["diff"] = self._diff(plan)
        return result


# --- files --------------------------------------------------------------------------------------


class _PrivateUmask:
    """umask 077 while secrets are written: AnsibleModule.atomic_move gives a new file 0666 & ~umask."""

    def __enter__(self) -> None:
        self.previous = os.umask(0o077)

    def __exit__(self, *exc: object) -> None:
        os.umask(self.previous)


def make_private_directory(directory: str, owner: tuple[int, int], fix: bool) -> None:
    """Create the directory 0700 (its missing parents too); with `fix`, bring an existing one to 0700 and owner."""
    with _PrivateUmask():
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
    if fix:
        current = FileState.of(directory)
        if (current.uid, current.gid) != owner:
            os.chown(directory, *owner)
        if current.mode != DIR_MODE:
            os.chmod(directory, DIR_MODE)


def write_secret_file(module: Any, path: str, data: bytes, owner: tuple[int, int]) -> None:
    """Write `data` to `path` atomically, 0600 and owned by `owner` from the first byte on."""
    directory = os.path.dirname(path)
    with _PrivateUmask():
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), FILE_MODE)
                if (os.fstat(f.fileno()).st_uid, os.fstat(f.fileno()).st_gid) != owner:
                    os.fchown(f.fileno(), *owner)
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            # keep_dest_attrs=False: an old file's looser mode must not be copied onto the new one
            module.atomic_move(tmp, path, unsafe_writes=False, keep_dest_attrs=False)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    st = os.stat(path)
    if (st.st_uid, st.st_gid) != owner:
        os.chown(path, *owner)
    if stat.S_IMODE(st.st_mode) != FILE_MODE:
        os.chmod(path, FILE_MODE)


# --- module entry point ------------------------------------------------------------------------


def run_module(module: Any) -> None:
    """Entry point of the credential module: exit_json or fail_json, never return."""
    # A `path` key makes AnsibleModule add file facts (and its own `state`) to the result.
    module.add_path_info = lambda kwargs: kwargs
    failure: str | None = None
    task: CredentialTask | None = None
    try:
        task = CredentialTask(module, module.params)
        result = task.run()
    except (CredentialError, CredsError) as exc:
        failure = str(exc)
    except OSError as exc:
        failure = f"credential {module.params['name']}: {exc.filename or ''}: {exc.strerror or exc}"
    if failure is not None:
        partial: dict[str, Any] = {}
        if task is not None and task.plan is not None:
            partial = {"changed": task.touched, "path": task.plan.path, "systemd_creds_calls": task.creds.calls}
        module.fail_json(msg=failure, **partial)
    module.exit_json(**result)
