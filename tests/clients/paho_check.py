"""paho-mqtt scenarios against a running broker, driven by tests/paho.rs.

Usage: paho_check.py PORT SCENARIO. Prints one line per observation; the Rust
test compares the exact lines. Every wait is bounded.
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]
HOST = "127.0.0.1"


def client(cid, version, user=None, password=None):
    proto = {"v311": mqtt.MQTTv311, "v31": mqtt.MQTTv31, "v5": mqtt.MQTTv5}[version]
    if proto == mqtt.MQTTv5:
        c = mqtt.Client(client_id=cid, protocol=proto)
    else:
        c = mqtt.Client(client_id=cid, clean_session=True, protocol=proto)
    if user is not None:
        c.username_pw_set(user, password)
    return c


def connect_rc(version, user, password):
    """The CONNACK code the broker answers."""
    result = {}
    done = threading.Event()
    c = client("rc-" + version, version, user, password)

    def on_connect(cl, userdata, flags, rc, properties=None):
        result["rc"] = rc.value if hasattr(rc, "value") else rc
        done.set()

    c.on_connect = on_connect
    c.connect(HOST, PORT, keepalive=30)
    c.loop_start()
    done.wait(5)
    c.loop_stop()
    c.disconnect()
    return result.get("rc")


def pubsub(version):
    got = []
    lock = threading.Lock()
    all_in = threading.Event()
    sub = client("sub-" + version, version, "alice", "secret")
    subscribed = threading.Event()

    def on_message(cl, userdata, msg):
        with lock:
            got.append((msg.topic, msg.payload.decode(), msg.qos, int(msg.retain)))
            if len(got) == 4:
                all_in.set()

    sub.on_message = on_message
    sub.on_subscribe = lambda *a, **k: subscribed.set()
    sub.connect(HOST, PORT, keepalive=30)
    sub.loop_start()
    sub.subscribe("paho/#", qos=2)
    if not subscribed.wait(5):
        print("no SUBACK")
        return
    pub = client("pub-" + version, version, "alice", "secret")
    pub.connect(HOST, PORT, keepalive=30)
    pub.loop_start()
    for qos in (0, 1, 2):
        info = pub.publish("paho/q%d" % qos, "m%d" % qos, qos=qos)
        info.wait_for_publish(5)
    info = pub.publish("paho/retained", "r", qos=1, retain=True)
    info.wait_for_publish(5)
    all_in.wait(5)
    pub.loop_stop()
    pub.disconnect()
    sub.loop_stop()
    sub.disconnect()
    for g in sorted(got):
        print("%s %s qos=%d retain=%d" % g)
    # A later subscriber sees the retained message flagged retained.
    late = client("late-" + version, version, "alice", "secret")
    seen = threading.Event()
    late_got = []

    def on_late(cl, userdata, msg):
        late_got.append((msg.topic, msg.payload.decode(), msg.qos, int(msg.retain)))
        seen.set()

    late.on_message = on_late
    late.connect(HOST, PORT, keepalive=30)
    late.loop_start()
    late.subscribe("paho/retained", qos=1)
    seen.wait(5)
    late.loop_stop()
    late.disconnect()
    for g in late_got:
        print("late %s %s qos=%d retain=%d" % g)


if SCENARIO == "rc":
    for version in ("v31", "v311", "v5"):
        print(version, "anonymous", connect_rc(version, None, None))
        print(version, "wrong", connect_rc(version, "alice", "nope"))
        print(version, "alice", connect_rc(version, "alice", "secret"))
elif SCENARIO in ("pubsub-v311", "pubsub-v5", "pubsub-v31"):
    pubsub(SCENARIO.split("-")[1])
else:
    print("unknown scenario")
    sys.exit(2)
