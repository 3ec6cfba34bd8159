#!/usr/bin/env python3
"""paho-mqtt over WebSockets, for fuzz seeds: ws_client.py PORT VERSION.

Connects to ws://127.0.0.1:PORT/mqtt with MQTT 3.1.1 (VERSION 4) or 5.0
(VERSION 5), subscribes, publishes at QoS 0, 1 and 2 (one payload larger
than 125 bytes, for the 16-bit frame length), waits for the messages,
pings and disconnects.
"""
import sys
import time

import paho.mqtt.client as mqtt

port, version = int(sys.argv[1]), int(sys.argv[2])
proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
got = []
c = mqtt.Client(client_id=f"ws-seed-{version}", protocol=proto, transport="websockets")
c.ws_set_options(path="/mqtt")
c.on_message = lambda cl, u, m: got.append(m)
c.will_set("ws/will", b"gone", qos=1, retain=False)
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
time.sleep(0.3)
c.subscribe("ws/#", qos=2)
time.sleep(0.2)
for qos, payload in [(0, b"zero"), (1, b"x" * 300), (2, b"two")]:
    c.publish("ws/t", payload, qos=qos)
deadline = time.time() + 3
while len(got) < 3 and time.time() < deadline:
    time.sleep(0.05)
c.unsubscribe("ws/#")
time.sleep(0.2)
c.disconnect()
c.loop_stop()
