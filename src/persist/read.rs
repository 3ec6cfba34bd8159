//! Loading a mosquitto.db exactly as mosquitto 2.0 does.
//!
//! One pass over the chunks, building the state as it goes (so references to
//! store ids are resolved in file order). Known chunks are read as a fixed
//! part plus the strings it sizes; the chunk length is used only for the v5/v6
//! property blocks and to skip unknown chunk types (mosquitto's own test files
//! have length 0 in many chunks). Native-order fields are read little-endian.

use std::collections::HashMap;

/// Store ids and client ids are looked up once per chunk: a fast seeded
/// hash keeps a million-message file quick to load.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::path::Path;

use super::error::DbError;
use super::format::*;
use super::model::*;
use super::props;
use crate::codec::Properties;

/// Reads a whole database image. `Ok` means mosquitto 2.0 would load it;
/// the warnings are what it would have logged or silently done (skipped
/// chunks, dropped references, lengths that disagree, cut strings).
/// Expired messages are kept: dropping them needs the clock (the broker's job).
pub fn read(bytes: &[u8]) -> Result<(DbContents, Vec<String>), DbError> {
    let mut l = Loader::new(bytes, None);
    l.run()?;
    Ok(l.finish())
}

/// [`read`], also dropping the messages that have expired at `now` (Unix
/// seconds) the way mosquitto does while loading: a MSG_STORE whose
/// `expiry_time` is set and in the past (or more than 2^32 s away) is
/// discarded, so the CLIENT_MSG and RETAIN chunks after it that refer to it
/// are dropped too (and a CLIENT_MSG then creates no session).
pub fn read_at(bytes: &[u8], now: i64) -> Result<(DbContents, Vec<String>), DbError> {
    let mut l = Loader::new(bytes, Some(now));
    l.run()?;
    Ok(l.finish())
}

/// Reads the database at `path` (see [`read`]). A missing file is an
/// `Io` error with kind `NotFound`: mosquitto then starts empty, silently.
pub fn load(path: &Path) -> Result<(DbContents, Vec<String>), DbError> {
    load_impl(path, None)
}

/// [`load`] with [`read_at`]'s expiry handling: what the broker calls at
/// start-up with the current time.
pub fn load_at(path: &Path, now: i64) -> Result<(DbContents, Vec<String>), DbError> {
    load_impl(path, Some(now))
}

fn load_impl(path: &Path, now: Option<i64>) -> Result<(DbContents, Vec<String>), DbError> {
    let bytes = std::fs::read(path).map_err(|source| DbError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut l = Loader::new(&bytes, now);
    l.run().map_err(|e| DbError::InFile {
        path: path.to_path_buf(),
        error: Box::new(e),
    })?;
    Ok(l.finish())
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len())?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Some(s)
    }
}

/// Little helpers over a fixed-size slice (lengths are checked by `take`).
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

struct Loader<'a> {
    c: Cursor<'a>,
    /// Unix time for dropping expired messages; `None` keeps them all.
    now: Option<i64>,
    out: DbContents,
    warnings: Vec<String>,
    /// Offset of the chunk being read (for messages).
    chunk_at: usize,
    chunk_kind: u32,
    msg_index: FastMap<u64, usize>,
    client_index: FastMap<String, usize>,
    /// Retained messages by topic, in first-stored order (None = cleared).
    retained: Vec<Option<u64>>,
    retained_index: FastMap<String, usize>,
    /// Store ids of messages whose topic is absent (length 0).
    no_topic: FastSet<u64>,
}

impl<'a> Loader<'a> {
    fn new(data: &'a [u8], now: Option<i64>) -> Self {
        Loader {
            c: Cursor { data, pos: 0 },
            now,
            out: DbContents::default(),
            warnings: Vec::new(),
            chunk_at: 0,
            chunk_kind: 0,
            msg_index: FastMap::default(),
            client_index: FastMap::default(),
            retained: Vec::new(),
            retained_index: FastMap::default(),
            no_topic: FastSet::default(),
        }
    }

    fn finish(mut self) -> (DbContents, Vec<String>) {
        self.out.retained = self.retained.into_iter().flatten().collect();
        (self.out, self.warnings)
    }

    fn truncated(&self) -> DbError {
        DbError::Truncated {
            what: match self.chunk_kind {
                CHUNK_CFG => "CFG chunk",
                CHUNK_MSG_STORE => "MSG_STORE chunk",
                CHUNK_CLIENT_MSG => "CLIENT_MSG chunk",
                CHUNK_RETAIN => "RETAIN chunk",
                CHUNK_SUB => "SUB chunk",
                CHUNK_CLIENT => "CLIENT chunk",
                _ => "header",
            },
            offset: self.chunk_at,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbError> {
        match self.c.take(n) {
            Some(s) => Ok(s),
            None => Err(self.truncated()),
        }
    }

    fn u8(&mut self) -> Result<u8, DbError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DbError> {
        Ok(be16(self.take(2)?, 0))
    }
    fn u32(&mut self) -> Result<u32, DbError> {
        Ok(be32(self.take(4)?, 0))
    }
    fn u64n(&mut self) -> Result<u64, DbError> {
        Ok(le64(self.take(8)?, 0))
    }

    /// A string of known length; 0 = absent.
    fn str_len(&mut self, n: u16) -> Result<Option<&'a [u8]>, DbError> {
        if n == 0 {
            return Ok(None);
        }
        self.take(usize::from(n)).map(Some)
    }

    /// A u16-length-prefixed string (formats 2–4).
    fn str16(&mut self) -> Result<Option<&'a [u8]>, DbError> {
        let n = self.u16()?;
        self.str_len(n)
    }

    /// mosquitto uses strings as C strings: an embedded NUL cuts them.
    fn text(&mut self, raw: Option<&[u8]>, what: &str) -> Option<String> {
        let mut b = raw?;
        if let Some(nul) = b.iter().position(|&x| x == 0) {
            self.warn(format!(
                "{} chunk at offset {}: {what} contains a NUL byte; only the part before it is used",
                chunk_name(self.chunk_kind),
                self.chunk_at
            ));
            b = &b[..nul];
        }
        match std::str::from_utf8(b) {
            Ok(s) => Some(s.to_owned()),
            Err(_) => {
                self.warn(format!(
                    "{} chunk at offset {}: {what} is not valid UTF-8; invalid bytes replaced",
                    chunk_name(self.chunk_kind),
                    self.chunk_at
                ));
                Some(String::from_utf8_lossy(b).into_owned())
            }
        }
    }

    fn warn(&mut self, w: String) {
        self.warnings.push(w);
    }

    fn run(&mut self) -> Result<(), DbError> {
        let data = self.c.data;
        if data.is_empty() {
            self.out.version = 0;
            self.warn("Persistence file is empty.".into());
            return Ok(());
        }
        if data.len() < MAGIC.len() {
            return Err(DbError::TooShort { len: data.len() });
        }
        if data[..MAGIC.len()] != MAGIC {
            return Err(DbError::BadMagic);
        }
        self.c.pos = MAGIC.len();
        self.chunk_at = 0;
        self.chunk_kind = 0;
        let _crc = self.u32()?;
        let version = self.u32()?;
        if !(MIN_VERSION..=DB_VERSION).contains(&version) {
            return Err(DbError::UnsupportedVersion { version });
        }
        self.out.version = version;
        let v56 = version >= 5;
        let hdr_len = if v56 { 8 } else { 6 };
        loop {
            let left = self.c.remaining();
            if left < hdr_len {
                if left > 0 {
                    self.warn(format!(
                        "{left} trailing byte(s) at offset {}, too short for a chunk header, ignored",
                        self.c.pos
                    ));
                }
                return Ok(());
            }
            self.chunk_at = self.c.pos;
            self.chunk_kind = 0;
            let kind = if v56 {
                self.u32()?
            } else {
                u32::from(self.u16()?)
            };
            let length = self.u32()?;
            self.chunk_kind = kind;
            let start = self.c.pos;
            let known = match kind {
                CHUNK_CFG => {
                    self.cfg(v56)?;
                    true
                }
                CHUNK_MSG_STORE => {
                    let m = if v56 {
                        self.msg_store_v56(length)?
                    } else {
                        self.msg_store_v234(version)?
                    };
                    self.restore_msg_store(m);
                    true
                }
                CHUNK_CLIENT_MSG => {
                    let m = if v56 {
                        self.client_msg_v56(length)?
                    } else {
                        self.client_msg_v234()?
                    };
                    self.restore_client_msg(m);
                    true
                }
                CHUNK_RETAIN => {
                    let id = self.u64n()?;
                    self.restore_retain(id)?;
                    true
                }
                CHUNK_SUB => {
                    let s = if v56 {
                        self.sub_v56()?
                    } else {
                        self.sub_v234()?
                    };
                    self.restore_sub(s);
                    true
                }
                CHUNK_CLIENT => {
                    let c = if v56 {
                        self.client_v56(version)?
                    } else {
                        Some(self.client_v234(version)?)
                    };
                    match c {
                        Some(c) => {
                            self.restore_client(c);
                            true
                        }
                        None => false,
                    }
                }
                _ => {
                    let want = usize::try_from(length).unwrap_or(usize::MAX);
                    let skip = want.min(self.c.remaining());
                    self.c.pos += skip;
                    if skip < want {
                        self.warn(format!(
                            "Unsupported chunk \"{kind}\" in persistent database file at offset {} claims {length} bytes, only {skip} left; loading stops there.",
                            self.chunk_at
                        ));
                    } else {
                        self.warn(format!(
                            "Unsupported chunk \"{kind}\" in persistent database file. Ignoring."
                        ));
                    }
                    false
                }
            };
            let used = self.c.pos - start;
            if known && used as u64 != u64::from(length) {
                self.warn(format!(
                    "{} chunk at offset {}: length field {length}, {used} bytes actually read (length ignored, as mosquitto does)",
                    chunk_name(kind),
                    self.chunk_at
                ));
            }
        }
    }

    fn cfg(&mut self, v56: bool) -> Result<(), DbError> {
        let (last_db_id, shutdown, dbid_size) = if v56 {
            let b = self.take(CFG_LEN)?;
            (le64(b, 0), b[8], b[9])
        } else {
            let b = self.take(10)?;
            (le64(b, 2), b[0], b[1])
        };
        if dbid_size != DBID_SIZE {
            return Err(DbError::DbidSize {
                size: dbid_size,
                offset: self.chunk_at,
            });
        }
        self.out.last_db_id = last_db_id;
        self.out.shutdown = shutdown != 0;
        self.out.dbid_size = dbid_size;
        Ok(())
    }

    /// The property block of a v5/v6 MSG_STORE or CLIENT_MSG: whatever the
    /// chunk length leaves after the fixed part and strings.
    fn properties(&mut self, prop_len: u32, length: u32) -> Result<Properties, DbError> {
        if prop_len == 0 {
            return Ok(Properties::default());
        }
        let chunk = chunk_name(self.chunk_kind);
        if prop_len as usize > self.c.remaining() {
            if prop_len > 0x7FFF_FFFF {
                return Err(DbError::LengthTooSmall {
                    chunk,
                    offset: self.chunk_at,
                    length,
                });
            }
            return Err(self.truncated());
        }
        let block = self.take(prop_len as usize)?;
        props::decode(block).map_err(|reason| DbError::Properties {
            chunk,
            offset: self.chunk_at,
            reason,
        })
    }

    fn msg_store_v56(&mut self, length: u32) -> Result<(StoredMessage, bool), DbError> {
        let f = self.take(MSG_STORE_FIXED)?;
        let payload_len = be32(f, 16);
        let (sid_len, suser_len, topic_len) = (be16(f, 22), be16(f, 24), be16(f, 26));
        if payload_len > MAX_PAYLOAD {
            return Err(DbError::PayloadTooLarge {
                len: payload_len,
                offset: self.chunk_at,
            });
        }
        let fixed = (MSG_STORE_FIXED as u32)
            + payload_len
            + u32::from(sid_len)
            + u32::from(suser_len)
            + u32::from(topic_len);
        let prop_len = length.wrapping_sub(fixed);
        let sid = self.str_len(sid_len)?;
        let source_id = self.text(sid, "source id");
        let suser = self.str_len(suser_len)?;
        let source_username = self.text(suser, "source username");
        let t = self.str_len(topic_len)?;
        let has_topic = t.is_some();
        let topic = self.text(t, "topic").unwrap_or_default();
        let payload = self.take(payload_len as usize)?.to_vec();
        let properties = self.properties(prop_len, length)?;
        let m = StoredMessage {
            store_id: le64(f, 0),
            expiry_time: le64(f, 8) as i64,
            source_id,
            source_username,
            source_port: be16(f, 28),
            source_mid: be16(f, 20),
            topic,
            payload,
            qos: f[30],
            retain: f[31] != 0,
            properties: properties.into(),
        };
        Ok((m, has_topic))
    }

    fn msg_store_v234(&mut self, version: u32) -> Result<(StoredMessage, bool), DbError> {
        let store_id = self.u64n()?;
        let sid = self.str16()?;
        let source_id = self.text(sid, "source id");
        let (mut source_username, mut source_port) = (None, 0);
        if version == 4 {
            let u = self.str16()?;
            source_username = self.text(u, "source username");
            source_port = self.u16()?;
        }
        let source_mid = self.u16()?;
        let _mid = self.u16()?; // discarded by mosquitto
        let t = self.str16()?;
        let has_topic = t.is_some();
        let topic = self.text(t, "topic").unwrap_or_default();
        let qos = self.u8()?;
        let retain = self.u8()? != 0;
        let payload_len = self.u32()?;
        let payload = self.take(payload_len as usize)?.to_vec();
        let m = StoredMessage {
            store_id,
            expiry_time: 0,
            source_id,
            source_username,
            source_port,
            source_mid,
            topic,
            payload,
            qos,
            retain,
            properties: Default::default(),
        };
        Ok((m, has_topic))
    }

    /// The message and whether it had a client id.
    fn client_msg_v56(&mut self, length: u32) -> Result<(StoredClientMessage, bool), DbError> {
        let f = self.take(CLIENT_MSG_FIXED)?;
        let id_len = be16(f, 10);
        let prop_len = length.wrapping_sub(CLIENT_MSG_FIXED as u32 + u32::from(id_len));
        let raw = self.str_len(id_len)?;
        let client_id = self.text(raw, "client id");
        let properties = self.properties(prop_len, length)?;
        let retain_dup = f[14];
        Ok((
            StoredClientMessage {
                client_id: client_id.clone().unwrap_or_default(),
                store_id: le64(f, 0),
                mid: be16(f, 8),
                qos: f[12],
                state: MsgState::from_u8(f[13]),
                retain: retain_dup >> 4 != 0,
                dup: retain_dup & 0x0F != 0,
                direction: Direction::from_u8(f[15]),
                properties,
            },
            client_id.is_some(),
        ))
    }

    fn client_msg_v234(&mut self) -> Result<(StoredClientMessage, bool), DbError> {
        let raw = self.str16()?;
        let client_id = self.text(raw, "client id");
        let store_id = self.u64n()?;
        let f = self.take(7)?;
        Ok((
            StoredClientMessage {
                client_id: client_id.clone().unwrap_or_default(),
                store_id,
                mid: be16(f, 0),
                qos: f[2],
                // mosquitto packs retain and dup into nibbles: only the low 4 bits survive
                retain: f[3] & 0x0F != 0,
                direction: Direction::from_u8(f[4]),
                state: MsgState::from_u8(f[5]),
                dup: f[6] & 0x0F != 0,
                properties: Properties::default(),
            },
            client_id.is_some(),
        ))
    }

    fn sub_v56(&mut self) -> Result<Option<StoredSubscription>, DbError> {
        let f = self.take(SUB_FIXED)?;
        let (id_len, topic_len) = (be16(f, 4), be16(f, 6));
        let raw = self.str_len(id_len)?;
        let client_id = self.text(raw, "client id");
        let raw = self.str_len(topic_len)?;
        let topic = self.text(raw, "topic");
        Ok(self.sub_rec(client_id, topic, f[8], f[9], be32(f, 0)))
    }

    fn sub_v234(&mut self) -> Result<Option<StoredSubscription>, DbError> {
        let raw = self.str16()?;
        let client_id = self.text(raw, "client id");
        let raw = self.str16()?;
        let topic = self.text(raw, "topic");
        let qos = self.u8()?;
        Ok(self.sub_rec(client_id, topic, qos, 0, 0))
    }

    fn sub_rec(
        &mut self,
        client_id: Option<String>,
        topic: Option<String>,
        qos: u8,
        options: u8,
        identifier: u32,
    ) -> Option<StoredSubscription> {
        let (Some(client_id), Some(topic)) = (client_id, topic) else {
            self.warn(format!(
                "SUB chunk at offset {}: subscription without client id or topic ignored",
                self.chunk_at
            ));
            return None;
        };
        Some(StoredSubscription {
            client_id,
            topic,
            qos,
            options,
            identifier,
        })
    }

    fn client_v56(&mut self, version: u32) -> Result<Option<StoredClient>, DbError> {
        let f = self.take(if version == 6 {
            CLIENT_FIXED_V6
        } else {
            CLIENT_FIXED_V5
        })?;
        let id_len = be16(f, 14);
        let (listener_port, username_len) = if version == 6 {
            (be16(f, 16), be16(f, 18))
        } else {
            (0, 0)
        };
        let Some(raw) = self.str_len(id_len)? else {
            // mosquitto skips the entry without consuming the username bytes:
            // they are read as the next chunk header.
            self.warn(format!(
                "CLIENT chunk at offset {} with empty client id skipped",
                self.chunk_at
            ));
            return Ok(None);
        };
        let client_id = self.text(Some(raw), "client id").unwrap_or_default();
        let raw = self.str_len(username_len)?;
        let username = self.text(raw, "username (mosquitto 2.0.11 may write a stale one)");
        Ok(Some(StoredClient {
            client_id,
            username,
            session_expiry_time: le64(f, 0) as i64,
            session_expiry_interval: be32(f, 8),
            last_mid: be16(f, 12),
            listener_port,
            disconnect_time: None,
        }))
    }

    fn client_v234(&mut self, version: u32) -> Result<StoredClient, DbError> {
        let raw = self.str16()?;
        let client_id = self.text(raw, "client id");
        let last_mid = self.u16()?;
        let disconnect_time = if version != 2 {
            Some(self.u64n()? as i64)
        } else {
            None
        };
        let Some(client_id) = client_id else {
            return Err(DbError::EmptyClientId {
                offset: self.chunk_at,
            });
        };
        Ok(StoredClient {
            client_id,
            username: None,
            // mosquitto leaves both at 0 for these versions
            session_expiry_time: 0,
            session_expiry_interval: 0,
            last_mid,
            listener_port: 0,
            disconnect_time,
        })
    }

    // ---- applying chunks in file order, like mosquitto ----

    /// The session for `client_id`, created with mosquitto's defaults if new.
    fn context(&mut self, client_id: &str, last_mid: u16) -> usize {
        let i = match self.client_index.get(client_id) {
            Some(&i) => i,
            None => {
                let i = self.out.clients.len();
                self.out.clients.push(StoredClient {
                    client_id: client_id.to_owned(),
                    ..StoredClient::default()
                });
                self.client_index.insert(client_id.to_owned(), i);
                i
            }
        };
        if last_mid != 0 {
            self.out.clients[i].last_mid = last_mid;
        }
        i
    }

    fn restore_msg_store(&mut self, (m, has_topic): (StoredMessage, bool)) {
        if let Some(now) = self.now.filter(|_| m.expiry_time > 0) {
            let left = i128::from(m.expiry_time) - i128::from(now);
            if left < 0 || left > i128::from(u32::MAX) {
                self.warn(format!(
                    "MSG_STORE chunk at offset {}: message {} expired (expiry time {}); dropped",
                    self.chunk_at, m.store_id, m.expiry_time
                ));
                return;
            }
        }
        if has_topic {
            self.no_topic.remove(&m.store_id);
        } else {
            self.no_topic.insert(m.store_id);
        }
        if let Some(&i) = self.msg_index.get(&m.store_id) {
            self.warn(format!(
                "MSG_STORE chunk at offset {}: store id {} appears twice; the later message wins",
                self.chunk_at, m.store_id
            ));
            // A retained entry made from the message being replaced goes
            // with it: left in place it would name a message of another
            // topic (or an empty one), and a later RETAIN chunk for this
            // id would list the id twice (found by fuzz/ persist).
            let old_topic = std::mem::take(&mut self.out.messages[i].topic);
            if let Some(&slot) = self.retained_index.get(&old_topic)
                && self.retained[slot] == Some(m.store_id)
            {
                self.warn(format!(
                    "MSG_STORE chunk at offset {}: retained message {} on {:?} replaced; \
                     its RETAIN entry is dropped",
                    self.chunk_at, m.store_id, old_topic
                ));
                self.retained[slot] = None;
                self.retained_index.remove(&old_topic);
            }
            self.out.messages[i] = m;
        } else {
            self.msg_index.insert(m.store_id, self.out.messages.len());
            self.out.messages.push(m);
        }
    }

    fn restore_client_msg(&mut self, (m, has_id): (StoredClientMessage, bool)) {
        if !self.msg_index.contains_key(&m.store_id) {
            self.warn(format!(
                "CLIENT_MSG chunk at offset {}: message for \"{}\" refers to unknown store id {}; dropped",
                self.chunk_at, m.client_id, m.store_id
            ));
            return;
        }
        if !has_id {
            self.warn(format!(
                "CLIENT_MSG chunk at offset {}: message without client id dropped",
                self.chunk_at
            ));
            return;
        }
        self.context(&m.client_id, 0);
        self.out.client_messages.push(m);
    }

    fn restore_retain(&mut self, store_id: u64) -> Result<(), DbError> {
        let Some(&i) = self.msg_index.get(&store_id) else {
            self.warn(format!(
                "RETAIN chunk at offset {}: unknown store id {store_id}; dropped",
                self.chunk_at
            ));
            return Ok(());
        };
        let m = &self.out.messages[i];
        if self.no_topic.contains(&store_id) {
            return Err(DbError::RetainedWithoutTopic {
                store_id,
                offset: self.chunk_at,
            });
        }
        let topic = m.topic.clone();
        let clear = m.payload.is_empty();
        match self.retained_index.get(&topic) {
            Some(&slot) if clear => {
                self.retained[slot] = None;
                self.retained_index.remove(&topic);
            }
            Some(&slot) => self.retained[slot] = Some(store_id),
            None if clear => {}
            None => {
                self.retained_index.insert(topic, self.retained.len());
                self.retained.push(Some(store_id));
            }
        }
        Ok(())
    }

    fn restore_sub(&mut self, s: Option<StoredSubscription>) {
        if let Some(s) = s {
            self.context(&s.client_id, 0);
            self.out.subscriptions.push(s);
        }
    }

    fn restore_client(&mut self, c: StoredClient) {
        let i = self.context(&c.client_id, c.last_mid);
        let e = &mut self.out.clients[i];
        e.session_expiry_time = c.session_expiry_time;
        e.session_expiry_interval = c.session_expiry_interval;
        if e.username.is_none() {
            e.username = c.username;
        }
        if e.listener_port == 0 {
            e.listener_port = c.listener_port;
        }
        if c.disconnect_time.is_some() {
            e.disconnect_time = c.disconnect_time;
        }
    }
}
