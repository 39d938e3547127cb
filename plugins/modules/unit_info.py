#!/usr/bin/python
# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: unit_info
short_description: Report systemd units in one call, query them with JMESPath, check boot order
version_added: 0.1.0
description:
  - Reports units given by name or glob pattern, or all loaded units, with a default set of
    properties useful in playbooks or the properties asked for.
  - Gathers them with as few C(systemctl) processes as possible - one C(systemctl show) for
    any number of units named plainly, plus one C(systemctl list-unit-files) when patterns or
    templates are asked - and returns how many it used in RV(systemctl_calls).
  - Filters the result with a JMESPath O(query) on the controller, and answers whether one
    unit finished starting before another started in the current boot (O(order)).
  - Offline (O(root), or O(scope=global)) only what unit files tell is reported - enablement,
    fragment and drop-in paths.
author:
  - unitcraft maintainers (@unitcraft)
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.flow
options:
  names:
    description:
      - Units to report, such as C(ntp.service), C(huobi) (V(.service) is added when no type
        suffix is given), C(worker@3.service) or C(worker@.service) (a template).
      - Glob patterns (C(*), C(?), C([...])) such as C(unitcraft-*.service) match the units
        systemd has loaded (inactive ones included) and the unit files on disk.
      - Omitted means all units systemd has loaded; with O(root) or O(scope=global), all unit files.
      - A unit that does not exist is reported with C(LoadState=not-found).
    type: list
    elements: str
  properties:
    description:
      - systemd properties to report for each unit, as named by C(systemctl show), for example
        V(ActiveState), V(NRestarts), V(ExecMainStartTimestampMonotonic). C(Id) is always reported.
      - Omitted means C(Id), C(Description), C(LoadState), C(ActiveState), C(SubState),
        C(UnitFileState), C(UnitFilePreset), C(FragmentPath), C(DropInPaths), C(MainPID), C(NRestarts), C(Result),
        C(ExecMainStatus) and the timestamps C(ActiveEnterTimestamp), C(ActiveExitTimestamp),
        C(InactiveEnterTimestamp), C(InactiveExitTimestamp), C(ExecMainStartTimestamp),
        C(ExecMainExitTimestamp), each also as its C(...Monotonic) variant.
      - A property that a unit's type lacks (C(MainPID) of a target) is left out of that unit.
      - Offline only C(Id), C(UnitFileState), C(UnitFilePreset), C(FragmentPath) and C(DropInPaths) are known.
    type: list
    elements: str
  query:
    description:
      - A JMESPath expression applied to RV(units) (the list of unit dicts), whose answer is
        returned as RV(query_result). For example V([?ActiveState=='failed'].Id) gives the names
        of failed units.
      - Evaluated on the controller by the module's action plugin with the C(jmespath) Python
        library, so targets need nothing extra. An invalid expression fails the task with
        jmespath's message, before the target is contacted.
    type: str
  order:
    description:
      - Two unit names V([A, B]). RV(ordered) is V(true) when, in the current boot, A finished
        starting before B began to start, which is what C(Before=)/C(After=) guarantee.
      - A finished starting when it entered C(active) (C(ActiveEnterTimestampMonotonic)); a unit
        that ran and ended without staying active (a C(Type=oneshot) without C(RemainAfterExit=))
        finished when it went back to C(inactive) with C(Result=success)
        (C(InactiveEnterTimestampMonotonic)). B began to start when it left C(inactive)
        (C(InactiveExitTimestampMonotonic)), before its C(ExecStartPre=) and C(ExecStart=).
      - The latest start of each unit counts. A unit that never started in this boot, or whose
        start has not finished or failed, gives V(false) with the reason in RV(order_detail).
      - systemd unloads a stopped unit that nothing refers to, and forgets its timestamps with it;
        an enabled unit, or one another unit C(Wants=), stays loaded and can be compared.
      - Needs a running manager (refused with O(root) and O(scope=global)).
    type: list
    elements: str
  paths:
    description:
      - Absolute paths to look up on the target in the same call, such as the programs or the
        files a role needs, so that a role can probe a host once and decide on the controller.
      - Each is reported in RV(paths) - whether it exists, its kind and, for a regular file, its
        SHA-1 checksum (as M(ansible.builtin.stat) and M(ansible.builtin.copy) compute it).
      - Symlinks are followed. With O(root), the paths are looked up inside that directory.
    type: list
    elements: path
  scope:
    description:
      - Which systemd instance to ask. V(system) is the system manager, V(user) the connecting
        user's manager.
      - V(global) reads the unit files under C(/etc/systemd/user) and the other user unit
        directories for every user; there is no manager, so only unit files are reported.
    type: str
    default: system
    choices: [system, user, global]
  root:
    description:
      - Report offline the unit files inside this directory (an image being built), with
        C(systemctl --root); no running systemd is needed.
      - Only C(Id), C(UnitFileState), C(UnitFilePreset), C(FragmentPath) and C(DropInPaths) are
        reported, paths as seen inside the root; O(order) is refused.
      - Without O(root), on a target whose PID 1 is not systemd (no C(/run/systemd/system)), the
        unit files on C(/) are reported the same way, with a warning.
    type: path
  user:
    description:
      - With O(scope=user), the user whose units are reported, from a root play - asked of that
        user's manager, as that user (C(runuser)), over the manager's private socket.
      - The user's manager must be running (a login session, or lingering); the task fails
        saying so otherwise.
    type: str
attributes:
  check_mode:
    support: full
    details: The module changes nothing; check mode reports the same as a normal run.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
    details: The action plugin evaluates O(query) on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
  idempotent:
    support: full
    description: Reading only, it never reports a change.
notes:
  - C(systemctl show) refuses template names such as C(worker@.service); templates are reported
    from C(systemctl list-unit-files) with C(Id), C(UnitFileState) and C(UnitFilePreset) only.
  - C(MainPID), C(NRestarts), C(ExecMainStatus) and the other PIDs and counters, and every
    C(...Monotonic) timestamp (microseconds since boot, V(0) meaning never in this boot), are
    integers; C(DropInPaths) is a list; every other value is the text C(systemctl show) prints.
  - Requires the C(jmespath) Python library on the controller when O(query) is used.
seealso:
  - module: unitcraft.systemd.unit
  - module: unitcraft.systemd.dropin
  - module: ansible.builtin.service_facts
  - name: systemctl(1)
    description: The show, list-units and list-unit-files commands.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemctl.html
  - name: org.freedesktop.systemd1(5)
    description: What each unit property means.
    link: https://www.freedesktop.org/software/systemd/man/latest/org.freedesktop.systemd1.html
  - name: JMESPath
    description: The query language.
    link: https://jmespath.org/
"""

EXAMPLES = r"""
---
- name: Names of the failed units
  unitcraft.systemd.unit_info:
    query: "[?ActiveState=='failed'].Id"
  register: failed

- name: Fail when any unit failed
  ansible.builtin.assert:
    that: failed.query_result | length == 0
    fail_msg: "failed units: {{ failed.query_result | join(', ') }}"

- name: How often the downloader was restarted, and its PID
  unitcraft.systemd.unit_info:
    names: [huobi.service]
    properties: [ActiveState, MainPID, NRestarts]
  register: huobi

- name: Show them
  ansible.builtin.debug:
    msg: "{{ huobi.units[0].NRestarts }} restarts, PID {{ huobi.units[0].MainPID }}"

- name: The clock was stepped once before the NTP daemon started, in this boot
  unitcraft.systemd.unit_info:
    names: [ntp-force-sync.service, ntp.service]
    order: [ntp-force-sync.service, ntp.service]
  register: boot

- name: Assert the ordering
  ansible.builtin.assert:
    that: boot.ordered
    fail_msg: "{{ boot.order_detail.reason }}"

- name: Enabled workers among the units matching a pattern
  unitcraft.systemd.unit_info:
    names: ["worker@*.service"]
    query: "[?UnitFileState=='enabled'].Id"

- name: Which NTP daemon a host has, and whether ntpdig is there, in one call
  unitcraft.systemd.unit_info:
    names: [chrony.service, ntpsec.service, systemd-timesyncd.service]
    properties: [LoadState, FragmentPath]
    paths: [/usr/bin/ntpdig]
  register: ntp

- name: Show what was found
  ansible.builtin.debug:
    msg: >-
      {{ ntp.units | selectattr('LoadState', 'equalto', 'loaded') | map(attribute='Id') | list }},
      ntpdig {{ 'installed' if ntp.paths['/usr/bin/ntpdig'].exists else 'missing' }}

- name: Enablement inside an image built offline
  unitcraft.systemd.unit_info:
    root: /srv/images/rootfs
    names: [huobi.service, "ssh*"]
"""

RETURN = r"""
units:
  description:
    - One dict per unit, in the order of O(names) (the units a pattern matches sorted by name
      at its place), each with C(Id) and the properties asked for.
  returned: always
  type: list
  elements: dict
  sample:
    - Id: huobi.service
      LoadState: loaded
      ActiveState: active
      SubState: running
      UnitFileState: enabled
      FragmentPath: /etc/systemd/system/huobi.service
      DropInPaths: [/etc/systemd/system/huobi.service.d/override.conf]
      MainPID: 4242
      NRestarts: 1
      Result: success
      ActiveEnterTimestamp: Sat 2026-11-21 10:00:00 UTC
      ActiveEnterTimestampMonotonic: 5123456
systemctl_calls:
  description: How many C(systemctl) processes the task started.
  returned: always
  type: int
  sample: 1
paths:
  description:
    - What O(paths) found, keyed by the path as given. Each value has C(exists) (bool; a symlink
      counts when its target exists), C(type) (V(file), V(directory), V(other), or V(null) when
      it does not exist) and C(checksum) (the SHA-1 of a regular file's content, else V(null)).
  returned: when O(paths) is given
  type: dict
  sample:
    /usr/bin/ntpdig: {exists: true, type: file, checksum: 8a0c4f5e2b7d9a1c3e5f7a9b1d3f5a7c9e1b3d5f}
    /etc/ntp-force-sync.conf: {exists: false, type: null, checksum: null}
query_result:
  description: The answer of O(query) on RV(units), computed on the controller.
  returned: when O(query) is given
  type: raw
  sample: [broken.service]
ordered:
  description: Whether the first unit of O(order) finished starting before the second began to start, in this boot.
  returned: when O(order) is given
  type: bool
  sample: true
order_detail:
  description: What O(order) compared.
  returned: when O(order) is given
  type: dict
  contains:
    first:
      description: The first unit (its C(Id)).
      type: str
      sample: ntp-force-sync.service
    second:
      description: The second unit (its C(Id)).
      type: str
      sample: ntp.service
    first_finished:
      description: When the first unit finished starting, microseconds since boot (V(0) when it did not).
      type: int
      sample: 5123456
    first_finished_property:
      description: The property that timestamp comes from, V(null) when it did not finish.
      type: str
      sample: ActiveEnterTimestampMonotonic
    second_started:
      description: When the second unit began to start, microseconds since boot (V(0) when it did not).
      type: int
      sample: 5123999
    second_started_property:
      description: The property that timestamp comes from.
      type: str
      sample: InactiveExitTimestampMonotonic
    reason:
      description: The answer in words.
      type: str
      sample: "ntp-force-sync.service finished starting before ntp.service started (5123456 <= 5123999 us since boot)"
  sample:
    first: ntp-force-sync.service
    second: ntp.service
    first_finished: 5123456
    first_finished_property: ActiveEnterTimestampMonotonic
    second_started: 5123999
    second_started_property: InactiveExitTimestampMonotonic
    reason: "ntp-force-sync.service finished starting before ntp.service started (5123456 <= 5123999 us since boot)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unitcraft.systemd.plugins.module_utils._common import TARGET_OPTIONS
from ansible_collections.unitcraft.systemd.plugins.module_utils._info import run_module


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str"},
            "properties": {"type": "list", "elements": "str"},
            # Applied by the action plugin on the controller; accepted here so docs and validation agree.
            "query": {"type": "str"},
            "order": {"type": "list", "elements": "str"},
            "paths": {"type": "list", "elements": "path"},
            **TARGET_OPTIONS,
        },
        supports_check_mode=True,
    )
    run_module(module)


if __name__ == "__main__":
    main()
