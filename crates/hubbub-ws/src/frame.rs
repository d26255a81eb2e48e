//! Frame headers and whole-frame builders.

use bytes::Bytes;

use crate::mask::apply_mask;

/// Longest header of an unmasked (server-to-client) frame: 2 bytes plus a
/// 64-bit extended length. Exists so the hub can reserve exactly this much
/// headroom in front of an encoded payload for [`frame_from_headroom`].
pub const MAX_SERVER_HEADER_LEN: usize = 10;

/// Longest header of any frame: [`MAX_SERVER_HEADER_LEN`] plus a 4-byte
/// masking key. Exists so [`frame_header`] can return a fixed-size array
/// instead of allocating.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode. Exists so callers name frame kinds instead of passing
/// raw numbers; the reserved opcodes have no variant, so a value of this type
/// is always legal on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// Carries the next piece of a fragmented message (0x0).
    Continuation,
    /// A UTF-8 text message or its first fragment (0x1).
    Text,
    /// A binary message or its first fragment (0x2).
    Binary,
    /// Starts or answers the closing handshake (0x8).
    Close,
    /// Liveness probe; the peer must answer with a pong (0x9).
    Ping,
    /// Answer to a ping, or an unsolicited heartbeat (0xA).
    Pong,
}

impl OpCode {
    /// The 4-bit wire value. Exists for code that builds or inspects frames
    /// by hand (tests, load generators).
    pub const fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// The opcode for a 4-bit wire value, or `None` for a reserved one
    /// (0x3-0x7, 0xB-0xF). Exists so parsers turn "reserved opcode" into an
    /// explicit case rather than a panic or a silent default.
    pub const fn from_bits(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// True for Close, Ping and Pong. Exists because control frames follow
    /// different rules (no fragmentation, at most 125 bytes of payload, may
    /// be interleaved inside a fragmented message).
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// The header bytes for a frame: the array and how many of its bytes are
/// used. Exists so senders that write the payload themselves (vectored
/// writes, load generators, tests) can build a header without allocating.
///
/// The length uses the shortest form (7, 16 or 64 bits) as RFC 6455
/// requires. With `mask`, the key is appended; the payload must then be
/// masked separately with [`apply_mask`](crate::apply_mask) at offset 0.
pub fn frame_header(
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut h = [0u8; MAX_HEADER_LEN];
    h[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.bits();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = match u16::try_from(payload_len) {
        Ok(len) if len < 126 => {
            h[1] = mask_bit | len as u8;
            2
        }
        Ok(len) => {
            h[1] = mask_bit | 126;
            h[2..4].copy_from_slice(&len.to_be_bytes());
            4
        }
        Err(_) => {
            h[1] = mask_bit | 127;
            h[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        h[n..n + 4].copy_from_slice(&key);
        n += 4;
    }
    (h, n)
}

/// Turns an encoded payload into a complete unmasked frame (fin set, RSV
/// clear) without copying it. Exists so the hub encodes each publication
/// once into `buf[headroom..]` and shares the resulting frame among all
/// subscribers as `Bytes` clones.
///
/// The header is written into the headroom just before the payload and the
/// returned `Bytes` starts there. Reserving [`MAX_SERVER_HEADER_LEN`] bytes
/// of headroom always suffices. If the headroom is too small for the header
/// this payload needs, the payload is copied into a new buffer instead (still
/// correct, just slower); a `headroom` beyond `buf.len()` is treated as
/// `buf.len()`, i.e. an empty payload.
pub fn frame_from_headroom(mut buf: Vec<u8>, headroom: usize, opcode: OpCode) -> Bytes {
    let headroom = headroom.min(buf.len());
    let (header, n) = frame_header(opcode, true, false, buf.len() - headroom, None);
    let Some(start) = headroom.checked_sub(n) else {
        return server_frame(opcode, &buf[headroom..]);
    };
    buf[start..headroom].copy_from_slice(&header[..n]);
    Bytes::from(buf).slice(start..)
}

/// A complete unmasked frame (fin set) holding a copy of `payload`. Exists
/// for small, one-off server frames (pongs, errors, per-connection replies)
/// where arranging headroom is not worth it.
pub fn server_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let (header, n) = frame_header(opcode, true, false, payload.len(), None);
    let mut v = Vec::with_capacity(n + payload.len());
    v.extend_from_slice(&header[..n]);
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A complete masked frame (fin set) as a client must send it. Exists for
/// Rust clients, load generators and tests that talk to the server; the
/// caller supplies the key (RFC 6455 wants it unpredictable, so real clients
/// should pass a random one).
pub fn client_frame(opcode: OpCode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let (header, n) = frame_header(opcode, true, false, payload.len(), Some(mask));
    let mut v = Vec::with_capacity(n + payload.len());
    v.extend_from_slice(&header[..n]);
    v.extend_from_slice(payload);
    apply_mask(&mut v[n..], mask, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_headroom(payload_len: usize, headroom: usize) -> Vec<u8> {
        let mut v = vec![0u8; headroom];
        v.extend((0..payload_len).map(|i| (i % 251) as u8));
        v
    }

    #[test]
    fn opcode_bits_round_trip_and_reserved_are_none() {
        for bits in 0..16u8 {
            match OpCode::from_bits(bits) {
                Some(op) => assert_eq!(op.bits(), bits),
                None => assert!(matches!(bits, 3..=7 | 0xB..=0xF)),
            }
        }
        assert!(OpCode::Ping.is_control());
        assert!(!OpCode::Continuation.is_control());
    }

    #[test]
    fn header_length_forms() {
        let cases = [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
        ];
        for (len, hlen) in cases {
            let (h, n) = frame_header(OpCode::Binary, true, false, len, None);
            assert_eq!(n, hlen, "len {len}");
            assert_eq!(h[0], 0x82);
            let (_, nm) = frame_header(OpCode::Binary, true, false, len, Some([1, 2, 3, 4]));
            assert_eq!(nm, hlen + 4);
        }
        let (h, _) = frame_header(OpCode::Text, false, true, 126, Some([9, 8, 7, 6]));
        assert_eq!(&h[..8], &[0x41, 0x80 | 126, 0, 126, 9, 8, 7, 6]);
        let (h, _) = frame_header(OpCode::Text, true, false, 65536, None);
        assert_eq!(&h[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn headroom_frames_match_copied_frames() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            let buf = with_headroom(len, MAX_SERVER_HEADER_LEN);
            let expected = server_frame(OpCode::Text, &buf[MAX_SERVER_HEADER_LEN..]);
            let frame = frame_from_headroom(buf, MAX_SERVER_HEADER_LEN, OpCode::Text);
            assert_eq!(frame, expected, "len {len}");
            let header_len = match len {
                0..=125 => 2,
                126..=65535 => 4,
                _ => 10,
            };
            assert_eq!(frame.len(), header_len + len);
            assert_eq!(frame[0], 0x81);
        }
    }

    #[test]
    fn headroom_frame_does_not_copy() {
        let buf = with_headroom(1000, MAX_SERVER_HEADER_LEN);
        let payload_ptr = buf[MAX_SERVER_HEADER_LEN..].as_ptr();
        let frame = frame_from_headroom(buf, MAX_SERVER_HEADER_LEN, OpCode::Binary);
        assert_eq!(frame[4..].as_ptr(), payload_ptr);
    }

    #[test]
    fn headroom_too_small_or_too_large_still_works() {
        let buf = with_headroom(300, 2);
        let expected = server_frame(OpCode::Binary, &buf[2..]);
        assert_eq!(frame_from_headroom(buf, 2, OpCode::Binary), expected);
        let buf = with_headroom(10, 0);
        let expected = server_frame(OpCode::Binary, &buf);
        assert_eq!(frame_from_headroom(buf, 0, OpCode::Binary), expected);
        let buf = vec![0u8; 5];
        assert_eq!(
            frame_from_headroom(buf, 99, OpCode::Pong),
            server_frame(OpCode::Pong, &[])
        );
    }

    #[test]
    fn client_frame_is_masked() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        // RFC 6455 section 5.7: a masked "Hello".
        assert_eq!(
            client_frame(OpCode::Text, b"Hello", mask),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        assert_eq!(&server_frame(OpCode::Text, b"Hello")[..], b"\x81\x05Hello");
    }
}
