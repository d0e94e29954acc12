//! Equality of short byte strings (layer names, `when` values), inline.
//!
//! The encoder compares a layer name once per layer dict it reads; for strings of a few bytes
//! the call to `memcmp` that slice `==` makes costs more than the comparison.

/// `a == b`, with word compares (the last one overlapping) rather than a call to `memcmp`.
#[inline]
#[must_use]
pub fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| {
        u64::from_le_bytes([
            s[i],
            s[i + 1],
            s[i + 2],
            s[i + 3],
            s[i + 4],
            s[i + 5],
            s[i + 6],
            s[i + 7],
        ])
    };
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => (0..n - 8).step_by(8).all(|i| w8(a, i) == w8(b, i)) && w8(a, n - 8) == w8(b, n - 8),
    }
}

#[cfg(test)]
mod tests {
    use super::eq_bytes;

    #[test]
    fn agrees_with_slice_equality_at_every_length_and_position() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(eq_bytes(&a, &a.clone()), "n={n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!eq_bytes(&a, &b), "n={n} differing at {i}");
            }
            let mut longer = a.clone();
            longer.push(b'x');
            assert!(!eq_bytes(&a, &longer) && !eq_bytes(&longer, &a), "n={n} against n+1");
        }
    }
}
