# Copyright: unitcraft.systemd contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Private module_utils: not a public API, may change without notice.
"""Validation with systemd's own tools before anything is installed.

Candidates are written under their real unit names into a temporary directory and checked
with one `systemd-analyze verify` call for all of them (re-run one by one only to pin an
error on a unit); `OnCalendar=` values of timers are checked with `systemd-analyze calendar`.

Two things systemd cannot know are added to its messages:

- YAML coercion: when a candidate carries the sections it was rendered from, a message about
  line N of that file (or an `OnCalendar=` that `calendar` refuses) whose value YAML turned
  into a boolean or a number (`Restart: yes`, `OnCalendar: 12:00` read as 720) says so and
  says to quote the value.
- Check mode: a program named by `ExecStart=` and friends that does not exist yet is what an
  earlier task of the same play installs, which check mode did not run; in check mode that
  becomes an advisory (never a failure), a real run still fails on it.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.unitcraft.systemd.plugins.module_utils._systemctl import CommandRunner, systemd_tool_env
from ansible_collections.unitcraft.systemd.plugins.module_utils._user_manager import UserAccount
from ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file import (
    UnitFileError,
    line_sources,
    render_unit,
)


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
    # the user's sections that the file being validated was rendered from (the fragment, or the
    # drop-in); None for raw content. Used to tell when YAML changed a value systemd refuses.
    sections: Mapping[str, Any] | None = None


@dataclass
class Verdict:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # never fail a task, not even with validate: strict (shown as warnings)
    advisories: list[str] = field(default_factory=list)
    # problems a unit has without its drop-in: not the drop-in's to answer for (shown as warnings)
    inherited: list[str] = field(default_factory=list)


_NOT_EXECUTABLE = re.compile(r"Command (?P<cmd>\S+) is not executable(?:: (?P<why>.*))?")
_NO_SUCH_FILE = "No such file or directory"


# systemd prints "Unknown key 'X' in section [S], ignoring." (252.39 and 257), older ones "Unknown key name ..."
_UNKNOWN_KEY = re.compile(r"Unknown (?:key|lvalue)")


def yaml_hint(key: str, value: Any) -> str | None:
    """Why a value may not be what the user wrote, when YAML made a boolean or a number of it."""
    if isinstance(value, bool):
        return (f"YAML read the value of {key} as the boolean {'true' if value else 'false'}, rendered"
                f" {key}={'yes' if value else 'no'}: quote the value in YAML to pass the word as written")
    if isinstance(value, (int, float)):
        example = ""
        if isinstance(value, int) and value >= 60:
            digits = []
            rest = value
            while rest:
                rest, digit = divmod(rest, 60)
                digits.append(digit)
            example = str(digits[-1]) + "".join(f":{d:02d}" for d in reversed(digits[:-1]))
        if example:
            return (f"YAML read the value of {key} as the number {value}, as unquoted YAML 1.1 reads {example}"
                    f" (base 60): quote the value in YAML, e.g. {key}: \"{example}\"")
        return f"YAML read the value of {key} as the number {value}: quote the value in YAML"
    return None


class Validator:
    """Runs systemd-analyze for a scope: as root, or as `user` in that user's environment.

    User and global candidates get a scratch XDG_RUNTIME_DIR, so that validation needs no
    running user manager (as root, `--user` verify fails without one).
    """

    def __init__(self, module: CommandRunner, scope: str = "system", root: str | None = None,
                 user: UserAccount | None = None) -> None:
        self.module = module
        self.scope = scope
        self.root = root
        self.user = user
        self.binary = module.get_bin_path("systemd-analyze", required=True) or "systemd-analyze"
        self.check_mode = bool(getattr(module, "check_mode", False))
        self.calls = 0
        self.runtime_dir: str | None = None

    def _run(self, args: list[str]) -> tuple[int, str, str]:
        self.calls += 1
        env = systemd_tool_env(self.scope)
        if self.runtime_dir:
            env["XDG_RUNTIME_DIR"] = self.runtime_dir
        argv = [self.binary, *args]
        if self.user is not None:
            runuser = self.module.get_bin_path("runuser", required=True) or "runuser"
            argv = [runuser, "-u", self.user.name, "--", "env", f"HOME={self.user.home}",
                    f"XDG_RUNTIME_DIR={self.runtime_dir or self.user.runtime_dir}", *argv]
        return self.module.run_command(argv, environ_update=env)

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
            if self.scope != "system":
                self.runtime_dir = os.path.join(tmp, ".runtime")
                os.mkdir(self.runtime_dir, 0o700)
            if self.user is not None:
                _give_tree(tmp, self.user.uid, self.user.gid)
            rc, lines = self._verify_paths(tmp, list(paths.values()))
            if rc != 0 and len(candidates) > 1:
                # One batch call failed: verify one by one to know which unit the error is about.
                for cand in candidates:
                    one_rc, one_lines = self._verify_paths(tmp, [paths[cand.name]])
                    self._attribute(cand, tmp, one_lines, one_rc, verdicts[cand.name])
            else:
                for cand in candidates:
                    self._attribute(cand, tmp, lines, rc, verdicts[cand.name])
            for cand in candidates:
                verdict = verdicts[cand.name]
                if cand.dropins and (verdict.errors or verdict.warnings):
                    self._set_apart_inherited(cand, tmp, verdict)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self.runtime_dir = None

    def _set_apart_inherited(self, cand: Candidate, tmp: str, verdict: Verdict) -> None:
        """Judge a drop-in on its own: what the unit says without it moves to `inherited`."""
        base = Candidate(name=cand.name, fragment=cand.fragment, fragment_path=cand.fragment_path)
        base_dir = os.path.join(tmp, ".without-dropins")
        os.mkdir(base_dir)
        path = self._stage(base_dir, base)
        if self.user is not None:
            _give_tree(base_dir, self.user.uid, self.user.gid)
        rc, lines = self._verify_paths(base_dir, [path])
        alone = Verdict()
        self._attribute(base, base_dir, lines, rc, alone)
        known = set(alone.errors + alone.warnings)
        verdict.inherited.extend(line for line in verdict.errors + verdict.warnings if line in known)
        verdict.errors[:] = [line for line in verdict.errors if line not in known]
        verdict.warnings[:] = [line for line in verdict.warnings if line not in known]

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
        """Sort the lines about this candidate into errors, warnings and advisories, naming the installed paths.

        `rc` is this candidate's own exit status (a failed batch is re-run unit by unit).
        systemd marks recoverable problems with "ignoring"; with a non-zero status, the
        other lines about the unit are the errors. A missing command is excused when it
        exists inside `root`, and is an advisory in check mode (see `_missing_program`).
        """
        staged = os.path.join(tmp, cand.name)
        lines = list(lines)
        sources = self._coerced_lines(cand, staged)
        all_lines = [self._relocate(ln, cand, staged) for ln in lines]
        mine = []
        excused = False
        for raw in lines:
            if not (raw.startswith(staged) or raw.startswith(cand.name + ":")):
                continue
            line = self._relocate(raw, cand, staged)
            if self.root and self._exists_under_root(line):
                excused = True  # commands are resolved inside the root, not on this host
            elif self.check_mode and self._missing_program(line):
                excused = True
                verdict.advisories.append(
                    f"{line} (check mode: the program does not exist yet, so an earlier task must install"
                    " it; a run without check mode fails here if it is still missing)")
            else:
                mine.append(self._explain(line, raw, sources))
        warnings = [ln for ln in mine if rc == 0 or "ignoring" in ln.lower()]
        errors = [ln for ln in mine if ln not in warnings]
        if rc != 0 and not errors and not excused:
            # failed without a line we can pin on the unit
            errors = all_lines or ["systemd-analyze verify failed without a message"]
        verdict.errors.extend(dict.fromkeys(errors))
        verdict.warnings.extend(dict.fromkeys(warnings))
        verdict.advisories[:] = list(dict.fromkeys(verdict.advisories))

    def _exists_under_root(self, line: str) -> bool:
        match = _NOT_EXECUTABLE.search(line)
        if not match or not self.root:
            return False
        path = os.path.join(self.root, match.group("cmd").lstrip("/"))
        return os.path.isfile(path) and os.access(path, os.X_OK)

    def _missing_program(self, line: str) -> bool:
        """A command systemd could not find at all (not one that exists without being executable)."""
        match = _NOT_EXECUTABLE.search(line)
        if not match:
            return False
        cmd = match.group("cmd")
        if not os.path.isabs(cmd):
            return match.group("why") == _NO_SUCH_FILE  # not found in systemd's search path
        path = os.path.join(self.root, cmd.lstrip("/")) if self.root else cmd
        return not os.path.lexists(path)

    @staticmethod
    def _coerced_lines(cand: Candidate, staged: str) -> dict[str, dict[int, tuple[str, str, Any]]]:
        """Staged file -> {line number: (section, key, value)} for the values YAML made bools or numbers.

        Only for the file whose text is exactly what ``cand.sections`` renders to.
        """
        if cand.sections is None:
            return {}
        try:
            text = render_unit(cand.sections, unit=cand.name)
            sources = line_sources(cand.sections, unit=cand.name)
        except UnitFileError:
            return {}
        files = {staged: cand.fragment}
        files.update({os.path.join(staged + ".d", stem + ".conf"): t for stem, t in cand.dropins.items()})
        coerced = {n: src for n, src in sources.items() if not isinstance(src[2], str)}
        return {path: coerced for path, staged_text in files.items() if staged_text == text and coerced}

    @staticmethod
    def _explain(line: str, raw: str, sources: Mapping[str, Mapping[int, tuple[str, str, Any]]]) -> str:
        for path, by_line in sources.items():
            match = re.match(re.escape(path) + r":(\d+):", raw)
            if match and int(match.group(1)) in by_line:
                section, key, value = by_line[int(match.group(1))]
                if _UNKNOWN_KEY.search(raw):  # the key is wrong, whatever YAML made of its value
                    return f"{line}; {key} is not a directive systemd knows in [{section}]: a typo?"
                hint = yaml_hint(key, value)
                if hint:
                    return f"{line}; {hint}"
        return line

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
                    why = [ln.strip() for ln in (err or out).strip().splitlines() if ln.strip()] or ["invalid"]
                    hint = self._calendar_hint(cand, expr)
                    if hint:
                        # systemd's own "Hint: ... a valid timespan" would point the wrong way
                        why = [ln for ln in why if not ln.startswith("Hint:")] or why
                    verdicts[cand.name].errors.append(
                        f"{cand.name}: [Timer] OnCalendar: {' '.join(why)}"
                        f" (systemd calendar syntax, e.g. 'daily' or '*-*-* 02:00:00', see systemd.time(7))"
                        + (f"; {hint}" if hint else ""))

    @staticmethod
    def _calendar_hint(cand: Candidate, expr: str) -> str | None:
        """The YAML hint for an OnCalendar= value that YAML made a number or boolean."""
        if cand.sections is None:
            return None
        try:
            text = render_unit(cand.sections, unit=cand.name).split("\n")
            sources = line_sources(cand.sections, unit=cand.name)
        except UnitFileError:
            return None
        for number, (section, key, value) in sources.items():
            if (section, key) == ("Timer", "OnCalendar") and text[number - 1] == f"OnCalendar={expr}":
                hint = yaml_hint(key, value)
                if hint:
                    return hint
        return None


def _give_tree(top: str, uid: int, gid: int) -> None:
    """Hand the staging tree to the user who validates in it."""
    for directory, dirs, files in os.walk(top):
        os.chown(directory, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)
