//! Fail-fast UTF-8 checking of a text frame whose payload is still arriving.

use crate::error::WsError;
use crate::frame::MAX_HEADER_LEN;
use crate::mask::apply_mask;
use crate::utf8::Utf8Validator;

/// How far the incomplete text frame at the head of the caller's buffer has
/// been validated. Keyed by the frame's header bytes so that a different
/// frame at the head starts over. This only makes failure faster: the
/// complete frame is validated again when it is decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartialText {
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    /// Payload bytes validated so far.
    pub(crate) checked: usize,
    utf8: Utf8Validator,
}

impl PartialText {
    /// Starts checking the frame with this header; `utf8` is the message's
    /// state before the frame. `None` if `header` is not a frame header.
    pub(crate) fn new(header: &[u8], utf8: Utf8Validator) -> Option<Self> {
        let mut saved = [0u8; MAX_HEADER_LEN];
        saved.get_mut(..header.len())?.copy_from_slice(header);
        Some(PartialText {
            header: saved,
            header_len: header.len(),
            checked: 0,
            utf8,
        })
    }

    /// Whether this state belongs to the frame with this header.
    pub(crate) fn is_for(&self, header: &[u8]) -> bool {
        self.header.get(..self.header_len) == Some(header)
    }

    /// Validates the payload bytes in `available` (the payload received so
    /// far, still masked) that earlier calls have not seen.
    pub(crate) fn check(&mut self, available: &[u8], mask: Option<[u8; 4]>) -> Result<(), WsError> {
        let Some(new) = available.get(self.checked..) else {
            return Ok(());
        };
        match mask {
            None => self.utf8.feed(new)?,
            Some(mask) => {
                let mut tmp = [0u8; 512];
                let mut offset = self.checked;
                for chunk in new.chunks(tmp.len()) {
                    let piece = &mut tmp[..chunk.len()];
                    piece.copy_from_slice(chunk);
                    apply_mask(piece, mask, offset);
                    self.utf8.feed(piece)?;
                    offset += chunk.len();
                }
            }
        }
        self.checked = available.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_only_new_bytes_across_mask_offsets() {
        let text = "€".repeat(400);
        let mask = [5, 6, 7, 8];
        let mut masked = text.as_bytes().to_vec();
        apply_mask(&mut masked, mask, 0);
        let mut p =
            PartialText::new(&[0x81, 0xFE, 4, 176, 5, 6, 7, 8], Utf8Validator::default()).unwrap();
        for end in [1, 2, 3, 513, 514, 1000, 1199] {
            assert_eq!(p.check(&masked[..end], Some(mask)), Ok(()), "{end}");
            assert_eq!(p.checked, end);
        }
        let mut bad = masked.clone();
        bad[1199] ^= 0xC0;
        assert_eq!(p.check(&bad[..1200], Some(mask)), Err(WsError::InvalidUtf8));
        assert!(PartialText::new(&[0u8; 15], Utf8Validator::default()).is_none());
    }
}
