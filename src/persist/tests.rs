//! Tests against mosquitto's own fixtures, a real 2.0.11 file and the
//! independent Python reader (`/work/shared/tools/parse_mosquitto_db.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::codec::Properties;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/mosquitto-db")
}

fn fixture(name: &str) -> Vec<u8> {
    let p = testdata().join("fixtures").join(format!("{name}.test-db"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sample() -> Vec<u8> {
    std::fs::read(testdata().join("sample-2.0.11.db")).expect("sample db")
}

fn read_ok(bytes: &[u8], what: &str) -> DbContents {
    match read(bytes) {
        Ok((c, _)) => c,
        Err(e) => panic!("{what}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// A tiny JSON parser, enough for the Python reader's --json output.

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(i128),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s[self.i], c,
            "json: expected {} at {}",
            c as char, self.i
        );
        self.i += 1;
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(v);
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.value() else {
                        panic!("json: key")
                    };
                    self.eat(b':');
                    v.push((k, self.value()));
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b'}' {
                        return Json::Obj(v);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(v);
                }
                loop {
                    v.push(self.value());
                    self.ws();
                    self.i += 1;
                    if self.s[self.i - 1] == b']' {
                        return Json::Arr(v);
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out: Vec<u16> = Vec::new();
                let mut bytes = Vec::new();
                loop {
                    let c = self.s[self.i];
                    self.i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let e = self.s[self.i];
                            self.i += 1;
                            let ch = match e {
                                b'n' => '\n',
                                b't' => '\t',
                                b'r' => '\r',
                                b'b' => '\u{8}',
                                b'f' => '\u{c}',
                                b'u' => {
                                    let h = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                        .expect("hex");
                                    self.i += 4;
                                    out.push(u16::from_str_radix(h, 16).expect("hex"));
                                    continue;
                                }
                                other => other as char,
                            };
                            flush(&mut out, &mut bytes);
                            let mut b = [0; 4];
                            bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        c => {
                            flush(&mut out, &mut bytes);
                            bytes.push(c);
                        }
                    }
                }
                flush(&mut out, &mut bytes);
                Json::Str(String::from_utf8(bytes).expect("json utf8"))
            }
            b't' => {
                self.i += 4;
                Json::Bool(true)
            }
            b'f' => {
                self.i += 5;
                Json::Bool(false)
            }
            b'n' => {
                self.i += 4;
                Json::Null
            }
            _ => {
                let st = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i] == b'-' || self.s[self.i].is_ascii_digit())
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[st..self.i]).expect("num");
                Json::Num(t.parse().unwrap_or_else(|_| panic!("json number {t:?}")))
            }
        }
    }
}

/// Turns pending \u escapes (UTF-16) into UTF-8 bytes.
fn flush(units: &mut Vec<u16>, bytes: &mut Vec<u8>) {
    for ch in char::decode_utf16(units.drain(..)) {
        let ch = ch.unwrap_or('\u{fffd}');
        let mut b = [0; 4];
        bytes.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
    }
}

fn parse_json(s: &str) -> Json {
    JsonParser {
        s: s.as_bytes(),
        i: 0,
    }
    .value()
}

impl Json {
    fn get(&self, k: &str) -> &Json {
        self.try_get(k)
            .unwrap_or_else(|| panic!("json: no key {k}"))
    }
    fn try_get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(v) => v.iter().find(|(kk, _)| kk == k).map(|(_, v)| v),
            _ => None,
        }
    }
    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            _ => panic!("json: not an array: {self:?}"),
        }
    }
    fn num(&self) -> i128 {
        match self {
            Json::Num(n) => *n,
            _ => panic!("json: not a number: {self:?}"),
        }
    }
    fn bool(&self) -> bool {
        match self {
            Json::Bool(b) => *b,
            _ => panic!("json: not a bool: {self:?}"),
        }
    }
    fn opt_str(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::Str(s) => Some(s.clone()),
            _ => panic!("json: not a string: {self:?}"),
        }
    }
    /// `{"text": ..}` / `{"hex": ..}` as bytes.
    fn bytes(&self) -> Vec<u8> {
        if let Some(Json::Str(t)) = self.try_get("text") {
            return t.as_bytes().to_vec();
        }
        match self.get("hex") {
            Json::Str(h) => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
                .collect(),
            other => panic!("json: bytes {other:?}"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Properties as a sorted list of `name=value`, comparable with the JSON.
fn props_ours(p: &Properties) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(x) = p.payload_format_indicator {
        v.push(format!("payload_format_indicator={x}"));
    }
    if let Some(x) = p.message_expiry_interval {
        v.push(format!("message_expiry_interval={x}"));
    }
    if let Some(x) = &p.content_type {
        v.push(format!("content_type={x}"));
    }
    if let Some(x) = &p.response_topic {
        v.push(format!("response_topic={x}"));
    }
    if let Some(x) = &p.correlation_data {
        v.push(format!("correlation_data={}", hex(x)));
    }
    for x in &p.subscription_identifiers {
        v.push(format!("subscription_identifier={x}"));
    }
    if let Some(x) = p.topic_alias {
        v.push(format!("topic_alias={x}"));
    }
    for (k, x) in &p.user_properties {
        v.push(format!("user_property={k}\0{x}"));
    }
    let mut rest = p.clone();
    rest.payload_format_indicator = None;
    rest.message_expiry_interval = None;
    rest.content_type = None;
    rest.response_topic = None;
    rest.correlation_data = None;
    rest.subscription_identifiers.clear();
    rest.topic_alias = None;
    rest.user_properties.clear();
    assert!(rest.is_empty(), "non-PUBLISH properties read: {rest:?}");
    v.sort();
    v
}

fn props_json(j: &Json) -> Vec<String> {
    let mut v: Vec<String> = j
        .arr()
        .iter()
        .map(|pair| {
            let [Json::Str(name), val] = pair.arr() else {
                panic!("json: property {pair:?}")
            };
            let val = match (name.as_str(), val) {
                ("correlation_data", b) => hex(&b.bytes()),
                ("user_property", Json::Arr(kv)) => format!(
                    "{}\0{}",
                    kv[0].opt_str().unwrap_or_default(),
                    kv[1].opt_str().unwrap_or_default()
                ),
                (_, Json::Num(n)) => n.to_string(),
                (_, Json::Str(s)) => s.clone(),
                (_, other) => panic!("json: property value {other:?}"),
            };
            format!("{name}={val}")
        })
        .collect();
    v.sort();
    v
}

fn check_message(m: &StoredMessage, j: &Json, ctx: &str) {
    assert_eq!(
        m.store_id as i128,
        j.get("store_id").num(),
        "{ctx}: store_id"
    );
    assert_eq!(
        m.expiry_time as i128,
        j.get("expiry_time").num(),
        "{ctx}: expiry"
    );
    assert_eq!(m.payload, j.get("payload").bytes(), "{ctx}: payload");
    assert_eq!(m.source_mid as i128, j.get("source_mid").num(), "{ctx}");
    assert_eq!(
        m.source_id,
        j.get("source_id").opt_str(),
        "{ctx}: source_id"
    );
    assert_eq!(
        m.source_username,
        j.get("source_username").opt_str(),
        "{ctx}"
    );
    assert_eq!(m.source_port as i128, j.get("source_port").num(), "{ctx}");
    assert_eq!(
        m.topic,
        j.get("topic").opt_str().unwrap_or_default(),
        "{ctx}: topic"
    );
    assert_eq!(m.qos as i128, j.get("qos").num(), "{ctx}: qos");
    assert_eq!(m.retain, j.get("retain").bool(), "{ctx}: retain");
    assert_eq!(
        props_ours(&m.properties),
        props_json(j.get("properties")),
        "{ctx}: properties"
    );
}

/// Compares what we read with the Python reader's JSON for the same file.
fn check_against_json(c: &DbContents, j: &Json, name: &str) {
    if let Json::Num(v) = j.get("version") {
        assert_eq!(c.version as i128, *v, "{name}: version");
    } else {
        assert_eq!(c.version, 0, "{name}: version of an empty file");
    }
    match j.get("cfg") {
        Json::Null => assert_eq!(c.last_db_id, 0, "{name}: last_db_id without cfg"),
        cfg => {
            assert_eq!(c.last_db_id as i128, cfg.get("last_db_id").num(), "{name}");
            assert_eq!(c.shutdown, cfg.get("shutdown").bool(), "{name}: shutdown");
            assert_eq!(c.dbid_size as i128, cfg.get("dbid_size").num(), "{name}");
        }
    }
    let jm = j.get("messages").arr();
    assert_eq!(c.messages.len(), jm.len(), "{name}: message count");
    for (i, (m, jm)) in c.messages.iter().zip(jm).enumerate() {
        check_message(m, jm, &format!("{name}: message {i}"));
    }
    let jr: Vec<i128> = j
        .get("retained")
        .arr()
        .iter()
        .map(|r| r.get("store_id").num())
        .collect();
    let ours: Vec<i128> = c.retained.iter().map(|&id| id as i128).collect();
    assert_eq!(ours, jr, "{name}: retained");

    let jc = j.get("clients").arr();
    assert_eq!(c.clients.len(), jc.len(), "{name}: client count");
    let queued = c.queued_on_load(20);
    for (cl, jcl) in c.clients.iter().zip(jc) {
        let ctx = format!("{name}: client {}", cl.client_id);
        assert_eq!(
            Some(cl.client_id.clone()),
            jcl.get("client_id").opt_str(),
            "{ctx}"
        );
        assert_eq!(
            cl.username,
            jcl.get("username").opt_str(),
            "{ctx}: username"
        );
        assert_eq!(
            cl.session_expiry_time as i128,
            jcl.get("session_expiry_time").num(),
            "{ctx}"
        );
        assert_eq!(
            cl.session_expiry_interval as i128,
            jcl.get("session_expiry_interval").num(),
            "{ctx}"
        );
        assert_eq!(
            cl.last_mid as i128,
            jcl.get("last_mid").num(),
            "{ctx}: last_mid"
        );
        assert_eq!(
            cl.listener_port as i128,
            jcl.get("listener_port").num(),
            "{ctx}"
        );
        assert_eq!(
            cl.disconnect_time.map(i128::from),
            jcl.try_get("disconnect_time").map(Json::num),
            "{ctx}: disconnect_time"
        );
        let ours: Vec<(usize, &StoredClientMessage)> = c
            .client_messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.client_id == cl.client_id)
            .collect();
        let jms = jcl.get("messages").arr();
        assert_eq!(ours.len(), jms.len(), "{ctx}: message count");
        for ((idx, m), jm) in ours.into_iter().zip(jms) {
            let ctx = format!("{ctx} message {idx}");
            assert_eq!(m.store_id as i128, jm.get("store_id").num(), "{ctx}");
            assert_eq!(m.mid as i128, jm.get("mid").num(), "{ctx}: mid");
            assert_eq!(m.qos as i128, jm.get("qos").num(), "{ctx}: qos");
            assert_eq!(m.state.to_u8() as i128, jm.get("state_code").num(), "{ctx}");
            assert_eq!(m.retain, jm.get("retain").bool(), "{ctx}: retain");
            assert_eq!(m.dup, jm.get("dup").bool(), "{ctx}: dup");
            let dir = match jm.get("direction") {
                Json::Str(s) if s == "out" => Direction::Out,
                _ => Direction::In,
            };
            assert_eq!(m.direction, dir, "{ctx}: direction");
            assert_eq!(
                props_ours(&m.properties),
                props_json(jm.get("properties")),
                "{ctx}: properties"
            );
            let jq = jm.get("queue").opt_str().unwrap_or_default();
            assert_eq!(queued[idx], jq == "queued", "{ctx}: queue placement");
        }
        let subs: Vec<&StoredSubscription> = c
            .subscriptions
            .iter()
            .filter(|s| s.client_id == cl.client_id)
            .collect();
        assert_eq!(subs.len(), jcl.get("subscriptions").arr().len(), "{ctx}");
    }
    let js = j.get("subscriptions").arr();
    assert_eq!(
        c.subscriptions.len(),
        js.len(),
        "{name}: subscription count"
    );
    for (s, js) in c.subscriptions.iter().zip(js) {
        assert_eq!(
            Some(s.client_id.clone()),
            js.get("client_id").opt_str(),
            "{name}"
        );
        assert_eq!(Some(s.topic.clone()), js.get("topic").opt_str(), "{name}");
        assert_eq!(s.qos as i128, js.get("qos").num(), "{name}: sub qos");
        assert_eq!(
            s.identifier as i128,
            js.get("subscription_identifier").num(),
            "{name}"
        );
        assert_eq!(s.options as i128, js.get("options").num(), "{name}");
        assert_eq!(s.no_local(), js.get("no_local").bool(), "{name}");
        assert_eq!(
            s.retain_as_published(),
            js.get("retain_as_published").bool(),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// mosquitto's fixtures

/// Fixtures that load, each with an `.expected.json`.
const LOADS: &[&str] = &[
    "empty",
    "v3-bad-chunk",
    "v3-cfg",
    "v3-client",
    "v3-client-message",
    "v3-message-store",
    "v3-retain",
    "v3-sub",
    "v4-cfg",
    "v4-message-store",
    "v5-bad-chunk",
    "v5-client",
    "v6-cfg",
    "v6-client",
    "v6-client-message",
    "v6-client-message-props",
    "v6-message-store",
    "v6-message-store-props",
    "v6-retain",
    "v6-sub",
    "write-empty",
    "write-v4-full",
    "write-v6-message-store-no-ref",
];

type ErrCheck = fn(&DbError) -> bool;

/// Fixtures mosquitto refuses, with the reason.
const FAILS: &[(&str, ErrCheck)] = &[
    ("corrupt-header-short", |e| {
        matches!(e, DbError::TooShort { len: 8 })
    }),
    ("corrupt-header-long", |e| matches!(e, DbError::BadMagic)),
    ("unsupported-version", |e| {
        matches!(e, DbError::UnsupportedVersion { version: u32::MAX })
    }),
    ("v3-cfg-truncated", |e| {
        matches!(
            e,
            DbError::Truncated {
                what: "CFG chunk",
                ..
            }
        )
    }),
    ("v5-cfg-truncated", |e| {
        matches!(
            e,
            DbError::Truncated {
                what: "CFG chunk",
                ..
            }
        )
    }),
    ("v3-cfg-bad-dbid", |e| {
        matches!(e, DbError::DbidSize { size: 9, .. })
    }),
];

fn expected_json(name: &str) -> Json {
    let p = testdata()
        .join("fixtures")
        .join(format!("{name}.expected.json"));
    parse_json(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[test]
fn persist_every_fixture_is_listed() {
    let mut names: Vec<String> = std::fs::read_dir(testdata().join("fixtures"))
        .expect("fixtures dir")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".test-db").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut listed: Vec<String> = LOADS
        .iter()
        .copied()
        .chain(FAILS.iter().map(|f| f.0))
        .map(str::to_owned)
        .collect();
    listed.sort();
    assert_eq!(names, listed);
}

#[test]
fn persist_fixtures_that_load_match_expected_json() {
    for name in LOADS {
        let (c, warnings) = read(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_against_json(&c, &expected_json(name), name);
        if *name == "empty" {
            assert_eq!(warnings, ["Persistence file is empty."]);
        }
    }
}

#[test]
fn persist_fixtures_that_fail_are_refused() {
    for (name, ok) in FAILS {
        match read(&fixture(name)) {
            Ok(_) => panic!("{name}: loaded but mosquitto refuses it"),
            Err(e) => assert!(ok(&e), "{name}: wrong error {e:?}"),
        }
    }
    let e = read(&fixture("unsupported-version"))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("Unsupported persistent database format version -1 (need version 6).")
    );
}

#[test]
fn persist_fixture_details_from_readme() {
    const ID: u64 = 0x7856_3412_0000_0000;
    for name in ["v3-cfg", "v4-cfg", "v6-cfg"] {
        let c = read_ok(&fixture(name), name);
        assert_eq!(
            (c.last_db_id, c.shutdown, c.dbid_size),
            (ID, true, 8),
            "{name}"
        );
        assert!(c.messages.is_empty() && c.clients.is_empty());
    }
    for name in ["v3-bad-chunk", "v5-bad-chunk"] {
        let (c, w) = read(&fixture(name)).expect(name);
        assert_eq!(c.last_db_id, 0x17);
        assert!(
            w.iter().any(|w| w.starts_with("Unsupported chunk")),
            "{w:?}"
        );
    }
    // mid in v2-4 message chunks is discarded, source mid kept
    let c = read_ok(&fixture("v3-message-store"), "v3-message-store");
    let m = &c.messages[0];
    assert_eq!((m.store_id, m.source_mid, m.qos, m.retain), (1, 2, 2, true));
    assert_eq!(m.source_id.as_deref(), Some("source_id"));
    assert_eq!((m.source_username.as_deref(), m.source_port), (None, 0));
    assert_eq!(
        (m.topic.as_str(), m.payload.as_slice()),
        ("topic", &b"payload"[..])
    );
    let c = read_ok(&fixture("v4-message-store"), "v4");
    let m = &c.messages[0];
    assert_eq!(m.store_id, 0xFEDC_BA98_7654_3210);
    assert_eq!(
        (m.source_username.as_deref(), m.source_port),
        (Some("username"), 1883)
    );
    assert_eq!((m.source_mid, m.qos, m.retain), (0x88, 1, false));
    // v6-retain: RETAIN chunk with length 0, then its 8 bytes
    let c = read_ok(&fixture("v6-retain"), "v6-retain");
    assert_eq!(c.retained, [0x54]);
    assert_eq!(c.message(0x54).map(|m| m.topic.as_str()), Some("topic"));
    // sessions
    let c = read_ok(&fixture("v3-client"), "v3-client");
    assert_eq!(c.clients.len(), 1);
    let cl = &c.clients[0];
    assert_eq!((cl.client_id.as_str(), cl.last_mid), ("client-id", 0x5287));
    assert_eq!(
        (cl.session_expiry_interval, cl.disconnect_time),
        (0, Some(0x23))
    );
    let c = read_ok(&fixture("v5-client"), "v5-client");
    let cl = &c.clients[0];
    assert_eq!(
        (cl.session_expiry_time, cl.session_expiry_interval),
        (0x23, u32::MAX)
    );
    assert_eq!((cl.username.as_deref(), cl.listener_port), (None, 0));
    let c = read_ok(&fixture("v6-client"), "v6-client");
    let cl = &c.clients[0];
    assert_eq!(
        (cl.username.as_deref(), cl.listener_port),
        (Some("usrname"), 1883)
    );
    for name in ["v3-client-message", "v6-client-message"] {
        let c = read_ok(&fixture(name), name);
        let cm = &c.client_messages[0];
        assert_eq!((cm.store_id, cm.mid, cm.qos), (0x54, 0x73, 1), "{name}");
        assert_eq!(cm.state, MsgState::WaitForPuback);
        assert_eq!(
            (cm.direction, cm.retain, cm.dup),
            (Direction::Out, false, false)
        );
        assert_eq!(c.queued_on_load(20), [false], "{name}: in flight");
    }
    let c = read_ok(&fixture("v6-client-message-props"), "props");
    assert_eq!(
        c.client_messages[0].properties.payload_format_indicator,
        Some(1)
    );
    assert!(c.messages[0].properties.is_empty());
    let c = read_ok(&fixture("v6-sub"), "v6-sub");
    let s = &c.subscriptions[0];
    assert_eq!(
        (s.topic.as_str(), s.qos, s.identifier),
        ("subscription", 1, 0x7623)
    );
    assert!(s.no_local() && s.retain_as_published());
    let c = read_ok(&fixture("write-v4-full"), "v4-full");
    assert_eq!(c.last_db_id, 237);
    assert_eq!(c.retained, [63]);
    let d2: Vec<(u16, u64)> = c
        .client_messages
        .iter()
        .map(|m| (m.mid, m.store_id))
        .collect();
    assert_eq!(d2, [(1, 203), (2, 204)]);
    assert_eq!(c.queued_on_load(20), [true, true]);
}

// ---------------------------------------------------------------------------
// The real 2.0.11 file

#[test]
fn persist_sample_2_0_11_loads_as_readme_says() {
    let (c, warnings) = read(&sample()).expect("sample loads");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        (c.version, c.last_db_id, c.shutdown, c.dbid_size),
        (6, 64, true, 8)
    );
    let ids: Vec<u64> = c.messages.iter().map(|m| m.store_id).collect();
    assert_eq!(ids, [64, 63, 62, 60, 59, 58, 57, 56, 55, 54, 53]);
    for m in &c.messages {
        assert_eq!(m.source_id.as_deref(), Some("pubA"));
        assert_eq!(m.source_username.as_deref(), Some("publisher"));
        assert_eq!(m.source_port, 18839);
        assert_eq!(m.source_mid, if m.qos == 0 { 0 } else { 1 });
    }
    let m = |id| c.message(id).expect("store id");
    assert_eq!(m(53).topic, "sensors/temp");
    assert_eq!(m(53).payload, b"21.5");
    assert_eq!(m(57).payload, [0, 1, 2, 0xff, 0x7f]);
    assert_eq!((m(60).qos, m(60).retain), (2, false));
    let p = &m(56).properties;
    assert_eq!(m(56).expiry_time, 2_110_970_905);
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.response_topic.as_deref(), Some("v5/reply"));
    assert_eq!(p.correlation_data.as_deref(), Some(&b"corr-123"[..]));
    assert_eq!(p.payload_format_indicator, Some(1));
    assert_eq!(p.user_properties, [("source".into(), "sample".into())]);
    assert_eq!(m(56).properties.message_expiry_interval, None);
    assert_eq!(m(62).properties.user_properties, [("k".into(), "v".into())]);
    assert_eq!(c.retained, [53, 54, 55, 56, 57, 58]);

    assert_eq!(c.clients.len(), 2);
    let k5 = c.client("keep5").expect("keep5");
    assert_eq!(k5.username, None);
    assert_eq!(
        (k5.session_expiry_interval, k5.session_expiry_time),
        (315_360_000, 2_110_970_905)
    );
    assert_eq!((k5.last_mid, k5.listener_port), (3, 18839));
    let k1 = c.client("keep1").expect("keep1");
    assert_eq!(k1.username.as_deref(), Some("keepuser"));
    assert_eq!(
        (k1.session_expiry_interval, k1.session_expiry_time),
        (u32::MAX, 0)
    );
    assert_eq!((k1.last_mid, k1.listener_port), (3, 18839));
    assert_eq!(c.clients[0].client_id, "keep5");

    let subs: Vec<(&str, &str, u8, u32, u8)> = c
        .subscriptions
        .iter()
        .map(|s| {
            (
                s.client_id.as_str(),
                s.topic.as_str(),
                s.qos,
                s.identifier,
                s.options,
            )
        })
        .collect();
    assert_eq!(
        subs,
        [("keep5", "b/+/c", 2, 42, 0x0C), ("keep1", "a/#", 1, 0, 0)]
    );

    let cms: Vec<(&str, u16, u64, u8, Vec<u32>)> = c
        .client_messages
        .iter()
        .map(|m| {
            assert_eq!(m.direction, Direction::Out);
            assert_eq!(m.state, MsgState::Queued);
            assert!(!m.retain && !m.dup);
            (
                m.client_id.as_str(),
                m.mid,
                m.store_id,
                m.qos,
                m.properties.subscription_identifiers.clone(),
            )
        })
        .collect();
    assert_eq!(
        cms,
        [
            ("keep5", 1, 62, 2, vec![42]),
            ("keep5", 2, 63, 1, vec![42]),
            ("keep5", 3, 64, 1, vec![]),
            ("keep1", 1, 58, 1, vec![]),
            ("keep1", 2, 59, 1, vec![]),
            ("keep1", 3, 60, 1, vec![]),
        ]
    );
    assert!(c.queued_on_load(20).iter().all(|&q| q));
}

#[test]
fn persist_sample_matches_expected_json() {
    let c = read_ok(&sample(), "sample");
    let j = parse_json(
        &std::fs::read_to_string(testdata().join("sample-2.0.11.expected.json")).expect("json"),
    );
    check_against_json(&c, &j, "sample");
}

// ---------------------------------------------------------------------------
// Writer

/// Fixtures mosquitto's writer test reproduces byte for byte after a load.
const WRITER_IDENTICAL: &[&str] = &[
    "v6-cfg",
    "v6-client",
    "v6-client-message",
    "v6-client-message-props",
    "v6-message-store-props",
    "v6-sub",
    "write-empty",
    "write-v6-message-store-no-ref",
];

#[test]
fn persist_writer_reproduces_mosquitto_files() {
    for name in WRITER_IDENTICAL {
        let bytes = fixture(name);
        assert_eq!(write(&read_ok(&bytes, name)), bytes, "{name}");
    }
    // loading v6-message-store and saving drops the unreferenced message
    let c = read_ok(&fixture("v6-message-store"), "v6-message-store");
    assert_eq!(write(&c), fixture("write-v6-message-store-no-ref"));
    // an empty autosave
    assert_eq!(write(&DbContents::default()), fixture("write-empty"));
}

/// Chunk (offset, length incl. header) of a v5/v6 file whose lengths are exact.
fn chunks_v6(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut at = format::HEADER_LEN;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        v.push((at, 8 + len as usize));
        at += 8 + len as usize;
    }
    v
}

#[test]
fn persist_sample_rewritten_differs_only_in_property_order() {
    let s = sample();
    let w = write(&read_ok(&s, "sample"));
    assert_eq!(w.len(), s.len());
    // The only difference: store 56's properties, which mosquitto keeps in
    // the order the publisher sent them and we write in identifier order.
    let (at, len) = chunks_v6(&s)
        .into_iter()
        .find(|&(at, _)| s[at + 8] == 56 && s[at..at + 4] == [0, 0, 0, 2])
        .expect("store 56");
    for (i, (a, b)) in s.iter().zip(&w).enumerate() {
        assert!(a == b || (at..at + len).contains(&i), "byte {i} differs");
    }
    assert_ne!(s, w);
}

/// A state with everything the format can hold.
fn rich_contents() -> DbContents {
    let props = Properties {
        payload_format_indicator: Some(0),
        message_expiry_interval: Some(99),
        content_type: Some("application/json".into()),
        response_topic: Some("reply/to".into()),
        correlation_data: Some(vec![0, 1, 2, 255]),
        topic_alias: Some(7),
        user_properties: vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("a".into(), "".into()),
        ],
        ..Properties::default()
    };
    let msg = |store_id: u64, topic: &str, payload: &[u8], qos, retain| StoredMessage {
        store_id,
        expiry_time: 0,
        source_id: Some("pub".into()),
        source_username: None,
        source_port: 1883,
        source_mid: 9,
        topic: topic.into(),
        payload: payload.to_vec(),
        qos,
        retain,
        properties: Default::default(),
    };
    let mut m1 = msg(10, "t/1", b"one", 2, true);
    m1.properties = props.into();
    m1.expiry_time = 4_000_000_000;
    m1.source_username = Some("ünïcode".into());
    let mut m2 = msg(11, "t/2", &[0; 300], 1, false);
    m2.source_id = None;
    m2.source_port = 0;
    let m3 = msg(12, "$SYS/broker/x", b"q", 1, false);
    let cm = |client_id: &str, store_id, mid, state, direction, sub_id: Option<u32>| {
        StoredClientMessage {
            client_id: client_id.into(),
            store_id,
            mid,
            qos: 1,
            state,
            retain: mid % 2 == 0,
            dup: mid % 3 == 0,
            direction,
            properties: Properties {
                subscription_identifiers: sub_id.into_iter().collect(),
                ..Properties::default()
            },
        }
    };
    DbContents {
        version: 6,
        last_db_id: 12,
        shutdown: true,
        dbid_size: 8,
        messages: vec![m3, m2, m1],
        retained: vec![10],
        clients: vec![
            StoredClient {
                client_id: "c1".into(),
                username: Some("u1".into()),
                session_expiry_time: -5,
                session_expiry_interval: 60,
                last_mid: 65535,
                listener_port: 8883,
                disconnect_time: None,
            },
            StoredClient {
                client_id: "c2".into(),
                session_expiry_interval: u32::MAX,
                ..StoredClient::default()
            },
        ],
        client_messages: vec![
            cm("c1", 11, 1, MsgState::WaitForPubrel, Direction::In, None),
            cm(
                "c1",
                10,
                2,
                MsgState::WaitForPuback,
                Direction::Out,
                Some(268_435_455),
            ),
            cm("c1", 12, 3, MsgState::Queued, Direction::Out, Some(1)),
            cm("c2", 10, 4, MsgState::Other(200), Direction::Out, None),
        ],
        subscriptions: vec![
            StoredSubscription {
                client_id: "c1".into(),
                topic: "t/#".into(),
                qos: 2,
                options: 0x0C,
                identifier: 5,
            },
            StoredSubscription {
                client_id: "c2".into(),
                topic: "+/2".into(),
                qos: 0,
                options: 0,
                identifier: 0,
            },
        ],
    }
}

#[test]
fn persist_round_trip_is_lossless() {
    let rich = rich_contents();
    let (back, w) = read(&write(&rich)).expect("rich");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(back, rich);
    let s = read_ok(&sample(), "sample");
    assert_eq!(read_ok(&write(&s), "rewritten sample"), s);
    // Every loadable fixture: writing is a fixed point after one pass.
    for name in LOADS {
        let once = write(&read_ok(&fixture(name), name));
        let c = read_ok(&once, name);
        assert_eq!(write(&c), once, "{name}");
    }
}

/// Found by `fuzz/` (target `persist`): a file storing id 5 twice, under
/// two topics, with a RETAIN chunk after each. The first retained entry
/// used to stay, naming the replaced message, so the id was retained
/// twice and writing was no longer a fixed point.
#[test]
fn persist_replaced_retained_message_is_not_retained_twice() {
    let msg = |topic: &str| StoredMessage {
        store_id: 5,
        topic: topic.into(),
        payload: b"x".to_vec(),
        qos: 1,
        retain: true,
        ..Default::default()
    };
    let one = |topic: &str| {
        write(&DbContents {
            messages: vec![msg(topic)],
            retained: vec![5],
            ..Default::default()
        })
    };
    let (a, b) = (one("a"), one("b"));
    let mut file = a.clone();
    let cfg_end = chunks_v6(&b)[0].0 + chunks_v6(&b)[0].1;
    file.extend_from_slice(&b[cfg_end..]);
    let (c, warnings) = read(&file).expect("loads");
    assert_eq!(c.retained, vec![5], "{warnings:?}");
    assert_eq!(c.messages, vec![msg("b")]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("its RETAIN entry is dropped")),
        "{warnings:?}"
    );
    let once = write(&c);
    assert_eq!(write(&read_ok(&once, "rewritten")), once);
    // Replaced by an empty message under the same topic: nothing retained.
    let mut empty = one("a");
    let mut gone = msg("a");
    gone.payload.clear();
    let e = write(&DbContents {
        messages: vec![gone],
        retained: vec![5],
        ..Default::default()
    });
    empty.extend_from_slice(&e[cfg_end..]);
    let c = read_ok(&empty, "replaced by an empty message");
    assert!(c.retained.is_empty(), "{c:?}");
    let once = write(&c);
    assert_eq!(write(&read_ok(&once, "rewritten")), once);
}

#[test]
fn persist_writer_leaves_out_what_mosquitto_would_not_save() {
    let mut c = rich_contents();
    // unreferenced message, retained $SYS, dangling references, empty ids
    c.messages.push(StoredMessage {
        store_id: 99,
        topic: "nobody".into(),
        ..StoredMessage::default()
    });
    c.messages.push(StoredMessage {
        store_id: 98,
        topic: "$SYS/retained".into(),
        payload: b"x".to_vec(),
        retain: true,
        ..StoredMessage::default()
    });
    c.retained.extend([98, 1234]);
    c.client_messages.push(StoredClientMessage {
        client_id: "c2".into(),
        store_id: 4321,
        ..StoredClientMessage::default()
    });
    c.subscriptions.push(StoredSubscription {
        client_id: String::new(),
        topic: "x".into(),
        ..StoredSubscription::default()
    });
    c.clients.push(StoredClient::default()); // empty client id
    // a non-PUBLISH property and a second subscription identifier
    c.client_messages[1].properties.session_expiry_interval = Some(5);
    c.client_messages[1]
        .properties
        .subscription_identifiers
        .push(77);
    let (back, w) = read(&write(&c)).expect("loads");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(back, rich_contents());
    // $SYS queued for a client is written with retain 0
    let mut c = rich_contents();
    c.messages[0].retain = true;
    let back = read_ok(&write(&c), "sys");
    assert!(!back.message(12).expect("$SYS kept").retain);
}

// ---------------------------------------------------------------------------
// Differential tests against the Python reader

/// The independent reader in `shared/tools`, beside the repository (as CI
/// lays it out) or at the workplace's fixed path.
fn py_tool() -> std::path::PathBuf {
    let beside =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/parse_mosquitto_db.py");
    if beside.exists() {
        beside
    } else {
        std::path::PathBuf::from("/work/shared/tools/parse_mosquitto_db.py")
    }
}

fn python_available() -> bool {
    let ok = py_tool().exists()
        && Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "note: python3 or {} missing; differential test skipped",
            py_tool().display()
        );
    }
    ok
}

#[test]
fn persist_python_reader_agrees_with_our_writer() {
    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cases = vec![
        ("rich", write(&rich_contents())),
        ("sample", write(&read_ok(&sample(), "s"))),
    ];
    for name in LOADS {
        cases.push((name, write(&read_ok(&fixture(name), name))));
    }
    for (name, bytes) in cases {
        let p = dir.path().join(format!("{name}.db"));
        std::fs::write(&p, &bytes).expect("write");
        let out = Command::new("python3")
            .arg(py_tool())
            .arg("--json")
            .arg(&p)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{name}: python refuses our file: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j = parse_json(&String::from_utf8(out.stdout).expect("utf8"));
        assert!(
            j.get("warnings").arr().is_empty(),
            "{name}: {:?}",
            j.get("warnings")
        );
        check_against_json(&read_ok(&bytes, name), &j, name);
    }
}

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..=rng.below(3) {
        if b.is_empty() {
            break;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] = rng.next() as u8,
            1 => b[i] ^= 1 << rng.below(8),
            2 => b[i] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)],
            3 => b.truncate(i),
            4 => {
                b.remove(i);
            }
            _ => b.insert(i, rng.next() as u8),
        }
    }
    b
}

/// Mutated files: we and the Python reader (which agrees with mosquitto on
/// every fixture) accept and refuse the same ones and read the same state.
#[test]
fn persist_python_reader_agrees_on_mutated_files() {
    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bases = vec![sample(), write(&rich_contents())];
    bases.extend(LOADS.iter().map(|n| fixture(n)));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut files = Vec::new();
    // CULEX_PERSIST_MUTANTS=n runs more (the default keeps the test quick).
    let count: usize = std::env::var("CULEX_PERSIST_MUTANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    for i in 0..count {
        let base = &bases[i % bases.len()];
        let bytes = mutate(&mut rng, base);
        let p = dir.path().join(format!("m{i}.db"));
        std::fs::write(&p, &bytes).expect("write");
        files.push((p, bytes));
    }
    let script = format!(
        "import sys, json\nsys.path.insert(0, {dir:?})\nimport parse_mosquitto_db as p\nout = []\nfor f in sys.argv[1:]:\n    try:\n        out.append(p.to_json(p.parse_file(f)))\n    except p.DbFormatError:\n        out.append(None)\nprint(json.dumps(out))\n",
        dir = py_tool().parent().and_then(Path::to_str).unwrap_or(".")
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files.iter().map(|f| &f.0))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = parse_json(&String::from_utf8(out.stdout).expect("utf8"));
    let mut loaded = 0;
    for ((p, bytes), j) in files.iter().zip(results.arr()) {
        let name = p.display().to_string();
        match (read(bytes), j) {
            (Err(_), Json::Null) => {}
            (Ok((c, _)), Json::Null) => panic!("{name}: we load it, mosquitto would not: {c:?}"),
            (Err(e), _) => panic!("{name}: we refuse it ({e}), mosquitto would load it"),
            (Ok((c, _)), j) => {
                loaded += 1;
                check_against_json(&c, j, &name);
            }
        }
    }
    eprintln!("{loaded} of {} mutants load", files.len());
    assert!(loaded > 50, "only {loaded} mutants loaded");
}

// ---------------------------------------------------------------------------
// Robustness

#[test]
fn persist_truncation_at_every_offset_errors_without_panic() {
    let s = sample();
    let ends: Vec<usize> = std::iter::once(format::HEADER_LEN)
        .chain(chunks_v6(&s).into_iter().map(|(at, len)| at + len))
        .collect();
    assert_eq!(*ends.last().expect("chunks"), s.len());
    for n in 0..s.len() {
        let r = read(&s[..n]);
        // loads only when cut at a chunk boundary (plus < 8 trailing bytes)
        let boundary = ends.iter().rev().find(|&&e| e <= n);
        let loads = n == 0 || boundary.is_some_and(|&e| n - e < 8);
        assert_eq!(r.is_ok(), loads, "cut at {n}: {:?}", r.err());
    }
    let e = read(&s[..100]).err().map(|e| e.to_string());
    assert_eq!(e.as_deref(), Some("truncated MSG_STORE chunk at offset 47"));
}

#[test]
fn persist_random_mutations_never_panic() {
    let mut rng = Rng(42);
    let mut bases = vec![sample(), write(&rich_contents())];
    bases.extend(LOADS.iter().map(|n| fixture(n)));
    for i in 0..20_000 {
        let bytes = mutate(&mut rng, &bases[i % bases.len()]);
        if let Ok((c, _)) = read(&bytes) {
            // whatever loads can be written and loads again unchanged
            let again = read_ok(&write(&c), "rewritten mutant");
            assert_eq!(write(&again), write(&c));
        }
    }
    // pure garbage after a valid header
    for v in 2..=6u32 {
        for _ in 0..500 {
            let mut b = format::MAGIC.to_vec();
            b.extend_from_slice(&[0, 0, 0, 0]);
            b.extend_from_slice(&v.to_be_bytes());
            for _ in 0..rng.below(64) {
                b.push(if rng.below(3) == 0 {
                    0
                } else {
                    rng.next() as u8
                });
            }
            let _ = read(&b);
        }
    }
}

// ---------------------------------------------------------------------------
// Property blocks

#[test]
fn persist_property_blocks_follow_mosquitto_rules() {
    let ok = |b: &[u8]| props::decode(b).expect("valid block");
    assert_eq!(ok(&[2, 0x0b, 42]).subscription_identifiers, [42]);
    assert_eq!(ok(&[2, 0x0b, 0]).subscription_identifiers, [0]); // mosquitto accepts 0
    assert_eq!(ok(&[0]), Properties::default());
    // bytes after the declared length are ignored
    assert_eq!(
        ok(&[2, 0x01, 1, 0xff, 0xff]).payload_format_indicator,
        Some(1)
    );
    let bad: &[&[u8]] = &[
        &[4, 0x0b, 1, 0x0b, 2],       // two subscription identifiers
        &[3, 0x23, 0, 0],             // topic alias 0
        &[2, 0x01, 2],                // payload format indicator 2
        &[5, 0x11, 0, 0, 0, 1],       // session expiry: not on PUBLISH
        &[2, 0x7f, 0],                // unknown identifier
        &[3, 0x08, 0, 0],             // empty response topic
        &[4, 0x08, 0, 1, b'#'],       // wildcard response topic
        &[4, 0x03, 0, 1, 0x01],       // control character
        &[4, 0x03, 0, 1, 0xff],       // invalid UTF-8
        &[0x80, 0x00],                // overlong length
        &[0x80, 0x80, 0x80, 0x80, 1], // 5-byte varint
        &[5, 0x03, 0, 9, b'a'],       // string runs past the end
        &[3, 0x26, 0, 0],             // user property without value
        &[4, 0x02, 0, 0, 1],          // truncated u32
        &[4, 0x01, 0, 0x01, 1],       // duplicate payload format indicator
    ];
    for b in bad {
        assert!(props::decode(b).is_err(), "{b:?} accepted");
    }
    // encode → decode keeps every PUBLISH property
    let p = rich_contents().messages[2].properties.to_properties();
    assert_eq!(props::decode(&props::encode(&p)).expect("ours"), p);
    assert!(props::encode(&Properties::default()).is_empty());
    // a response topic or content type mosquitto would refuse is not written
    let p = Properties {
        response_topic: Some("a/+".into()),
        content_type: Some("bad\u{7}".into()),
        reason_string: Some("connack only".into()),
        ..Properties::default()
    };
    assert!(props::encode(&p).is_empty());
}

#[test]
fn persist_bad_property_block_fails_load() {
    let mut c = read_ok(&fixture("v6-client-message-props"), "props");
    c.client_messages[0].properties.payload_format_indicator = Some(1);
    let mut bytes = write(&c);
    // the block is the last 3 bytes: 02 01 01 -> payload format indicator 2
    let n = bytes.len();
    assert_eq!(bytes[n - 3..], [2, 1, 1]);
    bytes[n - 1] = 2;
    let e = read(&bytes).expect_err("refused");
    assert!(
        matches!(
            e,
            DbError::Properties {
                chunk: "CLIENT_MSG",
                ..
            }
        ),
        "{e:?}"
    );
    // a chunk length smaller than the fixed part: "negative" property size
    let mut bytes = fixture("v6-message-store");
    bytes[47 + 7] = 40;
    let e = read(&bytes).expect_err("refused");
    assert!(matches!(e, DbError::LengthTooSmall { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------
// Files

#[test]
fn persist_load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("mosquitto.db");
    std::fs::write(&p, &sample()[..812]).expect("write");
    let e = load(&p).expect_err("truncated");
    let msg = e.to_string();
    assert!(msg.starts_with(&p.display().to_string()), "{msg}");
    assert!(
        msg.ends_with(": truncated MSG_STORE chunk at offset 743"),
        "{msg}"
    );
    let missing = load(&dir.path().join("absent.db")).expect_err("missing");
    assert!(
        matches!(&missing, DbError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    );
    std::fs::write(&p, sample()).expect("write");
    assert_eq!(load(&p).expect("loads").0, read_ok(&sample(), "sample"));
}

#[test]
fn persist_save_atomic_replaces_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("mosquitto.db");
    std::fs::write(&p, b"old").expect("write");
    std::fs::write(temp_path(&p), b"stale temp file").expect("write");
    save_atomic(&p, b"new contents").expect("save");
    assert_eq!(std::fs::read(&p).expect("read"), b"new contents");
    assert!(!temp_path(&p).exists());
    let mode = std::fs::metadata(&p).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(temp_path(&p), dir.path().join("mosquitto.db.new"));
}

#[test]
fn persist_save_atomic_failure_keeps_the_old_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // Rename over a directory fails after the temp file was written: the
    // target stays and the temp file is removed.
    let target = dir.path().join("is-a-dir");
    std::fs::create_dir(&target).expect("mkdir");
    assert!(save_atomic(&target, b"x").is_err());
    assert!(target.is_dir());
    assert!(!temp_path(&target).exists());

    // Read-only directory: nothing can be created, the old file stays.
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    let p = ro.join("mosquitto.db");
    std::fs::write(&p, b"old").expect("write");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // root (CAP_DAC_OVERRIDE) ignores permissions: detect that by probing,
    // and skip the assertion then (it cannot fail for root).
    let probe = ro.join("probe");
    let privileged = std::fs::write(&probe, b"").is_ok();
    let r = save_atomic(&p, b"new");
    if privileged {
        eprintln!(
            "note: running with permission override (root); read-only directory assertion skipped"
        );
        let _ = std::fs::remove_file(&probe);
    } else {
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).expect("read"), b"old");
        assert!(!temp_path(&p).exists());
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn persist_read_at_drops_expired_messages_like_mosquitto() {
    const NOW: i64 = 1_700_000_000;
    let mut c = rich_contents();
    let expired = StoredMessage {
        store_id: 20,
        expiry_time: NOW - 1,
        topic: "old".into(),
        payload: b"gone".to_vec(),
        qos: 1,
        retain: true,
        ..StoredMessage::default()
    };
    let far = StoredMessage {
        store_id: 21,
        expiry_time: NOW + i64::from(u32::MAX) + 1,
        topic: "far".into(),
        payload: b"too far".to_vec(),
        retain: true,
        ..StoredMessage::default()
    };
    let soon = StoredMessage {
        store_id: 22,
        expiry_time: NOW + 10,
        topic: "soon".into(),
        payload: b"kept".to_vec(),
        retain: true,
        ..StoredMessage::default()
    };
    c.messages.extend([expired, far, soon]);
    c.retained.extend([20, 21, 22]);
    // only reference to an expired message: no implicit session for c3
    c.client_messages.push(StoredClientMessage {
        client_id: "c3".into(),
        store_id: 20,
        ..StoredClientMessage::default()
    });
    let bytes = write(&c);
    let (all, _) = read(&bytes).expect("read");
    assert_eq!(all.retained, [10, 20, 21, 22]);
    assert!(all.client("c3").is_some());
    let (at, warnings) = read_at(&bytes, NOW).expect("read_at");
    assert_eq!(at.retained, [10, 22]);
    assert!(at.client("c3").is_none());
    assert!(at.message(20).is_none() && at.message(21).is_none());
    assert_eq!(warnings.iter().filter(|w| w.contains("expired")).count(), 2);

    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("expiry.db");
    std::fs::write(&p, &bytes).expect("write");
    let out = Command::new("python3")
        .arg(py_tool())
        .args(["--json", "--now", &NOW.to_string()])
        .arg(&p)
        .output()
        .expect("python3");
    assert!(out.status.success());
    let j = parse_json(&String::from_utf8(out.stdout).expect("utf8"));
    check_against_json(&at, &j, "expiry");
    assert_eq!(load_at(&p, NOW).expect("load_at").0, at);
}

#[test]
fn persist_stale_username_of_2_0_11_is_cut_at_nul() {
    // mosquitto 2.0.11 can write a previous session's username plus heap
    // bytes; mosquitto itself uses the C string up to the first NUL.
    let mut bytes = fixture("v6-client");
    let at = bytes.len() - 7;
    assert_eq!(&bytes[at..], b"usrname");
    bytes[at + 3] = 0;
    let (c, w) = read(&bytes).expect("loads");
    assert_eq!(c.clients[0].username.as_deref(), Some("usr"));
    assert!(w.iter().any(|w| w.contains("NUL")), "{w:?}");
}

fn random_string(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "",
        "a",
        "topic/",
        "+",
        "#",
        "$SYS/",
        "ü",
        "\u{0}",
        "\u{7}",
        "\u{fffe}",
        "€",
        "/",
        " ",
        "client-id",
        "\u{9f}",
    ];
    (0..rng.below(4))
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

fn random_props(rng: &mut Rng) -> Properties {
    let mut p = Properties::default();
    if rng.below(3) == 0 {
        p.payload_format_indicator = Some(rng.below(3) as u8);
    }
    if rng.below(4) == 0 {
        p.message_expiry_interval = Some(rng.next() as u32);
    }
    if rng.below(3) == 0 {
        p.content_type = Some(random_string(rng));
    }
    if rng.below(3) == 0 {
        p.response_topic = Some(random_string(rng));
    }
    if rng.below(3) == 0 {
        p.correlation_data = Some((0..rng.below(5)).map(|_| rng.next() as u8).collect());
    }
    for _ in 0..rng.below(3) {
        p.subscription_identifiers
            .push(rng.next() as u32 >> rng.below(32));
    }
    if rng.below(4) == 0 {
        p.topic_alias = Some(rng.below(3) as u16);
    }
    for _ in 0..rng.below(3) {
        p.user_properties
            .push((random_string(rng), random_string(rng)));
    }
    if rng.below(8) == 0 {
        p.reason_string = Some("not on PUBLISH".into());
    }
    p
}

fn random_contents(rng: &mut Rng) -> DbContents {
    let ids: Vec<u64> = (0..rng.below(6)).map(|_| rng.below(8) as u64).collect();
    let clients: Vec<String> = (0..rng.below(4)).map(|_| random_string(rng)).collect();
    let pick = |rng: &mut Rng, v: &[String]| {
        if v.is_empty() || rng.below(5) == 0 {
            random_string(rng)
        } else {
            v[rng.below(v.len())].clone()
        }
    };
    let mut c = DbContents {
        last_db_id: rng.next(),
        shutdown: rng.below(2) == 0,
        ..DbContents::default()
    };
    for &id in &ids {
        c.messages.push(StoredMessage {
            store_id: id,
            expiry_time: rng.next() as i64 >> rng.below(64),
            source_id: Some(random_string(rng)).filter(|_| rng.below(3) > 0),
            source_username: Some(random_string(rng)).filter(|_| rng.below(2) > 0),
            source_port: rng.next() as u16,
            source_mid: rng.next() as u16,
            topic: random_string(rng),
            payload: (0..rng.below(4)).map(|_| rng.next() as u8).collect(),
            qos: rng.below(4) as u8,
            retain: rng.below(2) == 0,
            properties: random_props(rng).into(),
        });
    }
    for _ in 0..rng.below(4) {
        c.retained.push(rng.below(9) as u64);
    }
    for id in &clients {
        c.clients.push(StoredClient {
            client_id: id.clone(),
            username: Some(random_string(rng)).filter(|_| rng.below(2) > 0),
            session_expiry_time: rng.next() as i64 >> rng.below(64),
            session_expiry_interval: rng.next() as u32,
            last_mid: rng.next() as u16,
            listener_port: rng.next() as u16,
            disconnect_time: None,
        });
    }
    for _ in 0..rng.below(6) {
        c.client_messages.push(StoredClientMessage {
            client_id: pick(rng, &clients),
            store_id: rng.below(9) as u64,
            mid: rng.next() as u16,
            qos: rng.below(3) as u8,
            state: MsgState::from_u8(rng.below(14) as u8),
            retain: rng.below(2) == 0,
            dup: rng.below(2) == 0,
            direction: Direction::from_u8(rng.below(2) as u8),
            properties: random_props(rng),
        });
    }
    for _ in 0..rng.below(4) {
        c.subscriptions.push(StoredSubscription {
            client_id: pick(rng, &clients),
            topic: random_string(rng),
            qos: rng.below(3) as u8,
            options: rng.next() as u8,
            identifier: rng.next() as u32,
        });
    }
    c
}

/// Whatever the broker hands the writer, mosquitto (per the Python reader)
/// loads the result, and reads the same state from it as we do.
#[test]
fn persist_random_states_written_load_in_python_and_here() {
    let mut rng = Rng(7);
    let states: Vec<Vec<u8>> = (0..300)
        .map(|_| write(&random_contents(&mut rng)))
        .collect();
    for (i, b) in states.iter().enumerate() {
        let (c, _) = read(b).unwrap_or_else(|e| panic!("state {i}: {e}"));
        assert_eq!(write(&c), write(&read_ok(&write(&c), "again")), "state {i}");
    }
    if !python_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = states
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let p = dir.path().join(format!("s{i}.db"));
            std::fs::write(&p, b).expect("write");
            p
        })
        .collect();
    let script = format!(
        "import sys, json\nsys.path.insert(0, {dir:?})\nimport parse_mosquitto_db as p\nout = []\nfor f in sys.argv[1:]:\n    try:\n        out.append(p.to_json(p.parse_file(f)))\n    except p.DbFormatError as e:\n        out.append(str(e))\nprint(json.dumps(out))\n",
        dir = py_tool().parent().and_then(Path::to_str).unwrap_or(".")
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = parse_json(&String::from_utf8(out.stdout).expect("utf8"));
    for ((i, b), j) in states.iter().enumerate().zip(results.arr()) {
        if let Json::Str(e) = j {
            panic!("state {i}: mosquitto would refuse our file: {e}");
        }
        check_against_json(&read_ok(b, "state"), j, &format!("state {i}"));
    }
}

#[test]
fn persist_v6_client_without_id_leaves_its_username_unread() {
    // CLIENT with id length 0 and username length 8: mosquitto skips the
    // entry without consuming the 8 username bytes, which are then read as
    // the next chunk header (here: an unknown chunk type 99, length 0).
    let mut b = write(&DbContents::default());
    let mut body = vec![0u8; 24];
    body[19] = 8; // username_len
    b.extend_from_slice(&6u32.to_be_bytes());
    b.extend_from_slice(&24u32.to_be_bytes());
    b.extend_from_slice(&body);
    b.extend_from_slice(&[0, 0, 0, 99, 0, 0, 0, 0]);
    let (c, w) = read(&b).expect("loads");
    assert!(c.clients.is_empty());
    assert!(w.iter().any(|w| w.contains("empty client id")), "{w:?}");
    assert!(
        w.iter().any(|w| w.contains("Unsupported chunk \"99\"")),
        "{w:?}"
    );
    // in format 2-4 the same is fatal
    let mut v3 = format::MAGIC.to_vec();
    v3.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3]);
    v3.extend_from_slice(&[0, 6, 0, 0, 0, 0]); // CLIENT, length 0 (ignored)
    v3.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // no id, last mid 1, time
    assert!(matches!(
        read(&v3),
        Err(DbError::EmptyClientId { offset: 23 })
    ));
}
