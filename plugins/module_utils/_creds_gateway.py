# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""The one gateway through which the collection talks to systemd-creds.

Every call goes through `SystemdCreds.run`, which counts the processes started and keeps
their command lines. A secret only ever travels on stdin or stdout, never on a command line
(command lines are visible in `ps` and in debug output), so `commands` holds nothing secret.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

# The host key of a system, where PID 1 reads it (systemd-creds(1)).
HOST_KEY = "/var/lib/systemd/credential.secret"


class CredsError(Exception):
    """A systemd-creds call failed; the message holds the command and what systemd-creds said, never a secret."""


class CommandRunner(Protocol):
    """The subset of AnsibleModule the gateway uses (lets unit tests pass a fake)."""

    def run_command(self, args: list[str], **kwargs: Any) -> tuple[int, Any, Any]: ...

    def get_bin_path(self, arg: str, required: bool = False) -> str | None: ...


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _explain(err: bytes | str) -> str:
    """What systemd-creds said, without its note that the host key is not on encrypted media (said on every call)."""
    lines = [line.strip() for line in _text(err).splitlines()]
    return " ".join(line for line in lines if line and "is not located on encrypted media" not in line)


class SystemdCreds:
    """systemd-creds with the system's keys, on the live host or with the host key of an offline root."""

    def __init__(self, module: CommandRunner, root: str | None = None) -> None:
        self.module = module
        self.root = root
        self.calls = 0
        self.commands: list[list[str]] = []
        self._binary: str | None = None
        self.env = {"LC_ALL": "C", "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""}
        if root:
            # systemd-creds has no --root (252, 257): this variable points it at the image's host key,
            # which it creates (with its directory) when missing, as PID 1 would on first use.
            self.env["SYSTEMD_CREDENTIAL_SECRET"] = self.host_key

    @property
    def host_key(self) -> str:
        return os.path.join(self.root, HOST_KEY.lstrip("/")) if self.root else HOST_KEY

    @property
    def binary(self) -> str:
        if self._binary is None:
            found = self.module.get_bin_path("systemd-creds")
            if not found:
                raise CredsError("systemd-creds was not found on the target (it comes with systemd 250 and later);"
                                 " encrypt: none needs no systemd-creds")
            self._binary = found
        return self._binary

    def argv(self, verb: str, *args: str) -> list[str]:
        return [self.binary, verb, *args]

    def run(self, verb: str, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        argv = self.argv(verb, *args)
        self.calls += 1
        self.commands.append(argv)
        # binary_data: the secret goes in byte for byte (run_command adds a newline to text data otherwise)
        rc, out, err = self.module.run_command(argv, data=stdin, binary_data=True, environ_update=self.env,
                                               encoding=None)
        return rc, out or b"", err or b""

    def encrypt(self, name: str, plaintext: bytes, key: str) -> bytes:
        """Ciphertext (base64 text as systemd-creds writes it) of `plaintext` under the credential name."""
        argv_args = (f"--name={name}", f"--with-key={key}", "-", "-")
        rc, out, err = self.run("encrypt", *argv_args, stdin=plaintext)
        if rc != 0 or not out.strip():
            raise CredsError(f"{' '.join(self.commands[-1])} failed (rc={rc}): {_explain(err) or 'no output'}")
        return out

    def decrypt(self, name: str, path: str) -> tuple[bytes | None, str]:
        """(plaintext, "") of the credential file, or (None, why) when systemd-creds cannot decrypt it.

        The name is checked against the one sealed in the file, as LoadCredentialEncrypted= does.
        """
        rc, out, err = self.run("decrypt", f"--name={name}", "--newline=no", "--", path, "-")
        if rc != 0:
            return None, _explain(err) or f"systemd-creds decrypt exited {rc}"
        return out, ""
