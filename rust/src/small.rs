//! Small matrices on one thread: a few rows at once against a few columns.
//!
//! The lane kernel of the matrix routines first lays out a profile of every distinct gene of
//! the population's dictionary (hundreds, once a search has run a while) against each of its
//! 32 rows, which pays off over hundreds of columns but costs more than the alignments
//! themselves for a generation's 25 x 25 matrix. Here `SMALL_LANES` rows (sorted by length, so
//! a group's lanes finish together) run in lockstep against `COLUMNS` columns at once (four
//! independent recursions for the processor to overlap), reading their match scores from a
//! profile of the group's rows against only the distinct genes of the columns it meets
//! (gathered once from the dense gene table, then read one vector per cell). Under a symmetric
//! table only one of each pair of cells is aligned and the other mirrored.
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
    // Only the symmetric lane path below does without the population's self scores (it
    // aligns every sequence with itself anyway).
    assert!(
        pop.is_scored() || (half && dense.is_some()),
        "the population has no self scores"
    );
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
    // (Gene ids are checked against the dense table where the profile is read from it.)
    let k = pop.n_distinct_genes();
    let mut buf = Buffers::new(k);
    // Under a symmetric table, the raw scores of the upper triangle (in length order) and the
    // diagonal, normalised once all are known.
    let mut raw = if half { vec![0.0f64; width * width] } else { Vec::new() };
    // Groups of `SMALL_LANES` rows in length order, the shortest rows left over (when the
    // rows do not fill whole groups) forming a group of their own first: its idle lanes then
    // cost the least, where a lone longest row would cost as much as a whole group of the
    // longest (under a symmetric table, a fifth of a 25 x 25 matrix's work). (Aligning a lone
    // longest row's self-alignment one cell at a time instead was slower.)
    let short = order.len() % SMALL_LANES;
    let groups = std::iter::once(&order[..short])
        .filter(|g| !g.is_empty())
        .chain(order[short..].chunks(SMALL_LANES));
    let mut first = 0;
    for group in groups {
        let grp = Group::new(pop, group);
        // Under a symmetric table: columns from this group's first row on (a lane skips the
        // columns before its own row: their cells are the mirror of ones already written).
        // Columns go `COLUMNS` at a time, neighbours in length order, so little of the shorter
        // ones' padding is computed.
        let mut targets: Vec<(usize, usize)> = if half {
            order.iter().copied().enumerate().skip(first).collect()
        } else {
            cols.clone().map(|j| (usize::MAX, j)).collect()
        };
        if !half {
            targets.sort_by_key(|&(_, j)| pop.seq(j).len());
        }
        buf.profile(&grp, targets.iter().map(|&(_, j)| pop.seq(j)), dense, k);
        for (t, some) in targets.chunks(COLUMNS).enumerate() {
            let scores = grp.scores(t * COLUMNS, some.len(), table.gaps(), &mut buf);
            for (&(pj, j), scores) in some.iter().zip(scores) {
                for (l, &i) in group.iter().enumerate() {
                    if half {
                        // Kept raw: the self scores are the diagonal of this very matrix.
                        if pj >= first + l {
                            raw[(i - rows.start) * width + (j - cols.start)] = scores[l];
                        }
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
        first += group.len();
    }
    if half {
        let at = |i: usize, j: usize| (i - rows.start) * width + (j - cols.start);
        let selfs: Vec<f64> = rows.clone().map(|i| raw[at(i, i)]).collect();
        for (a, &i) in order.iter().enumerate() {
            for &j in &order[a..] {
                let sim = table.normalise(
                    raw[at(i, j)],
                    pop.seq(i).len(),
                    pop.seq(j).len(),
                    selfs[i - rows.start],
                    selfs[j - rows.start],
                );
                put(i, j, sim);
            }
        }
    }
    Ok(())
}

/// DP cells of one block of [`fill_few`] at most (about 10 ms: Ctrl-C is looked at between).
const FEW_BLOCK_CELLS: u128 = 1 << 24;

/// The columns `part` (a sub-range of `cols`) of the `rows x cols` matrix `out` (row-major),
/// as [`fill_small`] computes them, cut into blocks run in parallel on the current rayon pool
/// (a few queries against an archive; see [`crate::engine::Tier::FewRows`]). The values are
/// those of [`crate::matrix::fill_matrix`]; `stop` is looked at between blocks.
///
/// # Errors
/// As [`fill_small`]; [`Error::Index`] for a `part` outside `cols`;
/// [`crate::Error::Interrupted`] once `stop` is requested.
pub fn fill_few<T: Element>(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    part: Range<usize>,
    out: &mut [T],
    stop: &crate::align::Stop,
) -> Result<()> {
    use rayon::prelude::*;
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Index {
            index: out.len(),
            len: rows.len() * width,
        });
    }
    if part.start < cols.start || part.end > cols.end || part.start > part.end {
        return Err(Error::Index {
            index: part.end,
            len: cols.end,
        });
    }
    let blocks = few_blocks(pop, &rows, &part);
    let parts: Vec<Option<Vec<T>>> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            if stop.requested() {
                return Ok(None);
            }
            let block = crate::matrix::column_block(&part, b, blocks);
            let mut cells = vec![T::default(); rows.len() * block.len()];
            fill_small(pop, table, rows.clone(), block, &mut cells)?;
            Ok(Some(cells))
        })
        .collect::<Result<_>>()?;
    stop.check()?;
    for (b, cells) in parts.into_iter().enumerate() {
        let block = crate::matrix::column_block(&part, b, blocks);
        let (from, w) = (block.start - cols.start, block.len());
        let Some(cells) = cells.filter(|_| w > 0) else { continue };
        for (r, row) in cells.chunks(w).enumerate() {
            out[r * width + from..r * width + from + w].copy_from_slice(row);
        }
    }
    Ok(())
}

/// Column blocks of [`fill_few`]: enough for every thread, and none over `FEW_BLOCK_CELLS`.
fn few_blocks(pop: &Population, rows: &Range<usize>, cols: &Range<usize>) -> usize {
    let by_size = crate::engine::dp_cells(pop, rows, cols).div_ceil(FEW_BLOCK_CELLS);
    let by_size = usize::try_from(by_size).unwrap_or(usize::MAX);
    crate::matrix::column_blocks(1, cols.len())
        .max(by_size.min(cols.len()))
        .max(1)
}

/// Each row's `k` most similar columns among `cols` (absolute indices; highest similarity
/// first, ties by lower index), computed as [`fill_few`] does: each block keeps its k best
/// per row, merged in the same order, so the result is that of one pass over all columns.
///
/// # Errors
/// As [`fill_few`].
pub fn nearest_few(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    stop: &crate::align::Stop,
) -> Result<crate::matrix::Best> {
    use rayon::prelude::*;
    let mut best = vec![Vec::with_capacity(k + 1); rows.len()];
    if k == 0 {
        return Ok(best);
    }
    let blocks = few_blocks(pop, &rows, &cols);
    let parts: Vec<Option<crate::matrix::Best>> = (0..blocks)
        .into_par_iter()
        .map(|b| {
            if stop.requested() {
                return Ok(None);
            }
            let block = crate::matrix::column_block(&cols, b, blocks);
            let w = block.len();
            let mut sims = vec![0.0f64; rows.len() * w];
            fill_small(pop, table, rows.clone(), block.clone(), &mut sims)?;
            let mut best: crate::matrix::Best = vec![Vec::with_capacity(k.min(w) + 1); rows.len()];
            for (r, b) in best.iter_mut().enumerate() {
                for (x, j) in block.clone().enumerate() {
                    crate::matrix::keep_best(b, k, sims[r * w + x], j);
                }
            }
            Ok(Some(best))
        })
        .collect::<Result<_>>()?;
    stop.check()?;
    for part in parts.iter().flatten() {
        for (r, cands) in part.iter().enumerate() {
            for &(s, j) in cands {
                crate::matrix::keep_best(&mut best[r], k, s, j);
            }
        }
    }
    Ok(best)
}

/// Columns aligned together against a group's rows.
const COLUMNS: usize = 4;

/// Whether the kernels may use the processor's vector instructions: always, except in the tests
/// that run the portable code on a processor that has them (to check both give the same doubles).
#[cfg(not(test))]
#[inline(always)]
fn simd() -> bool {
    true
}

#[cfg(test)]
thread_local! {
    static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn simd() -> bool {
    !PORTABLE.with(std::cell::Cell::get)
}

/// Rows of a self-alignment between two looks at the stop flag (a long sequence's
/// self-alignment can take minutes).
const STOP_ROWS: usize = 64;

/// Lanes of one step: `SMALL_LANES` rows against each of `COLUMNS` columns.
type Step = [[f64; SMALL_LANES]; COLUMNS];

/// The kernel's working memory, reused from group to group.
struct Buffers {
    /// DP values of one row, per column.
    h: Vec<Step>,
    /// `[row][local gene]`: the match score of each lane's gene in that row against a
    /// distinct gene of the group's columns.
    prof: Vec<[f64; SMALL_LANES]>,
    /// Distinct genes of the group's columns, by local id.
    genes: Vec<u32>,
    /// Local id of every gene of the dictionary, or `NONE` (reset after each group).
    local: Vec<u32>,
    /// The group's columns in local ids, one after another, and where each starts.
    cols: Vec<u32>,
    starts: Vec<usize>,
}

const NONE: u32 = u32::MAX;

impl Buffers {
    fn new(k: usize) -> Self {
        Buffers {
            h: Vec::new(),
            prof: Vec::new(),
            genes: Vec::new(),
            local: vec![NONE; k],
            cols: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Number the distinct genes of `columns` and lay out the group's profile against them.
    fn profile<'a>(&mut self, grp: &Group<'_>, columns: impl Iterator<Item = &'a [u32]>, dense: &[f64], k: usize) {
        for &g in &self.genes {
            self.local[g as usize] = NONE;
        }
        self.genes.clear();
        self.cols.clear();
        self.starts.clear();
        for b in columns {
            self.starts.push(self.cols.len());
            for &g in b {
                let slot = &mut self.local[g as usize];
                if *slot == NONE {
                    *slot = self.genes.len() as u32;
                    self.genes.push(g);
                }
                self.cols.push(*slot);
            }
        }
        self.starts.push(self.cols.len());
        self.prof.clear();
        assert!(
            dense.len() == k * k
                && self.genes.iter().all(|&b| (b as usize) < k)
                && grp
                    .seqs
                    .iter()
                    .all(|s| !s.is_empty() && s.iter().all(|&a| (a as usize) < k)),
            "gene ids outside the dense table"
        );
        #[cfg(target_arch = "x86_64")]
        {
            if simd() && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above); ids checked above.
                unsafe { fill_profile_avx512(grp, &self.genes, dense, k, &mut self.prof) };
                return;
            }
        }
        // SAFETY: ids and the table's size checked above.
        unsafe { fill_profile(grp, &self.genes, dense, k, &mut self.prof) };
    }
}

/// Each lane's row of the dense table in row `r` of the group (a lane past its end keeps its
/// last gene: its score was already read off, and padding never flows back into finished cells).
fn lane_rows<'d>(grp: &Group<'_>, r: usize, dense: &'d [f64], k: usize) -> [&'d [f64]; SMALL_LANES] {
    std::array::from_fn(|l| {
        let s = grp.seqs[l];
        let a = s[r.min(s.len() - 1)] as usize;
        &dense[a * k..(a + 1) * k]
    })
}

/// Appends `prof[r * d + x][l]`: the match score of lane l's gene in row r against `genes[x]`.
///
/// # Safety
/// Every gene id of `genes` is below `k`, and `dense` is `k x k`.
unsafe fn fill_profile(grp: &Group<'_>, genes: &[u32], dense: &[f64], k: usize, prof: &mut Vec<[f64; SMALL_LANES]>) {
    for r in 0..grp.max_len {
        let rows = lane_rows(grp, r, dense, k);
        prof.extend(genes.iter().map(|&b| {
            // SAFETY: b < k = the length of every row (the caller's contract).
            std::array::from_fn(|l| unsafe { *rows[l].get_unchecked(b as usize) })
        }));
    }
}

/// [`fill_profile`] with each cell put together in a register from eight loads and stored
/// once (plain loads: a vector gather is no faster here, and much slower on processors with
/// the gather-data-sampling fix).
///
/// # Safety
/// As [`fill_profile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_profile_avx512(
    grp: &Group<'_>,
    genes: &[u32],
    dense: &[f64],
    k: usize,
    prof: &mut Vec<[f64; SMALL_LANES]>,
) {
    use std::arch::x86_64::{_mm512_set_pd, _mm512_storeu_pd};
    prof.reserve(grp.max_len * genes.len());
    for r in 0..grp.max_len {
        let rows = lane_rows(grp, r, dense, k);
        for &b in genes {
            let b = b as usize;
            // SAFETY: b < k = the length of every row (the caller's contract); the vector is
            // stored into capacity reserved above, then counted.
            unsafe {
                let at = |l: usize| *rows[l].get_unchecked(b);
                let v = _mm512_set_pd(at(7), at(6), at(5), at(4), at(3), at(2), at(1), at(0));
                let end = prof.len();
                _mm512_storeu_pd(prof.as_mut_ptr().add(end).cast::<f64>(), v);
                prof.set_len(end + 1);
            }
        }
    }
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

    /// The lanes whose sequence ends at row `r` of the DP (their result is read off there).
    fn finished(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        (0..SMALL_LANES).filter(move |&l| self.lens[l] == r + 1)
    }

    /// Raw scores of every lane's row sequence (as A) against each of the group's columns
    /// `from..from + n_cols` (as B; at most `COLUMNS`, the last one repeated to fill the lanes)
    /// with the profile in `buf`; linear gaps. The recursions are independent: running them in
    /// one loop gives the processor several dependency chains to overlap.
    fn scores(&self, from: usize, n_cols: usize, gaps: Gaps, buf: &mut Buffers) -> Step {
        let Buffers {
            h,
            prof,
            genes,
            cols,
            starts,
            ..
        } = buf;
        let bs: [&[u32]; COLUMNS] = std::array::from_fn(|j| {
            let c = from + j.min(n_cols - 1);
            &cols[starts[c]..starts[c + 1]]
        });
        let n = bs.iter().map(|b| b.len()).max().unwrap_or(0);
        let d = genes.len();
        // The kernel reads the profile unchecked: check its size and every local id here.
        assert!(
            prof.len() == self.max_len * d && bs.iter().all(|b| !b.is_empty() && b.iter().all(|&g| (g as usize) < d)),
            "local gene ids outside the profile"
        );
        // Only the length matters: `first_row` writes every entry before the kernel reads it.
        h.resize(n + 1, [[0.0; SMALL_LANES]; COLUMNS]);
        let bs = &bs;
        #[cfg(target_arch = "x86_64")]
        {
            if simd() && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above); ids checked above.
                return unsafe { kernel_avx512(self, bs, prof, gaps, h) };
            }
            if simd() && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above); ids checked above.
                return unsafe { kernel_avx2(self, bs, prof, gaps, h) };
            }
        }
        // SAFETY: local ids and the profile's size checked above.
        unsafe { kernel(self, bs, prof, gaps, h) }
    }
}

/// The kernel with AVX-512 instructions written out: one vector of 8 lanes per column, the
/// same candidates as [`kernel`] (`vmaxpd a, b` is `if a > b { a } else { b }`, the kernel's
/// `if gu > x { x = gu }`), with one addition fewer: `max(up, left) + g` rather than the larger
/// of `up + g` and `left + g`, the same double (rounding is monotone: the larger operand gives
/// the larger sum, equal operands the same sum). The step is bound by its vector additions and
/// maximums, not by the chain through `left`, which this lengthens by one maximum. Written by
/// hand because the compiler, left to itself with four columns, vectorises across the columns
/// and shuffles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_avx512(
    grp: &Group<'_>,
    bs: &[&[u32]; COLUMNS],
    prof: &[[f64; SMALL_LANES]],
    gaps: Gaps,
    h: &mut [Step],
) -> Step {
    use std::arch::x86_64::{__m512d, _mm512_add_pd, _mm512_loadu_pd, _mm512_max_pd, _mm512_set1_pd, _mm512_storeu_pd};
    const _: () = assert!(SMALL_LANES == 8, "one AVX-512 vector of f64 per column");
    let n = h.len() - 1;
    let d = prof.len() / grp.max_len;
    let lens: [usize; COLUMNS] = bs.map(<[u32]>::len);
    first_row(h, gaps, |x| [[x; SMALL_LANES]; COLUMNS]);
    let g = _mm512_set1_pd(gaps.open);
    let mut out = [[0.0; SMALL_LANES]; COLUMNS];
    let mut col0 = 0.0;
    let hp = h.as_mut_ptr().cast::<f64>();
    for r in 0..grp.max_len {
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        let slab = prof[r * d..(r + 1) * d].as_ptr().cast::<f64>();
        // SAFETY (every pointer below): h has n + 1 steps of COLUMNS x 8 doubles; the profile
        // row has d vectors and every local id is below d (the caller's contract).
        unsafe {
            let mut diag: [__m512d; COLUMNS] = std::array::from_fn(|j| _mm512_loadu_pd(hp.add(j * SMALL_LANES)));
            let mut left: [__m512d; COLUMNS] = [_mm512_set1_pd(col0); COLUMNS];
            for j in 0..COLUMNS {
                _mm512_storeu_pd(hp.add(j * SMALL_LANES), left[j]);
            }
            for c in 1..=n {
                let hc = hp.add(c * COLUMNS * SMALL_LANES);
                for j in 0..COLUMNS {
                    let at = *bs[j].get_unchecked((c - 1).min(lens[j] - 1)) as usize;
                    let s = _mm512_loadu_pd(slab.add(at * SMALL_LANES));
                    let up = _mm512_loadu_pd(hc.add(j * SMALL_LANES));
                    let x = _mm512_add_pd(diag[j], s);
                    let x = _mm512_max_pd(_mm512_add_pd(_mm512_max_pd(up, left[j]), g), x);
                    _mm512_storeu_pd(hc.add(j * SMALL_LANES), x);
                    diag[j] = up;
                    left[j] = x;
                }
            }
        }
        for l in grp.finished(r) {
            for j in 0..COLUMNS {
                out[j][l] = h[lens[j]][j][l];
            }
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(
    grp: &Group<'_>,
    bs: &[&[u32]; COLUMNS],
    prof: &[[f64; SMALL_LANES]],
    gaps: Gaps,
    h: &mut [Step],
) -> Step {
    // SAFETY: the caller's contract is the kernel's.
    unsafe { kernel(grp, bs, prof, gaps, h) }
}

/// One step of one column's recursion in every lane: the candidates of `Aligner::score`'s
/// linear path, each computed as there; the one that depends on the cell just finished
/// (left) is compared last, so a step waits for one add and one max instead of an add and
/// two maxes.
#[inline(always)]
fn cell(
    diag: &[f64; SMALL_LANES],
    up: &[f64; SMALL_LANES],
    left: &[f64; SMALL_LANES],
    s: &[f64; SMALL_LANES],
    g: f64,
) -> [f64; SMALL_LANES] {
    let mut v = [0.0; SMALL_LANES];
    for l in 0..SMALL_LANES {
        let mut x = diag[l] + s[l];
        let gu = up[l] + g;
        if gu > x {
            x = gu;
        }
        let gl = left[l] + g;
        if gl > x {
            x = gl;
        }
        v[l] = x;
    }
    v
}

/// # Safety
/// `prof` is `grp.max_len x d` (d distinct genes), every local id of `bs` is below `d`, every
/// `bs[j]` is non-empty, and `h` has one entry per column of the longest of `bs`, plus one.
#[inline(always)]
unsafe fn kernel(
    grp: &Group<'_>,
    bs: &[&[u32]; COLUMNS],
    prof: &[[f64; SMALL_LANES]],
    gaps: Gaps,
    h: &mut [Step],
) -> Step {
    let n = h.len() - 1;
    let d = prof.len() / grp.max_len;
    let g = gaps.open;
    // Each column's local ids, padded to `n` with its last one (cells past a column's end are
    // padding: computed, never read).
    let ids: [&[u32]; COLUMNS] = *bs;
    let lens: [usize; COLUMNS] = ids.map(<[u32]>::len);
    first_row(h, gaps, |x| [[x; SMALL_LANES]; COLUMNS]);
    let mut out = [[0.0; SMALL_LANES]; COLUMNS];
    let mut col0 = 0.0;
    for r in 0..grp.max_len {
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        let slab = &prof[r * d..(r + 1) * d];
        let mut diag = h[0];
        let mut left = [[col0; SMALL_LANES]; COLUMNS];
        h[0] = left;
        for c in 1..=n {
            let up = h[c];
            // This step's match scores, one vector per column.
            let s: Step = std::array::from_fn(|j| {
                // SAFETY: min(c - 1, len - 1) < len, and every local id is below d = slab.len()
                // (the caller's contract).
                unsafe {
                    let at = *ids[j].get_unchecked((c - 1).min(lens[j] - 1)) as usize;
                    *slab.get_unchecked(at)
                }
            });
            let mut v = [[0.0; SMALL_LANES]; COLUMNS];
            for j in 0..COLUMNS {
                v[j] = cell(&diag[j], &up[j], &left[j], &s[j], g);
            }
            diag = up;
            h[c] = v;
            left = v;
        }
        for l in grp.finished(r) {
            for j in 0..COLUMNS {
                out[j][l] = h[lens[j]][j][l];
            }
        }
    }
    out
}

/// Self scores (each sequence aligned with itself) of every sequence of `pop`, `SMALL_LANES`
/// sequences at a time in lockstep, each lane its own row and column; None when the population
/// has no dense table or the gaps are affine (then the scalar aligner does it). Each lane runs
/// the recursion of [`kernel`], so each score is the scalar aligner's double. Groups run in
/// parallel when `parallel`; a requested `stop` makes the values meaningless (the caller
/// checks it).
#[must_use]
pub fn self_scores(pop: &Population, gaps: Gaps, parallel: bool, stop: &crate::align::Stop) -> Option<Vec<f64>> {
    use rayon::prelude::*;
    let dense = pop.dense_table().filter(|_| gaps.is_linear())?;
    let k = pop.n_distinct_genes();
    let n = pop.len();
    assert!(
        dense.len() == k * k && (0..n).all(|i| !pop.seq(i).is_empty() && pop.seq(i).iter().all(|&g| (g as usize) < k)),
        "gene ids outside the dense table"
    );
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (pop.seq(i).len(), i));
    let group = |rows: &[usize], h: &mut Vec<[f64; SMALL_LANES]>, ids: &mut Vec<[u32; SMALL_LANES]>| {
        if stop.requested() {
            return [f64::NAN; SMALL_LANES];
        }
        let grp = Group::new(pop, rows);
        #[cfg(target_arch = "x86_64")]
        {
            if simd() && std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above); ids checked above.
                return unsafe { diagonal_avx512(&grp, dense, k, gaps, h, ids, stop) };
            }
        }
        // SAFETY: ids and the table's size checked above.
        unsafe { diagonal(&grp, dense, k, gaps, h, ids, stop) }
    };
    let per_group: Vec<[f64; SMALL_LANES]> = if parallel {
        order
            .par_chunks(SMALL_LANES)
            .map_init(|| (Vec::new(), Vec::new()), |(h, ids), rows| group(rows, h, ids))
            .collect()
    } else {
        let (mut h, mut ids) = (Vec::new(), Vec::new());
        order
            .chunks(SMALL_LANES)
            .map(|rows| group(rows, &mut h, &mut ids))
            .collect()
    };
    let mut out = vec![0.0; n];
    for (rows, scores) in order.chunks(SMALL_LANES).zip(per_group) {
        for (&i, s) in rows.iter().zip(scores) {
            out[i] = s;
        }
    }
    Some(out)
}

/// [`diagonal`] with AVX-512 instructions written out: the same adds and comparisons (see
/// [`kernel_avx512`]), and each step's match scores put together from eight plain loads (a
/// vector gather is much slower on processors with the gather-data-sampling fix).
///
/// # Safety
/// As [`diagonal`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn diagonal_avx512(
    grp: &Group<'_>,
    dense: &[f64],
    k: usize,
    gaps: Gaps,
    h: &mut Vec<[f64; SMALL_LANES]>,
    ids: &mut Vec<[u32; SMALL_LANES]>,
    stop: &crate::align::Stop,
) -> [f64; SMALL_LANES] {
    use std::arch::x86_64::{
        _mm512_add_pd, _mm512_loadu_pd, _mm512_max_pd, _mm512_set1_pd, _mm512_set_pd, _mm512_storeu_pd,
    };
    let n = diagonal_setup(grp, gaps, h, ids);
    let g = _mm512_set1_pd(gaps.open);
    let mut out = [0.0; SMALL_LANES];
    let mut col0 = 0.0;
    let hp = h.as_mut_ptr().cast::<f64>();
    let d = dense.as_ptr();
    for r in 0..n {
        if r % STOP_ROWS == STOP_ROWS - 1 && stop.requested() {
            return [f64::NAN; SMALL_LANES];
        }
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        let base: [usize; SMALL_LANES] = std::array::from_fn(|l| ids[r][l] as usize * k);
        // SAFETY (every pointer below): h has n + 1 rows of 8 doubles; base[l] = a * k and
        // every column id b satisfy a, b < k, and dense holds k * k values (the caller's contract).
        unsafe {
            let mut diag = _mm512_loadu_pd(hp);
            let mut left = _mm512_set1_pd(col0);
            _mm512_storeu_pd(hp, left);
            for c in 1..=n {
                let col = ids.get_unchecked(c - 1);
                let at = |l: usize| *d.add(base[l] + col[l] as usize);
                let s = _mm512_set_pd(at(7), at(6), at(5), at(4), at(3), at(2), at(1), at(0));
                let up = _mm512_loadu_pd(hp.add(c * SMALL_LANES));
                let mut x = _mm512_add_pd(diag, s);
                x = _mm512_max_pd(_mm512_add_pd(up, g), x);
                x = _mm512_max_pd(_mm512_add_pd(left, g), x);
                _mm512_storeu_pd(hp.add(c * SMALL_LANES), x);
                diag = up;
                left = x;
            }
        }
        for l in grp.finished(r) {
            out[l] = h[r + 1][l];
        }
    }
    out
}

/// The DP's first row: 0, then a run of gaps built incrementally, exactly as the scalar path
/// builds gap runs; `lanes(x)` is one entry with `x` in every lane.
fn first_row<T>(h: &mut [T], gaps: Gaps, lanes: impl Fn(f64) -> T) {
    let mut acc = 0.0;
    for (c, cell) in h.iter_mut().enumerate() {
        acc = match c {
            0 => 0.0,
            1 => gaps.open,
            _ => acc + gaps.extend,
        };
        *cell = lanes(acc);
    }
}

/// Lay out a self-alignment group: each lane's column c (a lane past its end repeats its last
/// gene: padding, never read) and the first DP row; returns the group's longest length.
fn diagonal_setup(
    grp: &Group<'_>,
    gaps: Gaps,
    h: &mut Vec<[f64; SMALL_LANES]>,
    ids: &mut Vec<[u32; SMALL_LANES]>,
) -> usize {
    let n = grp.max_len;
    ids.clear();
    ids.extend((0..n).map(|c| std::array::from_fn(|l| grp.seqs[l][c.min(grp.lens[l] - 1)])));
    h.resize(n + 1, [0.0; SMALL_LANES]); // every entry written by `first_row`
    first_row(h, gaps, |x| [x; SMALL_LANES]);
    n
}

/// Raw scores of each lane's sequence against itself.
///
/// # Safety
/// `dense` is `k x k` and every gene id of the group's sequences is below `k`.
#[inline(always)]
unsafe fn diagonal(
    grp: &Group<'_>,
    dense: &[f64],
    k: usize,
    gaps: Gaps,
    h: &mut Vec<[f64; SMALL_LANES]>,
    ids: &mut Vec<[u32; SMALL_LANES]>,
    stop: &crate::align::Stop,
) -> [f64; SMALL_LANES] {
    let n = diagonal_setup(grp, gaps, h, ids);
    let g = gaps.open;
    let mut out = [0.0; SMALL_LANES];
    let mut col0 = 0.0;
    for r in 0..n {
        if r % STOP_ROWS == STOP_ROWS - 1 && stop.requested() {
            return [f64::NAN; SMALL_LANES];
        }
        col0 = if r == 0 { gaps.open } else { col0 + gaps.extend };
        let base: [usize; SMALL_LANES] = std::array::from_fn(|l| ids[r][l] as usize * k);
        let mut diag = h[0];
        let mut left = [col0; SMALL_LANES];
        h[0] = left;
        for c in 1..=n {
            let up = h[c];
            let col = &ids[c - 1];
            // SAFETY: base[l] = a * k and col[l] = b with a, b < k (the caller's contract).
            let s: [f64; SMALL_LANES] =
                std::array::from_fn(|l| unsafe { *dense.get_unchecked(base[l] + col[l] as usize) });
            let v = cell(&diag, &up, &left, &s, g);
            diag = up;
            h[c] = v;
            left = v;
        }
        for l in grp.finished(r) {
            out[l] = h[r + 1][l];
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
    fn fill_few_computes_only_its_part_of_the_columns() {
        let t = table(false, -0.5);
        let p = pop(&t, 60);
        let (rows, cols) = (0..5, 5..60);
        let mut whole = vec![0.0f64; 5 * 55];
        fill_few(
            &p,
            &t,
            rows.clone(),
            cols.clone(),
            cols.clone(),
            &mut whole,
            &Stop::never(),
        )
        .unwrap();
        let mut parts = vec![f64::NAN; 5 * 55];
        fill_few(&p, &t, rows.clone(), cols.clone(), 5..20, &mut parts, &Stop::never()).unwrap();
        // Only columns 5..20 are written so far.
        for r in 0..5 {
            for c in 0..55 {
                assert_eq!(parts[r * 55 + c].is_nan(), c >= 15, "row {r}, column {c}");
            }
        }
        fill_few(&p, &t, rows.clone(), cols.clone(), 20..60, &mut parts, &Stop::never()).unwrap();
        assert!(whole.iter().zip(&parts).all(|(a, b)| a.to_bits() == b.to_bits()));
        let err = fill_few(&p, &t, rows, cols, 0..10, &mut parts, &Stop::never()).unwrap_err();
        assert!(matches!(err, Error::Index { .. }), "{err}");
    }

    #[test]
    fn nearest_few_is_the_best_of_fill_few() {
        let t = table(true, -0.5);
        let p = pop(&t, 80);
        let (rows, cols, k) = (0..4, 4..80, 6);
        let mut sims = vec![0.0f64; 4 * 76];
        fill_few(
            &p,
            &t,
            rows.clone(),
            cols.clone(),
            cols.clone(),
            &mut sims,
            &Stop::never(),
        )
        .unwrap();
        let best = nearest_few(&p, &t, rows, cols, k, &Stop::never()).unwrap();
        for (r, b) in best.iter().enumerate() {
            let mut want: Vec<(f64, usize)> = (0..76).map(|c| (sims[r * 76 + c], c + 4)).collect();
            want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(b, &want[..k].to_vec());
        }
    }

    #[test]
    fn lane_self_scores_equal_the_scalar_aligner_bit_for_bit() {
        for (directed, open) in [(false, -0.5), (true, -0.5), (false, -1.5)] {
            let t = table(directed, open);
            for n in [1, 7, 8, 9, 27] {
                let p = pop(&t, n);
                let want: Vec<u64> = (0..n)
                    .map(|i| p.score(&t, i, i, &mut Aligner::default()).to_bits())
                    .collect();
                assert_eq!(p.self_scores().iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want);
                for parallel in [false, true] {
                    match self_scores(&p, t.gaps(), parallel, &Stop::never()) {
                        Some(got) => {
                            assert!(t.gaps().is_linear());
                            assert_eq!(got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want);
                        }
                        None => assert!(!t.gaps().is_linear()),
                    }
                }
            }
        }
    }

    #[test]
    fn portable_kernels_equal_the_vector_ones_bit_for_bit() {
        for (directed, open) in [(false, -0.5), (true, -0.5)] {
            let t = table(directed, open);
            let p = pop(&t, 27);
            let n = p.len();
            let run = |portable: bool| {
                PORTABLE.with(|f| f.set(portable));
                let mut m = vec![0.0f64; n * n];
                fill_small(&p, &t, 0..n, 0..n, &mut m).unwrap();
                let mut r = vec![0.0f64; 10 * (n - 10)];
                fill_small(&p, &t, 0..10, 10..n, &mut r).unwrap();
                let selfs = self_scores(&p, t.gaps(), false, &Stop::never()).unwrap();
                PORTABLE.with(|f| f.set(false));
                [m, r, selfs].concat().iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            assert_eq!(run(true), run(false), "directed {directed}");
        }
    }

    #[test]
    fn symmetric_small_matrix_needs_no_self_scores() {
        let t = table(false, -0.5);
        let scored = pop(&t, 27);
        // The same construction as `pop`, built without self scores.
        let (mut codes, mut params, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        let mut x = 7u64;
        for _ in 0..27 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (x >> 60) as usize;
            for _ in 0..len {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                codes.push(((x >> 40) % 3) as u32);
                params.push(((x >> 20) % 9) as f64);
            }
            offsets.push(codes.len());
        }
        let cache = crate::genes::GeneCache::new(&t);
        let unscored = Population::with_cache_unscored(&t, &cache, &codes, &params, &offsets).unwrap();
        assert!(!unscored.is_scored());
        let n = scored.len();
        let (mut a, mut b) = (vec![0.0f64; n * n], vec![0.0f64; n * n]);
        fill_small(&scored, &t, 0..n, 0..n, &mut a).unwrap();
        fill_small(&unscored, &t, 0..n, 0..n, &mut b).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn small_equals_the_matrix_routine_bit_for_bit() {
        // Sizes with 0, 1, 2, 3 and 7 rows left over from whole groups of eight.
        for (directed, open, size) in [
            (false, -0.5, 27),
            (true, -0.5, 27),
            (false, -1.5, 27),
            (false, -0.5, 25),
            (false, -0.5, 26),
            (false, -0.5, 24),
            (false, -0.5, 15),
            (false, -1.5, 9),
            (true, -0.5, 9),
        ] {
            let t = table(directed, open);
            let p = pop(&t, size);
            let n = p.len();
            for (rows, cols) in [(0..n, 0..n), (0..7, 7..n), (5..9, 0..n)] {
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
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "directed {directed} open {open} size {size} rows {rows:?}"
                );
            }
        }
    }
}
