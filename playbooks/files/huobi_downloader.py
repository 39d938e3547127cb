# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in for the seed's market-data downloader (demo only, no network).

Usage: downloader.py EXCHANGE LOGFILE [--drop-after SECONDS]

Appends one line per tick to LOGFILE. With --drop-after it exits with status 1 after that
many seconds, like the seed's program when its websocket closed, so that Restart=always
can be watched bringing it back (systemctl show -p NRestarts, journalctl -u).
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("exchange")
    parser.add_argument("logfile")
    parser.add_argument("--drop-after", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    started = time.monotonic()
    tick = 0
    print(f"{args.exchange}: downloader started, writing {args.logfile}", flush=True)
    while True:
        tick += 1
        with open(args.logfile, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {args.exchange} tick {tick}\n")
        if args.drop_after and time.monotonic() - started >= args.drop_after:
            print(f"{args.exchange}: connection closed (simulated), exiting", file=sys.stderr, flush=True)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
