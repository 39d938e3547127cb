#!/usr/bin/python
# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: unit
short_description: Render, validate and install systemd units, and enable, start or restart them
version_added: 0.1.0
description:
  - Writes a unit file from structured O(sections) or raw O(content), checks it with
    C(systemd-analyze verify) before anything is installed, installs it atomically, runs one
    C(daemon-reload) per task only when something changed, then enables, masks, starts,
    stops or restarts units idempotently.
  - Manages one unit (O(name)) or many in one task (O(units)); many units cost one
    daemon-reload and one C(systemctl) call per kind of action, not one per unit.
  - With neither O(sections) nor O(content) the file is left alone and only runtime state is
    managed, so it also serves units it did not write, such as C(ntp.service).
  - Replaces the usual M(ansible.builtin.template) + handler +
    M(ansible.builtin.systemd_service) chain.
author:
  - unitcraft maintainers (@unitcraft)
extends_documentation_fragment:
  - unitcraft.systemd._common.target
  - unitcraft.systemd._common.linger
  - unitcraft.systemd._common.file
  - unitcraft.systemd._common.reload
  - unitcraft.systemd._common.wait
  - unitcraft.systemd._common.attributes
options:
  name:
    description:
      - The unit name with its type suffix, such as C(huobi.service), C(backup.timer),
        C(worker@.service) (a template), C(worker@3.service) (an instance) or C(srv-data.mount).
      - Checked against systemd's unit-name rules; names with C(/), whitespace or C(..) are refused.
      - Exactly one of O(name) or O(units).
    type: str
  units:
    description:
      - Many units in one task. Each item takes O(name) (required) and any per-unit option
        (O(sections), O(content), O(state), O(enabled), O(masked), O(active),
        O(restart_on_change), O(restart_triggers), O(validate), O(lint), O(backup), O(mode),
        O(owner), O(group), O(rewrite_equivalent)).
      - A per-unit option given at the task level is the default for every item. An item
        that sets O(sections) or O(content) takes neither from the task level.
      - Task-level O(enabled) and O(active) are meant for the instances - a template item
        (C(worker@.service)) does not take them; give them on the template item itself when
        it should be enabled (through C(DefaultInstance=)).
      - Exactly one of O(name) or O(units).
    type: list
    elements: dict
    suboptions:
      name:
        description: The unit name, as O(name).
        type: str
        required: true
      sections:
        description: As O(sections).
        type: dict
      content:
        description: As O(content).
        type: str
      state:
        description: As O(state).
        type: str
        choices: [present, absent]
      enabled:
        description: As O(enabled).
        type: bool
      masked:
        description: As O(masked).
        type: bool
      active:
        description: As O(active).
        type: bool
      restart_on_change:
        description: As O(restart_on_change).
        type: bool
      restart_triggers:
        description: As O(restart_triggers).
        type: list
        elements: path
      validate:
        description: As O(validate).
        type: str
        choices: [strict, errors, 'off']
      lint:
        description: As O(lint).
        type: str
        choices: [warn, error, 'off']
      backup:
        description: As O(backup).
        type: bool
      mode:
        description: As O(mode).
        type: raw
      owner:
        description: As O(owner).
        type: str
      group:
        description: As O(group).
        type: str
      rewrite_equivalent:
        description: As O(rewrite_equivalent).
        type: bool
  sections:
    description:
      - The unit as an ordered mapping of section name to an ordered mapping of directive to value,
        rendered in the order given (see the P(unitcraft.systemd.to_unit#filter) filter).
      - A list renders one line per element; V(true)/V(false) render C(yes)/C(no); numbers render
        as text; an empty string renders C(Key=) (systemd's reset); V(null) leaves the directive out.
      - Values, keys or section names with a newline, carriage return or NUL are refused, so a
        value cannot smuggle in another directive.
      - Mutually exclusive with O(content).
    type: dict
  content:
    description:
      - The unit file as raw text. It must parse as systemd unit syntax.
      - Mutually exclusive with O(sections).
    type: str
  state:
    description:
      - V(present) installs the file (when O(sections) or O(content) is given).
      - V(absent) stops and disables the unit, removes the file this module manages in the
        admin directory (never a vendor unit under C(/usr/lib) or C(/lib)), removes its
        drop-in directory if it is empty, and reloads.
      - For a template, V(absent) first stops its running instances and disables them (every
        link to them goes), then removes the file.
      - When the file is an override in C(/etc) of a vendor unit of the same name, V(absent)
        removes only the override - the vendor unit's enablement and links stay as they are,
        and a running unit is restarted on the vendor definition.
      - With O(masked=true), the file is removed and the unit masked in one task.
    type: str
    default: present
    choices: [present, absent]
  enabled:
    description:
      - Whether the unit is enabled (its C([Install]) links exist). Omitted means untouched.
      - When the C([Install]) section of an enabled unit changes, the unit is re-enabled so its links follow.
      - A unit without an C([Install]) section cannot be enabled - systemd calls it C(static),
        RV(units[].unit_file_state) says so and the lint reports C(enable-without-install).
      - On a template, V(true) needs C(DefaultInstance=) in its C([Install]) section; the task
        is refused while planning otherwise.
    type: bool
  masked:
    description:
      - Whether the unit is masked. Omitted means untouched. Masking stops the unit first.
      - Cannot be combined with writing the unit's own file (O(sections)/O(content)).
      - A unit whose file lies in the admin directory (C(/etc/systemd/system)) cannot be masked
        (C(systemctl mask) would fail after stopping it) - the task is refused while planning,
        before anything is stopped. Use O(state=absent) with O(masked=true) to remove that
        file and mask the unit in one task.
    type: bool
  active:
    description:
      - V(true) starts the unit if it is not running, V(false) stops it. Omitted means untouched.
      - Started means running - the task waits for the job (up to O(wait_timeout)), then the
        unit must be C(active) (a oneshot without C(RemainAfterExit=) must have finished with
        success) and stay up for O(settle) seconds. Otherwise the task fails, naming the unit,
        its state and the journal lines of that start.
      - Before it starts or restarts a unit systemd has loaded, the task runs C(systemctl
        reset-failed) on it. That clears a failed state and the start rate limit
        (C(StartLimitBurst=)) a crash loop or earlier restarts used up, so the start the task
        asks for is not refused with C(start-limit-hit) and a rerun repairs what an earlier run
        could not. C(StartLimitBurst=) still stops systemd's own automatic restarts.
      - A template such as C(worker@.service) is never started itself; give an instance.
      - Refused with O(root) and with O(scope=global), which have no running manager.
    type: bool
notes:
  - Order of work in one task, for all units together - validation of every changed file, then
    stop (waited for), disable, file writes, mask/unmask, enable, one daemon-reload,
    reset-failed of the loaded units about to start, start and restart (queued), then one wait
    for all jobs and the settle window.
  - A failure of one unit does not stop the work planned for the others - everything that can
    be done is done, then the task fails listing every failure; RV(changed) still says whether
    the host changed.
  - If validation fails nothing is changed on the host; the installed file stays byte for byte.
  - Files are written to a temporary file in the target directory and renamed into place.
  - C(enable), C(disable), C(mask) and C(unmask) run with C(--no-reload) before the task's one
    daemon-reload, so the manager sees new files and links together and no second reload happens.
seealso:
  - module: unitcraft.systemd.dropin
  - module: unitcraft.systemd.unit_info
  - module: ansible.builtin.systemd_service
  - name: systemd.unit(5)
    description: Unit file format and the [Unit] and [Install] sections.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html
  - name: systemd.service(5)
    description: The [Service] section.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.service.html
  - name: systemd-analyze(1)
    description: The verify and calendar commands used for validation.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd-analyze.html
"""

EXAMPLES = r"""
---
- name: Run the market-data downloader as a service that is restarted when it dies
  unitcraft.systemd.unit:
    name: huobi.service
    sections:
      Unit:
        Description: huobi downloader
        After: rc-local.service
      Service:
        Type: simple
        User: root
        Group: root
        WorkingDirectory: /usr/lib/code/atom
        ExecStart: /usr/bin/python3 exchange/downloader.py huobi /data2/huobi/huobi.log
        Restart: always
        RestartSec: 2
      Install:
        WantedBy: multi-user.target
    enabled: true
    active: true

- name: Step the clock once at boot, after the network is up and before the NTP daemon
  unitcraft.systemd.unit:
    name: ntp-force-sync.service
    sections:
      Unit:
        Description: ntp force synchronization once
        Before: ntp.service
        Wants: network-online.target
        After: network.target network-online.target
      Service:
        Type: oneshot
        ExecStart: /usr/sbin/ntpd -qg
        RemainAfterExit: true
        TimeoutStartSec: 90
      Install:
        WantedBy: multi-user.target
    enabled: true

- name: Many units in one task - one daemon-reload, one systemctl call per kind of action
  unitcraft.systemd.unit:
    enabled: true
    active: true
    units:
      - name: worker@.service
        sections:
          Service:
            ExecStart: /usr/local/bin/worker --id %i
          Install:
            WantedBy: multi-user.target
      - name: worker@1.service
      - name: worker@2.service

- name: Restart the downloader once whenever its program or its settings change
  unitcraft.systemd.unit:
    name: huobi.service
    sections:
      Service:
        ExecStart: /usr/bin/python3 /opt/huobi/downloader.py
        EnvironmentFile: /etc/default/huobi
        Restart: always
        RestartSec: 2
    active: true
    restart_triggers:
      - /opt/huobi/downloader.py
      - /etc/default/huobi

- name: Queue a slow start and go on without waiting for it
  unitcraft.systemd.unit:
    name: reindex.service
    active: true
    no_block: true

- name: Manage only the runtime state of a unit this module did not write
  unitcraft.systemd.unit:
    name: ntp.service
    enabled: true
    active: true

- name: Install a unit whose unknown keys should only warn
  unitcraft.systemd.unit:
    name: legacy.service
    content: "{{ lookup('ansible.builtin.file', 'legacy.service') }}"
    validate: errors

- name: Build an image offline - render and enable into a directory tree
  unitcraft.systemd.unit:
    name: huobi.service
    root: /srv/images/rootfs
    sections:
      Service:
        ExecStart: /usr/bin/python3 /opt/huobi/downloader.py
      Install:
        WantedBy: multi-user.target
    enabled: true

- name: Remove a unit - stop, disable, delete the file, reload
  unitcraft.systemd.unit:
    name: huobi.service
    state: absent
"""

RETURN = r"""
changed:
  description: Whether any file or runtime state changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
daemon_reloaded:
  description: Whether a daemon-reload ran (in check mode, whether one would run).
  returned: always
  type: bool
  sample: true
systemctl_calls:
  description: How many C(systemctl) processes the task started.
  returned: always
  type: int
  sample: 3
user:
  description: The user whose units were managed (with O(user)).
  returned: when O(user) is given
  type: str
  sample: alice
linger:
  description: Whether the user lingers after the task (with O(linger)).
  returned: when O(linger) is given
  type: bool
  sample: true
queued:
  description: Units whose start, stop or restart job was queued and not waited for (O(no_block=true)).
  returned: always
  type: list
  elements: str
  sample: [reindex.service]
msg:
  description:
    - When the task fails, every problem - each unit that did not get where it was sent, with its
      C(ActiveState), C(SubState), C(Result), C(NRestarts) and the journal lines of that start.
  returned: failure
  type: str
  sample: "1 problem(s); everything else the task planned was done:\nunit quick.service: died 0.5s after the start, within settle=1s ..."
user_managers_reloaded:
  description: With O(scope=global), the users whose running manager was reloaded after the task changed
    a file (or would be, in check mode), so that it runs the new definitions without a relogin.
  returned: when O(scope=global)
  type: list
  elements: str
  sample: [alice]
units:
  description: One result per unit, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The unit name.
      type: str
      sample: huobi.service
    path:
      description: The file this module manages for the unit.
      type: str
      sample: /etc/systemd/system/huobi.service
    changed:
      description: Whether anything changed for this unit.
      type: bool
      sample: true
    state:
      description: The requested O(state) of the unit (V(present) or V(absent)).
      type: str
      sample: present
    file_changed:
      description: Whether the file was written or removed.
      type: bool
      sample: true
    enabled:
      description: Whether the unit is enabled after the task; V(null) when unknown.
      type: bool
      sample: true
    unit_file_state:
      description: The unit-file state after the task (C(enabled), C(disabled), C(static), C(masked), ...).
      type: str
      sample: enabled
    active:
      description: Whether the unit is C(active) (or C(reloading)) after the task, as RV(units[].active_state)
        says - a unit still C(activating), or waiting for its automatic restart, is not; V(null) when unknown.
      type: bool
      sample: true
    active_state:
      description: systemd's C(ActiveState) after the task (predicted in check mode).
      type: str
      sample: active
    sub_state:
      description: systemd's C(SubState) after the task, when a running manager was asked after a change.
      type: str
      sample: running
    result:
      description: systemd's C(Result) of the unit after the task (C(success), C(exit-code), C(signal), ...),
        when a running manager was asked after a change.
      type: str
      sample: success
    queued:
      description: Whether a job of this unit was queued and not waited for (O(no_block=true)).
      type: bool
      sample: false
    problem:
      description: Why the unit did not get where it was sent (only when it did not).
      type: str
      sample: "keeps dying: 3 restart(s) in 2.1s, last exit status exited 2; a process lived 0.3s, less than settle=1s"
    journal:
      description: The unit's journal lines since the task began, at most 20 (only with RV(units[].problem)).
      type: list
      elements: str
      sample: ["2026-12-01T18:02:08+0000 host systemd[1]: quick.service: Failed with result 'exit-code'."]
    restart_triggered_by:
      description: Paths of O(restart_triggers) whose content changed since the unit last took it in,
        which made the task restart it.
      type: list
      elements: str
      sample: [/opt/huobi/downloader.py]
    differs_only_in_form:
      description: The file on the target already said what O(sections) says, in another form (comments,
        spacing, section order), so it was left as it was - or rewritten with O(rewrite_equivalent=true) -
        and the unit was not restarted (only when true).
      type: bool
      sample: true
    restart_pending:
      description: An earlier run was killed or failed before the restart it owed this unit, and this
        task made it (only when true).
      type: bool
      sample: true
    health:
      description:
        - What the health gate found (the table in the collection's docs/modules.md).
        - V(steady) (not started by the task and up longer than O(settle), not watched), V(settled)
          (watched and stayed up), V(recovered) (systemd restarted it by itself during the run and
          the new process stayed up), V(failed), V(stopped), V(queued) (O(no_block)) or V(none).
      type: str
      sample: settled
    restarts_seen:
      description: Automatic restarts systemd made of the unit since the task read it, while the gate
        watched it (0 when it was not watched).
      type: int
      sample: 0
    last_exit_status:
      description: How the unit's last main process ended, when the gate saw one end ("" otherwise).
      type: str
      sample: exited 2
    stopped_instances:
      description: Running instances of a template that O(state=absent) stopped.
      type: list
      elements: str
      sample: [worker@1.service]
    main_pid:
      description: The unit's main PID after the task (0 when none), when a running manager was asked.
      type: int
      sample: 4242
    restarted:
      description: Whether the unit was (or would be) restarted because its definition changed
        (see O(restart_on_change) and O(restart_triggers)).
      type: bool
      sample: false
    restarted_instances:
      description: Running instances of a changed template that were (or would be) restarted
        although the task did not list them.
      type: list
      elements: str
      sample: [worker@1.service, worker@2.service]
    actions:
      description: The systemctl verbs run for this unit, in order.
      type: list
      elements: str
      sample: [enable, start]
    validation:
      description: Warnings C(systemd-analyze verify) gave about the new file (with O(validate=errors)).
      type: list
      elements: str
      sample: ["/etc/systemd/system/legacy.service:7: Unknown key 'Restat' in section [Service], ignoring."]
    lint:
      description: Lint findings, each with C(rule), C(section), C(key) and C(message).
      type: list
      elements: dict
      sample: [{rule: after-without-wants, section: Unit, key: After, message: "..."}]
    backup_file:
      description: Path of the backup of the previous file, when O(backup=true) and the file changed.
      type: str
      sample: /etc/systemd/system/huobi.service.1234.2026-11-21@10:00:00~
    diff:
      description: Before and after text of the file, in diff mode, when it changed.
      type: dict
      sample: {before: "", after: "[Unit]\nDescription=huobi downloader\n", before_header: "(absent)"}
name:
  description: The unit name (only with O(name)); the other keys of RV(units) are returned beside it.
  returned: when O(name) is used
  type: str
  sample: huobi.service
path:
  description: The managed file (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: /etc/systemd/system/huobi.service
enabled:
  description: Whether the unit is enabled after the task (only with O(name)).
  returned: when O(name) is used
  type: bool
  sample: true
active:
  description: Whether the unit is active after the task (only with O(name)).
  returned: when O(name) is used
  type: bool
  sample: true
state:
  description: The unit's requested state, V(present) or V(absent) (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: present
unit_file_state:
  description: The unit-file state after the task, as systemd reports it (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: enabled
active_state:
  description: systemd's C(ActiveState) after the task (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: active
restarted:
  description: Whether the unit was restarted (only with O(name)).
  returned: when O(name) is used
  type: bool
  sample: false
validation:
  description: Validation warnings (only with O(name)).
  returned: when O(name) is used
  type: list
  elements: str
  sample: []
health:
  description: What the health gate found, as RV(units[].health) (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: settled
restarts_seen:
  description: Automatic restarts systemd made while the gate watched, as RV(units[].restarts_seen) (only
    with O(name)).
  returned: when O(name) is used
  type: int
  sample: 0
last_exit_status:
  description: How the last main process ended, as RV(units[].last_exit_status) (only with O(name)).
  returned: when O(name) is used
  type: str
  sample: ""
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import (
    SystemdModule,
    FILE_OPTIONS,
    LINGER_OPTIONS,
    RELOAD_OPTIONS,
    RUNTIME_OPTIONS,
    TARGET_OPTIONS,
    WAIT_OPTIONS,
    without_defaults,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._manager import run_module


def main() -> None:
    per_unit = {**FILE_OPTIONS, **RUNTIME_OPTIONS}
    item_options = {"name": {"type": "str", "required": True}, **without_defaults(per_unit)}
    module: AnsibleModule = SystemdModule(
        argument_spec={
            "name": {"type": "str"},
            "units": {"type": "list", "elements": "dict", "options": item_options,
                      "mutually_exclusive": [["sections", "content"]]},
            **per_unit,
            **TARGET_OPTIONS,
            **LINGER_OPTIONS,
            **RELOAD_OPTIONS,
            **WAIT_OPTIONS,
        },
        mutually_exclusive=[["name", "units"], ["sections", "content"]],
        required_one_of=[["name", "units"]],
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
