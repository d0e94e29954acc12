//! Layer names looked up by the fast encoder: byte equality of short strings, inline, and a
//! small index of a schema's layer names. (Byte equality only: the text notation of
//! architectures is parsed in Python.)
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
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => (0..n - 8).step_by(8).all(|i| w8(a, i) == w8(b, i)) && w8(a, n - 8) == w8(b, n - 8),
    }
}

/// Index of a few short names (the layer names of a schema): an open-addressed table four
/// times their number, hashed from at most two words of the name and its length.
///
/// The encoder looks a layer's name up once per layer dict; a general hash map (hashing every
/// byte, then probing a group of control bytes) took a sixth of the encoder's time.
#[derive(Debug, Clone)]
pub struct NameIndex {
    /// Slot -> name index + 1 (0 empty).
    slots: Vec<u32>,
    names: Vec<Box<[u8]>>,
}

impl NameIndex {
    /// Index `names` (distinct); `get` returns positions in this order.
    #[must_use]
    pub fn new<I: IntoIterator<Item = Box<[u8]>>>(names: I) -> Self {
        let names: Vec<Box<[u8]>> = names.into_iter().collect();
        let size = (4 * names.len()).next_power_of_two().max(8);
        let mut slots = vec![0u32; size];
        for (i, name) in names.iter().enumerate() {
            let mut s = name_hash(name) as usize & (size - 1);
            while slots[s] != 0 {
                s = (s + 1) & (size - 1);
            }
            slots[s] = i as u32 + 1;
        }
        NameIndex { slots, names }
    }

    /// Position of `name`, if indexed.
    #[inline]
    #[must_use]
    pub fn get(&self, name: &[u8]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut s = name_hash(name) as usize & mask;
        loop {
            let i = self.slots[s] as usize;
            if i == 0 {
                return None;
            }
            if eq_bytes(&self.names[i - 1], name) {
                return Some(i - 1);
            }
            s = (s + 1) & mask;
        }
    }
}

/// A hash of a short name: its first and last (up to) eight bytes and its length, mixed by one
/// multiplication whose high bits are folded down.
#[inline]
fn name_hash(b: &[u8]) -> u64 {
    let n = b.len();
    let (x, y) = match n {
        0..=3 => (b.iter().fold(0u64, |h, &c| (h << 8) | u64::from(c)), 0),
        4..=7 => (u64::from(w4(b, 0)), u64::from(w4(b, n - 4))),
        _ => (w8(b, 0), w8(b, n - 8)),
    };
    let h = (x ^ y.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 32)
}

#[inline]
fn w8(s: &[u8], i: usize) -> u64 {
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
}

#[inline]
fn w4(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

#[cfg(test)]
mod tests {
    use super::{eq_bytes, NameIndex};

    #[test]
    fn a_name_index_finds_its_names_and_nothing_else() {
        let layers = [
            "C_2D",
            "DC_2D",
            "MP_2D",
            "AP_2D",
            "GAP_2D",
            "GMP_2D",
            "FLAT",
            "R_2D",
            "BN_2D",
            "IN_2D",
            "DO",
            "D",
            "RES_2D",
            "BOT_2D",
            "Rescaling",
            "GlobalAveragePooling2D",
            "",
            "x",
        ];
        let idx = NameIndex::new(layers.iter().map(|n| n.as_bytes().into()));
        for (i, n) in layers.iter().enumerate() {
            assert_eq!(idx.get(n.as_bytes()), Some(i), "{n}");
        }
        for n in [
            "C_2d",
            "C_2D ",
            "GlobalAveragePooling3D",
            "GlobalMaxPooling2D",
            "DD",
            "y",
            "Rescalinh",
        ] {
            assert_eq!(idx.get(n.as_bytes()), None, "{n}");
        }
        // Many names sharing their first and last eight bytes (colliding hashes) still resolve.
        let many: Vec<String> = (0..200).map(|i| format!("Layer____{i:03}____Type")).collect();
        let idx = NameIndex::new(many.iter().map(|n| n.as_bytes().into()));
        for (i, n) in many.iter().enumerate() {
            assert_eq!(idx.get(n.as_bytes()), Some(i));
        }
        assert_eq!(idx.get(b"Layer____200____Type"), None);
        assert_eq!(NameIndex::new(std::iter::empty()).get(b"C_2D"), None);
    }

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

#[cfg(test)]
mod against_slices {
    use super::*;

    #[test]
    fn eq_bytes_is_slice_equality_at_every_length() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..40 {
            let a = &base[..n];
            assert!(eq_bytes(a, a));
            for flip in 0..n {
                let mut b = a.to_vec();
                b[flip] ^= 1;
                assert!(!eq_bytes(a, &b), "n {n}, byte {flip}");
            }
            if n > 0 {
                assert!(!eq_bytes(a, &base[..n - 1]));
            }
        }
    }
}
