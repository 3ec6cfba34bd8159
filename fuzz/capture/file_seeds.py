#!/usr/bin/env python3
"""Seeds for the file-format and DNS targets (see docs/fuzzing.md):
copies testdata/ and conf/ into fuzz/seeds/<target>/ and writes a few
hand-made inputs (include_dir layouts, ACL queries, PSK files, DNS
answers). Run from anywhere: file_seeds.py
"""
import os
import shutil
import struct

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(target, path, name=None):
    put(target, name or os.path.basename(path), open(os.path.join(ROOT, path), "rb").read())


def listdir(path):
    return sorted(os.listdir(os.path.join(ROOT, path)))


# config: the shipped configs, and include_dir layouts (fuzz/fuzz_targets/config.rs).
for f in listdir("conf"):
    if f.endswith(".conf"):
        copy("config", f"conf/{f}")
put("config", "include-dir",
    "per_listener_settings true\nlistener 1883\ninclude_dir @DIR@\nallow_anonymous true\n"
    "\n#@file\nlistener 1884 127.0.0.1\nprotocol websockets\nhttp_dir /tmp\n"
    "\n#@file\nlistener 8883\ncafile ca.crt\ncertfile s.crt\nkeyfile s.key\nrequire_certificate true\n"
    "\n#@file\nconnection b\naddress h:1883 i:1884\ntopic # both 2 l/ r/\nbridge_protocol_version mqttv50\n")
put("config", "include-dir-bad",
    "include_dir @DIR@\n\n#@file\nlistener 1\nbind_interface lo\nmax_inflight_messages 0\n"
    "\n#@file\npassword_file\n")
put("config", "everything",
    "persistence true\npersistence_location /tmp/\nautosave_interval 60\nautosave_on_changes true\n"
    "log_dest stdout\nlog_dest topic\nlog_type all\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n"
    "max_queued_messages 100\nmax_queued_bytes 1000000\nmemory_limit 0\nmessage_size_limit 1000\n"
    "max_packet_size 2000\nmax_keepalive 60\nsys_interval 10\nretain_available false\n"
    "listener 1883 0.0.0.0\nsocket_domain ipv4\nmax_connections 10\nmount_point m/\n"
    "listener 0 /tmp/culex.sock\nacl_file /etc/acl\npsk_file /etc/psk\npsk_hint hint\n"
    "use_identity_as_username true\nallow_zero_length_clientid false\nclientid_prefixes c-\n")

# passwd, acl, psk, persist: the fixtures.
for f in listdir("testdata/passwd"):
    if f.endswith(".passwd"):
        copy("passwd", f"testdata/passwd/{f}")
copy("passwd", "conf/passwd", "conf.passwd")
copy("passwd", "testdata/acl/users.passwd")
copy("acl", "testdata/acl/sample.acl")
put("acl", "sample-with-queries",
    open(os.path.join(ROOT, "testdata/acl/sample.acl"), "rb").read()
    + b"\0r c - public/x\nw c alice home/secret\nr id-1 bob users/bob/inbox\n"
    b"w c - anon/rw\nr x + clients/x/1\nw c# u clients/c#/a\n")
put("acl", "patterns", "pattern %u/%c/#\npattern write %c\nuser u\ntopic deny #\n\0r c u u/c/x\nw c u c\n")
put("psk", "keys", "# identities\nid1:0102030405060708\nclient2:deadbeef\nlong:" + "ab" * 64
    + "\nzero:00000001\nbad line\n:ff\n")
put("psk", "not-hex", "id:xyz\n")
copy("persist", "testdata/mosquitto-db/sample-2.0.11.db")
for f in listdir("testdata/mosquitto-db/fixtures"):
    if f.endswith(".test-db"):
        copy("persist", f"testdata/mosquitto-db/fixtures/{f}")


# dns: answers for the fixed question (fuzz/fuzz_targets/dns.rs).
def name(host):
    return b"".join(bytes([len(l)]) + l.encode() for l in host.split(".")) + b"\0"


def answer(qtype, records, flags=0x8180, qd=1, rid=0x1234):
    q = name("broker.example.com") + struct.pack(">HH", qtype, 1)
    body = b"".join(records)
    hdr = struct.pack(">HHHHHH", rid, flags, qd, len(records), 0, 0)
    return hdr + (q if qd else b"") + body


def rr(owner, rtype, data):
    return owner + struct.pack(">HHIH", rtype, 1, 300, len(data)) + data


PTR = b"\xc0\x0c"  # the question's name
put("dns", "a", b"\0" + answer(1, [rr(PTR, 1, bytes([192, 0, 2, 1])), rr(PTR, 1, bytes([192, 0, 2, 2]))]))
put("dns", "aaaa", b"\1" + answer(28, [rr(PTR, 28, bytes(range(16)))]))
cname = name("real.example.net")
put("dns", "cname-chain", b"\0" + answer(1, [
    rr(PTR, 5, cname), rr(b"\xc0\x30", 1, bytes([198, 51, 100, 7])), rr(PTR, 1, bytes([198, 51, 100, 7]))]))
put("dns", "nxdomain", b"\0" + answer(1, [], flags=0x8183))
put("dns", "servfail-no-question", b"\0" + answer(1, [], flags=0x8182, qd=0))
put("dns", "truncated", b"\0" + answer(1, [], flags=0x8380))
put("dns", "loop", b"\0" + answer(1, [rr(b"\xc0\x24", 1, bytes(4))]))
