//! Showing client input in error messages without echoing all of it.
//!
//! An error that names the offending value helps the client; one that
//! copies a megabyte channel name back turns every bad command into a
//! megabyte of output. Every echo of input goes through [`quote`], and every
//! error message, whatever it was built from, through [`limit`].

/// Most characters of an input shown in an error message.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Longest error message, in bytes (the texts of decoders, such as
/// serde's, may hold input of their own).
pub const MAX_MESSAGE_BYTES: usize = 512;

/// `input` as an escaped, quoted string of at most [`MAX_QUOTED_CHARS`]
/// characters, with `…` inside the quotes when it was cut.
pub fn quote(input: &str) -> String {
    match input.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("{input:?}"),
        Some((end, _)) => format!("{:?}", format!("{}…", &input[..end])),
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] bytes on a character
/// boundary, ending in `…` when it was cut.
pub fn limit(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = message;
    out.truncate(end);
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(quote("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn long_input_is_cut_on_a_char_boundary() {
        let q = quote(&"é".repeat(1_000_000));
        assert_eq!(q.chars().count(), MAX_QUOTED_CHARS + 3);
        assert!(q.ends_with("…\""));
        let m = limit("ü".repeat(1000));
        assert!(m.len() <= MAX_MESSAGE_BYTES, "{}", m.len());
        assert!(m.ends_with('…'));
        assert_eq!(limit("short".into()), "short");
    }
}
