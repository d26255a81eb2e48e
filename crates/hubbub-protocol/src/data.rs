//! What a payload must be for every encoding to carry it alike.
//!
//! `data` stays raw JSON text inside the hub ([`crate::JsonData`]); JSON
//! subscribers get that text verbatim and MessagePack subscribers a
//! transcoding of it. Some valid JSON has no equal in MessagePack, or reads
//! differently once transcoded, and a hub that accepted it would deliver a
//! publication to some subscribers and silently not to others. So a payload
//! is checked once, when it is published, and refused (`bad_request`) if it
//! holds any of:
//!
//! * nesting deeper than [`MAX_DATA_DEPTH`] arrays and objects (decoders
//!   stop at 128 levels, and a message adds up to three around `data`);
//! * a lone surrogate escape such as `"\ud800"` (no UTF-8 string holds it);
//! * a number beyond a 64-bit float (`1e999`);
//! * an integer beyond 64 bits (it would reach MessagePack as a float);
//! * the same key twice in one object (which one wins depends on the
//!   decoder).
//!
//! The check is one pass over the bytes with a fixed-size depth stack; it
//! builds no value tree and allocates only for the keys of objects. Strings
//! are skipped with `memchr`, numbers parsed only when their length could
//! put them out of range, and keys compared by length and first bytes
//! before their text.

use std::borrow::Cow;
use std::fmt;

use crate::excerpt::quote;

/// Deepest nesting of arrays and objects accepted in `data`.
pub const MAX_DATA_DEPTH: usize = 64;

/// Why a payload cannot be published; the text names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    /// More than [`MAX_DATA_DEPTH`] nested arrays and objects.
    TooDeep,
    /// A `\uD800`-`\uDFFF` escape without its pair.
    LoneSurrogate(String),
    /// A number no 64-bit float holds.
    NumberOutOfRange(String),
    /// An integer outside -2^63 .. 2^64-1.
    IntegerTooLarge(String),
    /// A key that appears twice in one object.
    DuplicateKey(String),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::TooDeep => write!(
                f,
                "data nests arrays and objects deeper than {MAX_DATA_DEPTH} levels"
            ),
            DataError::LoneSurrogate(s) => write!(
                f,
                "data holds the lone surrogate escape {s}, which is not a character"
            ),
            DataError::NumberOutOfRange(n) => {
                write!(f, "data holds the number {n}, beyond a 64-bit float")
            }
            DataError::IntegerTooLarge(n) => write!(
                f,
                "data holds the integer {n}, beyond 64 bits; send it as a string"
            ),
            DataError::DuplicateKey(k) => {
                write!(f, "data has the key {k} twice in one object")
            }
        }
    }
}

impl std::error::Error for DataError {}

#[derive(Clone, Copy, Default)]
struct Frame {
    object: bool,
    keys_from: usize,
}

/// Objects with more keys than this are checked for duplicates by sorting
/// when they close; smaller ones, key by key as they are read.
const LINEAR_KEYS: usize = 16;

/// A key with a cheap summary (length and first 8 bytes) to compare first.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    len: usize,
    head: u64,
    text: Cow<'a, str>,
}

impl<'a> Key<'a> {
    fn new(text: Cow<'a, str>) -> Self {
        let mut head = [0u8; 8];
        let n = text.len().min(8);
        head[..n].copy_from_slice(&text.as_bytes()[..n]);
        Key {
            len: text.len(),
            head: u64::from_le_bytes(head),
            text,
        }
    }
}

/// Checks JSON text that is already known to be one valid JSON value (the
/// text of a [`crate::JsonData`]). Anything unexpected is skipped, never a
/// panic: the syntax was checked when the value was read.
pub(crate) fn check(text: &str) -> Result<(), DataError> {
    let b = text.as_bytes();
    let mut stack = [Frame::default(); MAX_DATA_DEPTH];
    let mut depth = 0usize;
    let mut keys: Vec<Key<'_>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c @ (b'{' | b'[') => {
                if depth == MAX_DATA_DEPTH {
                    return Err(DataError::TooDeep);
                }
                stack[depth] = Frame {
                    object: c == b'{',
                    keys_from: keys.len(),
                };
                depth += 1;
                expect_key = c == b'{';
                i += 1;
            }
            b'}' | b']' => {
                if depth > 0 {
                    depth -= 1;
                    let f = stack[depth];
                    if f.object {
                        duplicates(&mut keys[f.keys_from..])?;
                        keys.truncate(f.keys_from);
                    }
                }
                expect_key = false;
                i += 1;
            }
            b',' => {
                expect_key = depth > 0 && stack[depth - 1].object;
                i += 1;
            }
            b'"' => {
                let (end, s) = string(text, i + 1, expect_key)?;
                if expect_key {
                    let key = Key::new(s);
                    let from = stack[depth.saturating_sub(1)].keys_from;
                    let siblings = &keys[from.min(keys.len())..];
                    if siblings.len() < LINEAR_KEYS && siblings.contains(&key) {
                        return Err(DataError::DuplicateKey(quote(&key.text)));
                    }
                    keys.push(key);
                    expect_key = false;
                }
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                // One pass notes what the number holds; only the rare long
                // or exponent-bearing ones are parsed (see `number`).
                let start = i;
                let (mut exponent, mut fraction) = (false, false);
                while i < b.len() {
                    match b[i] {
                        b'0'..=b'9' | b'-' | b'+' => {}
                        b'.' => fraction = true,
                        b'e' | b'E' => exponent = true,
                        _ => break,
                    }
                    i += 1;
                }
                let len = i - start;
                if exponent || !(len <= 18 || (fraction && len <= 308)) {
                    number(&text[start..i])?;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Whether two of a large object's keys are equal (sorted in place; the
/// caller drops them right after). Small objects were checked key by key.
fn duplicates(keys: &mut [Key<'_>]) -> Result<(), DataError> {
    if keys.len() <= LINEAR_KEYS {
        return Ok(());
    }
    keys.sort_unstable();
    match keys.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(DataError::DuplicateKey(quote(&w[0].text))),
        None => Ok(()),
    }
}

fn number(token: &str) -> Result<(), DataError> {
    let exponent = token.bytes().any(|c| matches!(c, b'e' | b'E'));
    let fraction = token.contains('.');
    // Without an exponent, up to 308 digits stay below f64::MAX and up to
    // 18 digits within i64: no need to parse.
    if !exponent && (token.len() <= 18 || (fraction && token.len() <= 308)) {
        return Ok(());
    }
    if exponent || fraction {
        match token.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(()),
            _ => Err(DataError::NumberOutOfRange(cut(token))),
        }
    } else {
        let fits = if token.starts_with('-') {
            token.parse::<i64>().is_ok()
        } else {
            token.parse::<u64>().is_ok()
        };
        if fits {
            Ok(())
        } else {
            Err(DataError::IntegerTooLarge(cut(token)))
        }
    }
}

/// A number as shown in an error: at most 40 digits.
fn cut(token: &str) -> String {
    if token.len() <= 40 {
        token.to_owned()
    } else {
        format!("{}…", &token[..40])
    }
}

/// Scans the string whose contents start at `from` (after the quote);
/// returns the index after its closing quote and, when `want` (a key), its
/// decoded text, borrowed unless it holds escapes.
fn string(text: &str, from: usize, want: bool) -> Result<(usize, Cow<'_, str>), DataError> {
    let b = text.as_bytes();
    let rest = &b[from.min(b.len())..];
    let mut i = from + memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
    if i >= b.len() || b[i] == b'"' {
        let end = i.min(b.len());
        return Ok((end + 1, Cow::Borrowed(&text[from..end])));
    }
    // Escapes: decode (keys) or only check (values).
    let mut out = want.then(|| String::from(&text[from..i]));
    let mut plain = i;
    while i < b.len() && b[i] != b'"' {
        if b[i] != b'\\' {
            i += memchr::memchr2(b'"', b'\\', &b[i..]).unwrap_or(b.len() - i);
            continue;
        }
        if let Some(o) = out.as_mut() {
            o.push_str(&text[plain..i]);
        }
        let esc = b.get(i + 1).copied().unwrap_or(b'"');
        i += 2;
        let ch = match esc {
            b'u' => {
                let (c, next) = unicode_escape(text, i - 2)?;
                i = next;
                c
            }
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            other => other as char,
        };
        if let Some(o) = out.as_mut() {
            o.push(ch);
        }
        plain = i;
    }
    let end = i.min(b.len());
    let decoded = match out {
        Some(mut o) => {
            o.push_str(&text[plain.min(end)..end]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(""),
    };
    Ok((end + 1, decoded))
}

fn hex4(text: &str, at: usize) -> Option<u32> {
    let s = text.get(at..at + 4)?;
    u32::from_str_radix(s, 16).ok()
}

/// Decodes `\uXXXX` (with its low half, for a high surrogate) starting at
/// the backslash `at`; returns the character and the index after it.
fn unicode_escape(text: &str, at: usize) -> Result<(char, usize), DataError> {
    let lone = || DataError::LoneSurrogate(quote(text.get(at..at + 6).unwrap_or("\\u")));
    let hi = hex4(text, at + 2).ok_or_else(lone)?;
    match hi {
        0xD800..=0xDBFF => {
            let low = (text.get(at + 6..at + 8) == Some("\\u"))
                .then(|| hex4(text, at + 8))
                .flatten()
                .filter(|lo| (0xDC00..=0xDFFF).contains(lo))
                .ok_or_else(lone)?;
            let c = 0x10000 + ((hi - 0xD800) << 10) + (low - 0xDC00);
            Ok((char::from_u32(c).ok_or_else(lone)?, at + 12))
        }
        0xDC00..=0xDFFF => Err(lone()),
        c => Ok((char::from_u32(c).ok_or_else(lone)?, at + 6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        check(s).is_ok()
    }

    fn nested(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn ordinary_payloads_pass() {
        for s in [
            r#"{"a":[1,-2,3.5,1e300,-0,"x\"y\\z\n\u00e9\ud83d\ude00"],"b":{"a":null},"c":true}"#,
            r#""just a string""#,
            "18446744073709551615",
            "-9223372036854775808",
            r#"{"\u0061b":1,"ac":2}"#,
            "[]",
            "{}",
        ] {
            assert!(ok(s), "{s}");
        }
        assert!(ok(&nested(MAX_DATA_DEPTH)));
    }

    #[test]
    fn what_some_encoding_cannot_carry_is_refused() {
        assert_eq!(check(&nested(MAX_DATA_DEPTH + 1)), Err(DataError::TooDeep));
        assert!(matches!(
            check(r#"["\ud800"]"#),
            Err(DataError::LoneSurrogate(_))
        ));
        assert!(matches!(
            check(r#""\udc00x""#),
            Err(DataError::LoneSurrogate(_))
        ));
        assert!(matches!(
            check(r#""\ud800\u0041""#),
            Err(DataError::LoneSurrogate(_))
        ));
        assert!(matches!(
            check("1e999"),
            Err(DataError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            check("-1E400"),
            Err(DataError::NumberOutOfRange(_))
        ));
        assert!(matches!(
            check("18446744073709551616"),
            Err(DataError::IntegerTooLarge(_))
        ));
        assert!(matches!(
            check("-9223372036854775809"),
            Err(DataError::IntegerTooLarge(_))
        ));
        assert_eq!(
            check(r#"{"a":1,"b":{"a":2},"a":3}"#),
            Err(DataError::DuplicateKey("\"a\"".into()))
        );
        assert!(matches!(
            check(r#"{"ab":1,"\u0061b":2}"#),
            Err(DataError::DuplicateKey(_))
        ));
    }

    #[test]
    fn large_objects_and_long_strings() {
        let keys: Vec<String> = (0..40).map(|n| format!(r#""key{n}":{n}"#)).collect();
        assert!(ok(&format!("{{{}}}", keys.join(","))));
        let dup = format!(r#"{{{},"key7":0}}"#, keys.join(","));
        assert_eq!(check(&dup), Err(DataError::DuplicateKey("\"key7\"".into())));
        let long = format!(r#"["{0}\n{0}\u00e9{0}\"{0}"]"#, "x".repeat(1000));
        assert!(ok(&long));
        assert!(matches!(
            check(&format!(r#"["{}\ud800"]"#, "x".repeat(1000))),
            Err(DataError::LoneSurrogate(_))
        ));
        assert!(ok(&format!("{}.5", "9".repeat(300))));
        assert!(matches!(
            check(&format!("{}.5", "9".repeat(309))),
            Err(DataError::NumberOutOfRange(_))
        ));
    }

    #[test]
    fn errors_stay_short() {
        let long = "9".repeat(100_000);
        let e = check(&long).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        let key = "k".repeat(100_000);
        let e = check(&format!(r#"{{"{key}":1,"{key}":2}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{e}");
    }
}
