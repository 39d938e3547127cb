# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal SNTP server (RFC 4330) for tests: serves this machine's clock, stratum 8.

Only for loopback inside a test container: it answers every mode-3 request on the
address and port it is given and logs one line per answer, so a test can see that an
NTP exchange really happened.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
PACKET = struct.Struct("!BBbbII4sQQQQ")


def ntp_timestamp(unix_time: float) -> int:
    seconds = int(unix_time) + NTP_EPOCH_OFFSET
    fraction = int((unix_time % 1) * (1 << 32))
    return (seconds << 32) | fraction


def answer(request: bytes, received: float, stratum: int) -> bytes | None:
    if len(request) < PACKET.size:
        return None
    fields = PACKET.unpack_from(request)
    first, poll, client_transmit = fields[0], fields[2], fields[-1]
    version, mode = (first >> 3) & 0x7, first & 0x7
    if mode != 3:  # only client requests
        return None
    reference = ntp_timestamp(time.time() - 1.0)
    return PACKET.pack(
        (0 << 6) | (version << 3) | 4,  # no leap warning, the client's version, mode server
        stratum,
        poll,
        -20,  # precision, about a microsecond
        0x00000100,  # root delay (16.16 seconds): 4 ms
        0x00000100,  # root dispersion: 4 ms
        b"LOCL",
        reference,
        client_transmit,  # originate: echo the client's transmit timestamp
        ntp_timestamp(received),
        ntp_timestamp(time.time()),
    )


def notify_ready() -> None:
    """Tell systemd that the socket is bound (Type=notify): units ordered after this one find it serving."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.connect(address)
        notify.sendall(b"READY=1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=123)
    parser.add_argument("--stratum", type=int, default=8)
    args = parser.parse_args()
    if not args.address.startswith("127."):
        parser.error("this test server only serves on loopback (127.0.0.0/8)")

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # an NTP daemon on the same port binds the wildcard address with SO_REUSEADDR too
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.address, args.port))
    print(f"serving SNTP on {args.address}:{args.port}, stratum {args.stratum}", flush=True)
    notify_ready()
    while True:
        request, peer = sock.recvfrom(512)
        received = time.time()
        reply = answer(request, received, args.stratum)
        if reply is not None:
            sock.sendto(reply, peer)
            # CLOCK_MONOTONIC, as systemd's *TimestampMonotonic: when the answer went out, not
            # when the journal got this line
            print(f"answered {peer[0]}:{peer[1]} at monotonic {time.monotonic_ns() // 1000} us", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
