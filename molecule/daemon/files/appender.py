# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the seed's websocket downloader: appends a line to a file every half second.

Each line is "<pid> <sequence> <tag>", flushed at once, so a crash loses nothing that
was written. The file lives in $STATE_DIRECTORY (systemd's StateDirectory=) unless
--output is given; the tag comes from --tag or $APPENDER_TAG.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", help="file to append to (default: $STATE_DIRECTORY/lines.log)")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--tag", default=os.environ.get("APPENDER_TAG", "-"))
    args = parser.parse_args()
    output = args.output or os.path.join(os.environ["STATE_DIRECTORY"], "lines.log")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"appending to {output} every {args.interval}s as pid {os.getpid()}, tag {args.tag}",
          flush=True)
    sequence = 0
    with open(output, "a", buffering=1, encoding="utf-8") as out:
        while True:
            out.write(f"{os.getpid()} {sequence} {args.tag}\n")
            out.flush()
            sequence += 1
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
