//! The inbound frame decoder.

use bytes::Bytes;

use crate::close::{parse_close, CloseFrame};
use crate::error::WsError;
use crate::frame::OpCode;
use crate::header::{read_head, read_length, read_mask, Head};
use crate::mask::apply_mask;
use crate::partial::PartialText;
use crate::utf8::Utf8Validator;

/// Limits and switches for one connection's [`Decoder`]. Exists so servers
/// and clients (and later permessage-deflate) share one decoder with
/// different rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Largest message accepted, in payload bytes summed over all of its
    /// fragments. Checked from the frame header alone, so an oversized
    /// message is rejected before any of it is buffered.
    pub max_message_size: usize,
    /// Reject unmasked frames: true on a server (clients must mask), false
    /// on a client. Masked frames are always accepted and unmasked.
    pub require_mask: bool,
    /// Accept RSV1 on the first frame of a data message, for a negotiated
    /// permessage-deflate; see [`Decoder::last_rsv1`]. When false, RSV1 is a
    /// protocol error.
    pub allow_rsv1: bool,
}

impl Default for DecoderConfig {
    /// Server settings with a 64 KiB message limit, so a forgotten
    /// configuration errs on the side of low memory.
    fn default() -> Self {
        DecoderConfig {
            max_message_size: 64 * 1024,
            require_mask: true,
            allow_rsv1: false,
        }
    }
}

/// A complete message or control frame. Exists so callers see whole messages
/// with owned payloads (copied out of, and independent of, the buffer passed
/// to [`Decoder::decode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, validated as UTF-8 — unless [`Decoder::last_rsv1`]
    /// says it is compressed, in which case the caller inflates and then
    /// validates it.
    Text(Bytes),
    /// A binary message (compressed if [`Decoder::last_rsv1`] says so).
    Binary(Bytes),
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong (answer to our ping, or an unsolicited heartbeat).
    Pong(Bytes),
    /// The peer starts or answers the closing handshake. `None` when the
    /// frame had no payload (no status code).
    Close(Option<CloseFrame>),
}

/// Turns a byte stream into [`Message`]s. Exists as a pure state machine over
/// byte slices — it never owns the socket or reads — so the connection task
/// can parse straight out of a shared scratch buffer and keep only the
/// unconsumed tail.
///
/// Fragmented messages are assembled inside the decoder; between messages it
/// holds no heap memory at all. After an error the connection must be
/// failed (the decoder drops any partial message and forgets the stream).
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    /// Payload of the fragmented message being assembled (unmasked).
    frag: Vec<u8>,
    /// Text or Binary while a fragmented message is open.
    frag_opcode: Option<OpCode>,
    frag_rsv1: bool,
    /// UTF-8 state of the fragmented text message at the end of `frag`.
    utf8: Utf8Validator,
    partial: Option<PartialText>,
    last_rsv1: bool,
}

impl Decoder {
    /// A decoder with no message in progress. Exists so each connection gets
    /// its own limits; it allocates nothing.
    pub fn new(config: DecoderConfig) -> Self {
        Decoder {
            config,
            frag: Vec::new(),
            frag_opcode: None,
            frag_rsv1: false,
            utf8: Utf8Validator::default(),
            partial: None,
            last_rsv1: false,
        }
    }

    /// Parses at most one frame from the front of `buf`. Exists so the caller
    /// drives all I/O and buffering and the decoder only interprets bytes.
    ///
    /// Returns the bytes consumed and the message, if one completed:
    /// - `(0, None)`: `buf` does not hold a complete frame yet; keep those
    ///   bytes, append more, and call again with them at the front.
    /// - `(n, None)` with `n > 0`: a non-final data fragment was consumed
    ///   and buffered; drop `n` bytes and call again. Callers loop while
    ///   `n > 0`.
    /// - `(n, Some(msg))`: a frame completed a message, or was a control
    ///   frame (returned at once, even in the middle of a fragmented one).
    ///
    /// Size limits are checked as soon as the header is readable, and the
    /// UTF-8 of a text frame is checked as its payload arrives, so bad input
    /// fails without waiting for (or buffering) the rest of the frame.
    pub fn decode(&mut self, buf: &[u8]) -> Result<(usize, Option<Message>), WsError> {
        let result = self.decode_frame(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// How many more bytes the frame at the head of `buf` needs (0 if it is
    /// complete), or `None` if its header is not readable yet or the frame
    /// will be rejected. Exists so the caller can reserve buffer space once
    /// for a big frame instead of growing step by step; a frame over the size
    /// limit yields `None`, so this never asks for more than the limit.
    pub fn needed(&self, buf: &[u8]) -> Option<usize> {
        let head = read_head(buf, self.config.allow_rsv1).ok()??;
        let (len_end, payload_len) = read_length(buf).ok()??;
        let payload_len = self.check_size(head.opcode, payload_len).ok()?;
        let total = len_end
            .checked_add(if head.masked { 4 } else { 0 })?
            .checked_add(payload_len)?;
        Some(total.saturating_sub(buf.len()))
    }

    /// True while a fragmented message is being assembled. Exists so the
    /// connection can tell when it is idle and free its own buffers.
    pub fn in_message(&self) -> bool {
        self.frag_opcode.is_some()
    }

    /// Whether the data message most recently returned by [`decode`] had
    /// RSV1 set on its first frame, i.e. is compressed under a negotiated
    /// permessage-deflate. Exists because [`Message`] has no room for the
    /// flag; always false unless [`DecoderConfig::allow_rsv1`]. A compressed
    /// `Message::Text` has not been UTF-8 validated.
    ///
    /// [`decode`]: Decoder::decode
    pub fn last_rsv1(&self) -> bool {
        self.last_rsv1
    }

    fn reset(&mut self) {
        self.frag = Vec::new();
        self.frag_opcode = None;
        self.frag_rsv1 = false;
        self.utf8 = Utf8Validator::default();
        self.partial = None;
    }

    fn decode_frame(&mut self, buf: &[u8]) -> Result<(usize, Option<Message>), WsError> {
        let Some(head) = read_head(buf, self.config.allow_rsv1)? else {
            return Ok((0, None));
        };
        match head.opcode {
            OpCode::Continuation if self.frag_opcode.is_none() => {
                return Err(WsError::Protocol("continuation frame without a message"));
            }
            OpCode::Text | OpCode::Binary if self.frag_opcode.is_some() => {
                return Err(WsError::Protocol("new message inside a fragmented message"));
            }
            _ => {}
        }
        if self.config.require_mask && !head.masked {
            return Err(WsError::Protocol("unmasked client frame"));
        }
        let Some((len_end, payload_len)) = read_length(buf)? else {
            return Ok((0, None));
        };
        let payload_len = self.check_size(head.opcode, payload_len)?;
        let mask = match (head.masked, read_mask(buf, len_end)) {
            (false, _) => None,
            (true, Some(mask)) => Some(mask),
            (true, None) => return Ok((0, None)),
        };
        let header_len = len_end + if head.masked { 4 } else { 0 };
        let total = header_len.checked_add(payload_len).ok_or(WsError::TooBig)?;
        let Some(payload) = buf.get(header_len..total) else {
            if let Some((header, available)) = buf.split_at_checked(header_len) {
                self.check_partial(&head, header, available, mask)?;
            }
            return Ok((0, None));
        };
        self.partial = None;
        let message = self.on_frame(&head, payload, mask)?;
        Ok((total, message))
    }

    /// The payload length as usize, if the frame fits the size limit.
    fn check_size(&self, opcode: OpCode, payload_len: u64) -> Result<usize, WsError> {
        if !opcode.is_control() {
            let limit = u64::try_from(self.config.max_message_size).unwrap_or(u64::MAX);
            let so_far = u64::try_from(self.frag.len()).unwrap_or(u64::MAX);
            if so_far.saturating_add(payload_len) > limit {
                return Err(WsError::TooBig);
            }
        }
        usize::try_from(payload_len).map_err(|_| WsError::TooBig)
    }

    /// Whether the frame's payload is (uncompressed) text.
    fn is_text(&self, head: &Head) -> bool {
        match head.opcode {
            OpCode::Text => !head.rsv1,
            OpCode::Continuation => self.frag_opcode == Some(OpCode::Text) && !self.frag_rsv1,
            _ => false,
        }
    }

    /// Validates the UTF-8 of the part of an incomplete text frame that has
    /// arrived, picking up where the previous call on the same frame stopped.
    fn check_partial(
        &mut self,
        head: &Head,
        header: &[u8],
        available: &[u8],
        mask: Option<[u8; 4]>,
    ) -> Result<(), WsError> {
        if !self.is_text(head) {
            return Ok(());
        }
        if !self.partial.is_some_and(|p| p.is_for(header)) {
            let before = if head.opcode == OpCode::Continuation {
                self.utf8
            } else {
                Utf8Validator::default()
            };
            self.partial = PartialText::new(header, before);
        }
        match &mut self.partial {
            Some(p) => p.check(available, mask),
            None => Ok(()),
        }
    }

    fn on_frame(
        &mut self,
        head: &Head,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) -> Result<Option<Message>, WsError> {
        match head.opcode {
            OpCode::Ping => Ok(Some(Message::Ping(owned(payload, mask)))),
            OpCode::Pong => Ok(Some(Message::Pong(owned(payload, mask)))),
            OpCode::Close => {
                let mut tmp = [0u8; 125];
                let data = tmp
                    .get_mut(..payload.len())
                    .ok_or(WsError::Protocol("control frame payload over 125 bytes"))?;
                data.copy_from_slice(payload);
                if let Some(mask) = mask {
                    apply_mask(data, mask, 0);
                }
                Ok(Some(Message::Close(parse_close(data)?)))
            }
            OpCode::Text | OpCode::Binary => {
                self.frag_opcode = Some(head.opcode);
                self.frag_rsv1 = head.rsv1;
                self.utf8 = Utf8Validator::default();
                self.append(payload, mask, head.fin)
            }
            OpCode::Continuation => self.append(payload, mask, head.fin),
        }
    }

    /// Adds a data frame's payload to the message; returns it when `fin`.
    fn append(
        &mut self,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        fin: bool,
    ) -> Result<Option<Message>, WsError> {
        let start = self.frag.len();
        self.frag.extend_from_slice(payload);
        let piece = &mut self.frag[start..];
        if let Some(mask) = mask {
            apply_mask(piece, mask, 0);
        }
        let text = self.frag_opcode == Some(OpCode::Text);
        if text && !self.frag_rsv1 {
            self.utf8.feed(piece)?;
            if fin && !self.utf8.is_complete() {
                return Err(WsError::InvalidUtf8);
            }
        }
        if !fin {
            return Ok(None);
        }
        // Hand the buffer over instead of copying it; the decoder is left
        // with an empty Vec, i.e. no heap memory between messages.
        let data = Bytes::from(std::mem::take(&mut self.frag));
        self.last_rsv1 = self.frag_rsv1;
        self.reset();
        Ok(Some(if text {
            Message::Text(data)
        } else {
            Message::Binary(data)
        }))
    }
}

/// An owned, unmasked copy of a payload.
fn owned(payload: &[u8], mask: Option<[u8; 4]>) -> Bytes {
    match mask {
        None => Bytes::copy_from_slice(payload),
        Some(mask) => {
            let mut v = payload.to_vec();
            apply_mask(&mut v, mask, 0);
            Bytes::from(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::client_frame;

    const MASK: [u8; 4] = [1, 2, 3, 4];

    fn server() -> Decoder {
        Decoder::new(DecoderConfig {
            max_message_size: 1 << 20,
            ..DecoderConfig::default()
        })
    }

    fn fragment(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = client_frame(op, payload, MASK);
        if !fin {
            f[0] &= 0x7F;
        }
        f
    }

    #[test]
    fn idle_decoder_holds_no_heap_memory() {
        let mut dec = server();
        let a = fragment(OpCode::Binary, false, &[1u8; 100_000]);
        let b = fragment(OpCode::Continuation, true, &[2u8; 100_000]);
        assert_eq!(dec.decode(&a), Ok((a.len(), None)));
        assert!(dec.frag.capacity() >= 100_000);
        let (n, msg) = dec.decode(&b).unwrap();
        assert_eq!(n, b.len());
        assert!(matches!(msg, Some(Message::Binary(ref d)) if d.len() == 200_000));
        assert_eq!(dec.frag.capacity(), 0);
        // A small fragmented text message, too.
        let a = fragment(OpCode::Text, false, b"ab");
        let b = fragment(OpCode::Continuation, true, b"cd");
        dec.decode(&a).unwrap();
        assert!(dec.frag.capacity() > 0);
        dec.decode(&b).unwrap();
        assert_eq!(dec.frag.capacity(), 0);
        assert!(!dec.in_message());
    }

    #[test]
    fn partial_check_state_is_per_frame() {
        let mut dec = server();
        let f = client_frame(OpCode::Text, "é".repeat(100).as_bytes(), MASK);
        assert_eq!(dec.decode(&f[..20]), Ok((0, None)));
        assert_eq!(dec.partial.map(|p| p.checked), Some(20 - 8));
        assert_eq!(dec.decode(&f[..21]), Ok((0, None)));
        assert_eq!(dec.partial.map(|p| p.checked), Some(21 - 8));
        assert!(dec.decode(&f).unwrap().1.is_some());
        assert!(dec.partial.is_none());
        // A different frame at the head starts over instead of reusing state.
        let g = client_frame(OpCode::Text, "€".repeat(100).as_bytes(), [9, 9, 9, 9]);
        assert_eq!(dec.decode(&g[..21]), Ok((0, None)));
        assert_eq!(dec.decode(&f[..21]), Ok((0, None)));
        assert_eq!(dec.partial.map(|p| p.checked), Some(21 - 8));
    }

    #[test]
    fn default_config_is_a_strict_server() {
        let c = DecoderConfig::default();
        assert!(c.require_mask);
        assert!(!c.allow_rsv1);
        assert_eq!(c.max_message_size, 64 * 1024);
    }
}
