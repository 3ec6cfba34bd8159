"""paho-mqtt MQTT 5 scenarios against a running broker, driven by
tests/compat.rs (each scenario runs against culex and mosquitto 2.0.11).

Usage: paho5_check.py PORT SCENARIO. Prints one line per observation; the
Rust test compares the exact lines. Every wait is bounded. Written for
paho-mqtt 1.6 (Debian's python3-paho-mqtt) and 2.x (VERSION1 callbacks).
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

PORT = int(sys.argv[1])
SCENARIO = sys.argv[2]
HOST = "127.0.0.1"


def new_client(cid, proto=mqtt.MQTTv5):
    kwargs = {"client_id": cid, "protocol": proto}
    if hasattr(mqtt, "CallbackAPIVersion"):
        kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION1
    if proto != mqtt.MQTTv5:
        kwargs["clean_session"] = True
    return mqtt.Client(**kwargs)


class C:
    """A connected client that records its messages."""

    def __init__(self, cid, clean=True, expiry=None, will=None, proto=mqtt.MQTTv5):
        self.c = new_client(cid, proto)
        self.c.username_pw_set("alice", "secret")
        self.got = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.flags = {}
        self.c.on_message = self._on_message
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda *a, **k: self.subscribed.set()
        if will is not None:
            topic, payload, props = will
            self.c.will_set(topic, payload, qos=1, retain=False, properties=props)
        if proto == mqtt.MQTTv5:
            props = None
            if expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = expiry
            self.c.connect(HOST, PORT, keepalive=30, clean_start=clean, properties=props)
        else:
            self.c.connect(HOST, PORT, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(5):
            raise SystemExit("%s: no CONNACK" % cid)

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.flags = flags
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.got.append(msg)

    def sub(self, topic, qos=1, sid=None, options=None):
        self.subscribed.clear()
        props = None
        if sid is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sid
        if options is None:
            options = SubscribeOptions(qos=qos) if self.c._protocol == mqtt.MQTTv5 else None
        if options is None:
            self.c.subscribe(topic, qos=qos)
        else:
            self.c.subscribe(topic, options=options, properties=props)
        if not self.subscribed.wait(5):
            raise SystemExit("no SUBACK")

    def pub(self, topic, payload, qos=1, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(5)

    def wait(self, n, timeout=5):
        end = time.time() + timeout
        while len(self.got) < n and time.time() < end:
            time.sleep(0.02)

    def stop(self, reason=None):
        if reason is None:
            self.c.disconnect()
        else:
            self.c.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, reason))
        time.sleep(0.1)
        self.c.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT."""
        self.c.loop_stop()
        self.c.socket().close()


def pprops(**kw):
    p = Properties(PacketTypes.PUBLISH)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def props():
    s = C("p5-sub")
    s.sub("pp/#")
    p = C("p5-pub")
    pr = pprops(
        PayloadFormatIndicator=1,
        ContentType="text/plain; charset=utf-8",
        ResponseTopic="pp/reply",
        CorrelationData=b"\x00id-7\xff",
    )
    pr.UserProperty = [("k", "1"), ("a", "x"), ("k", "2"), ("k", "1"), ("empty", "")]
    p.pub("pp/t", "hello", props=pr)
    s.wait(1)
    for m in s.got:
        q = m.properties
        print("topic", m.topic, "payload", m.payload.decode())
        print("PayloadFormatIndicator", getattr(q, "PayloadFormatIndicator", None))
        print("ContentType", getattr(q, "ContentType", None))
        print("ResponseTopic", getattr(q, "ResponseTopic", None))
        print("CorrelationData", getattr(q, "CorrelationData", None))
        print("UserProperty", getattr(q, "UserProperty", None))
    s.stop()
    p.stop()


def request_response():
    responder = C("rr-responder")

    def answer(client, userdata, msg):
        out = pprops(CorrelationData=msg.properties.CorrelationData)
        client.publish(msg.properties.ResponseTopic, b"re: " + msg.payload, qos=1, properties=out)

    responder.c.on_message = answer
    responder.sub("rr/req")
    requester = C("rr-requester")
    requester.sub("rr/reply/requester")
    for n in (1, 2):
        requester.pub(
            "rr/req",
            "q%d" % n,
            props=pprops(ResponseTopic="rr/reply/requester", CorrelationData=b"corr-%d" % n),
        )
    requester.wait(2)
    for m in sorted(requester.got, key=lambda m: m.payload):
        print(m.topic, m.payload.decode(), m.properties.CorrelationData)
    requester.stop()
    responder.stop()


def subid():
    s = C("si-sub")
    s.sub("si/#", sid=42)
    s.sub("si/+/x", sid=268435455)
    s.sub("si/plain/#")
    p = C("si-pub")
    for t in ("si/a", "si/b/x", "si/plain/y"):
        p.pub(t, t)
    time.sleep(0.7)
    lines = []
    for m in s.got:
        lines.append("%s %s" % (m.topic, getattr(m.properties, "SubscriptionIdentifier", None)))
    for line in sorted(lines):
        print(line)
    s.stop()
    p.stop()


def will_at_session_end():
    """Will delay 10 s but session expiry 1 s: the will goes when the session ends."""
    o = C("ws-obs")
    o.sub("ws/#")
    wp = Properties(PacketTypes.WILLMESSAGE)
    wp.WillDelayInterval = 10
    w = C("ws-client", expiry=1, will=("ws/will", "bye", wp))
    t0 = time.time()
    w.drop()
    o.wait(1, timeout=8)
    dt = time.time() - t0
    print("wills", len(o.got), "at session end", 0.5 <= dt < 4)
    o.stop()


def disconnect_with_will():
    o = C("dw5-obs")
    o.sub("dw5/#")
    a = C("dw5-a", will=("dw5/a", "a-will", None))
    a.stop("Disconnect with will message")
    b = C("dw5-b", will=("dw5/b", "b-will", None))
    b.stop()
    c = C("dw5-c", will=("dw5/c", "c-will", None))
    c.drop()
    time.sleep(0.8)
    for m in sorted(o.got, key=lambda m: m.topic):
        print(m.topic, m.payload.decode())
    o.stop()


def session():
    a = C("se5", clean=True, expiry=0xFFFFFFFF)
    print("first session present", a.flags.get("session present"))
    a.sub("se5/t")
    a.stop()
    p = C("se5-pub")
    p.pub("se5/t", "while away")
    b = C("se5", clean=False, expiry=0xFFFFFFFF)
    b.wait(1)
    print("resumed session present", b.flags.get("session present"))
    for m in b.got:
        print("queued", m.topic, m.payload.decode())
    b.stop()
    # A clean start drops it.
    c = C("se5", clean=True, expiry=0)
    print("clean start session present", c.flags.get("session present"))
    c.stop()
    p.stop()


def shared_v311():
    a = C("sh3-a", proto=mqtt.MQTTv311)
    b = C("sh3-b", proto=mqtt.MQTTv311)
    a.sub("$share/grp/sh3/#")
    b.sub("$share/grp/sh3/#")
    p = C("sh3-p", proto=mqtt.MQTTv311)
    for i in range(12):
        p.pub("sh3/t", "m%d" % i)
    end = time.time() + 5
    while len(a.got) + len(b.got) < 12 and time.time() < end:
        time.sleep(0.02)
    time.sleep(0.2)
    print("total", len(a.got) + len(b.got), "a>0", len(a.got) > 0, "b>0", len(b.got) > 0)
    print("distinct", len({m.payload for m in a.got + b.got}))
    a.stop()
    b.stop()
    p.stop()


def expiry():
    """A queued message that expired is dropped; a live one keeps its interval."""
    live = C("ex-live")
    live.sub("ex/#")
    a = C("ex-away", clean=True, expiry=60)
    a.sub("ex/#")
    a.stop()
    p = C("ex-pub")
    p.pub("ex/short", "short", props=pprops(MessageExpiryInterval=1))
    p.pub("ex/long", "long", props=pprops(MessageExpiryInterval=100))
    live.wait(2)
    for m in live.got:
        e = getattr(m.properties, "MessageExpiryInterval", None)
        print("live", m.topic, "expiry", e)
    time.sleep(2.2)
    b = C("ex-away", clean=False, expiry=60)
    b.wait(2, timeout=1.5)
    for m in b.got:
        e = getattr(m.properties, "MessageExpiryInterval", None)
        print("queued", m.topic, "expiry reduced", e is not None and 95 <= e <= 98)
    b.stop()
    live.stop()
    p.stop()


SCENARIOS = {
    "props": props,
    "request-response": request_response,
    "subid": subid,
    "will-at-session-end": will_at_session_end,
    "disconnect-with-will": disconnect_with_will,
    "session": session,
    "shared-v311": shared_v311,
    "expiry": expiry,
}

if SCENARIO not in SCENARIOS:
    print("unknown scenario")
    sys.exit(2)
SCENARIOS[SCENARIO]()
