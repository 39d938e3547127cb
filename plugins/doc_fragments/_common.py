# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private doc fragment: shared option docs of this collection's modules, not for other collections.

from __future__ import annotations


class ModuleDocFragment:
    # Where the task acts: which manager, or an offline root directory.
    TARGET = r"""
options:
  scope:
    description:
      - Which systemd instance to work with.
      - V(system) uses the system manager and C(/etc/systemd/system).
      - V(user) uses the connecting user's manager and C(~/.config/systemd/user)
        (C($XDG_CONFIG_HOME/systemd/user)), or those of O(user).
      - V(global) writes to C(/etc/systemd/user) for every user; there is no running manager
        to start or stop units in. Validation runs as root without a user manager.
    type: str
    default: system
    choices: [system, user, global]
  root:
    description:
      - Work offline inside this directory, as when building an image. Files go under it,
        enablement uses C(systemctl --root), no running systemd is needed and none is touched.
      - Units cannot be started or stopped offline, and no daemon-reload happens.
      - Without O(root), on a target whose PID 1 is not systemd (no C(/run/systemd/system), as
        in a container without systemd as init or an image build), the work is done offline on
        C(/) the same way, and the result carries a warning that runtime state was not touched.
        Runtime requests (O(ignore:active)) then fail while planning, before anything changes.
    type: path
  user:
    description:
      - With O(scope=user), the user whose units are managed, from a root play - their
        C(~/.config/systemd/user), their manager, their journal.
      - Files and directories made there belong to that user. C(systemctl --user) runs as that
        user (C(runuser)) against the manager's private socket, so no user D-Bus
        (C(dbus-user-session)) is needed. Validation runs as that user too.
      - The user's manager must be running - the user is logged in, or lingers (see O(ignore:linger)
        of the modules that change units); the task fails saying so otherwise.
      - Omitted with O(scope=user) means the connecting user.
    type: str
"""

    # Lingering of the user of O(user).
    LINGER = r"""
options:
  linger:
    description:
      - Whether the manager of O(user) runs without a login session (C(loginctl enable-linger))
        and so starts at boot with the user's enabled units.
      - V(true) is applied first and the task waits (up to O(wait_timeout)) for the user's
        manager to come up; V(false) is applied last. Omitted means untouched.
      - Needs O(user).
    type: bool
"""

    # How one file is written and checked; per item in O(units) too.
    FILE = r"""
options:
  restart_on_change:
    description:
      - Restart a running unit once, after the daemon-reload, when it runs an old definition -
        its managed file changed in this task, or an earlier run was killed or failed before
        the restart it owed. Such a run left a mark under C(/run/unitcraft/pending-restarts/),
        written before its first file; the mark restarts the unit unless its current process
        began after the new definition was loaded. No file time is compared, so a unit file
        with a future modification time restarts nothing, and a second run restarts nothing.
      - For a template (C(worker@.service)) or a drop-in of a template, its running instances
        are restarted once, whether the task lists them or not.
      - Also governs O(restart_triggers).
    type: bool
    default: true
  restart_triggers:
    description:
      - Absolute paths on the target (the program, its configuration, an C(EnvironmentFile=),
        a credential) whose change must restart the unit.
      - When the content of any of them changed since the unit last took it in, the unit is
        restarted once; check mode reports the restart. The task keeps a digest of each path on
        the target (C(/var/lib/unitcraft/restart-triggers/), one JSON file per unit or drop-in;
        for a user manager in C(~/.local/state/unitcraft/restart-triggers/)), so new content with
        an old modification time (C(rsync -t), M(ansible.builtin.unarchive)) restarts the unit
        exactly once, and a future modification time with the same content restarts nothing.
      - Only for paths no digest is recorded for yet (triggers given for the first time to a
        unit that already runs) does the time comparison decide, once - the newer of the
        modification and inode change time against the unit's activation.
      - A directory counts by its entries and their content.
      - A symlink counts as changed when the link or its target changed. A path that does not
        exist gives a warning (in check mode an earlier task may not have created it yet); one
        that appears later counts as changed.
      - On a template, the triggers apply to its running instances.
    type: list
    elements: path
    default: []
  validate:
    description:
      - How the candidate file is checked before it replaces anything, with
        C(systemd-analyze verify) under its real unit name in a temporary directory.
      - V(strict) fails on errors and on systemd's warnings about the candidate (an unknown
        key such as C(Restat=always), a value it cannot parse such as C(Type=bogus)), which
        systemd would otherwise silently ignore.
      - V(errors) fails only on errors and returns the warnings (key C(validation) of the result).
      - V(off) skips the check.
      - Timer C(OnCalendar=) values are checked with C(systemd-analyze calendar) with V(strict) and V(errors).
      - With V(strict) and V(errors), a directive added in a later systemd than the target's fails the
        task while planning, before anything changes, with the version that added it and the target's
        (C(RestartSteps= needs systemd 254; this host runs 252)). The version is read from the name of
        systemd's library on the target; under O(root) (another tree) it is not checked.
      - Validation runs only for files that change.
    type: str
    default: strict
    choices: [strict, errors, 'off']
  lint:
    description:
      - Boot-ordering and restart pitfalls that C(systemd-analyze verify) does not catch
        (see the collection's C(docs/lint-rules.md) and the P(unitcraft.systemd.lint_unit#filter) filter).
      - V(warn) returns the findings and shows them as warnings, V(error) fails before any
        change, V(off) skips the checks.
    type: str
    default: warn
    choices: [warn, error, 'off']
  backup:
    description:
      - Keep a timestamped copy of the previous file beside it before replacing or removing it.
    type: bool
    default: false
  mode:
    description:
      - Permissions of the file, as for M(ansible.builtin.file).
    type: raw
    default: '0644'
  owner:
    description:
      - Owner of the file. Unset means the connecting user (root for O(scope=system)).
    type: str
  group:
    description:
      - Group of the file. Unset means the connecting user's group.
    type: str
  rewrite_equivalent:
    description:
      - What to do with a file on the target that already says the same as O(sections) in another
        form - the same sections, directives and values (in the same order per directive) as
        P(unitcraft.systemd.from_unit#filter) reads them, with other comments, spacing, continuation
        lines or section order. This is what a unit written by M(ansible.builtin.template) looks like
        when a play moves to this collection.
      - V(false) leaves such a file as it is - C(changed=false), no restart, and
        C(differs_only_in_form=true) in the result (per unit in C(units) of M(unitcraft.systemd.unit)).
      - V(true) rewrites it into the collection's form (C(changed=true), one daemon-reload), still
        without restarting the unit - its definition is the same.
      - O(content) is compared byte for byte, always.
    type: bool
    default: false
"""

    RELOAD = r"""
options:
  daemon_reload:
    description:
      - Run one C(systemctl daemon-reload) per task when any file or enablement link changed,
        after all files and links are in place and before any start or restart; none when
        nothing changed.
      - Also reload when systemd reports a managed unit as changed on disk (C(NeedDaemonReload=yes)).
    type: bool
    default: true
"""

    # How the task waits for the jobs it queued and judges the units it started.
    WAIT = r"""
options:
  wait_timeout:
    description:
      - Seconds to wait for the start, stop and restart jobs of the task. Jobs are queued
        without blocking and polled, so the task never hangs - a unit still starting or
        stopping after this long fails the task with its state and journal, within a second or
        two of the limit. The job itself stays queued in systemd.
    type: float
    default: 120
  settle:
    description:
      - After a start or restart, every started unit must stay up this many seconds - still
        C(active), with the same main PID and invocation and no automatic restart (C(NRestarts)).
        A program that exits or crashes right after its start fails the task.
      - The window counts from the moment each unit became active and all units of the task
        settle together, in one window.
      - V(0) turns the window off (units are still required to be active once their job is done).
    type: float
    default: 1
  no_block:
    description:
      - Queue the start, stop and restart jobs and return without waiting for them or judging
        the units (C(systemctl --no-block)). The result lists them in RV(queued).
    type: bool
    default: false
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Reports exactly what a real run would change, files and runtime state, and touches nothing.
  diff_mode:
    support: full
    description: Returns before/after text of every file that changes.
  idempotent:
    support: full
    description: A second identical run reports no change and runs no daemon-reload and no restart.
"""
