//! The lane kernel: one column sequence B against `LANES` row sequences A at once.
//!
//! Each lane runs the scalar linear-gap recursion of `align.rs` on its own pair
//! (`v = max(diag + s, left + g, up + g)` in f64, computed as `max(diag + s, max(left, up) + g)`:
//! rounding is monotone, so the larger operand gives the larger sum and the maximum is the same
//! double with one addition fewer), so every lane's result is bit for bit the scalar one (no
//! candidate is NaN, and the DP holds no negative zero, so the order of the maximums cannot
//! matter either); the lanes only share the loop. Row sequences of
//! different lengths share a group: shorter lanes run on over padding, which cannot flow
//! back into cells they already finished, and each lane's score is read off when its own
//! last row is done.
//!
//! Substitution scores come from a per-group *profile* laid out `[row][gene][lane]`: the
//! scores of every distinct gene against each lane's gene in that row, so the inner loop
//! does one contiguous load per cell group instead of a gather. There are no intrinsics: the
//! lanes are plain fixed-size arrays that the compiler vectorises; the body is compiled once
//! per instruction set (AVX-512, AVX2, baseline) and picked at run time.

use crate::align::{Gaps, Stop};
use crate::seq::Population;

/// Row sequences aligned together.
pub const LANES: usize = 32;

/// Largest profile a group builds (bytes); a group of longer rows over more distinct genes
/// takes the scalar path instead (same doubles).
pub const MAX_PROFILE_BYTES: usize = 1 << 25;

/// Rows of the kernel between two looks at the stop flag.
const STOP_ROWS: usize = 64;

/// A group of up to `LANES` row sequences with their substitution profile.
pub struct RowGroup {
    /// Length of each lane's row sequence (lanes past the group's rows repeat its last row).
    lens: [usize; LANES],
    max_len: usize,
    k: usize,
    profile: Vec<f64>,
}

impl RowGroup {
    /// Build the group's profile. `rows` must be non-empty and at most `LANES` long; None when
    /// the population has no dense table or the profile would pass [`MAX_PROFILE_BYTES`].
    #[must_use]
    pub fn new(pop: &Population, rows: &[usize]) -> Option<Self> {
        let dense = pop.dense_table()?;
        let k = pop.n_distinct_genes();
        let n_real = rows.len().min(LANES);
        let mut idx = [0usize; LANES];
        let mut lens = [0usize; LANES];
        for l in 0..LANES {
            idx[l] = rows[l.min(n_real - 1)];
            lens[l] = pop.seq(idx[l]).len();
        }
        let max_len = lens.iter().copied().max().unwrap_or(0);
        if max_len.saturating_mul(k).saturating_mul(LANES * 8) > MAX_PROFILE_BYTES {
            return None;
        }
        let mut profile = Vec::with_capacity(max_len * k * LANES);
        // Written in order, one gene's 32 lanes after another (each lane reading its gene's
        // row of the table, the 32 rows side by side); a lane past its end reads zeros.
        let zeros = vec![0.0; k];
        for r in 0..max_len {
            let rows: [&[f64]; LANES] = std::array::from_fn(|l| match pop.seq(idx[l]).get(r) {
                Some(&ga) => &dense[ga as usize * k..(ga as usize + 1) * k],
                None => &zeros[..],
            });
            for b in 0..k {
                let cell: [f64; LANES] = std::array::from_fn(|l| rows[l][b]);
                profile.extend_from_slice(&cell);
            }
        }
        Some(RowGroup {
            lens,
            max_len,
            k,
            profile,
        })
    }

    /// Raw scores of every lane's row sequence (as A) against `b` (as B). Linear gaps only.
    /// NaN once `stop` is requested.
    pub fn scores(&self, b: &[u32], gaps: Gaps, h: &mut Vec<[f64; LANES]>, stop: &Stop) -> [f64; LANES] {
        debug_assert!(gaps.is_linear());
        // Only the length matters: the kernel writes every entry before reading it (zeroing
        // them first cost more than a tenth of a 20-gene alignment).
        h.resize(b.len() + 1, [0.0; LANES]);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                return unsafe { kernel_avx512(self, b, gaps, h, stop) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                return unsafe { kernel_avx2(self, b, gaps, h, stop) };
            }
        }
        kernel(self, b, gaps, h, stop)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(grp: &RowGroup, b: &[u32], gaps: Gaps, h: &mut [[f64; LANES]], stop: &Stop) -> [f64; LANES] {
    kernel(grp, b, gaps, h, stop)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(grp: &RowGroup, b: &[u32], gaps: Gaps, h: &mut [[f64; LANES]], stop: &Stop) -> [f64; LANES] {
    kernel(grp, b, gaps, h, stop)
}

#[inline(always)]
fn kernel(grp: &RowGroup, b: &[u32], gaps: Gaps, h: &mut [[f64; LANES]], stop: &Stop) -> [f64; LANES] {
    let n = b.len();
    let g = gaps.open;
    let k = grp.k;
    let mut acc = 0.0;
    h[0] = [0.0; LANES];
    for c in 1..=n {
        // Built incrementally, exactly as the scalar path builds gap runs.
        acc = if c == 1 { gaps.open } else { acc + gaps.extend };
        h[c] = [acc; LANES];
    }
    let mut out = [0.0; LANES];
    let mut col0 = 0.0;
    for r in 0..grp.max_len {
        if r % STOP_ROWS == STOP_ROWS - 1 && stop.requested() {
            return [f64::NAN; LANES];
        }
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        let slab = &grp.profile[r * k * LANES..(r + 1) * k * LANES];
        let mut diag = h[0];
        let mut left = [col0; LANES];
        h[0] = left;
        for c in 1..=n {
            let up = h[c];
            let at = b[c - 1] as usize * LANES;
            let s: &[f64; LANES] = slab[at..at + LANES].try_into().expect("profile row");
            let mut v = [0.0; LANES];
            for l in 0..LANES {
                // Aligner::score's linear path takes the largest of diag + s, left + g and
                // up + g. Rounding is monotone, so the larger of left and up, plus g, is the
                // larger of left + g and up + g, the same double: one addition fewer per cell
                // (the kernel is bound by vector additions and maximums).
                let x = diag[l] + s[l];
                let gap = (if up[l] > left[l] { up[l] } else { left[l] }) + g;
                v[l] = if gap > x { gap } else { x };
            }
            diag = up;
            h[c] = v;
            left = v;
        }
        for l in 0..LANES {
            if grp.lens[l] == r + 1 {
                out[l] = h[n][l];
            }
        }
    }
    out
}
