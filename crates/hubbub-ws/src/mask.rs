//! Payload masking (RFC 6455 section 5.3).

/// XORs `data` with the 4-byte masking key, in place.
///
/// Exists because every client-to-server payload is masked and every byte of
/// it passes through here, so it works 8 bytes at a time (a `u64` XOR in safe
/// code) instead of byte by byte. `offset` is the position of `data[0]` within
/// the frame payload, which lets a caller unmask a payload in pieces as they
/// arrive. Masking is its own inverse: applying it twice restores the data.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let r = offset % 4;
    let m = [
        mask[r],
        mask[(r + 1) % 4],
        mask[(r + 2) % 4],
        mask[(r + 3) % 4],
    ];
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // Every full chunk is 8 bytes long, so the remainder starts at a position
    // that is a multiple of 4 away from `data[0]`: `m` still lines up.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::apply_mask;

    fn naive(data: &mut [u8], mask: [u8; 4], offset: usize) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= mask[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_naive_for_all_lengths_and_offsets() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let original: Vec<u8> = (0..67u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..original.len() {
            for offset in 0..9 {
                let mut fast = original[..len].to_vec();
                let mut slow = fast.clone();
                apply_mask(&mut fast, mask, offset);
                naive(&mut slow, mask, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn round_trip_at_every_offset() {
        let mask = [0xde, 0xad, 0xbe, 0xef];
        let original: Vec<u8> = (0..=255u8).collect();
        for offset in 0..16 {
            let mut data = original.clone();
            apply_mask(&mut data, mask, offset);
            assert_ne!(data, original);
            apply_mask(&mut data, mask, offset);
            assert_eq!(data, original, "offset {offset}");
        }
    }

    #[test]
    fn piecewise_equals_whole() {
        let mask = [1, 2, 3, 4];
        let original: Vec<u8> = (0..100u8).collect();
        let mut whole = original.clone();
        apply_mask(&mut whole, mask, 0);
        for split in 0..original.len() {
            let mut pieces = original.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            assert_eq!(pieces, whole, "split {split}");
        }
    }
}
