#!/usr/bin/env bash
# Records real clients' bytes for the fuzz seeds: starts target/debug/culex
# on free loopback ports (MQTT and WebSockets) behind record_proxy.py, runs
# mosquitto_pub/_sub (3.1, 3.1.1, 5.0; will, QoS 1/2, retained, v5
# properties) and paho-mqtt over WebSockets, then turns the recordings into
# fuzz/seeds/decode/ and fuzz/seeds/websocket/ (split_seeds.py).
# Usage: fuzz/capture/capture.sh   (after `cargo build`)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=fuzz/capture
work=$(mktemp -d)
# culex started as root drops to the user mosquitto, which must write the db.
chmod 0777 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mq=$(free_port); ws=$(free_port); pmq=$(free_port); pws=$(free_port)
cat > "$work/culex.conf" <<CONF
listener $mq 127.0.0.1
allow_anonymous true
listener $ws 127.0.0.1
protocol websockets
persistence true
persistence_location $work/
CONF
target/debug/culex -c "$work/culex.conf" >"$work/culex.log" 2>&1 &
culex_pid=$!
/usr/bin/python3 $here/record_proxy.py "$pmq" "$mq" "$work/mqtt" &
/usr/bin/python3 $here/record_proxy.py "$pws" "$ws" "$work/ws" &
sleep 1
h=(-h 127.0.0.1 -p "$pmq")

# Subscribers first, so the publishes below reach them (server-to-client
# PUBLISH, PUBREL at QoS 2, SUBACK, UNSUBACK).
mosquitto_sub "${h[@]}" -V mqttv31 -i seed-sub31 -q 2 -t 'seed/#' -W 4 -v >/dev/null 2>&1 &
mosquitto_sub "${h[@]}" -V mqttv311 -i seed-sub311 -q 1 -t 'seed/#' -t '$SYS/broker/uptime' -c -W 4 >/dev/null 2>&1 &
mosquitto_sub "${h[@]}" -V mqttv5 -i seed-sub5 -q 2 -t 'seed/#' -t 'other/+/x' \
  -D subscribe subscription-identifier 7 -D subscribe user-property sk sv \
  -D connect session-expiry-interval 60 -D connect receive-maximum 10 \
  -D connect maximum-packet-size 100000 -D connect topic-alias-maximum 5 \
  -D connect request-response-information 1 -D connect request-problem-information 1 \
  --retain-as-published --nl -W 4 >/dev/null 2>&1 &
mosquitto_sub "${h[@]}" -V mqttv5 -i seed-unsub5 -t 'seed/a' -U 'seed/a' -W 2 >/dev/null 2>&1 &
sleep 1

for v in mqttv31 mqttv311 mqttv5; do
  for q in 0 1 2; do
    mosquitto_pub "${h[@]}" -V $v -i "seed-pub-$v-$q" -q $q -t "seed/$v/$q" -m "hello $v $q"
  done
  mosquitto_pub "${h[@]}" -V $v -i "seed-will-$v" -q 1 -r -t seed/retained -m "kept" \
    -u user -P secret -k 20 \
    --will-topic seed/will --will-payload "bye $v" --will-qos 2 --will-retain
done
mosquitto_pub "${h[@]}" -V mqttv5 -i seed-props5 -q 2 -t seed/props -m '{"a":1}' \
  -D connect session-expiry-interval 30 -D connect user-property ck cv \
  -D connect authentication-method none 2>/dev/null || true
mosquitto_pub "${h[@]}" -V mqttv5 -i seed-props5b -q 1 -t seed/props -m 'props' \
  -D publish payload-format-indicator 1 -D publish message-expiry-interval 60 \
  -D publish content-type text/plain -D publish response-topic seed/reply \
  -D publish correlation-data 1234 -D publish user-property k v -D publish topic-alias 1 \
  --will-topic seed/will5 --will-payload w -D will will-delay-interval 5 \
  -D will content-type text/plain -D will user-property wk wv \
  -D disconnect session-expiry-interval 0 -D disconnect reason-string bye
mosquitto_pub "${h[@]}" -V mqttv5 -i seed-empty -q 1 -t seed/retained -r -n
mosquitto_pub "${h[@]}" -V mqttv311 -q 0 -t seed/big -s < ARCHITECTURE.md
wait_subs() { sleep 4; }
for v in 4 5; do /usr/bin/python3 $here/ws_client.py "$pws" "$v"; done
wait_subs
/usr/bin/python3 $here/split_seeds.py "$work/mqtt" "$work/ws"
# The mosquitto.db culex writes on shutdown: retained messages, the
# persistent sessions of seed-sub311 and seed-sub5, their subscriptions.
kill -TERM "$culex_pid"
wait "$culex_pid" || true
mkdir -p fuzz/seeds/persist
cp "$work/mosquitto.db" fuzz/seeds/persist/culex-capture.db
