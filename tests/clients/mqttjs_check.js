// MQTT.js scenarios against a running broker, driven by tests/mqttjs.rs.
//
// Usage: node mqttjs_check.js URL VERSION SCENARIO [CAFILE]
//   URL      mqtt://127.0.0.1:PORT, ws://127.0.0.1:PORT, wss://127.0.0.1:PORT
//   VERSION  4 or 5 (protocolVersion)
//   CAFILE   the CA that signed the broker's certificate (wss://)
//
// Prints one line per observation; the Rust test compares the exact lines,
// against culex and against mosquitto 2.0.11. Every wait is bounded.
"use strict";

const fs = require("fs");
const mqtt = require("mqtt");

const [URL, VERSION, SCENARIO, CAFILE] = process.argv.slice(2);
const V = Number(VERSION);
const CA = CAFILE ? fs.readFileSync(CAFILE) : undefined;

const line = (s) => console.log(s);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
  return cond();
}

// Connects; resolves [client, connack]. Every client records what arrives in
// `c.got` from the start (queued messages can come with the CONNACK).
function open(id, extra = {}) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(URL, {
      clientId: id,
      protocolVersion: V,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      username: "alice",
      password: "secret",
      ca: CA,
      rejectUnauthorized: true,
      ...extra,
    });
    c.got = [];
    c.on("message", (topic, payload, packet) => c.got.push({ topic, payload, packet }));
    c.once("connect", (connack) => {
      c.on("error", () => {});
      resolve([c, connack]);
    });
    c.once("error", (e) => {
      c.end(true);
      reject(e);
    });
    c.once("close", () => reject(new Error("closed before CONNACK")));
  });
}

const close = (c) => new Promise((r) => c.end(false, {}, () => r()));

function rc(connack) {
  return V === 5 ? connack.reasonCode : connack.returnCode;
}

function show(m) {
  return `${m.topic} ${m.payload.toString()} qos=${m.packet.qos} retain=${m.packet.retain}`;
}

const scenarios = {
  // Connect, subscribe at QoS 2, publish at QoS 0/1/2 and a retained
  // message; a late subscriber gets the retained message flagged retained.
  async pubsub() {
    const [sub, ack] = await open("js-sub");
    line(`connack rc=${rc(ack)} sessionPresent=${ack.sessionPresent}`);
    const granted = await sub.subscribeAsync("js/#", { qos: 2 });
    line(`suback ${granted.map((g) => g.qos).join(",")}`);
    const [pub] = await open("js-pub");
    for (const qos of [0, 1, 2]) await pub.publishAsync(`js/q${qos}`, `m${qos}`, { qos });
    await pub.publishAsync("js/retained", "r", { qos: 1, retain: true });
    await until(() => sub.got.length >= 4, 5000);
    sub.got.map(show).sort().forEach(line);
    const [late] = await open("js-late");
    await late.subscribeAsync("js/retained", { qos: 1 });
    await until(() => late.got.length >= 1, 5000);
    late.got.forEach((m) => line(`late ${show(m)}`));
    await pub.publishAsync("js/retained", "", { qos: 1, retain: true });
    await Promise.all([close(sub), close(pub), close(late)]);
  },

  // The CONNACK code MQTT.js reports for a wrong password.
  async badpass() {
    try {
      const [c] = await open("js-bad", { password: "wrong" });
      line("connected");
      await close(c);
    } catch (e) {
      line(`refused code=${e.code}`);
    }
  },

  // CONNACK properties of a default listener.
  async connack() {
    const [c, ack] = await open("js-connack", { properties: { sessionExpiryInterval: 60 } });
    const p = ack.properties || {};
    for (const k of Object.keys(p).sort()) line(`${k}=${JSON.stringify(p[k])}`);
    await close(c);
  },

  // Session expiry: within the interval the session (subscription and
  // queued message) is there; after it, a clean session.
  async "session-expiry"() {
    const props = { properties: { sessionExpiryInterval: 2 } };
    const [a] = await open("se-a", { clean: true, ...props });
    await a.subscribeAsync("se/t", { qos: 1 });
    await close(a);
    const [p] = await open("se-p");
    await p.publishAsync("se/t", "queued", { qos: 1 });
    const [a2, ack2] = await open("se-a", { clean: false, ...props });
    await until(() => a2.got.length >= 1, 3000);
    line(`within sessionPresent=${ack2.sessionPresent}`);
    a2.got.forEach((m) => line(`within ${show(m)}`));
    await close(a2);
    await sleep(3500);
    await p.publishAsync("se/t", "lost", { qos: 1 });
    const [a3, ack3] = await open("se-a", { clean: false, ...props });
    await sleep(500);
    line(`after sessionPresent=${ack3.sessionPresent}`);
    a3.got.forEach((m) => line(`after ${show(m)}`));
    await Promise.all([close(a3), close(p)]);
  },

  // Message expiry: a queued message whose interval passed is dropped, one
  // still valid arrives with the remaining interval.
  async "message-expiry"() {
    const props = { properties: { sessionExpiryInterval: 60 } };
    const [a] = await open("me-a", { clean: true, ...props });
    await a.subscribeAsync("me/#", { qos: 1 });
    await close(a);
    const [p] = await open("me-p");
    await p.publishAsync("me/short", "s", { qos: 1, properties: { messageExpiryInterval: 1 } });
    await p.publishAsync("me/long", "l", { qos: 1, properties: { messageExpiryInterval: 10 } });
    await p.publishAsync("me/none", "n", { qos: 1 });
    await sleep(2500);
    const [a2] = await open("me-a", { clean: false, ...props });
    await until(() => a2.got.length >= 3, 1500);
    for (const m of a2.got) {
      const e = (m.packet.properties || {}).messageExpiryInterval;
      const shown = e === undefined ? "none" : e >= 5 && e <= 8 ? "reduced" : `${e}`;
      line(`${m.topic} expiry=${shown}`);
    }
    await Promise.all([close(a2), close(p)]);
  },

  // Payload format indicator, content type, response topic, correlation
  // data and user properties (duplicate keys, order) pass through.
  async properties() {
    const [s] = await open("pr-s");
    await s.subscribeAsync("pr/#", { qos: 1 });
    const [p] = await open("pr-p");
    await p.publishAsync("pr/t", "{}", {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: "application/json",
        responseTopic: "pr/reply",
        correlationData: Buffer.from([0, 1, 0xfe, 0xff]),
        userProperties: { zulu: "1", alpha: ["2", "3"], mike: "4" },
      },
    });
    await until(() => s.got.length >= 1, 3000);
    for (const m of s.got) {
      const pr = m.packet.properties || {};
      line(`topic=${m.topic}`);
      line(`payloadFormatIndicator=${pr.payloadFormatIndicator}`);
      line(`contentType=${pr.contentType}`);
      line(`responseTopic=${pr.responseTopic}`);
      line(`correlationData=${pr.correlationData && pr.correlationData.toString("hex")}`);
      line(`userProperties=${JSON.stringify(pr.userProperties)}`);
    }
    await Promise.all([close(s), close(p)]);
  },

  // Subscription identifiers on delivery, with overlapping subscriptions.
  async subid() {
    const [s] = await open("sid-s");
    await s.subscribeAsync("sid/a/#", { qos: 1, properties: { subscriptionIdentifier: 5 } });
    await s.subscribeAsync("sid/+/x", { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await s.subscribeAsync("sid/b", { qos: 1 });
    const [p] = await open("sid-p");
    for (const t of ["sid/a/y", "sid/a/x", "sid/b/x", "sid/b"]) await p.publishAsync(t, t, { qos: 1 });
    await sleep(700);
    s.got
      .map((m) => `${m.topic} sid=${JSON.stringify((m.packet.properties || {}).subscriptionIdentifier)}`)
      .sort()
      .forEach(line);
    await Promise.all([close(s), close(p)]);
  },

  // No local: a client's own messages are not sent back to it.
  async nolocal() {
    const [s] = await open("nl-s");
    await s.subscribeAsync("nl/t", { qos: 1, nl: true });
    await s.subscribeAsync("nl/u", { qos: 1, nl: false });
    await s.publishAsync("nl/t", "self", { qos: 1 });
    await s.publishAsync("nl/u", "self", { qos: 1 });
    const [p] = await open("nl-p");
    await p.publishAsync("nl/t", "other", { qos: 1 });
    await sleep(500);
    s.got.map(show).sort().forEach(line);
    await Promise.all([close(s), close(p)]);
  },

  // Retain as published, for live messages; retained messages sent on
  // subscription always carry the flag.
  async rap() {
    const [a] = await open("rap-a");
    await a.subscribeAsync("rap/t", { qos: 1, rap: true });
    const [b] = await open("rap-b");
    await b.subscribeAsync("rap/t", { qos: 1, rap: false });
    const [p] = await open("rap-p");
    await p.publishAsync("rap/t", "live", { qos: 1, retain: true });
    await until(() => a.got.length >= 1 && b.got.length >= 1, 3000);
    a.got.forEach((m) => line(`rap=1 ${show(m)}`));
    b.got.forEach((m) => line(`rap=0 ${show(m)}`));
    const [c] = await open("rap-c");
    await c.subscribeAsync("rap/t", { qos: 1, rap: false });
    await until(() => c.got.length >= 1, 3000);
    c.got.forEach((m) => line(`new rap=0 ${show(m)}`));
    await p.publishAsync("rap/t", "", { qos: 1, retain: true });
    await Promise.all([close(a), close(b), close(c), close(p)]);
  },

  // Retain handling 0 (always), 1 (new subscriptions only), 2 (never).
  async "retain-handling"() {
    const [p] = await open("rh-p");
    await p.publishAsync("rh/t", "kept", { qos: 1, retain: true });
    const [s] = await open("rh-s");
    const step = async (label, filter, rh) => {
      s.got = [];
      await s.subscribeAsync(filter, { qos: 1, rh });
      await sleep(400);
      line(`${label} ${filter} rh=${rh} got=${s.got.length}`);
    };
    await step("new", "rh/t", 0);
    await step("again", "rh/t", 0);
    await step("new", "rh/+", 1);
    await step("again", "rh/+", 1);
    await step("new", "rh/#", 2);
    await step("again", "rh/#", 2);
    await p.publishAsync("rh/t", "", { qos: 1, retain: true });
    await Promise.all([close(s), close(p)]);
  },

  // Shared subscriptions: two members share the messages, neither gets the
  // retained message; a plain subscriber does.
  async shared() {
    const [p] = await open("sh-p");
    await p.publishAsync("sh/t", "retained", { qos: 1, retain: true });
    const [a] = await open("sh-a");
    const [b] = await open("sh-b");
    const [n] = await open("sh-n");
    line(`suback ${(await a.subscribeAsync("$share/g/sh/t", { qos: 1 })).map((g) => g.qos)}`);
    await b.subscribeAsync("$share/g/sh/t", { qos: 1 });
    await n.subscribeAsync("sh/t", { qos: 1 });
    await sleep(400);
    line(`retained to shared=${a.got.length + b.got.length} to plain=${n.got.length}`);
    a.got = [];
    b.got = [];
    n.got = [];
    for (let i = 0; i < 10; i++) await p.publishAsync("sh/t", `m${i}`, { qos: 1 });
    await until(() => a.got.length + b.got.length >= 10 && n.got.length >= 10, 3000);
    await sleep(200);
    line(`shared total=${a.got.length + b.got.length} a>0=${a.got.length > 0} b>0=${b.got.length > 0}`);
    const all = a.got.concat(b.got).map((m) => m.payload.toString());
    line(`each once=${new Set(all).size === 10}`);
    line(`plain=${n.got.length}`);
    await p.publishAsync("sh/t", "", { qos: 1, retain: true });
    await Promise.all([close(a), close(b), close(n), close(p)]);
  },

  // Topic alias from the client: set with a topic, then used alone.
  async "alias-in"() {
    const [s] = await open("ai-s");
    await s.subscribeAsync("ai/#", { qos: 1 });
    const [p] = await open("ai-p");
    await p.publishAsync("ai/long/topic", "one", { qos: 1, properties: { topicAlias: 1 } });
    await p.publishAsync("", "two", { qos: 1, properties: { topicAlias: 1 } });
    await p.publishAsync("ai/other", "three", { qos: 1, properties: { topicAlias: 1 } });
    await p.publishAsync("", "four", { qos: 1, properties: { topicAlias: 1 } });
    await until(() => s.got.length >= 4, 3000);
    s.got.forEach((m) => line(show(m)));
    await Promise.all([close(s), close(p)]);
  },

  // Topic aliases from the broker to a client that allows two: what is on
  // the wire (topic, alias) for messages on three topics.
  async "alias-out"() {
    const [s] = await open("ao-s", { properties: { topicAliasMaximum: 2 } });
    const wire = [];
    s.on("packetreceive", (pk) => {
      if (pk.cmd === "publish") {
        wire.push(`wire topic='${pk.topic}' alias=${(pk.properties || {}).topicAlias}`);
      }
    });
    await s.subscribeAsync("ao/#", { qos: 1 });
    const [p] = await open("ao-p");
    const topics = ["ao/one", "ao/one", "ao/two", "ao/three", "ao/one", "ao/three"];
    for (const t of topics) await p.publishAsync(t, "m", { qos: 1 });
    await until(() => s.got.length >= topics.length, 3000);
    wire.forEach(line);
    line(`delivered ${s.got.map((m) => m.topic).join(",")}`);
    await Promise.all([close(s), close(p)]);
  },

  // Maximum packet size from the client: a larger message is not sent to it
  // (and the connection stays up).
  async "max-packet"() {
    const [s] = await open("mp-s", { properties: { maximumPacketSize: 200 } });
    await s.subscribeAsync("mp/#", { qos: 1 });
    const [p] = await open("mp-p");
    await p.publishAsync("mp/small", "x".repeat(10), { qos: 1 });
    await p.publishAsync("mp/big", "x".repeat(500), { qos: 1 });
    await p.publishAsync("mp/after", "y".repeat(10), { qos: 1 });
    await sleep(700);
    s.got.forEach((m) => line(`${m.topic} len=${m.payload.length}`));
    line(`connected=${s.connected}`);
    await Promise.all([close(s), close(p)]);
  },

  // Will delay: sent after the delay; cancelled by a reconnect within it.
  async "will-delay"() {
    const [o] = await open("wd-o");
    await o.subscribeAsync("wd/#", { qos: 1 });
    const will = (t) => ({
      will: { topic: t, payload: Buffer.from("gone"), qos: 1, retain: false, properties: { willDelayInterval: 2 } },
      properties: { sessionExpiryInterval: 30 },
    });
    const [w] = await open("wd-1", will("wd/one"));
    const t0 = Date.now();
    w.stream.destroy();
    await until(() => o.got.length >= 1, 6000);
    const dt = Date.now() - t0;
    line(`wd/one wills=${o.got.length} delayed=${dt >= 1500 && dt < 4500}`);
    o.got = [];
    const [w2] = await open("wd-2", will("wd/two"));
    w2.stream.destroy();
    await sleep(500);
    const [w3, ack] = await open("wd-2", { clean: false, properties: { sessionExpiryInterval: 30 } });
    line(`wd-2 back sessionPresent=${ack.sessionPresent}`);
    await sleep(3000);
    line(`wd/two wills=${o.got.length}`);
    await Promise.all([close(o), close(w3)]);
  },

  // DISCONNECT 0x04 sends the will; a normal DISCONNECT does not.
  async "disconnect-will"() {
    const [o] = await open("dw-o");
    await o.subscribeAsync("dw/#", { qos: 1 });
    const will = (t) => ({ will: { topic: t, payload: Buffer.from("will"), qos: 1, retain: false } });
    const [a] = await open("dw-a", will("dw/with-will"));
    await new Promise((r) => a.end(false, { reasonCode: 4 }, r));
    const [b] = await open("dw-b", will("dw/normal"));
    await new Promise((r) => b.end(false, { reasonCode: 0 }, r));
    await sleep(700);
    o.got.map(show).forEach(line);
    await close(o);
  },

  // Server keep alive from max_keepalive (broker config: max_keepalive 30).
  async keepalive() {
    for (const [id, keepalive] of [["ka-1", 120], ["ka-2", 20], ["ka-3", 0]]) {
      try {
        const [c, ack] = await open(id, { keepalive });
        line(`keepalive ${keepalive}: connack rc=${rc(ack)} serverKeepAlive=${(ack.properties || {}).serverKeepAlive}`);
        await close(c);
      } catch (e) {
        line(`keepalive ${keepalive}: refused code=${e.code}`);
      }
    }
  },

  // A retained message keeps its properties; delivered on subscription it
  // carries the new subscription's identifier.
  async "retained-props"() {
    const [p] = await open("rp-p");
    await p.publishAsync("rp/t", "kept", {
      qos: 1,
      retain: true,
      properties: {
        contentType: "text/plain",
        userProperties: { b: "1", a: "2" },
        responseTopic: "rp/reply",
        correlationData: Buffer.from("cd"),
      },
    });
    const [s] = await open("rp-s");
    await s.subscribeAsync("rp/#", { qos: 1, properties: { subscriptionIdentifier: 9 } });
    await until(() => s.got.length >= 1, 3000);
    for (const m of s.got) {
      const pr = m.packet.properties || {};
      line(`${show(m)} contentType=${pr.contentType} responseTopic=${pr.responseTopic}`);
      line(`correlationData=${pr.correlationData} sid=${JSON.stringify(pr.subscriptionIdentifier)}`);
      line(`userProperties=${JSON.stringify(pr.userProperties)}`);
    }
    await p.publishAsync("rp/t", "", { qos: 1, retain: true });
    await Promise.all([close(s), close(p)]);
  },

  // A retained message whose expiry passed is not sent to a new subscriber;
  // one still valid is sent with the remaining interval.
  async "retained-expiry"() {
    const [p] = await open("re-p");
    await p.publishAsync("re/short", "s", { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await p.publishAsync("re/long", "l", { qos: 1, retain: true, properties: { messageExpiryInterval: 10 } });
    await sleep(2500);
    const [s] = await open("re-s");
    await s.subscribeAsync("re/#", { qos: 1 });
    await sleep(500);
    for (const m of s.got.sort((x, y) => (x.topic < y.topic ? -1 : 1))) {
      const e = (m.packet.properties || {}).messageExpiryInterval;
      line(`${m.topic} retain=${m.packet.retain} expiry=${e >= 5 && e <= 8 ? "reduced" : e}`);
    }
    await Promise.all([close(s), close(p)]);
  },

  // Will properties pass through to the will message.
  async "will-props"() {
    const [o] = await open("wp-o");
    await o.subscribeAsync("wp/#", { qos: 1 });
    const [w] = await open("wp-w", {
      will: {
        topic: "wp/will",
        payload: Buffer.from("{}"),
        qos: 1,
        retain: false,
        properties: {
          contentType: "application/json",
          payloadFormatIndicator: true,
          responseTopic: "wp/reply",
          correlationData: Buffer.from([7, 7]),
          userProperties: { device: "w", zone: "1" },
        },
      },
    });
    w.stream.destroy();
    await until(() => o.got.length >= 1, 3000);
    for (const m of o.got) {
      const pr = m.packet.properties || {};
      line(show(m));
      line(`contentType=${pr.contentType} payloadFormatIndicator=${pr.payloadFormatIndicator}`);
      line(`responseTopic=${pr.responseTopic} correlationData=${pr.correlationData && pr.correlationData.toString("hex")}`);
      line(`userProperties=${JSON.stringify(pr.userProperties)}`);
    }
    await close(o);
  },

  // Session take-over: what the first connection sees.
  async takeover() {
    const [a] = await open("to-x");
    const seen = [];
    a.on("disconnect", (pk) => seen.push(`disconnect reason=${pk.reasonCode}`));
    a.on("close", () => seen.push("closed"));
    const [b] = await open("to-x");
    await until(() => seen.includes("closed"), 3000);
    seen.forEach((s) => line(`first ${s}`));
    line(`second connected=${b.connected}`);
    await close(b);
  },
};

const run = scenarios[SCENARIO];
if (!run) {
  console.error(`unknown scenario ${SCENARIO}`);
  process.exit(2);
}
setTimeout(() => {
  console.error("scenario timed out");
  process.exit(3);
}, 30000).unref();
run().then(
  () => process.exit(0),
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
