//! RFC 6455 framing: the server's frame encoder, and client-side helpers for
//! tests (`client_frame`, `decode_server_frame`).

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Close status codes (RFC 6455 §7.4.1) this layer sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Sent for text frames: MQTT must travel in binary frames.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
}

/// Appends one unmasked frame with FIN set (what a server sends).
pub(crate) fn encode_server_frame(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 10);
    out.push(0x80 | (op & 0x0F));
    push_length(payload.len(), 0, out);
    out.extend_from_slice(payload);
}

/// Appends a close frame carrying `code` and no reason text.
pub(crate) fn encode_close(code: u16, out: &mut Vec<u8>) {
    encode_server_frame(opcode::CLOSE, &code.to_be_bytes(), out);
}

fn push_length(len: usize, mask_bit: u8, out: &mut Vec<u8>) {
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// XORs `data` with `mask`, `offset` being the position of `data[0]` in the
/// frame's payload.
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: u64) {
    let start = (offset & 3) as usize;
    let key = [
        mask[start],
        mask[(start + 1) & 3],
        mask[(start + 2) & 3],
        mask[(start + 3) & 3],
    ];
    let word = u32::from_ne_bytes(key);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, k) in chunks.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// **Test helper.** One client frame: `fin` sets the FIN bit; `mask` is the
/// masking key (`None` sends it unmasked, which a server must refuse). The
/// length uses the shortest of the 7/16/64-bit encodings.
pub fn client_frame(op: u8, payload: &[u8], fin: bool, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (op & 0x0F));
    match mask {
        Some(key) => {
            push_length(payload.len(), 0x80, &mut out);
            out.extend_from_slice(&key);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], key, 0);
        }
        None => {
            push_length(payload.len(), 0, &mut out);
            out.extend_from_slice(payload);
        }
    }
    out
}

/// A frame as the client sees it, from [`decode_server_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    /// Unmasked payload (the mask is removed if the frame had one).
    pub payload: Vec<u8>,
    /// Bytes of `data` the frame took.
    pub len: usize,
}

/// **Test helper.** Decodes the first frame in `data`, or `None` if it is not
/// complete yet.
pub fn decode_server_frame(data: &[u8]) -> Option<ServerFrame> {
    let b0 = *data.first()?;
    let b1 = *data.get(1)?;
    let masked = b1 & 0x80 != 0;
    let (len, mut pos) = match b1 & 0x7F {
        126 => (u16::from_be_bytes([*data.get(2)?, *data.get(3)?]) as u64, 4),
        127 => {
            let bytes: [u8; 8] = data.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 10)
        }
        n => (n as u64, 2),
    };
    let mut key = None;
    if masked {
        key = Some(<[u8; 4]>::try_from(data.get(pos..pos + 4)?).ok()?);
        pos += 4;
    }
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    let mut payload = data.get(pos..end)?.to_vec();
    if let Some(key) = key {
        apply_mask(&mut payload, key, 0);
    }
    Some(ServerFrame {
        fin: b0 & 0x80 != 0,
        opcode: b0 & 0x0F,
        payload,
        len: end,
    })
}

/// **Test helper.** Decodes every complete frame in `data`.
pub fn decode_server_frames(mut data: &[u8]) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    while let Some(f) = decode_server_frame(data) {
        data = &data[f.len..];
        frames.push(f);
    }
    frames
}

/// Header of the frame being received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameHeader {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub len: u64,
    pub mask: [u8; 4],
}

/// Collects a frame header that may arrive a byte at a time.
#[derive(Debug, Default)]
pub(crate) struct HeaderReader {
    buf: [u8; 14],
    have: usize,
}

pub(crate) enum HeaderParse {
    /// Needs more bytes; all the input was taken.
    Incomplete,
    /// The header, and how many input bytes it took.
    Done(FrameHeader, usize),
    /// The 64-bit length has its top bit set.
    Invalid,
}

impl HeaderReader {
    /// How many header bytes are needed in total, given those we have.
    fn needed(&self) -> usize {
        if self.have < 2 {
            return 2;
        }
        let b1 = self.buf[1];
        let ext = match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    pub fn feed(&mut self, input: &[u8]) -> HeaderParse {
        let mut used = 0;
        loop {
            let need = self.needed();
            if self.have >= need {
                break;
            }
            let take = (need - self.have).min(input.len() - used);
            if take == 0 {
                return HeaderParse::Incomplete;
            }
            self.buf[self.have..self.have + take].copy_from_slice(&input[used..used + take]);
            self.have += take;
            used += take;
        }
        let b = &self.buf;
        let masked = b[1] & 0x80 != 0;
        let (len, mut pos) = match b[1] & 0x7F {
            126 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
            127 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(l), 10)
            }
            n => (n as u64, 2),
        };
        if len >> 63 != 0 {
            self.have = 0;
            return HeaderParse::Invalid;
        }
        let mut mask = [0u8; 4];
        if masked {
            mask.copy_from_slice(&b[pos..pos + 4]);
            pos += 4;
        }
        debug_assert_eq!(pos, self.have);
        let header = FrameHeader {
            fin: b[0] & 0x80 != 0,
            rsv: (b[0] >> 4) & 0x07,
            opcode: b[0] & 0x0F,
            masked,
            len,
            mask,
        };
        self.have = 0;
        HeaderParse::Done(header, used)
    }
}
