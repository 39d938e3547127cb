# Copyright (c) unitcraft maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.unitcraft.systemd`` importable from the source tree.

A temporary directory gets ``ansible_collections/unitcraft/systemd`` as a symlink to the
repository root and goes first on ``sys.path``. ``ansible_collections`` is a namespace
package (the ``ansible`` bundle ships one too), so both places are searched. Under
``ansible-test units`` the tree is already in place and nothing is changed.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _collection_importable() -> bool:
    try:
        import ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file  # noqa: F401
    except ImportError:
        return False
    return True


if not _collection_importable():
    _top = tempfile.mkdtemp(prefix="unitcraft-unit-")
    atexit.register(shutil.rmtree, _top, True)
    os.makedirs(os.path.join(_top, "ansible_collections", "unitcraft"))
    os.symlink(REPO_ROOT, os.path.join(_top, "ansible_collections", "unitcraft", "systemd"))
    sys.path.insert(0, _top)
    # A namespace package imported before the change keeps a cached path: drop it.
    for _name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.unitcraft")]:
        del sys.modules[_name]
    importlib.import_module("ansible_collections.unitcraft.systemd.plugins.module_utils._unit_file")
