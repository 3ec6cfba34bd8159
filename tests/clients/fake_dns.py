"""A name server for tests: every A question is answered with 127.0.0.1,
every other question with no records. Listens on 127.0.0.1:53 (run inside
a private network namespace) and stops after `sys.argv[1]` seconds."""

import socket
import sys
import time

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 53))
sock.settimeout(0.2)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        query, peer = sock.recvfrom(512)
    except socket.timeout:
        continue
    qtype = int.from_bytes(query[-4:-2], "big")
    reply = bytearray(query)
    reply[2] = 0x81  # QR, RD
    reply[3] = 0x80  # RA, NOERROR
    if qtype == 1:
        reply[7] = 1  # one answer: a pointer to the question's name
        reply += bytes([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1])
    sock.sendto(bytes(reply), peer)
