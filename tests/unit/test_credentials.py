# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The credential module and its logic, with a fake systemd-creds behind the real AnsibleModule.

The fake seals the plaintext, the credential name and the host key file it was given into a
base64 blob with the header ids systemd-creds writes, and refuses to decrypt under another
name or another key, as the real one does (measured on systemd 252 and 257).
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.unitcraft.systemd.plugins.module_utils import _credential_loaders, _credentials
from ansible_collections.unitcraft.systemd.plugins.module_utils._credentials import (
    CredentialError,
    CredentialTask,
    check_credential_name,
    escape_specifiers,
    sealed_with,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._creds_gateway import CredsError, SystemdCreds
from ansible_collections.unitcraft.systemd.plugins.modules import credential

HOST_ID = bytes.fromhex("5a1c6a86df9d4096b1d5a65e0862f19a")
NULL_ID = bytes.fromhex("058469daf6f54324800549da0f8ea2fb")
USER_ID = bytes.fromhex("55b9ed1d38594d43a8319d2ebb332ac6")
TPM_ID = bytes.fromhex("11" * 16)  # any id but the three above
SECRET = "s3cret-Alpha-7f0c"
OTHER = "s3cret-Beta-99d1"
LIVE_KEY = "/var/lib/systemd/credential.secret"
MEDIA_NOTE = (b"Credential secret file '/var/lib/systemd/credential.secret' is not located on encrypted media,"
              b" using anyway.\n")


def sealed(name: str, plaintext: str, key_id: bytes = HOST_ID, key_file: str = LIVE_KEY) -> bytes:
    payload = json.dumps({"name": name, "key": key_file, "data": plaintext.encode().hex()}).encode()
    return base64.b64encode(key_id + payload) + b"\n"


class FakeSystemdCreds:
    """Answers `systemd-creds encrypt|decrypt` like the real tool; records argv, stdin and environment."""

    def __init__(self, tpm: bool = False) -> None:
        self.tpm = tpm
        self.argvs: list[list[str]] = []
        self.stdins: list[bytes | None] = []
        self.envs: list[dict[str, str]] = []
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, argv: list[str], data: bytes | None = None, environ_update: dict[str, str] | None = None,
                 **kwargs: Any) -> tuple[int, bytes, bytes]:
        self.argvs.append(list(argv))
        self.stdins.append(data)
        env = dict(environ_update or {})
        self.envs.append(env)
        self.kwargs.append(kwargs)
        key_file = env.get("SYSTEMD_CREDENTIAL_SECRET", LIVE_KEY)
        options = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
        verb = argv[1]
        if verb == "encrypt":
            key = options["with-key"]
            if key == "tpm2" and not self.tpm:
                return 1, b"", MEDIA_NOTE + b"TPM2 support not installed: Operation not supported\n"
            key_id = HOST_ID if key == "host" or (key == "auto" and not self.tpm) else TPM_ID
            return 0, sealed(options["name"], (data or b"").decode(), key_id, key_file), MEDIA_NOTE
        if verb == "decrypt":
            path = argv[argv.index("--") + 1]
            try:
                raw = base64.b64decode(Path(path).read_bytes(), validate=False)
                meta = json.loads(raw[16:])
            except (ValueError, UnicodeDecodeError):
                return 1, b"", b"Unknown encryption format, or corrupted data.\n"
            if meta["key"] != key_file:
                return 1, b"", b"Decryption failed (incorrect key?): error:00000000:lib(0)::reason(0)\n"
            if meta["name"] != options["name"]:
                return 1, b"", (f"Embedded credential name '{meta['name']}' does not match filename"
                                f" '{options['name']}', refusing.\n").encode()
            return 0, bytes.fromhex(meta["data"]), b""
        raise AssertionError(f"unexpected systemd-creds call {argv}")

    def verbs(self) -> list[str]:
        return [argv[1] for argv in self.argvs]


@pytest.fixture(autouse=True)
def own_files(monkeypatch: pytest.MonkeyPatch) -> None:
    # system credentials belong to root; as whoever runs the tests, they belong to that user
    monkeypatch.setattr(_credentials, "SYSTEM_OWNER", (os.getuid(), os.getgid()))


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSystemdCreds:
    tool = FakeSystemdCreds()
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kw: tool(argv, **kw))
    monkeypatch.setattr(AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    return tool


class Runner:
    """Runs the module's main() with the real AnsibleModule and returns the parsed result."""

    def __init__(self, capsys: pytest.CaptureFixture[str], root: Path) -> None:
        self.capsys = capsys
        self.root = root

    def __call__(self, check: bool = False, diff: bool = False, expect_failure: bool = False,
                 **args: Any) -> dict[str, Any]:
        args.setdefault("name", "apikey")
        args.setdefault("root", str(self.root))
        if args["root"] is None:
            del args["root"]
        with patch_module_args({**args, "_ansible_check_mode": check, "_ansible_diff": diff}):
            with pytest.raises(SystemExit) as exit_info:
                credential.main()
        out = self.capsys.readouterr().out
        result = json.loads(out.strip().splitlines()[-1])
        assert bool(result.get("failed")) == expect_failure, result
        assert (exit_info.value.code != 0) == expect_failure
        result["_raw"] = out
        return result


@pytest.fixture()
def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, fake: FakeSystemdCreds) -> Runner:
    root = tmp_path / "root"
    root.mkdir()
    return Runner(capsys, root)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def enc_file(run: Runner, name: str = "apikey") -> Path:
    return run.root / "etc" / "credstore.encrypted" / name


def plain_file(run: Runner, name: str = "apikey") -> Path:
    return run.root / "etc" / "credstore" / name


def assert_no_secret(result: dict[str, Any], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result["_raw"]


# --- names and headers -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["apikey", "a b", "-lead", "x" * 255, "a%b", "API_KEY.v2", "~"])
def test_valid_names(name: str) -> None:
    check_credential_name(name)


@pytest.mark.parametrize(("name", "message"), [
    ("", "empty"),
    (".", "not allowed"),
    ("..", "not allowed"),
    ("x/y", "'/'"),
    ("a:b", "':'"),
    ("\u00e4", "printable ASCII"),
    ("tab\there", "printable ASCII"),
    ("x" * 256, "255"),
    (" lead", "blank"),
    ("trail ", "blank"),
])
def test_invalid_names(name: str, message: str) -> None:
    with pytest.raises(CredentialError, match=message):
        check_credential_name(name)


@pytest.mark.parametrize(("data", "kind"), [
    (sealed("x", "v", HOST_ID), "host"),
    (sealed("x", "v", NULL_ID), "null"),
    (sealed("x", "v", USER_ID), "user"),
    (sealed("x", "v", TPM_ID), "tpm2"),
    (b"not base64 at all!", "unknown"),
    (base64.b64encode(b"short"), "unknown"),
    # the header of a file systemd-creds 252 wrote with the host key (measured)
    (b"Whxqht+dQJax1aZeCGLxmiAAAAABAAAADAAAABAAAABZWtABsIJi6PVWXYoAAAAAOeErwVNEWFsSaQl\n"
     b"4Vr8pogjjySrOSt0JntkG2ju3f1sOzGmMhu6b0Z1KWueiHi02GMFL11ADg/A=\n", "host"),
])
def test_sealed_with(data: bytes, kind: str) -> None:
    assert sealed_with(data) == kind


def test_escape_specifiers() -> None:
    assert escape_specifiers("a%b:/srv/%i") == "a%%b:/srv/%%i"


# --- present: write, idempotence, check mode ----------------------------------------------------


def test_check_mode_on_a_new_credential_writes_nothing(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET, check=True, diff=True)
    assert result["changed"] is True and result["value_changed"] is True
    assert result["reasons"] == ["the credential file is missing"]
    assert result["sealed_with"] == "host"  # offline, auto is the image's host key
    assert not (run.root / "etc").exists()
    assert fake.argvs == []  # nothing to decrypt, and no encryption in check mode
    assert result["diff"]["before"] == ""
    assert "(secret, changed, not shown)" in result["diff"]["after"]
    assert_no_secret(result, SECRET)


def test_first_run_writes_an_encrypted_0600_file_in_a_0700_store(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET, diff=True)
    path = enc_file(run)
    assert result["changed"] is True and result["path"] == str(path)
    assert result["sealed_with"] == "host"
    assert (result["load_directive"], result["load_value"]) == ("LoadCredentialEncrypted", "apikey")
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    assert sealed_with(path.read_bytes()) == "host"
    assert json.loads(base64.b64decode(path.read_bytes())[16:])["name"] == "apikey"
    assert SECRET.encode() not in path.read_bytes()
    # one encrypt, the secret on stdin byte for byte, never in argv
    assert fake.verbs() == ["encrypt"]
    assert fake.stdins == [SECRET.encode()]
    assert fake.kwargs[0]["binary_data"] is True
    assert fake.argvs[0] == ["/usr/bin/systemd-creds", "encrypt", "--name=apikey", "--with-key=host", "-", "-"]
    assert result["systemd_creds_calls"] == 1
    assert_no_secret(result, SECRET)


def test_second_run_decrypts_compares_and_changes_nothing(run: Runner, fake: FakeSystemdCreds) -> None:
    run(value=SECRET)
    path = enc_file(run)
    before = path.stat()
    result = run(value=SECRET, diff=True)
    assert result["changed"] is False and result["value_changed"] is False
    assert result["reasons"] == [] and "diff" not in result
    assert fake.verbs() == ["encrypt", "decrypt"]
    assert fake.argvs[1] == ["/usr/bin/systemd-creds", "decrypt", "--name=apikey", "--newline=no", "--", str(path), "-"]
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_ino == before.st_ino
    assert result["sealed_with"] == "host"


def test_a_new_secret_rewrites_the_file(run: Runner, fake: FakeSystemdCreds) -> None:
    run(value=SECRET)
    result = run(value=OTHER, diff=True)
    assert result["changed"] is True and result["reasons"] == ["the secret differs"]
    assert fake.verbs() == ["encrypt", "decrypt", "encrypt"]
    assert fake.stdins[-1] == OTHER.encode()
    assert json.loads(base64.b64decode(enc_file(run).read_bytes())[16:])["data"] == OTHER.encode().hex()
    assert result["diff"]["before"].endswith("value: (secret, not shown)\n")
    assert result["diff"]["after"].endswith("value: (secret, changed, not shown)\n")
    assert_no_secret(result, SECRET, OTHER)


def test_check_mode_with_a_new_secret_reports_and_keeps_the_file(run: Runner, fake: FakeSystemdCreds) -> None:
    run(value=SECRET)
    before = enc_file(run).read_bytes()
    result = run(value=OTHER, check=True)
    assert result["changed"] is True and result["value_changed"] is True
    assert enc_file(run).read_bytes() == before
    assert fake.verbs() == ["encrypt", "decrypt"]  # decrypting is reading: check mode does it


def test_the_old_secret_is_masked_by_no_log(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    run(value=SECRET)
    seen: list[set[str]] = []
    original = _credentials.CredentialTask.result

    def spy(self: CredentialTask, plan: Any) -> dict[str, Any]:
        seen.append(set(self.module.no_log_values))
        result = original(self, plan)
        result["reasons"].append(f"echo {SECRET}")  # what a careless message would do
        return result

    monkeypatch.setattr(_credentials.CredentialTask, "result", spy)
    result = run(value=OTHER)
    assert {SECRET, OTHER} <= seen[0]
    assert SECRET not in result["_raw"] and "echo ********" in result["reasons"]


@pytest.mark.parametrize(("name", "key_file", "why"), [
    (None, None, "Unknown encryption format"),
    ("other", "IMAGE", "does not match"),
    ("apikey", "/elsewhere/credential.secret", "incorrect key"),
])
def test_an_unreadable_file_is_rewritten(run: Runner, name: str | None, key_file: str | None, why: str) -> None:
    path = enc_file(run)
    path.parent.mkdir(parents=True, mode=0o700)
    if name is None:
        path.write_bytes(b"garbage that is no credential\n")
    else:
        image_key = str(run.root / "var/lib/systemd/credential.secret")
        path.write_bytes(sealed(name, SECRET, key_file=image_key if key_file == "IMAGE" else key_file))
    path.chmod(0o600)
    result = run(value=SECRET)
    assert result["changed"] is True
    assert result["reasons"][0].startswith("the installed file cannot be decrypted: ") and why in result["reasons"][0]
    assert json.loads(base64.b64decode(path.read_bytes())[16:])["name"] == "apikey"


def test_root_uses_the_image_host_key(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET)
    key = str(run.root / "var/lib/systemd/credential.secret")
    assert fake.envs[0]["SYSTEMD_CREDENTIAL_SECRET"] == key
    assert "--with-key=host" in fake.argvs[0]  # auto means the image's host key offline
    assert json.loads(base64.b64decode(enc_file(run).read_bytes())[16:])["key"] == key
    assert result["load_value"] == "apikey"


def test_root_refuses_tpm2(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET, encrypt="tpm2", expect_failure=True)
    assert "encrypt: tpm2 does not work with root" in result["msg"]
    assert fake.argvs == []
    assert_no_secret(result, SECRET)


def test_live_host_without_root(run: Runner, fake: FakeSystemdCreds, tmp_path: Path) -> None:
    path = tmp_path / "live" / "apikey.cred"
    result = run(value=SECRET, root=None, path=str(path), encrypt="host")
    assert "SYSTEMD_CREDENTIAL_SECRET" not in fake.envs[0]
    assert result["load_value"] == f"apikey:{path}"
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700


# --- keys -----------------------------------------------------------------------------------------


def test_a_file_sealed_with_another_kind_of_key_is_rewritten(run: Runner, fake: FakeSystemdCreds,
                                                             tmp_path: Path) -> None:
    fake.tpm = True
    path = tmp_path / "c" / "apikey"
    run(value=SECRET, root=None, path=str(path), encrypt="host")
    assert run(value=SECRET, root=None, path=str(path), encrypt="auto")["changed"] is False
    result = run(value=SECRET, root=None, path=str(path), encrypt="tpm2")
    assert result["changed"] is True and result["sealed_with"] == "tpm2"
    assert result["reasons"] == ["the file is sealed with the host key, encrypt: tpm2 asks for tpm2"]
    assert run(value=SECRET, root=None, path=str(path), encrypt="auto")["changed"] is False
    assert run(value=SECRET, root=None, path=str(path), encrypt="host")["changed"] is True


def test_a_null_key_file_is_rewritten_for_auto(run: Runner) -> None:
    path = enc_file(run)
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_bytes(sealed("apikey", SECRET, NULL_ID, str(run.root / "var/lib/systemd/credential.secret")))
    path.chmod(0o600)
    result = run(value=SECRET)
    assert result["changed"] is True and "sealed with the null key" in result["reasons"][0]


def test_tpm2_failure_says_what_systemd_said_and_changes_nothing(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "t" / "apikey"
    result = run(value=SECRET, root=None, path=str(path), encrypt="tpm2", expect_failure=True)
    assert result["msg"] == (
        "credential apikey: /usr/bin/systemd-creds encrypt --name=apikey --with-key=tpm2 - - failed (rc=1):"
        " TPM2 support not installed: Operation not supported (encrypt: tpm2 needs a usable TPM2, see"
        " `systemd-creds has-tpm2`;"
        " encrypt: host works without one)")
    assert not path.exists() and not path.parent.exists()
    assert result["changed"] is False
    assert_no_secret(result, SECRET)


# --- attributes and directories ----------------------------------------------------------------------


def test_a_loose_mode_is_fixed_without_rewriting(run: Runner, fake: FakeSystemdCreds) -> None:
    run(value=SECRET)
    path = enc_file(run)
    path.chmod(0o644)
    mtime = path.stat().st_mtime_ns
    result = run(value=SECRET)
    assert result["changed"] is True and result["value_changed"] is False
    assert result["reasons"] == ["the file has mode 0644, owner %d:%d, wanted mode 0600, owner %d:%d"
                                 % ((os.getuid(), os.getgid()) * 2)]
    assert mode_of(path) == 0o600 and path.stat().st_mtime_ns == mtime
    assert fake.verbs() == ["encrypt", "decrypt"]


def test_rewriting_a_loose_file_never_keeps_its_mode(run: Runner) -> None:
    run(value=SECRET)
    enc_file(run).chmod(0o644)
    run(value=OTHER)
    assert mode_of(enc_file(run)) == 0o600


def test_the_default_store_is_kept_0700(run: Runner) -> None:
    store = run.root / "etc" / "credstore.encrypted"
    store.mkdir(parents=True, mode=0o755)
    store.chmod(0o755)
    result = run(value=SECRET)
    assert mode_of(store) == 0o700 and result["changed"] is True
    store.chmod(0o755)
    result = run(value=SECRET)
    assert result["changed"] is True and result["value_changed"] is False
    assert result["reasons"] == [f"the directory {store} has mode 0755, owner {os.getuid()}:{os.getgid()},"
                                 f" wanted mode 0700, owner {os.getuid()}:{os.getgid()}"]
    assert mode_of(store) == 0o700


def test_a_given_path_leaves_an_existing_directory_alone(run: Runner, tmp_path: Path) -> None:
    shared = tmp_path / "srv"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    result = run(value=SECRET, root=None, path=str(shared / "apikey.cred"))
    assert mode_of(shared) == 0o755 and mode_of(shared / "apikey.cred") == 0o600
    assert result["load_value"] == f"apikey:{shared / 'apikey.cred'}"
    assert run(value=SECRET, root=None, path=str(shared / "apikey.cred"))["changed"] is False


def test_new_files_are_private_whatever_the_umask(run: Runner) -> None:
    previous = os.umask(0o000)
    try:
        run(value=SECRET)
        assert os.umask(0o000) == 0o000  # restored
    finally:
        os.umask(previous)
    assert mode_of(enc_file(run)) == 0o600 and mode_of(enc_file(run).parent) == 0o700


def test_a_symlink_at_the_path_is_refused(run: Runner, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    result = run(value=SECRET, root=None, path=str(link), expect_failure=True)
    assert "is not a regular file" in result["msg"] and target.read_text() == "x"


# --- encrypt: none and switching stores ----------------------------------------------------------------


def test_encrypt_none_writes_a_plain_private_file(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET, encrypt="none")
    path = plain_file(run)
    assert path.read_bytes() == SECRET.encode() and mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    assert (result["load_directive"], result["load_value"]) == ("LoadCredential", "apikey")
    assert result["sealed_with"] == "none"
    assert fake.argvs == []  # no systemd-creds needed
    assert run(value=SECRET, encrypt="none")["changed"] is False
    assert run(value=OTHER, encrypt="none")["reasons"] == ["the secret differs"]


def test_switching_to_encryption_removes_the_plain_copy(run: Runner) -> None:
    run(value=SECRET, encrypt="none")
    result = run(value=SECRET, encrypt="host", diff=True)
    assert result["removed"] == [str(plain_file(run))] and not plain_file(run).exists()
    assert enc_file(run).exists()
    assert f"removed: {plain_file(run)}\n" in result["diff"]["after"]
    result = run(value=SECRET, encrypt="none")
    assert result["removed"] == [str(enc_file(run))] and plain_file(run).read_bytes() == SECRET.encode()


# --- absent -------------------------------------------------------------------------------------------


def test_absent_removes_the_credential_from_both_stores(run: Runner) -> None:
    run(value=SECRET, encrypt="none")
    plain = plain_file(run)
    enc = enc_file(run)
    enc.parent.mkdir(mode=0o700)
    enc.write_bytes(sealed("apikey", SECRET))
    check = run(state="absent", check=True)
    assert check["changed"] is True and plain.exists() and enc.exists()
    result = run(state="absent", diff=True)
    assert result["changed"] is True and sorted(result["removed"]) == sorted([str(enc), str(plain)])
    assert not plain.exists() and not enc.exists()
    assert result["sealed_with"] is None
    again = run(state="absent")
    assert again["changed"] is False and again["removed"] == []


def test_absent_with_a_path_removes_that_file(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "x" / "apikey.cred"
    run(value=SECRET, root=None, path=str(path))
    result = run(state="absent", root=None, path=str(path))
    assert result["removed"] == [str(path)] and not path.exists()


# --- input checks ----------------------------------------------------------------------------------------


def test_present_needs_a_value(run: Runner) -> None:
    result = run(expect_failure=True)
    assert "state is present but all of the following are missing: value" in result["msg"]


def test_an_empty_value_is_refused(run: Runner) -> None:
    result = run(value="", expect_failure=True)
    assert "value is empty" in result["msg"]


def test_a_relative_path_is_refused(run: Runner) -> None:
    assert "is not absolute" in run(value=SECRET, path="creds/apikey", expect_failure=True)["msg"]


def test_a_bad_name_fails_before_anything(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(name="a:b", value=SECRET, expect_failure=True)
    assert "credential name 'a:b' contains ':'" in result["msg"] and fake.argvs == []


def test_percent_in_a_name_is_escaped_for_the_unit(run: Runner) -> None:
    result = run(name="50%", value=SECRET, path="/srv/%i", root=str(run.root))
    assert result["load_value"] == "50%%:/srv/%%i"


def test_invocation_masks_the_value(run: Runner) -> None:
    result = run(value=SECRET)
    assert result["invocation"]["module_args"]["value"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


# --- scope: user ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encrypt", ["auto", "host", "tpm2"])
def test_user_scope_refuses_encryption_with_the_measured_reason(run: Runner, encrypt: str) -> None:
    result = run(value=SECRET, scope="user", root=None, encrypt=encrypt, expect_failure=True)
    assert f"encrypt: {encrypt} refused. scope: user supports encrypt: none only" in result["msg"]
    assert "systemd 257" in result["msg"] and "Permission denied" in result["msg"]


def test_user_scope_with_a_root_is_refused(run: Runner) -> None:
    result = run(value=SECRET, scope="user", encrypt="none", expect_failure=True)
    assert "root works with scope: system only" in result["msg"]


def test_user_scope_plain_file_in_the_config_home(run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    result = run(value=SECRET, scope="user", root=None, encrypt="none")
    path = tmp_path / "cfg" / "credstore" / "apikey"
    assert result["path"] == str(path) and path.read_bytes() == SECRET.encode()
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid())
    # the user manager does not search the store: the unit names the file
    assert (result["load_directive"], result["load_value"]) == ("LoadCredential", f"apikey:{path}")


# --- unit: a credential of one unit -----------------------------------------------------------------------------


def opened(path: Path) -> tuple[str, str]:
    """(sealed name, plaintext) of a file the fake sealed."""
    meta = json.loads(base64.b64decode(path.read_bytes())[16:])
    return meta["name"], bytes.fromhex(meta["data"]).decode()


def unit_file(run: Runner, unit: str, name: str = "apikey") -> Path:
    return run.root / "etc" / "unitcraft" / "credentials" / unit / name


def write_unit(run: Runner, relative: str, text: str) -> Path:
    path = run.root / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_unit_credential_lives_in_the_units_own_directory(run: Runner, fake: FakeSystemdCreds) -> None:
    result = run(value=SECRET, unit="huobi.service")
    path = unit_file(run, "huobi.service")
    assert result["path"] == str(path) and result["changed"] is True and result["value_changed"] is True
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    # sealed under the credential's own name: LoadCredentialEncrypted=apikey:PATH checks that name (252, 257)
    assert fake.argvs[-1][2] == "--name=apikey"
    assert (result["load_directive"], result["load_value"]) == (
        "LoadCredentialEncrypted", "apikey:/etc/unitcraft/credentials/huobi.service/apikey")
    assert result["shared_files"] == [] and result["removed"] == []
    assert not enc_file(run).exists() and not plain_file(run).exists()
    assert run(value=SECRET, unit="huobi.service")["changed"] is False


def test_two_units_with_the_same_credential_name_never_touch_each_other(run: Runner) -> None:
    run(value=SECRET, unit="huobi.service")
    run(value=OTHER, unit="binance.service")
    huobi, binance = unit_file(run, "huobi.service"), unit_file(run, "binance.service")
    assert opened(huobi) == ("apikey", SECRET) and opened(binance) == ("apikey", OTHER)
    # each rerun compares with its own file: nothing changes, whichever ran last
    assert run(value=SECRET, unit="huobi.service")["changed"] is False
    assert run(value=OTHER, unit="binance.service")["changed"] is False
    gone = run(state="absent", unit="huobi.service")
    assert gone["removed"] == [str(huobi), str(huobi.parent)] and not huobi.parent.exists()
    assert opened(binance) == ("apikey", OTHER)


def test_absent_keeps_the_units_directory_while_another_credential_is_in_it(run: Runner) -> None:
    run(value=SECRET, unit="huobi.service")
    run(name="apisecret", value=OTHER, unit="huobi.service")
    first = run(state="absent", unit="huobi.service", check=True)
    assert first["changed"] is True and first["removed"] == [str(unit_file(run, "huobi.service"))]
    assert unit_file(run, "huobi.service").exists()  # check mode
    run(state="absent", unit="huobi.service")
    last = run(name="apisecret", state="absent", unit="huobi.service", diff=True)
    directory = unit_file(run, "huobi.service").parent
    assert last["removed"] == [str(directory / "apisecret"), str(directory)] and not directory.exists()
    assert f"removed: {directory}\n" in last["diff"]["after"]
    assert run(name="apisecret", state="absent", unit="huobi.service")["changed"] is False


def test_a_unit_credential_switches_encryption_in_the_same_file(run: Runner) -> None:
    plain = run(value=SECRET, unit="huobi.service", encrypt="none")
    path = unit_file(run, "huobi.service")
    assert path.read_bytes() == SECRET.encode()
    assert (plain["load_directive"], plain["load_value"]) == ("LoadCredential", f"apikey:{plain['path'][len(str(run.root)):]}")
    sealed_now = run(value=SECRET, unit="huobi.service", encrypt="host")
    assert sealed_now["value_changed"] is True and sealed_now["removed"] == []
    assert SECRET.encode() not in path.read_bytes() and sealed_with(path.read_bytes()) == "host"


def test_the_units_directory_is_brought_back_to_0700(run: Runner) -> None:
    run(value=SECRET, unit="huobi.service")
    directory = unit_file(run, "huobi.service").parent
    directory.chmod(0o755)
    result = run(value=SECRET, unit="huobi.service")
    assert result["changed"] is True and result["value_changed"] is False and mode_of(directory) == 0o700


@pytest.mark.parametrize(("unit", "message"), [
    ("huobi", "has no type suffix"),
    ("huobi.timer", "a timer unit runs no process and loads no credential"),
    ("huobi.target", "a target unit runs no process"),
    ("../x.service", "invalid unit name"),
    ("foo\\x2dbar.service", "a backslash in the credential's path is read as written by systemd 252 and unescaped by 257"),
])
def test_a_unit_that_cannot_load_a_credential_is_refused(run: Runner, fake: FakeSystemdCreds, unit: str,
                                                         message: str) -> None:
    result = run(value=SECRET, unit=unit, expect_failure=True)
    assert message in result["msg"] and result["msg"].startswith("credential apikey: ") and fake.argvs == []


def test_unit_and_path_are_mutually_exclusive(run: Runner) -> None:
    result = run(value=SECRET, unit="huobi.service", path="/srv/apikey", expect_failure=True)
    assert "mutually exclusive: path|unit" in result["msg"]


def test_a_template_unit_gets_one_directory_for_all_instances(run: Runner) -> None:
    result = run(value=SECRET, unit="worker@.service")
    assert result["load_value"] == "apikey:/etc/unitcraft/credentials/worker@.service/apikey"


def test_user_scope_unit_credential_in_the_config_home(run: Runner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    result = run(value=SECRET, scope="user", root=None, encrypt="none", unit="ureader.service")
    path = tmp_path / "cfg" / "unitcraft" / "credentials" / "ureader.service" / "apikey"
    assert result["path"] == str(path) and result["load_value"] == f"apikey:{path}"
    assert path.read_bytes() == SECRET.encode() and mode_of(path.parent) == 0o700


# --- the host-wide files a unit loads, and retiring them ------------------------------------------------------


OLD_LAYOUT_UNIT = "[Service]\nExecStart=/usr/local/bin/huobi\nLoadCredentialEncrypted=apikey\n"


def old_layout(run: Runner, secret: str = SECRET) -> Path:
    """What the daemon role wrote before per-unit credentials: /etc/credstore.encrypted/apikey, loaded by name."""
    enc_file(run).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    enc_file(run).write_bytes(sealed("apikey", secret))
    return enc_file(run)


@pytest.mark.parametrize("where", [
    "/etc/systemd/system/huobi.service",
    "/etc/systemd/system/huobi.service.d/creds.conf",
    "/usr/lib/systemd/system/huobi.service",
])
def test_the_host_wide_file_the_unit_loads_is_reported_and_left_alone(run: Runner, where: str) -> None:
    shared = old_layout(run)
    write_unit(run, where, OLD_LAYOUT_UNIT)
    result = run(value=SECRET, unit="huobi.service")
    assert result["shared_files"] == [str(shared)] and shared.exists()
    assert result["removed"] == []


def test_a_host_wide_file_only_another_unit_loads_is_not_the_units(run: Runner) -> None:
    old_layout(run)
    write_unit(run, "/etc/systemd/system/binance.service", OLD_LAYOUT_UNIT)
    write_unit(run, "/etc/systemd/system/huobi.service",
               "[Service]\nLoadCredentialEncrypted=apikey:/etc/unitcraft/credentials/huobi.service/apikey\n")
    assert run(value=SECRET, unit="huobi.service")["shared_files"] == []


def test_an_instance_reports_what_its_template_loads(run: Runner) -> None:
    shared = old_layout(run)
    write_unit(run, "/etc/systemd/system/worker@.service", OLD_LAYOUT_UNIT)
    assert run(value=SECRET, unit="worker@1.service")["shared_files"] == [str(shared)]


def test_absent_reports_the_host_wide_file_too(run: Runner) -> None:
    shared = old_layout(run)
    write_unit(run, "/etc/systemd/system/huobi.service", OLD_LAYOUT_UNIT)
    result = run(state="absent", unit="huobi.service")
    assert result["shared_files"] == [str(shared)] and result["removed"] == [] and shared.exists()


def test_keep_if_loaded_keeps_a_file_another_unit_loads(run: Runner) -> None:
    shared = old_layout(run)
    binance = write_unit(run, "/etc/systemd/system/binance.service", OLD_LAYOUT_UNIT)
    kept = run(state="absent", path="/etc/credstore.encrypted/apikey", keep_if_loaded=True)
    assert kept["changed"] is False and kept["removed"] == [] and shared.exists()
    assert kept["loaded_by"] == [str(binance)]
    assert kept["reasons"] == [f"{shared} stays: loaded by {binance}"]
    binance.write_text("[Service]\nLoadCredentialEncrypted=apikey:/etc/unitcraft/credentials/binance.service/apikey\n")
    check = run(state="absent", path="/etc/credstore.encrypted/apikey", keep_if_loaded=True, check=True)
    assert check["changed"] is True and check["removed"] == [str(shared)] and shared.exists()
    gone = run(state="absent", path="/etc/credstore.encrypted/apikey", keep_if_loaded=True)
    assert gone["changed"] is True and gone["loaded_by"] == [] and not shared.exists()


def test_keep_if_loaded_with_both_default_stores(run: Runner) -> None:
    shared = old_layout(run)
    plain_file(run).parent.mkdir(mode=0o700)
    plain_file(run).write_bytes(SECRET.encode())
    loader = write_unit(run, "/usr/lib/systemd/system/vendor.service", "[Service]\nLoadCredential=apikey\n")
    result = run(state="absent", keep_if_loaded=True)
    # a name without a path may be found in either store: both stay
    assert result["removed"] == [] and result["loaded_by"] == [str(loader)]
    assert shared.exists() and plain_file(run).exists()


def test_keep_if_loaded_needs_state_absent(run: Runner) -> None:
    result = run(value=SECRET, keep_if_loaded=True, expect_failure=True)
    assert "keep_if_loaded works with state: absent only" in result["msg"]


# --- which unit files load a file -------------------------------------------------------------------------------


STORES = _credential_loaders.SYSTEM_STORE_DIRS
SHARED = "/etc/credstore.encrypted/apikey"


@pytest.mark.parametrize(("directive", "value", "path", "loads"), [
    ("LoadCredentialEncrypted", "apikey", SHARED, True),
    ("LoadCredential", "apikey", SHARED, True),  # either store may be searched: counted as loading
    ("LoadCredentialEncrypted", "apikey", "/etc/credstore/apikey", True),
    ("LoadCredentialEncrypted", "apikey", "/srv/apikey", False),  # not in a store: never found by name
    ("LoadCredentialEncrypted", "other", SHARED, False),
    ("LoadCredentialEncrypted", "key:apikey", SHARED, True),  # a relative path is searched in the stores
    ("LoadCredentialEncrypted", "apikey:/etc/credstore.encrypted/apikey", SHARED, True),
    ("LoadCredentialEncrypted", "apikey:/etc/credstore.encrypted//apikey", SHARED, True),
    ("LoadCredentialEncrypted", "apikey:/etc/credstore.encrypted", SHARED, True),  # a directory loads its files
    ("LoadCredentialEncrypted", "apikey:/etc/credstore.encrypted/apikey2", SHARED, False),
    ("LoadCredentialEncrypted", "apikey:/etc/unitcraft/credentials/huobi.service/apikey", SHARED, False),
    ("LoadCredentialEncrypted", "apikey:%E/credstore.encrypted/apikey", SHARED, True),  # a specifier: anything
    ("LoadCredentialEncrypted", "apikey:%E/credstore.encrypted/other", SHARED, False),
    ("LoadCredentialEncrypted", "%N", SHARED, True),
    ("LoadCredentialEncrypted", "50%%", "/etc/credstore.encrypted/50%", True),
    ("LoadCredentialEncrypted", "api[k]ey", "/etc/credstore.encrypted/apikey", False),  # no glob in a name
    ("LoadCredentialEncrypted", "", SHARED, False),  # a reset
    ("ImportCredential", "api*", SHARED, True),
    ("ImportCredential", "login.*", SHARED, False),
    ("ImportCredential", "tty.%I.*:tty.", "/etc/credstore/tty.x.y", True),
    ("ImportCredential", "api*", "/srv/apikey", False),
])
def test_which_lines_load_a_file(directive: str, value: str, path: str, loads: bool) -> None:
    line = _credential_loaders.CredentialLine("/etc/systemd/system/x.service", directive, value)
    assert line.loads(path, STORES) is loads


def test_credential_lines_skip_comments_and_other_directives() -> None:
    text = ("[Service]\n# LoadCredentialEncrypted=apikey\n; ImportCredential=*\nLoadCredentialEncrypted = apikey \n"
            "Environment=LoadCredential=x\n  ImportCredential=api*\nSetCredential=apikey:x\n")
    lines = _credential_loaders.credential_lines(text, "u")
    assert [(line.directive, line.value) for line in lines] == [("LoadCredentialEncrypted", "apikey"),
                                                                ("ImportCredential", "api*")]


def test_unit_files_reads_exec_units_and_their_dropins_once(tmp_path: Path) -> None:
    etc, vendor = tmp_path / "etc", tmp_path / "lib"
    for path in ("a.service", "b.socket", "c.timer", "a.service.d/x.conf", "a.service.d/x.txt", "service.d/all.conf",
                 "multi-user.target.wants/a.service", "d.target.d/y.conf"):
        (etc / path).parent.mkdir(parents=True, exist_ok=True)
        if path.startswith("multi-user"):
            (etc / path).symlink_to(etc / "a.service")
        else:
            (etc / path).write_text("")
    vendor.mkdir()
    (vendor / "a.service").symlink_to(etc / "a.service")  # the same file twice: read once
    dirs = [str(etc), str(vendor), str(tmp_path / "missing")]
    found = [os.path.relpath(p, tmp_path) for p in _credential_loaders.unit_files(dirs)]
    assert found == ["etc/a.service", "etc/a.service.d/x.conf", "etc/b.socket", "etc/service.d/all.conf"]
    only = [os.path.relpath(p, tmp_path) for p in _credential_loaders.unit_files([str(etc)], names={"a.service"})]
    assert only == ["etc/a.service", "etc/a.service.d/x.conf"]


def test_user_unit_dirs_leave_the_runtime_parts_out_without_a_runtime_directory() -> None:
    with_runtime = _credential_loaders.user_unit_dirs("/home/u", "/home/u/.config", "/run/user/1000")
    assert "/run/user/1000/systemd/transient" in with_runtime and "/home/u/.config/systemd/user" in with_runtime
    without = _credential_loaders.user_unit_dirs("/home/u", "/home/u/.config", "")
    assert all(d.startswith(("/home/u", "/etc", "/usr", "/lib", "/run/systemd/user")) for d in without)


# --- the gateway --------------------------------------------------------------------------------------------------


class BareModule:
    def __init__(self, binary: str | None = "/usr/bin/systemd-creds") -> None:
        self.binary = binary
        self.tool = FakeSystemdCreds()

    def get_bin_path(self, name: str, required: bool = False) -> str | None:
        return self.binary

    def run_command(self, argv: list[str], **kwargs: Any) -> tuple[int, bytes, bytes]:
        return self.tool(argv, **kwargs)


def test_gateway_counts_every_process_and_keeps_no_secret() -> None:
    module = BareModule()
    gateway = SystemdCreds(module)
    blob = gateway.encrypt("apikey", SECRET.encode(), "host")
    assert sealed_with(blob) == "host" and gateway.calls == 1
    assert all(SECRET not in " ".join(argv) for argv in gateway.commands)
    assert module.tool.kwargs[0] == {"binary_data": True, "encoding": None}


def test_gateway_decrypt_reports_why(tmp_path: Path) -> None:
    gateway = SystemdCreds(BareModule())
    path = tmp_path / "c"
    path.write_bytes(sealed("other", SECRET))
    plaintext, why = gateway.decrypt("apikey", str(path))
    assert plaintext is None and why == "Embedded credential name 'other' does not match filename 'apikey', refusing."
    path.write_bytes(sealed("apikey", SECRET))
    assert gateway.decrypt("apikey", str(path)) == (SECRET.encode(), "")
    assert gateway.calls == 2


def test_gateway_without_systemd_creds() -> None:
    with pytest.raises(CredsError, match="systemd-creds was not found"):
        SystemdCreds(BareModule(binary=None)).encrypt("apikey", b"x", "host")


def test_gateway_root_points_at_the_image_key() -> None:
    gateway = SystemdCreds(BareModule(), root="/srv/img")
    assert gateway.env["SYSTEMD_CREDENTIAL_SECRET"] == "/srv/img/var/lib/systemd/credential.secret"
    assert "SYSTEMD_CREDENTIAL_SECRET" not in SystemdCreds(BareModule()).env
