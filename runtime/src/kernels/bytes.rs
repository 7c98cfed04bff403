//! Views of u64 word slices as bytes, for the wire codec and the PRF (no copies on
//! little-endian targets, where a word's memory layout is its little-endian encoding).

/// The words as their little-endian bytes, copied into a fresh buffer (one `memcpy` on
/// little-endian targets).
pub fn words_to_le_bytes(words: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(words));
    extend_le_bytes(&mut out, words);
    out
}

/// Append the words' little-endian bytes to `out` (one `memcpy` on little-endian targets).
pub fn extend_le_bytes(out: &mut Vec<u8>, words: &[u64]) {
    #[cfg(target_endian = "little")]
    out.extend_from_slice(words_as_bytes(words));
    #[cfg(not(target_endian = "little"))]
    out.extend(words.iter().flat_map(|w| w.to_le_bytes()));
}

/// Words parsed from little-endian bytes. Panics unless `bytes.len()` is a multiple of 8
/// (callers check message lengths first).
pub fn le_bytes_to_words(bytes: &[u8]) -> Vec<u64> {
    assert!(
        bytes.len().is_multiple_of(8),
        "le_bytes_to_words: {} bytes is not whole words",
        bytes.len()
    );
    let mut out = vec![0u64; bytes.len() / 8];
    #[cfg(target_endian = "little")]
    words_as_bytes_mut(&mut out).copy_from_slice(bytes);
    #[cfg(not(target_endian = "little"))]
    for (w, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        *w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
    }
    out
}

/// The memory of `words` as bytes (native byte order).
pub fn words_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding and every bit pattern is a valid u8; u8 has alignment 1 and
    // the length is exactly the byte size of the slice, which lives as long as the borrow.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

/// The memory of `words` as mutable bytes (native byte order).
pub fn words_as_bytes_mut(words: &mut [u64]) -> &mut [u8] {
    let len = std::mem::size_of_val(words);
    // SAFETY: as in `words_as_bytes`; additionally every byte pattern written through the view
    // is a valid u64, and the exclusive borrow of `words` is held by the returned slice.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) }
}

/// The memory of an even number of words as AES blocks (16 bytes each), so a PRF can encrypt
/// counter blocks in place in its output. Panics on an odd length.
pub fn words_as_aes_blocks_mut(words: &mut [u64]) -> &mut [aes::Block] {
    assert!(
        words.len().is_multiple_of(2),
        "words_as_aes_blocks_mut: odd length {}",
        words.len()
    );
    let blocks = words.len() / 2;
    // SAFETY: `aes::Block` is `GenericArray<u8, U16>`, a `#[repr(transparent)]` wrapper of
    // `[u8; 16]` (size 16, alignment 1); `blocks · 16` bytes is exactly the slice's size, every
    // bit pattern is valid for both types, and the exclusive borrow moves to the result.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<aes::Block>(), blocks) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_matches_to_le_bytes() {
        for n in [0usize, 1, 2, 7, 1000] {
            let w: Vec<u64> = (0..n as u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let b = words_to_le_bytes(&w);
            let want: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(b, want);
            assert_eq!(le_bytes_to_words(&b), w);
            let mut appended = vec![0xab];
            extend_le_bytes(&mut appended, &w);
            assert_eq!(appended[0], 0xab);
            assert_eq!(&appended[1..], &want[..]);
        }
    }

    #[test]
    fn aes_block_view_covers_the_words() {
        let mut w = vec![0u64; 6];
        let blocks = words_as_aes_blocks_mut(&mut w);
        assert_eq!(blocks.len(), 3);
        blocks[1][0] = 0xff;
        blocks[2][15] = 0x01;
        assert_eq!(w[2].to_le_bytes()[0], 0xff);
        assert_eq!(w[5].to_le_bytes()[7], 0x01);
    }
}
