# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Validation with systemd's own tools before anything is installed.

Candidates are written under their real unit names into a temporary directory and checked
with one `systemd-analyze verify` call for all of them (re-run one by one only to pin an
error on a unit); `OnCalendar=` values of timers are checked with `systemd-analyze calendar`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import CommandRunner, systemd_tool_env


@dataclass
class Candidate:
    """What systemd will load for one unit: its fragment text and its drop-ins (stem -> text)."""

    name: str
    fragment: str | None
    dropins: dict[str, str] = field(default_factory=dict)
    # where each piece will really live, so messages point at the installed path
    fragment_path: str | None = None
    dropin_paths: dict[str, str] = field(default_factory=dict)
    calendars: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_NOT_EXECUTABLE = re.compile(r"Command (?P<cmd>\S+) is not executable")


class Validator:
    def __init__(self, module: CommandRunner, scope: str = "system", root: str | None = None) -> None:
        self.module = module
        self.scope = scope
        self.root = root
        self.binary = module.get_bin_path("systemd-analyze", required=True) or "systemd-analyze"
        self.calls = 0

    def _run(self, args: list[str]) -> tuple[int, str, str]:
        self.calls += 1
        return self.module.run_command([self.binary, *args], environ_update=systemd_tool_env(self.scope))

    def check(self, candidates: Sequence[Candidate]) -> dict[str, Verdict]:
        verdicts = {c.name: Verdict() for c in candidates}
        if not candidates:
            return verdicts
        self._verify(candidates, verdicts)
        self._calendars(candidates, verdicts)
        return verdicts

    # --- systemd-analyze verify ------------------------------------------------------------

    def _verify(self, candidates: Sequence[Candidate], verdicts: dict[str, Verdict]) -> None:
        tmp = tempfile.mkdtemp(prefix="unitcraft-verify-")
        try:
            paths = {c.name: self._stage(tmp, c) for c in candidates}
            rc, lines = self._verify_paths(tmp, list(paths.values()))
            if rc != 0 and len(candidates) > 1:
                # One batch call failed: verify one by one to know which unit the error is about.
                for cand in candidates:
                    one_rc, one_lines = self._verify_paths(tmp, [paths[cand.name]])
                    self._attribute(cand, tmp, one_lines, one_rc, verdicts[cand.name])
            else:
                for cand in candidates:
                    self._attribute(cand, tmp, lines, rc, verdicts[cand.name])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _stage(tmp: str, cand: Candidate) -> str:
        path = os.path.join(tmp, cand.name)
        if cand.fragment is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(cand.fragment)
        if cand.dropins:
            ddir = path + ".d"
            os.makedirs(ddir, exist_ok=True)
            for stem, text in cand.dropins.items():
                with open(os.path.join(ddir, stem + ".conf"), "w", encoding="utf-8") as f:
                    f.write(text)
        return path

    def _verify_paths(self, tmp: str, paths: list[str]) -> tuple[int, list[str]]:
        # (not --recursive-errors=no: systemd 252 then exits 1 on mere warnings)
        args = ["verify", "--man=no"]
        if self.scope != "system":
            args.append("--user")
        rc, out, err = self._run(args + paths)
        return rc, [ln for ln in (err + "\n" + out).splitlines() if ln.strip()]

    def _attribute(self, cand: Candidate, tmp: str, lines: Iterable[str], rc: int, verdict: Verdict) -> None:
        """Sort the lines about this candidate into errors and warnings, naming the installed paths.

        `rc` is this candidate's own exit status (a failed batch is re-run unit by unit).
        systemd marks recoverable problems with "ignoring"; with a non-zero status, the
        other lines about the unit are the errors.
        """
        staged = os.path.join(tmp, cand.name)
        all_lines = [self._relocate(ln, cand, staged) for ln in lines]
        mine = [self._relocate(ln, cand, staged) for ln in lines
                if ln.startswith(staged) or ln.startswith(cand.name + ":")]
        if self.root:
            # commands are resolved inside the root, not on this host
            mine = [ln for ln in mine if not self._exists_under_root(ln)]
        warnings = [ln for ln in mine if rc == 0 or "ignoring" in ln.lower()]
        errors = [ln for ln in mine if ln not in warnings]
        if rc != 0 and not errors:
            # failed without a line we can pin on the unit, unless all it said was about
            # commands that exist inside the root
            excused = self.root and any(_NOT_EXECUTABLE.search(ln) for ln in all_lines)
            if not excused:
                errors = all_lines or ["systemd-analyze verify failed without a message"]
        verdict.errors.extend(dict.fromkeys(errors))
        verdict.warnings.extend(dict.fromkeys(warnings))

    def _exists_under_root(self, line: str) -> bool:
        match = _NOT_EXECUTABLE.search(line)
        if not match or not self.root:
            return False
        path = os.path.join(self.root, match.group("cmd").lstrip("/"))
        return os.path.isfile(path) and os.access(path, os.X_OK)

    @staticmethod
    def _relocate(line: str, cand: Candidate, staged: str) -> str:
        for stem, real in cand.dropin_paths.items():
            line = line.replace(os.path.join(staged + ".d", stem + ".conf"), real)
        if cand.fragment_path:
            line = line.replace(staged, cand.fragment_path)
        return line

    # --- systemd-analyze calendar ----------------------------------------------------------

    def _calendars(self, candidates: Sequence[Candidate], verdicts: dict[str, Verdict]) -> None:
        for cand in candidates:
            for expr in cand.calendars:
                if not expr:
                    continue  # `OnCalendar=` resets the list
                rc, out, err = self._run(["calendar", expr])
                if rc != 0:
                    why = (err or out).strip().splitlines()
                    verdicts[cand.name].errors.append(
                        f"{cand.name}: [Timer] OnCalendar: {why[-1] if why else 'invalid'}"
                        f" (systemd calendar syntax, e.g. 'daily' or '*-*-* 02:00:00', see systemd.time(7))")
