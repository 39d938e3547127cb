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
        its managed file changed in this task, or the file is newer than the unit's current
        activation (a change made by an earlier run that failed or was interrupted before the
        restart, or made behind the module's back). A second run restarts nothing.
      - For a template (C(worker@.service)) or a drop-in of a template, its running instances
        are restarted once, whether the task lists them or not.
      - Also governs O(restart_triggers).
    type: bool
    default: true
  restart_triggers:
    description:
      - Absolute paths on the target (the program, its configuration, an C(EnvironmentFile=),
        a credential) whose change must restart the unit.
      - When any of them changed after the running unit's current activation began, the
        unit is restarted once. A change is the newer of the modification time and the inode
        change time, so a file renamed into place (M(ansible.builtin.copy), a package
        upgrade) counts from the rename, and so does a chmod or chown. Stateless - the unit's activation time is the record, so a
        second run restarts nothing; check mode reports the restart.
      - A service waiting for its automatic restart (C(Restart=), sub-state C(auto-restart))
        counts from the start of its last process, so a program replaced while that process
        still ran restarts the unit now, onto the new program.
      - A symlink counts as changed when the link or its target changed. A path that does not
        exist triggers nothing and gives a warning (in check mode an earlier task may not have
        created it yet).
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
