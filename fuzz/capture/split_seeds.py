#!/usr/bin/env python3
"""Turns record_proxy.py recordings into fuzz seeds (see capture.sh).

    split_seeds.py MQTT_DIR WS_DIR

fuzz/seeds/decode/: each client stream (control byte 0: CONNECT first),
each broker stream (control byte = the connection's version: 1 = 3.1,
2 = 3.1.1, 3 = 5.0) and each packet on its own. fuzz/seeds/websocket/:
each WebSocket client stream, whole (control 0) and in 7-byte chunks.
Names are content hashes, so re-running adds only new seeds.
"""
import hashlib
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "seeds")
MAX = 16384


def save(target, prefix, data):
    if len(data) > MAX:
        return
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = f"{prefix}-{hashlib.sha1(data).hexdigest()[:12]}"
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def packets(stream):
    """Splits an MQTT byte stream at packet boundaries."""
    pos = 0
    while pos + 2 <= len(stream):
        mult, rem, i = 1, 0, pos + 1
        while i < len(stream):
            b = stream[i]
            rem += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if b & 0x80 == 0:
                break
        end = i + rem
        if end > len(stream):
            return
        yield stream[pos:end]
        pos = end


def version_control(c2s):
    """The control byte for the connection's version, from its CONNECT."""
    for p in packets(c2s):
        if p[0] >> 4 == 1:
            # fixed header, then 2-byte length + name, then the level.
            i = 1
            while p[i] & 0x80:
                i += 1
            i += 1
            n = int.from_bytes(p[i : i + 2], "big")
            level = p[i + 2 + n]
            return {3: 1, 4: 2, 5: 3}.get(level & 0x7F, 2)
    return 2


def main():
    mqtt_dir, ws_dir = sys.argv[1], sys.argv[2]
    for f in sorted(os.listdir(mqtt_dir)):
        if not f.endswith(".c2s"):
            continue
        c2s = open(os.path.join(mqtt_dir, f), "rb").read()
        s2c = open(os.path.join(mqtt_dir, f[:-4] + ".s2c"), "rb").read()
        if not c2s:
            continue
        ctl = version_control(c2s)
        save("decode", "client", b"\x00" + c2s)
        if s2c:
            save("decode", "broker", bytes([ctl]) + s2c)
        for p in list(packets(c2s)) + list(packets(s2c)):
            save("decode", "packet", (b"\x00" if p[0] >> 4 == 1 else bytes([ctl])) + p)
    for f in sorted(os.listdir(ws_dir)):
        if f.endswith(".c2s"):
            c2s = open(os.path.join(ws_dir, f), "rb").read()
            if c2s:
                save("websocket", "client", b"\x00" + c2s)
                save("websocket", "client-chunked", b"\x07" + c2s)


main()
