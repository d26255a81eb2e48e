//! The little-endian binary form of the log's records and the snapshot,
//! with an FNV-1a checksum that tells a torn or damaged write.

use std::io::{self, Write};

/// FNV-1a, 32 bits, continued from `h`.
pub(crate) fn fnv(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// FNV-1a's starting value.
pub(crate) const FNV0: u32 = 0x811c_9dc5;

/// Writes fields, hashing what it writes.
pub(crate) struct Enc<W> {
    pub w: W,
    pub hash: u32,
}

impl<W: Write> Enc<W> {
    pub fn new(w: W) -> Self {
        Enc { w, hash: FNV0 }
    }
    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.hash = fnv(self.hash, b);
        self.w.write_all(b)
    }
    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.bytes(&[v])
    }
    pub fn u16(&mut self, v: u16) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn f64(&mut self, v: f64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    pub fn opt(&mut self, v: Option<f64>) -> io::Result<()> {
        self.u8(v.is_some() as u8)?;
        self.f64(v.unwrap_or(0.0))
    }
    pub fn str(&mut self, s: &str) -> io::Result<()> {
        self.u32(s.len() as u32)?;
        self.bytes(s.as_bytes())
    }
}

/// Reads fields; None at the end of the input.
pub(crate) struct Dec<'a> {
    pub b: &'a [u8],
}

impl<'a> Dec<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Some(a)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.arr().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.arr().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.arr().map(u64::from_le_bytes)
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.arr().map(i64::from_le_bytes)
    }
    pub fn f64(&mut self) -> Option<f64> {
        self.arr().map(f64::from_le_bytes)
    }
    pub fn opt(&mut self) -> Option<Option<f64>> {
        let some = self.u8()? != 0;
        let v = self.f64()?;
        Some(some.then_some(v))
    }
    pub fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    /// A length that the rest of the input can hold `size`-byte items of.
    pub fn len(&mut self, size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.checked_mul(size)? <= self.b.len()).then_some(n)
    }
}
