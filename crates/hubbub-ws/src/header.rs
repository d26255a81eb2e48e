//! Reading an inbound frame header from the front of a byte slice.

use crate::error::WsError;
use crate::frame::OpCode;

/// The first two header bytes, checked against the rules that need no
/// decoder state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    pub(crate) opcode: OpCode,
    pub(crate) masked: bool,
}

/// Reads and checks the first two bytes; `Ok(None)` if fewer are present.
/// RSV1 is only accepted when `allow_rsv1`, and then only on the first frame
/// of a data message (RFC 7692 section 6.1).
pub(crate) fn read_head(buf: &[u8], allow_rsv1: bool) -> Result<Option<Head>, WsError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x30 != 0 {
        return Err(WsError::Protocol("reserved bits set"));
    }
    let opcode = OpCode::from_bits(b0 & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    if rsv1 {
        if !allow_rsv1 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if !matches!(opcode, OpCode::Text | OpCode::Binary) {
            return Err(WsError::Protocol("RSV1 on a control or continuation frame"));
        }
    }
    if opcode.is_control() {
        if !fin {
            return Err(WsError::Protocol("fragmented control frame"));
        }
        if b1 & 0x7F > 125 {
            return Err(WsError::Protocol("control frame payload over 125 bytes"));
        }
    }
    Ok(Some(Head {
        fin,
        rsv1,
        opcode,
        masked: b1 & 0x80 != 0,
    }))
}

/// Reads the payload length: `(offset just past the length field, length)`,
/// or `Ok(None)` if the length field is not complete yet. The length must
/// use its minimal form (RFC 6455 section 5.2): a 16-bit length under 126
/// or a 64-bit length under 65,536 is a protocol error, so one payload has
/// one encoding and a peer cannot smuggle lengths past a filter.
pub(crate) fn read_length(buf: &[u8]) -> Result<Option<(usize, u64)>, WsError> {
    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    Ok(match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => {
                let len = u16::from_be_bytes([a, b]);
                if len < 126 {
                    return Err(WsError::Protocol("non-minimal 16-bit payload length"));
                }
                Some((4, u64::from(len)))
            }
            _ => None,
        },
        127 => match buf.get(2..10) {
            Some(&[a, b, c, d, e, f, g, h]) => {
                if a & 0x80 != 0 {
                    return Err(WsError::Protocol("64-bit length with the top bit set"));
                }
                let len = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if len <= u64::from(u16::MAX) {
                    return Err(WsError::Protocol("non-minimal 64-bit payload length"));
                }
                Some((10, len))
            }
            _ => None,
        },
        n => Some((2, u64::from(n))),
    })
}

/// The masking key that follows the length field at `at`, if present.
pub(crate) fn read_mask(buf: &[u8], at: usize) -> Option<[u8; 4]> {
    match buf.get(at..at.checked_add(4)?) {
        Some(&[a, b, c, d]) => Some([a, b, c, d]),
        _ => None,
    }
}
