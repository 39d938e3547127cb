# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Private module_utils: not a public API of the collection, may change without notice.
"""systemd directive knowledge: which directives systemd reads only once, and since which version.

Versions and deprecations: :func:`added_in` and :func:`deprecation` look up the table that
scripts/gen-directive-versions generates from systemd's man pages (_directive_versions.py).

A single-valued directive holds one value: each assignment replaces the one before, so of
``Type=simple`` followed by ``Type=exec`` only ``exec`` is left, and the first line is
silently lost. A list given for such a directive in sections is therefore a mistake, and
rendering refuses it (:func:`check_sections` in _unit_file). List directives (``After=``,
``ExecStart=``, ``Environment=``, ``OnCalendar=``, the ``Condition*=`` family...) add up
instead and are not in this table.

The table follows the man pages of systemd 252 to 257: systemd.unit(5) for [Unit] and
[Install], systemd.service(5), systemd.socket(5), systemd.mount(5), systemd.automount(5),
systemd.swap(5), systemd.timer(5), systemd.path(5), systemd.scope(5), and the settings
shared by several unit types: systemd.exec(5) and systemd.kill(5) ([Service], [Socket],
[Mount], [Swap]; kill settings also in [Scope]) and systemd.resource-control(5) ([Service],
[Socket], [Mount], [Swap], [Slice], [Scope]). It lists only what those pages document as
taking one value; a directive left out is never refused, so when in doubt a directive is
left out. Parsing (parse_unit) keeps the last assignment of these, as systemd does.
Compatibility names that systemd still reads (``StartLimitInterval=``,
``TimeoutSec=``) are included with the directive they stand for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._directive_versions import (
    ADDED,
    DEPRECATED,
    DEPRECATED_OTHER,
)

__all__ = ["EXEC_COMMANDS", "OLDEST_TARGET", "SINGLE_VALUED", "Deprecation", "added_in", "depends_on_version", "deprecation",
           "deprecation_of", "is_single_valued"]

# The oldest systemd on a host that ansible-core 2.19 manages (its targets need Python 3.8, which
# RHEL 8 with systemd 239 is the oldest to offer): directives added up to it need no version check.
OLDEST_TARGET = 239

# the command lines of systemd.service(5) and systemd.socket(5), which take prefixes such as `!!`
EXEC_COMMANDS = ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop",
                 "ExecStopPre", "ExecStopPost")

# systemd.unit(5), [Unit]
_UNIT = frozenset({
    "Description", "SourcePath",
    "StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop", "AllowIsolate", "DefaultDependencies",
    "SurviveFinalKillSignal", "IgnoreOnIsolate", "CollectMode",
    "OnSuccessJobMode", "OnFailureJobMode", "OnFailureIsolate",
    "JobTimeoutSec", "JobRunningTimeoutSec", "JobTimeoutAction", "JobTimeoutRebootArgument",
    "StartLimitIntervalSec", "StartLimitInterval", "StartLimitBurst", "StartLimitAction",
    "FailureAction", "SuccessAction", "FailureActionExitStatus", "SuccessActionExitStatus", "RebootArgument",
})

# systemd.exec(5): one value each (paths, user, scheduling, standard streams, sandboxing switches)
_EXEC = frozenset({
    "WorkingDirectory", "RootDirectory", "RootImage", "RootHash", "RootHashSignature", "RootVerity",
    "RootEphemeral", "User", "Group", "DynamicUser", "RemoveIPC", "PAMName", "SetLoginEnvironment",
    "UMask", "Nice", "OOMScoreAdjust", "IOSchedulingClass", "IOSchedulingPriority",
    "CPUSchedulingPolicy", "CPUSchedulingPriority", "CPUSchedulingResetOnFork", "NUMAPolicy",
    "TimerSlackNSec", "Personality", "KeyringMode", "IgnoreSIGPIPE",
    "StandardInput", "StandardOutput", "StandardError", "TTYPath", "TTYReset", "TTYVHangup",
    "TTYVTDisallocate", "TTYRows", "TTYColumns",
    "SyslogIdentifier", "SyslogFacility", "SyslogLevel", "SyslogLevelPrefix", "LogLevelMax",
    "LogRateLimitIntervalSec", "LogRateLimitBurst", "LogNamespace",
    "LimitCPU", "LimitFSIZE", "LimitDATA", "LimitSTACK", "LimitCORE", "LimitRSS", "LimitNOFILE", "LimitAS",
    "LimitNPROC", "LimitMEMLOCK", "LimitLOCKS", "LimitSIGPENDING", "LimitMSGQUEUE", "LimitNICE",
    "LimitRTPRIO", "LimitRTTIME",
    "NoNewPrivileges", "ProtectSystem", "ProtectHome", "ProtectProc", "ProcSubset", "ProtectHostname",
    "ProtectClock", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "PrivateTmp", "PrivateDevices", "PrivateNetwork", "PrivateUsers",
    "PrivateMounts", "PrivateIPC", "PrivatePIDs", "NetworkNamespacePath", "IPCNamespacePath",
    "MountFlags", "MountAPIVFS", "MemoryDenyWriteExecute", "RestrictRealtime", "RestrictSUIDSGID",
    "LockPersonality", "SystemCallErrorNumber", "MemoryKSM",
    "RuntimeDirectoryMode", "StateDirectoryMode", "CacheDirectoryMode", "LogsDirectoryMode",
    "ConfigurationDirectoryMode", "RuntimeDirectoryPreserve", "TimeoutCleanSec",
    "UtmpIdentifier", "UtmpMode", "SELinuxContext", "AppArmorProfile", "SmackProcessLabel",
})

# systemd.kill(5)
_KILL = frozenset({
    "KillMode", "KillSignal", "RestartKillSignal", "FinalKillSignal", "WatchdogSignal", "SendSIGKILL",
    "SendSIGHUP",
})

# systemd.resource-control(5)
_CGROUP = frozenset({
    "Slice", "CPUAccounting", "CPUWeight", "StartupCPUWeight", "CPUShares", "StartupCPUShares", "CPUQuota",
    "CPUQuotaPeriodSec", "MemoryAccounting", "MemoryMin", "MemoryLow", "StartupMemoryLow", "MemoryHigh",
    "StartupMemoryHigh", "MemoryMax", "StartupMemoryMax", "MemorySwapMax", "StartupMemorySwapMax",
    "MemoryZSwapMax", "StartupMemoryZSwapMax", "MemoryZSwapWriteback", "MemoryLimit", "DefaultMemoryMin",
    "DefaultMemoryLow", "DefaultStartupMemoryLow",
    "IOAccounting", "IOWeight", "StartupIOWeight", "TasksAccounting", "TasksMax", "IPAccounting",
    "DevicePolicy", "DelegateSubgroup", "ManagedOOMSwap", "ManagedOOMMemoryPressure",
    "ManagedOOMMemoryPressureLimit", "ManagedOOMMemoryPressureDurationSec", "ManagedOOMPreference",
    "MemoryPressureWatch", "MemoryPressureThresholdSec", "CoredumpReceive",
})

# systemd.service(5)
_SERVICE = frozenset({
    "Type", "ExitType", "RemainAfterExit", "GuessMainPID", "PIDFile", "BusName",
    "Restart", "RestartMode", "RestartSec", "RestartSteps", "RestartMaxDelaySec",
    "TimeoutSec", "TimeoutStartSec", "TimeoutStopSec", "TimeoutAbortSec", "TimeoutStartFailureMode",
    "TimeoutStopFailureMode", "RuntimeMaxSec", "RuntimeRandomizedExtraSec", "WatchdogSec",
    "PermissionsStartOnly", "RootDirectoryStartOnly", "NonBlocking", "NotifyAccess",
    "FileDescriptorStoreMax", "FileDescriptorStorePreserve", "USBFunctionDescriptors", "USBFunctionStrings",
    "OOMPolicy", "ReloadSignal",
    # accepted in [Service] for compatibility; they set the [Unit] settings of the same name
    "StartLimitInterval", "StartLimitBurst", "StartLimitAction", "FailureAction", "RebootArgument",
})

# systemd.socket(5)
_SOCKET = frozenset({
    "SocketProtocol", "BindIPv6Only", "Backlog", "BindToDevice", "SocketUser", "SocketGroup", "SocketMode",
    "DirectoryMode", "Accept", "Writable", "FlushPending", "MaxConnections", "MaxConnectionsPerSource",
    "KeepAlive", "KeepAliveTimeSec", "KeepAliveIntervalSec", "KeepAliveProbes", "NoDelay", "Priority",
    "DeferAcceptSec", "ReceiveBuffer", "SendBuffer", "IPTOS", "IPTTL", "Mark", "ReusePort", "SmackLabel",
    "SmackLabelIPIn", "SmackLabelIPOut", "SELinuxContextFromNet", "PipeSize", "MessageQueueMaxMessages",
    "MessageQueueMessageSize", "FreeBind", "Transparent", "Broadcast", "PassCredentials", "PassPIDFD",
    "PassSecurity", "PassPacketInfo", "Timestamping", "TCPCongestion", "RemoveOnStop",
    "FileDescriptorName", "TimeoutSec", "Service", "TriggerLimitIntervalSec", "TriggerLimitBurst",
    "PollLimitIntervalSec", "PollLimitBurst",
})

# systemd.mount(5), systemd.automount(5), systemd.swap(5)
_MOUNT = frozenset({
    "What", "Where", "Type", "Options", "SloppyOptions", "LazyUnmount", "ReadWriteOnly", "ForceUnmount",
    "DirectoryMode", "TimeoutSec",
})
_AUTOMOUNT = frozenset({"Where", "ExtraOptions", "DirectoryMode", "TimeoutIdleSec"})
_SWAP = frozenset({"What", "Priority", "Options", "TimeoutSec"})

# systemd.timer(5): the On*= triggers (OnCalendar=, OnBootSec=...) are lists
_TIMER = frozenset({
    "AccuracySec", "RandomizedDelaySec", "RandomizedOffsetSec", "FixedRandomDelay", "OnClockChange",
    "OnTimezoneChange", "Unit", "Persistent", "WakeSystem", "RemainAfterElapse",
})

# systemd.path(5): the Path*= watches are lists
_PATH = frozenset({"Unit", "MakeDirectory", "DirectoryMode", "TriggerLimitIntervalSec", "TriggerLimitBurst"})

# systemd.scope(5)
_SCOPE = frozenset({"RuntimeMaxSec", "RuntimeRandomizedExtraSec", "TimeoutStopSec", "OOMPolicy"})

# systemd.unit(5), [Install]: Alias=, WantedBy=, RequiredBy=, UpheldBy=, Also= are lists
_INSTALL = frozenset({"DefaultInstance"})

SINGLE_VALUED: dict[str, frozenset[str]] = {
    "Unit": _UNIT,
    "Service": _SERVICE | _EXEC | _KILL | _CGROUP,
    "Socket": _SOCKET | _EXEC | _KILL | _CGROUP,
    "Mount": _MOUNT | _EXEC | _KILL | _CGROUP,
    "Swap": _SWAP | _EXEC | _KILL | _CGROUP,
    "Automount": _AUTOMOUNT,
    "Timer": _TIMER,
    "Path": _PATH,
    "Slice": _CGROUP,
    "Scope": _SCOPE | _KILL | _CGROUP,
    "Install": _INSTALL,
}


def is_single_valued(section: str, key: str) -> bool:
    """Whether systemd reads ``key`` in ``[section]`` as one value (a later assignment replaces it)."""
    return key in SINGLE_VALUED.get(section, frozenset())


def added_in(section: str, key: str) -> int | None:
    """The systemd version that added ``key`` to ``[section]``; None when every systemd has it, or it is not known."""
    for sections, version in ADDED.get(key, ()):
        if section in sections:
            return version
    return None


@dataclass(frozen=True)
class Deprecation:
    """What systemd deprecated, when (None: not yet), from which version it ignores it, and what replaces it."""

    deprecated: int | None
    ignored: int | None
    instead: str  # "" when there is nothing to replace it with

    def applies(self, version: int | None) -> bool:
        """Whether it concerns systemd ``version``; with no version known, it always does."""
        return version is None or any(when is not None and when <= version for when in (self.deprecated, self.ignored))


def deprecation(section: str, key: str) -> Deprecation | None:
    """The deprecation of directive ``key`` in ``[section]``, if any."""
    row = DEPRECATED.get(key)
    if row is None or section not in row[0]:
        return None
    return Deprecation(*row[1:])


def deprecation_of(thing: str) -> Deprecation:
    """The deprecation of something that is not a directive: ``exec-prefix-!!``, ``sysv-scripts``."""
    return Deprecation(*DEPRECATED_OTHER[thing])


def depends_on_version(sections: Mapping[str, Mapping[str, Any] | None]) -> bool:
    """Whether checking ``sections`` needs the target's version: a directive added after
    :data:`OLDEST_TARGET`, a deprecated one, or an ``Exec*=`` line with ``!!``.

    A cheap over-estimate: the lint decides what is found; this only says whether to ask.
    """
    for section, directives in sections.items():
        for key, value in (directives or {}).items():
            if value is None:
                continue
            if (added_in(section, key) or 0) > OLDEST_TARGET or deprecation(section, key) is not None:
                return True
            if key in EXEC_COMMANDS and "!!" in str(value):
                return True
            if key == "SourcePath" and "init.d/" in str(value):
                return True
    return False
