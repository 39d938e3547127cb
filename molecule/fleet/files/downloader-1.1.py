#!/usr/bin/python3
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version 1.1 of the downloader, deliberately broken (docs/fleets.md).

It needs a symbols file that no host of the fleet has: it starts, reads for a moment,
then dies with a traceback, well inside the rollout's settle window. systemd restarts it
(Restart=always) and it dies again.
"""

import json
import sys
import time

VERSION = "1.1"
SYMBOLS = "/etc/huobi/symbols.json"

market = sys.argv[1]
print(f"downloader {VERSION} for {market}, loading {SYMBOLS}", flush=True)
time.sleep(0.3)
with open(SYMBOLS, encoding="utf-8") as symbols:
    json.load(symbols)
