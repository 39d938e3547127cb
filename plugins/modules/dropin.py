#!/usr/bin/python
# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dropin
short_description: Manage a drop-in file that overrides settings of any systemd unit
version_added: 0.1.0
description:
  - Manages one drop-in file C(<unit>.d/<dropin>.conf) in the admin unit directory for any
    unit, including vendor units under C(/usr/lib/systemd) and templates.
  - The unit as merged with the drop-in is checked with C(systemd-analyze verify) before the
    drop-in is installed; the drop-in is written atomically, one daemon-reload follows only
    when it changed, and the unit is restarted once if it is active.
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
      - The unit the drop-in belongs to, with its type suffix (C(chrony.service), C(worker@.service)).
      - A name whose part before the suffix ends in C(-), such as C(feed-.service), makes a prefix
        drop-in (C(feed-.service.d/)), which systemd applies to every unit whose name starts with
        that prefix (C(feed-alpha.service), C(feed-beta-1.service)); their running units are
        restarted once when it changes.
      - A bare unit type, such as V(service), makes a type-wide drop-in (C(service.d/)) that systemd
        applies to every unit of that type; running units are not restarted (a warning says so).
      - Prefix and type-wide drop-ins need systemd 245 or later (refused otherwise) and are
        validated on a stand-in unit of that type (V(service), V(target), V(slice); others need
        O(validate=off)).
    type: str
    required: true
  dropin:
    description:
      - The drop-in file's stem; the file is C(<name>.d/<dropin>.conf).
    type: str
    default: override
  sections:
    description:
      - The drop-in as sections, rendered as for M(unitcraft.systemd.unit).
      - To replace a list directive such as C(ExecStart=), reset it first with an empty string,
        as systemd needs, for example V(["", "/usr/sbin/chronyd -x"]) as the value of C(ExecStart).
      - Mutually exclusive with O(content).
    type: dict
  content:
    description:
      - The drop-in as raw text. Mutually exclusive with O(sections).
    type: str
  state:
    description:
      - V(present) installs the drop-in, V(absent) removes it (and its directory if that is
        then empty), reloads and restarts the unit if it is active.
    type: str
    default: present
    choices: [present, absent]
notes:
  - A running unit is restarted once when the drop-in changed (in what it says, not only in form), when
    an earlier run was killed before that restart, or when the content of a path of O(restart_triggers)
    changed since the unit took it in; the task then waits for it to be
    up again (O(wait_timeout), O(settle)) and fails with its state and journal if it is not.
  - A drop-in answers only for the problems it brings - what C(systemd-analyze verify) says about
    the unit without the drop-in too (a vendor unit's missing program, say) is returned as a warning
    and does not fail the task.
  - The unit's own file is looked up in the scope's unit search path (C(/etc), C(/run),
    C(/usr/local/lib), C(/usr/lib), C(/lib)); for an instance, its template. If no unit file
    exists the drop-in cannot be validated - install the unit first or set O(validate=off).
seealso:
  - module: unitcraft.systemd.unit
  - name: systemd.unit(5)
    description: Drop-in directories and how settings are merged.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html
"""

EXAMPLES = r"""
---
- name: Let chrony run in a container without CAP_SYS_TIME (serve time, never set the clock)
  unitcraft.systemd.dropin:
    name: chrony.service
    dropin: container
    sections:
      Unit:
        ConditionCapability: ""
      Service:
        ExecStart:
          - ""
          # "!" as in Debian's unit: chronyd starts as root, then drops to User=_chrony itself
          - "!/usr/sbin/chronyd $DAEMON_OPTS -x"

- name: Raise the restart delay of a vendor service
  unitcraft.systemd.dropin:
    name: ssh.service
    dropin: restart
    sections:
      Service:
        Restart: on-failure
        RestartSec: 5

- name: Lower the priority of every feed-*.service at once (a prefix drop-in)
  unitcraft.systemd.dropin:
    name: feed-.service
    dropin: nice
    sections:
      Service:
        Nice: 10

- name: Remove the drop-in again, restoring the vendor setting
  unitcraft.systemd.dropin:
    name: ssh.service
    dropin: restart
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the drop-in or the unit's runtime state changed (or would, in check mode).
  returned: always
  type: bool
  sample: true
daemon_reloaded:
  description: Whether a daemon-reload ran (would run, in check mode).
  returned: always
  type: bool
  sample: true
name:
  description: The unit name.
  returned: always
  type: str
  sample: chrony.service
dropin:
  description: The drop-in stem.
  returned: always
  type: str
  sample: container
path:
  description: The drop-in file.
  returned: always
  type: str
  sample: /etc/systemd/system/chrony.service.d/container.conf
restarted:
  description: Whether the unit was (or would be) restarted because the drop-in changed.
  returned: always
  type: bool
  sample: true
active:
  description: Whether the unit is active after the task; V(null) when unknown.
  returned: always
  type: bool
  sample: true
enabled:
  description: Whether the unit is enabled after the task; V(null) when unknown.
  returned: always
  type: bool
  sample: true
validation:
  description: Warnings of C(systemd-analyze verify) about the merged unit (with O(validate=errors)).
  returned: always
  type: list
  elements: str
  sample: []
lint:
  description: Lint findings on the unit as merged with the drop-in.
  returned: always
  type: list
  elements: dict
  sample: []
state:
  description: The requested O(state) of the drop-in, V(present) or V(absent).
  returned: always
  type: str
  sample: present
file_changed:
  description: Whether the drop-in file was written or removed.
  returned: always
  type: bool
  sample: true
actions:
  description: The systemctl verbs run for the unit, in order.
  returned: always
  type: list
  elements: str
  sample: [restart]
active_state:
  description: systemd's C(ActiveState) of the unit after the task.
  returned: always
  type: str
  sample: active
unit_file_state:
  description: The unit-file state after the task, as systemd reports it.
  returned: always
  type: str
  sample: enabled
restart_triggered_by:
  description: Paths of O(restart_triggers) whose content changed since the unit last took it in,
    which made the task restart it.
  returned: when such a restart was planned
  type: list
  elements: str
  sample: [/etc/chrony/chrony.conf]
differs_only_in_form:
  description: The drop-in on the target already said what O(sections) says, in another form, so it was
    left as it was - or rewritten with O(rewrite_equivalent=true) - and the unit was not restarted.
  returned: when true
  type: bool
  sample: true
restart_pending:
  description: An earlier run was killed or failed before the restart it owed the unit, and this task
    made it.
  returned: when true
  type: bool
  sample: true
health:
  description:
    - What the health gate found after the restart (the table in the collection's docs/modules.md).
    - V(steady), V(settled), V(recovered) (systemd restarted it by itself during the run and the new
      process stayed up), V(failed), V(stopped), V(queued) (O(no_block)) or V(none) (nothing to judge).
  returned: always
  type: str
  sample: settled
restarts_seen:
  description: Automatic restarts systemd made of the unit while the gate watched it.
  returned: always
  type: int
  sample: 0
last_exit_status:
  description: How the unit's last main process ended, when the gate saw one end ("" otherwise).
  returned: always
  type: str
  sample: exited 1
restarted_instances:
  description: Running instances of a template whose drop-in changed, restarted once.
  returned: when the unit is a template with running instances
  type: list
  elements: str
  sample: [worker@1.service]
queued:
  description: Units whose restart job was queued and not waited for (O(no_block=true)).
  returned: always
  type: list
  elements: str
  sample: []
problem:
  description: Why the unit did not come back up after its restart (only when it did not); its
    journal lines since the task began are in RV(journal) and in the failure message.
  returned: failure
  type: str
  sample: "is not running after the start: it is failed"
journal:
  description: The unit's journal lines since the task began, at most 20 (only with RV(problem)).
  returned: failure
  type: list
  elements: str
  sample: ["2026-12-01T18:02:08+0000 host systemd[1]: chrony.service: Failed with result 'exit-code'."]
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
systemctl_calls:
  description: How many C(systemctl) processes the task started.
  returned: always
  type: int
  sample: 2
user_managers_reloaded:
  description: With O(scope=global), the users whose running manager was reloaded after the task changed
    the drop-in (or would be, in check mode).
  returned: when O(scope=global)
  type: list
  elements: str
  sample: [alice]
units:
  description: The same result as a one-item list, as returned by M(unitcraft.systemd.unit).
  returned: always
  type: list
  elements: dict
  sample: [{name: chrony.service, dropin: container, changed: true}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import (
    SystemdModule,
    FILE_OPTIONS,
    LINGER_OPTIONS,
    RELOAD_OPTIONS,
    TARGET_OPTIONS,
    WAIT_OPTIONS,
)
from ansible_collections.unitcraft.systemd.plugins.module_utils._manager import run_module


def main() -> None:
    module: AnsibleModule = SystemdModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "dropin": {"type": "str", "default": "override"},
            **FILE_OPTIONS,
            **TARGET_OPTIONS,
            **LINGER_OPTIONS,
            **RELOAD_OPTIONS,
            **WAIT_OPTIONS,
        },
        mutually_exclusive=[["sections", "content"]],
        supports_check_mode=True,
    )
    run_module(module, dropin_module=True)


if __name__ == "__main__":
    main()
