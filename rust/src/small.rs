//! Small matrices on one thread: a few rows at once against one column, no profile.
//!
//! The lane kernel of the matrix routines first lays out a profile of every distinct gene
//! against each of its 32 rows, which pays off over hundreds of columns but costs more than
//! the alignments themselves for a generation's 25 x 25 matrix. Here `SMALL_LANES` rows (sorted
//! by length, so a group's lanes finish together) run in lockstep against one column and read
//! their match scores from the population's dense gene table (gathered once per row of the
//! recursion). Under a symmetric table only one of each pair of cells is aligned and the other
//! mirrored.
//!
//! Exactness: each lane computes every candidate of `Aligner::score`'s linear-gap recursion with
//! the same operations on the same doubles, and keeps their maximum, comparing the candidate that
//! waits on the previous cell last (it shortens the step's dependency chain by one max). The
//! maximum of the same doubles is the same double in any order, except that +0 and -0 compare
//! equal: a cell may hold the other zero. A zero of either sign compares alike and, added to a
//! double, gives that double (or again a zero), and a similarity of zero is always written +0 (the clamp in `ScoreTable::normalise`), so every
//! similarity is the scalar path's double, bit for bit (tested against the matrix routine).

use std::ops::Range;

use crate::align::{Aligner, Gaps};
use crate::error::{Error, Result};
use crate::matrix::Element;
use crate::score::ScoreTable;
use crate::seq::Population;

/// Row sequences aligned together (one AVX-512 vector of f64, two AVX2 ones).
pub const SMALL_LANES: usize = 8;

/// Fill the `rows x cols` matrix `out` (row-major) of similarities of `pop`'s sequences
/// `rows` (as A) against `cols` (as B) on the calling thread. Diagonal cells (i == j) are
/// exactly 1. The values are those of [`crate::matrix::fill_matrix`].
///
/// # Errors
/// [`Error::Index`] when a range leaves the population or `out` has the wrong length.
pub fn fill_small<T: Element>(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [T],
) -> Result<()> {
    for r in [&rows, &cols] {
        if r.start > r.end || r.end > pop.len() {
            return Err(Error::Index {
                index: r.end,
                len: pop.len(),
            });
        }
    }
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Index {
            index: out.len(),
            len: rows.len() * width,
        });
    }
    let half = rows == cols && table.is_symmetric();
    let mut order: Vec<usize> = rows.clone().collect();
    order.sort_by_key(|&i| (pop.seq(i).len(), i));
    let mut put = |i: usize, j: usize, v: f64| {
        let v = if i == j { 1.0 } else { v };
        out[(i - rows.start) * width + (j - cols.start)] = T::from_f64(v);
        if half {
            out[(j - rows.start) * width + (i - cols.start)] = T::from_f64(v);
        }
    };
    let dense = pop.dense_table().filter(|_| table.gaps().is_linear());
    let Some(dense) = dense else {
        // Affine gaps or no dense table: the scalar aligner, pair by pair.
        let mut al = Aligner::default();
        for (g, &i) in order.iter().enumerate() {
            let targets: Vec<usize> = if half {
                order[g..].to_vec()
            } else {
                cols.clone().collect()
            };
            for j in targets {
                put(i, j, pop.similarity(table, i, j, &mut al));
            }
        }
        return Ok(());
    };
    let k = pop.n_distinct_genes();
    let mut buf = Buffers::default();
    for (g, group) in order.chunks(SMALL_LANES).enumerate() {
        let grp = Group::new(pop, group);
        // Under a symmetric table: columns from this group's first row on (a lane skips the
        // columns before its own row: their cells are the mirror of ones already written).
        // Columns go two at a time, neighbours in length order, so little of the shorter
        // one's padding is computed.
        let first = g * SMALL_LANES;
        let mut targets: Vec<(usize, usize)> = if half {
            order.iter().copied().enumerate().skip(first).collect()
        } else {
            cols.clone().map(|j| (usize::MAX, j)).collect()
        };
        if !half {
            targets.sort_by_key(|&(_, j)| pop.seq(j).len());
        }
        for two in targets.chunks(2) {
            let scores = match *two {
                [(_, j1), (_, j2)] => grp.scores([pop.seq(j1), pop.seq(j2)], dense, k, table.gaps(), &mut buf),
                _ => {
                    let (_, j) = two[0];
                    let b = pop.seq(j);
                    grp.scores([b, b], dense, k, table.gaps(), &mut buf)
                }
            };
            for (&(pj, j), scores) in two.iter().zip(scores) {
                for (l, &i) in group.iter().enumerate() {
                    if half && pj < first + l {
                        continue;
                    }
                    let sim = table.normalise(
                        scores[l],
                        pop.seq(i).len(),
                        pop.seq(j).len(),
                        pop.self_scores()[i],
                        pop.self_scores()[j],
                    );
                    put(i, j, sim);
                }
            }
        }
    }
    Ok(())
}

/// Lanes of one step: `SMALL_LANES` rows against each of two columns.
type Step = [[f64; SMALL_LANES]; 2];

/// The kernel's working rows: DP values and one row's gathered match scores, per column.
#[derive(Default)]
struct Buffers {
    h: Vec<Step>,
    sub: Vec<Step>,
}

/// Up to `SMALL_LANES` row sequences (lanes past the real rows repeat the last one).
struct Group<'a> {
    seqs: [&'a [u32]; SMALL_LANES],
    lens: [usize; SMALL_LANES],
    max_len: usize,
}

impl<'a> Group<'a> {
    fn new(pop: &'a Population, rows: &[usize]) -> Self {
        let last = rows.len() - 1;
        let seqs: [&[u32]; SMALL_LANES] = std::array::from_fn(|l| pop.seq(rows[l.min(last)]));
        let lens = seqs.map(<[u32]>::len);
        let max_len = lens.iter().copied().max().unwrap_or(0);
        Group { seqs, lens, max_len }
    }

    /// Raw scores of every lane's row sequence (as A) against each of two column sequences
    /// (as B); linear gaps. The two recursions are independent: running them in one loop gives
    /// the processor two dependency chains to overlap.
    fn scores(&self, bs: [&[u32]; 2], dense: &[f64], k: usize, gaps: Gaps, buf: &mut Buffers) -> Step {
        let n = bs[0].len().max(bs[1].len());
        buf.h.clear();
        buf.h.resize(n + 1, [[0.0; SMALL_LANES]; 2]);
        buf.sub.clear();
        buf.sub.resize(n, [[0.0; SMALL_LANES]; 2]);
        // The kernel reads `dense[a * k + b]` unchecked: check every gene id once here.
        let ok = |g: &u32| (*g as usize) < k;
        assert!(
            dense.len() == k * k
                && bs.iter().all(|b| b.iter().all(ok))
                && self.seqs.iter().all(|s| !s.is_empty() && s.iter().all(ok)),
            "gene ids outside the dense table"
        );
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above); ids checked above.
                return unsafe { kernel_avx512(self, bs, dense, k, gaps, buf) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above); ids checked above.
                return unsafe { kernel_avx2(self, bs, dense, k, gaps, buf) };
            }
        }
        // SAFETY: gene ids and the table's size checked above.
        unsafe { kernel(self, bs, dense, k, gaps, buf) }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(
    grp: &Group<'_>,
    bs: [&[u32]; 2],
    dense: &[f64],
    k: usize,
    gaps: Gaps,
    buf: &mut Buffers,
) -> Step {
    // SAFETY: the caller's contract is the kernel's.
    unsafe { kernel(grp, bs, dense, k, gaps, buf) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(
    grp: &Group<'_>,
    bs: [&[u32]; 2],
    dense: &[f64],
    k: usize,
    gaps: Gaps,
    buf: &mut Buffers,
) -> Step {
    // SAFETY: the caller's contract is the kernel's.
    unsafe { kernel(grp, bs, dense, k, gaps, buf) }
}

/// # Safety
/// `dense` is `k x k`, every gene id of `bs` and of the group's sequences is below `k`, and the
/// buffers have one entry per column of the longer of `bs` (plus one for `h`).
#[inline(always)]
unsafe fn kernel(grp: &Group<'_>, bs: [&[u32]; 2], dense: &[f64], k: usize, gaps: Gaps, buf: &mut Buffers) -> Step {
    let (h, sub) = (&mut buf.h, &mut buf.sub);
    let n = h.len() - 1;
    let g = gaps.open;
    let mut acc = 0.0;
    h[0] = [[0.0; SMALL_LANES]; 2];
    for c in 1..=n {
        // Built incrementally, exactly as the scalar path builds gap runs.
        acc = if c == 1 { gaps.open } else { acc + gaps.extend };
        h[c] = [[acc; SMALL_LANES]; 2];
    }
    let mut out = [[0.0; SMALL_LANES]; 2];
    let mut col0 = 0.0;
    for r in 0..grp.max_len {
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        // This row's match scores of every lane against every gene of each column, gathered
        // from the dense table before the recursion (a lane past its end keeps its last gene:
        // its score was already read off, and padding never flows back into finished cells;
        // past the shorter column's end the cells are padding too, never read).
        let base: [usize; SMALL_LANES] = std::array::from_fn(|l| {
            let s = grp.seqs[l];
            s[r.min(s.len() - 1)] as usize * k
        });
        for (j, b) in bs.iter().enumerate() {
            for (row, &bc) in sub.iter_mut().zip(b.iter()) {
                for l in 0..SMALL_LANES {
                    // SAFETY: base[l] = a * k and bc = b with a, b < k (the caller's contract),
                    // and dense holds k * k values.
                    row[j][l] = unsafe { *dense.get_unchecked(base[l] + bc as usize) };
                }
            }
        }
        let mut diag = h[0];
        let mut left = [[col0; SMALL_LANES]; 2];
        h[0] = left;
        for c in 1..=n {
            let up = h[c];
            let s = &sub[c - 1];
            let mut v = [[0.0; SMALL_LANES]; 2];
            for j in 0..2 {
                for l in 0..SMALL_LANES {
                    // The candidates of Aligner::score's linear path, each computed as there;
                    // the one that depends on the cell just finished (left) is compared last,
                    // so a step waits for one add and one max instead of an add and two maxes.
                    let mut x = diag[j][l] + s[j][l];
                    let gu = up[j][l] + g;
                    if gu > x {
                        x = gu;
                    }
                    let gl = left[j][l] + g;
                    if gl > x {
                        x = gl;
                    }
                    v[j][l] = x;
                }
            }
            diag = up;
            h[c] = v;
            left = v;
        }
        for l in 0..SMALL_LANES {
            if grp.lens[l] == r + 1 {
                for j in 0..2 {
                    out[j][l] = h[bs[j].len()][j][l];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Stop;
    use crate::matrix::{fill_matrix, mirror_missing, Plan};
    use crate::score::{LowerBound, Term};

    fn table(directed: bool, open: f64) -> ScoreTable {
        let t = Term {
            param: 0,
            weight: 0.7,
            norm: 9.0,
        };
        let base = if directed {
            vec![2.0, 0.5, -1.0, -1.0, 1.5, -0.5, -1.0, -2.0, 1.0]
        } else {
            vec![2.0, 0.5, -1.0, 0.5, 1.5, -0.5, -1.0, -0.5, 1.0]
        };
        ScoreTable::new(
            3,
            1,
            base,
            vec![vec![t], vec![], vec![], vec![], vec![t], vec![], vec![], vec![], vec![]],
            Gaps { open, extend: -0.5 },
            LowerBound::Paper,
        )
        .unwrap()
    }

    fn pop(table: &ScoreTable, n: usize) -> Population {
        let (mut codes, mut params, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        let mut x = 7u64;
        for _ in 0..n {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (x >> 60) as usize;
            for _ in 0..len {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                codes.push(((x >> 40) % 3) as u32);
                params.push(((x >> 20) % 9) as f64);
            }
            offsets.push(codes.len());
        }
        Population::new(table, &codes, &params, &offsets).unwrap()
    }

    #[test]
    fn small_equals_the_matrix_routine_bit_for_bit() {
        for (directed, open) in [(false, -0.5), (true, -0.5), (false, -1.5)] {
            let t = table(directed, open);
            let p = pop(&t, 27);
            let n = p.len();
            for (rows, cols) in [(0..n, 0..n), (0..10, 10..n), (5..9, 0..n)] {
                let mut want = vec![0.0f64; rows.len() * cols.len()];
                let plan = Plan::new(&p, rows.clone());
                fill_matrix(
                    &p,
                    &t,
                    &plan,
                    0..plan.n_groups(),
                    rows.clone(),
                    cols.clone(),
                    &mut want,
                    &Stop::never(),
                )
                .unwrap();
                if rows == cols && t.is_symmetric() {
                    mirror_missing(&plan, n, &mut want);
                }
                let mut got = vec![0.0f64; rows.len() * cols.len()];
                fill_small(&p, &t, rows.clone(), cols.clone(), &mut got).unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "directed {directed} open {open} rows {rows:?}");
            }
        }
    }
}
