#!/usr/bin/python3
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version 1.0 of the downloader the fleet scenario rolls out (docs/fleets.md).

Usage: downloader.py MARKET LOG. Appends "<time> <version> <market> <pid>" to LOG every
half second, so a test can tell which version is running and that it still runs.
"""

import os
import sys
import time

VERSION = "1.0"

market, log = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(log), exist_ok=True)
print(f"downloader {VERSION} for {market}, writing to {log}", flush=True)
with open(log, "a", buffering=1, encoding="utf-8") as out:
    while True:
        out.write(f"{time.time():.1f} {VERSION} {market} {os.getpid()}\n")
        time.sleep(0.5)
