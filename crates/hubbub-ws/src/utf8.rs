//! Incremental UTF-8 validation across fragment boundaries.

use crate::error::WsError;

/// Validates a text message piece by piece. A character split between
/// pieces is carried over (at most 3 bytes), so invalid input is rejected in
/// the piece where it appears rather than at the end of the message.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8Validator {
    carry: [u8; 4],
    len: u8,
}

impl Utf8Validator {
    /// Validates the next piece of the message.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), WsError> {
        if self.len > 0 {
            let carried = usize::from(self.len);
            let take = data.len().min(4 - carried);
            let mut tmp = self.carry;
            tmp[carried..carried + take].copy_from_slice(&data[..take]);
            match std::str::from_utf8(&tmp[..carried + take]) {
                Ok(_) => data = &data[take..],
                // The carried character completed (it is the first one, and
                // it is longer than the carried bytes); the rest of `data` is
                // checked below, from the end of that character.
                Err(e) if e.valid_up_to() > carried => data = &data[e.valid_up_to() - carried..],
                Err(e) if e.error_len().is_some() => return Err(WsError::InvalidUtf8),
                Err(_) => {
                    // Still a prefix of a character, and `data` is used up.
                    self.carry = tmp;
                    self.len = (carried + take) as u8;
                    return Ok(());
                }
            }
            self.len = 0;
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(WsError::InvalidUtf8),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                let n = tail.len().min(4);
                self.carry[..n].copy_from_slice(&tail[..n]);
                self.len = n as u8;
                Ok(())
            }
        }
    }

    /// True when the pieces so far end on a character boundary.
    pub(crate) fn is_complete(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Validator;

    fn feed_split(data: &[u8], splits: &[usize]) -> Result<bool, usize> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for (i, &end) in splits
            .iter()
            .chain(std::iter::once(&data.len()))
            .enumerate()
        {
            if v.feed(&data[start..end]).is_err() {
                return Err(i);
            }
            start = end;
        }
        Ok(v.is_complete())
    }

    #[test]
    fn every_split_of_valid_text_is_accepted() {
        let s = "aé€𝄞z𝄞€é".as_bytes();
        for a in 0..=s.len() {
            for b in a..=s.len() {
                assert_eq!(feed_split(s, &[a, b]), Ok(true), "{a} {b}");
            }
        }
        // Byte by byte.
        let splits: Vec<usize> = (1..s.len()).collect();
        assert_eq!(feed_split(s, &splits), Ok(true));
    }

    #[test]
    fn incomplete_end_is_not_complete() {
        assert_eq!(feed_split(b"a\xe2\x82", &[]), Ok(false));
        assert_eq!(feed_split(b"a\xf0\x9d\x84", &[2]), Ok(false));
    }

    #[test]
    fn invalid_fails_in_the_piece_where_it_appears() {
        // Overlong, surrogate, above U+10FFFF, lone continuation, bad lead.
        for bad in [
            &b"\xc0\xaf"[..],
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\x80",
            b"\xff",
        ] {
            let mut data = b"ok".to_vec();
            data.extend_from_slice(bad);
            assert_eq!(feed_split(&data, &[2]), Err(1), "{bad:?}");
        }
        // The first bytes of a code point above U+10FFFF are already invalid
        // before the character is complete.
        assert_eq!(feed_split(b"\xf4\x90", &[1]), Err(1));
        assert_eq!(feed_split(b"\xf4\x90\x80\x80", &[1, 2, 3]), Err(1));
        // A carried prefix followed by a non-continuation byte.
        assert_eq!(feed_split(b"\xe2\x82a", &[2]), Err(1));
        // Valid carry completion, then an error later in the same piece.
        assert_eq!(feed_split(b"\xe2\x82\xacabc\xff", &[1]), Err(1));
    }
}
