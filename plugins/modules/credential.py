#!/usr/bin/python
# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: credential
short_description: Install a secret for a service as a systemd credential, encrypted, idempotently
version_added: 0.1.0
description:
  - Installs a secret as a systemd credential file that a service loads with C(LoadCredentialEncrypted=NAME)
    (or C(LoadCredential=NAME) for O(encrypt=none)); the service reads it from C($CREDENTIALS_DIRECTORY/NAME),
    a directory private to the service. Unlike C(Environment=), the secret is not in the unit file, and not in
    C(systemctl show), which every local user can run.
  - Encrypts with C(systemd-creds encrypt), sealing the secret with the host key
    (C(/var/lib/systemd/credential.secret), created by systemd on first use) and/or the TPM2.
  - Idempotent - the installed file is decrypted and compared with O(value); the file is rewritten only when
    the secret differs, the file is missing or cannot be decrypted, or it is sealed with another kind of key
    than O(encrypt) asks for. A second identical run reports no change, so the file keeps its modification
    time and a unit that lists it in its O(unitcraft.systemd.unit#module:restart_triggers) is not restarted.
  - The file is written atomically (temporary file in the same directory, then rename), mode C(0600) and owned
    by root from the first byte on; the default store directory is kept at C(0700) root.
  - The secret goes to C(systemd-creds) on stdin and comes back on stdout, never on a command line, and never
    into the result, the diff, a warning or an error message.
author:
  - unitcraft maintainers (@unitcraft)
options:
  name:
    description:
      - The credential name, the C(NAME) of C(LoadCredentialEncrypted=NAME) and of C($CREDENTIALS_DIRECTORY/NAME).
      - Checked against systemd's rules - 1 to 255 printable ASCII characters, no C(/) or C(:), not C(.) or
        C(..); blanks at either end are refused too, since a unit file cannot express them.
      - The name is sealed into the encrypted file, and systemd refuses to load it under another name.
    type: str
    required: true
  value:
    description:
      - The secret, written byte for byte (UTF-8); an empty value is refused.
      - Never logged or returned (C(no_log)); give it from Ansible Vault or a lookup.
      - Required with O(state=present).
    type: str
  state:
    description:
      - V(present) installs the credential; V(absent) removes its file.
      - With V(absent) and no O(path), the credential is removed from both default stores
        (C(/etc/credstore.encrypted) and C(/etc/credstore)), whatever O(encrypt) says.
    type: str
    default: present
    choices: [present, absent]
  encrypt:
    description:
      - How the secret is sealed (C(systemd-creds encrypt --with-key=)).
      - V(auto) uses systemd's choice - the host key and the TPM2 together when a TPM2 is usable, otherwise the
        host key alone. An installed file sealed with either is accepted. It fails when there is no TPM2 and the
        host key lies on a temporary file system (use V(host) there).
      - V(host) seals with the host key only; the file can be decrypted on this host (or a copy of its disk) only.
      - V(tpm2) seals with the TPM2 only; fails, with systemd's words, on a machine without a usable TPM2
        (containers and most virtual machines).
      - V(none) writes the secret as a plain C(0600) root file in C(/etc/credstore), loaded with
        C(LoadCredential=). Still private to root and to the service, but readable from a copy of the disk.
      - A file sealed with a kind of key that O(encrypt) does not accept (for example V(host) after V(tpm2) was
        asked) is rewritten. With the default O(path), a copy of the credential in the other store (left by an
        earlier O(encrypt)) is removed, so no plain copy outlives a switch to encryption.
    type: str
    default: auto
    choices: [auto, host, tpm2, none]
  path:
    description:
      - Where the credential file goes. Omitted means C(/etc/credstore.encrypted/NAME) (or C(/etc/credstore/NAME)
        with O(encrypt=none)), where C(LoadCredentialEncrypted=NAME) (C(LoadCredential=NAME)) finds it without a path.
      - Another path must be named in the unit, as C(LoadCredentialEncrypted=NAME:PATH); RV(load_value) gives it.
      - Missing directories are created C(0700); the mode of an existing directory that is not the default store
        is left alone.
      - With O(root), the path as the booted image sees it; the file goes under O(root).
      - Mutually exclusive with O(unit).
    type: path
  unit:
    description:
      - The unit that loads the credential, for example V(huobi.service). The file then belongs to that unit alone -
        C(/etc/unitcraft/credentials/UNIT/NAME) (C($XDG_CONFIG_HOME/unitcraft/credentials/UNIT/NAME) with
        O(scope=user)), sealed under O(name), whatever O(encrypt) says. Two units that each have a credential
        V(apikey) get two files, so neither overwrites, restarts or removes the other's.
      - The unit loads it with C(LoadCredentialEncrypted=NAME:PATH) (C(LoadCredential=NAME:PATH) for O(encrypt=none)),
        which RV(load_directive) and RV(load_value) give; the program still reads C($CREDENTIALS_DIRECTORY/NAME).
      - That directory is not one of systemd's credential stores, so no other unit finds the file by name or by an
        C(ImportCredential=) glob. A per-unit directory or name inside C(/etc/credstore.encrypted) is not used - on
        systemd 257 it breaks every unit whose C(ImportCredential=) glob matches it (C(Is a directory), or the
        sealed name differs), and systemd's own units import globs such as C(login.*) and C(journal.*) (measured).
      - The unit's directory is kept C(0700); O(state=absent) removes it with the unit's last credential.
      - RV(shared_files) reports a file of the same name in the host-wide stores that the unit's installed unit
        file or drop-ins load now (what a task without O(unit) wrote); the task leaves it alone.
      - A service, socket, mount or swap unit (the kinds that run processes); a template (V(worker@.service)) gives
        every instance the same file. A name with a backslash is refused - systemd 252 reads a backslash in a
        C(LoadCredential=) path as written and 257 unescapes it (measured), so no line works on both.
      - Mutually exclusive with O(path).
    type: str
  keep_if_loaded:
    description:
      - With O(state=absent), leave every file that a unit file or drop-in of the manager still loads, and name those
        in RV(loaded_by). A file is loaded when a C(LoadCredential=) or C(LoadCredentialEncrypted=) line names its
        path (or a directory above it), names it without a path while it lies in one of systemd's credential stores,
        or an C(ImportCredential=) glob matches it there. A value with a specifier counts as loading whatever the
        specifier could stand for.
      - Read from the files on disk (the whole unit search path, vendor and runtime directories included); a unit
        whose file was deleted while it keeps running is not seen.
      - For retiring a host-wide credential once the last unit that loads it by name has moved to its own file
        (RV(shared_files)); the C(unitcraft.systemd.daemon) role does that.
    type: bool
    default: false
  scope:
    description:
      - V(system) installs the credential for services of the system manager (including those with C(User=)).
      - V(user) installs it for the connecting user's services, in C(~/.config/credstore/NAME)
        (C($XDG_CONFIG_HOME/credstore)), owned by that user, with O(encrypt=none) only. Measured on systemd 252
        and 257 - 252 has no user-scoped credentials and a user cannot read the host key; 257 can encrypt them
        (C(systemd-creds --user)), but its user manager cannot load them with C(LoadCredentialEncrypted=)
        (it logs C(Failed to determine local credential key) with C(Permission denied)), and it does not search a user's
        credential store, so the unit needs C(LoadCredential=NAME:PATH) (RV(load_value)). Any other O(encrypt)
        is refused with this explanation.
      - For a secret that must stay encrypted at rest, run the service in the system manager with C(User=).
    type: str
    default: system
    choices: [system, user]
  root:
    description:
      - Work offline inside this directory, as when building an image - the file goes under it, and encryption
        uses the image's own host key C(ROOT/var/lib/systemd/credential.secret), which C(systemd-creds) creates
        there when missing (C(systemd-creds) has no C(--root) option in systemd 252 and 257; the key is passed
        with the C(SYSTEMD_CREDENTIAL_SECRET) variable, which both honour).
      - O(encrypt=auto) means V(host) here; O(encrypt=tpm2) is refused (this machine's TPM2 is not the one of the
        machine that boots the image); O(encrypt=none) needs no key.
      - Every machine made from the image shares that host key. Where that matters, install credentials on the
        booted machine instead.
      - Only with O(scope=system).
    type: path
attributes:
  check_mode:
    support: full
    description: Decrypts and compares what is installed, reports whether anything would change, and writes nothing.
  diff_mode:
    support: full
    description: Returns before and after of the credential - file, key kind, mode, owner, whether the secret
      changed - with the secret itself redacted.
  idempotent:
    support: full
    description: A second identical run reports no change and leaves the file untouched (same modification time).
notes:
  - Restart the services that load a credential when it changes by listing the credential file in their
    O(unitcraft.systemd.unit#module:restart_triggers) (see the EXAMPLES); the file changes only when the secret
    (or the key) does, so a run that changes nothing restarts nothing.
  - The collection's C(docs/secrets.md) explains why C(Environment=) leaks and how to rotate a secret.
  - Measured on systemd 252 and 257 in containers - the host key works, a TPM2 is not usable there.
  - Without O(unit) or O(path), one file per name serves the whole host - every unit that loads V(apikey) by name
    reads the same secret. Give O(unit) to every credential that belongs to one service.
seealso:
  - module: unitcraft.systemd.unit
  - name: systemd-creds(1)
    description: Encrypting and decrypting credentials, the host key and the TPM2.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd-creds.html
  - name: systemd.exec(5), Credentials
    description: LoadCredential=, LoadCredentialEncrypted= and the credential stores.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.exec.html#Credentials
"""

EXAMPLES = r"""
---
- name: Install the exchange API key of huobi.service, for that unit alone, encrypted with the host key (or the TPM2)
  unitcraft.systemd.credential:
    name: apikey
    value: "{{ vault_huobi_apikey }}"
    unit: huobi.service
  register: apikey

- name: Run the downloader; it reads the key from $CREDENTIALS_DIRECTORY/apikey and restarts when the key changes
  unitcraft.systemd.unit:
    name: huobi.service
    sections:
      Service:
        ExecStart: /usr/bin/python3 /opt/huobi/downloader.py --api-key-file=%d/apikey
        # apikey:/etc/unitcraft/credentials/huobi.service/apikey
        LoadCredentialEncrypted: "{{ apikey.load_value }}"
        Restart: always
        RestartSec: 2
      Install:
        WantedBy: multi-user.target
    enabled: true
    active: true
    restart_triggers:
      - "{{ apikey.path }}"

- name: A credential every unit may load by name - one file, /etc/credstore.encrypted/proxy-token, for the host
  unitcraft.systemd.credential:
    name: proxy-token
    value: "{{ vault_proxy_token }}"

- name: Remove that host-wide credential, unless a unit file still loads it (loaded_by names them)
  unitcraft.systemd.credential:
    name: proxy-token
    state: absent
    keep_if_loaded: true

- name: A credential kept elsewhere - the unit names the path (load_directive and load_value give the line)
  unitcraft.systemd.credential:
    name: backup-password
    value: "{{ vault_backup_password }}"
    path: /srv/secrets/backup-password.cred
    encrypt: host
  register: backup_password

- name: Load it in the backup job (load_value is backup-password:/srv/secrets/backup-password.cred)
  unitcraft.systemd.dropin:
    name: backup.service
    dropin: credentials
    sections:
      Service:
        LoadCredentialEncrypted: "{{ backup_password.load_value }}"
    restart_triggers:
      - "{{ backup_password.path }}"

- name: Several secrets from a dict - loop over the names, so that no loop item (shown with -v) holds a secret
  unitcraft.systemd.credential:
    name: "{{ item }}"
    value: "{{ huobi_secrets[item] }}"
    unit: huobi.service
  loop: "{{ huobi_secrets.keys() | list }}"

- name: Build an image offline - sealed with the image's own host key, created under root when missing
  unitcraft.systemd.credential:
    name: apikey
    value: "{{ vault_huobi_apikey }}"
    root: /srv/images/rootfs

- name: A secret for a user service (plain 0600 file in ~/.config/credstore; see the scope option)
  unitcraft.systemd.credential:
    name: token
    value: "{{ vault_token }}"
    scope: user
    encrypt: none

- name: Remove the credential from both default stores
  unitcraft.systemd.credential:
    name: apikey
    state: absent

- name: Remove huobi.service's own credential (and its directory with the last one); other units' apikey stay
  unitcraft.systemd.credential:
    name: apikey
    unit: huobi.service
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the credential file, its mode, owner or directory changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
name:
  description: The credential name.
  returned: success
  type: str
  sample: apikey
state:
  description: The requested O(state).
  returned: success
  type: str
  sample: present
path:
  description: The credential file (under O(root) when given).
  returned: success, and on failure once the file is known
  type: str
  sample: /etc/unitcraft/credentials/huobi.service/apikey
value_changed:
  description: Whether the file was (or would be) rewritten - the secret differs, the file was missing or could not
    be decrypted, or it was sealed with another kind of key. A unit that loads the credential then needs a restart.
  returned: success
  type: bool
  sample: true
sealed_with:
  description:
    - The kind of key that seals the installed file after the task, as named in its header - V(host), V(tpm2) (the
      TPM2, with or without the host key), V(null) (no key, written by C(--with-key=null)), V(user) (a user-scoped
      host key), V(none) (a plain file, O(encrypt=none)).
    - V(null) after O(state=absent), and in check mode when the file would be rewritten with O(encrypt=auto).
  returned: success
  type: str
  sample: host
removed:
  description: Files removed (or that would be) - with O(state=absent), and copies in the other default store; with
    O(unit), also the unit's credential directory once it is empty.
  returned: success
  type: list
  elements: str
  sample: [/etc/credstore/apikey]
shared_files:
  description:
    - Files named O(name) in the host-wide stores (C(/etc/credstore.encrypted), C(/etc/credstore); the user's
      with O(scope=user)) that the installed unit file or drop-ins of O(unit) load now, by name or by path - the
      layout without O(unit). Any other unit may load them too.
    - The task leaves them alone. Once the unit loads its own file instead, remove them with O(path), O(state=absent)
      and O(keep_if_loaded=true), which keeps a file another unit still loads.
  returned: with O(unit)
  type: list
  elements: str
  sample: [/etc/credstore.encrypted/apikey]
loaded_by:
  description: With O(keep_if_loaded), the unit files and drop-ins that load a file the task would have removed;
    those files stay.
  returned: with O(keep_if_loaded)
  type: list
  elements: str
  sample: [/etc/systemd/system/binance.service]
reasons:
  description: Why the task changed something, in words, one entry per reason (never the secret).
  returned: success
  type: list
  elements: str
  sample: ["the secret differs"]
load_directive:
  description: The unit directive that loads this credential - C(LoadCredentialEncrypted) or C(LoadCredential).
  returned: success
  type: str
  sample: LoadCredentialEncrypted
load_value:
  description:
    - Its value - the name alone when the file is in the default system store, C(NAME:PATH) otherwise (with O(unit)
      or O(path); a C(%) written as C(%%)). Together, a C([Service]) entry of
      O(unitcraft.systemd.unit#module:sections).
  returned: success
  type: str
  sample: apikey:/etc/unitcraft/credentials/huobi.service/apikey
systemd_creds_calls:
  description: How many C(systemd-creds) processes the task started (one C(decrypt) of an installed file, one
    C(encrypt) when it writes).
  returned: success, and on failure once the file is known
  type: int
  sample: 1
diff:
  description: In diff mode, when something changed - before and after of the credential with the secret redacted.
  returned: changed and diff mode
  type: dict
  sample:
    before: ""
    after: "credential: apikey\nsealed_with: host\nmode: 0600\nowner: 0:0\nvalue: (secret, changed, not shown)\n"
    before_header: /etc/unitcraft/credentials/huobi.service/apikey (absent)
    after_header: /etc/unitcraft/credentials/huobi.service/apikey
msg:
  description: Why the task failed - the name, the path and what systemd-creds said, never the secret.
  returned: failure
  type: str
  sample: "credential apikey: /usr/bin/systemd-creds encrypt --name=apikey --with-key=tpm2 - - failed (rc=1): TPM2
    support not installed: Operation not supported (encrypt: tpm2 needs a usable TPM2, ...)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitcraft.systemd.plugins.module_utils._credentials import CREDENTIAL_OPTIONS, run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec=CREDENTIAL_OPTIONS,
        required_if=[["state", "present", ["value"]]],
        mutually_exclusive=[["path", "unit"]],
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
