//! Similarity matrices of a population, computed in parallel (on a pool from `threads.rs`).
//!
//! Orientation: `M[i][j]` = similarity of sequence i as A (rows, the first argument of the
//! match function) against sequence j as B. Every cell is an independent pure computation
//! written to its own index (no reduction across cells), so the parallel result is bit for
//! bit the serial one. For a symmetric table only `j > i` is aligned and mirrored: the
//! transposed DP visits the same candidates in the same order, so mirroring is exact.
//! The diagonal is exactly 1 (`(s - lo) / (s - lo)`).
//!
//! Row ranges let callers work in blocks (and check for Ctrl-C between them).

use std::ops::Range;

use rayon::prelude::*;

use crate::align::{Aligner, Stop};
use crate::error::{Error, Result};
use crate::lanes::{RowGroup, LANES};
use crate::score::ScoreTable;
use crate::seq::Population;

/// Output element types of the matrix routines.
pub trait Element: Copy + Send + Sync + Default + crate::mem::Zeroed {
    fn from_f64(x: f64) -> Self;
}
impl Element for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
}
impl Element for f32 {
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

fn check_rows(rows: &Range<usize>, len: usize) -> Result<()> {
    if rows.start > rows.end || rows.end > len {
        return Err(Error::Index { index: rows.end, len });
    }
    Ok(())
}

/// Rows cut into groups of up to `LANES`, sorted by length so a group's lanes finish together.
#[derive(Debug, Clone)]
pub struct Plan {
    order: Vec<usize>,
}

impl Plan {
    /// Plan the rows `rows` of `pop`.
    #[must_use]
    pub fn new(pop: &Population, rows: Range<usize>) -> Self {
        let mut order: Vec<usize> = rows.collect();
        order.sort_by_key(|&i| (pop.seq(i).len(), i));
        Plan { order }
    }

    /// Number of groups.
    #[must_use]
    pub fn n_groups(&self) -> usize {
        self.order.len().div_ceil(LANES)
    }

    fn group(&self, g: usize) -> &[usize] {
        &self.order[g * LANES..((g + 1) * LANES).min(self.order.len())]
    }

    /// Rows of groups `g..`: the columns a group aligns in a half (symmetric) computation.
    fn rows_from_group(&self, g: usize) -> &[usize] {
        &self.order[g * LANES..]
    }
}

/// A group's way of scoring: the lane kernel, or (affine gaps, very many distinct genes)
/// the scalar aligner per lane. Both give the same doubles.
struct Lanes<'a> {
    rows: &'a [usize],
    fast: Option<RowGroup>,
    h: Vec<[f64; LANES]>,
    al: Aligner,
    stop: &'a Stop,
}

impl<'a> Lanes<'a> {
    /// `n_cols`: how many column sequences the group will meet (see
    /// [`crate::engine::lane_kernel_pays`]).
    fn new(pop: &Population, table: &ScoreTable, rows: &'a [usize], n_cols: usize, stop: &'a Stop) -> Self {
        let pays = crate::engine::lane_kernel_pays(n_cols, pop.n_distinct_genes(), rows.len());
        let fast = if table.gaps().is_linear() && pays {
            RowGroup::new(pop, rows)
        } else {
            None
        };
        Lanes {
            rows,
            fast,
            h: Vec::new(),
            al: Aligner::with_stop(stop.clone()),
            stop,
        }
    }

    /// Similarity of every lane's row (as A) against column sequence j (as B).
    fn sims(&mut self, pop: &Population, table: &ScoreTable, j: usize) -> [f64; LANES] {
        let mut out = [0.0; LANES];
        let self_j = pop.self_scores()[j];
        let len_j = pop.seq(j).len();
        match &self.fast {
            Some(grp) => {
                let scores = grp.scores(pop.seq(j), table.gaps(), &mut self.h, self.stop);
                for (l, &i) in self.rows.iter().enumerate() {
                    out[l] = table.normalise(scores[l], pop.seq(i).len(), len_j, pop.self_scores()[i], self_j);
                }
            }
            None => {
                for (l, &i) in self.rows.iter().enumerate() {
                    out[l] = pop.similarity(table, i, j, &mut self.al);
                }
            }
        }
        out
    }
}

/// Shared output for scattered writes from parallel tasks. Every task writes a disjoint set of
/// cells (argued at each use), so no two threads ever touch the same element.
#[derive(Clone, Copy)]
struct Out<T> {
    ptr: *mut T,
    len: usize,
}
// SAFETY: used only for writes to disjoint indices, see the call sites.
unsafe impl<T: Send> Send for Out<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Out<T> {}

impl<T: Copy> Out<T> {
    fn new(slice: &mut [T]) -> Self {
        Out {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
        }
    }

    /// # Safety
    /// No other thread may write index `idx` concurrently.
    #[inline]
    unsafe fn read(self, idx: usize) -> T {
        assert!(idx < self.len, "matrix read out of bounds");
        // SAFETY: in bounds (asserted); no concurrent writer (caller's contract).
        unsafe { *self.ptr.add(idx) }
    }

    /// # Safety
    /// No other thread may access index `idx` concurrently.
    #[inline]
    unsafe fn write(self, idx: usize, v: T) {
        assert!(idx < self.len, "matrix write out of bounds");
        // SAFETY: in bounds (asserted) and exclusive (caller's contract).
        unsafe { *self.ptr.add(idx) = v };
    }
}

/// Fewest columns a task takes when a few row groups are split over columns.
const MIN_BLOCK_COLS: usize = 256;

/// How many blocks of columns each of `n_groups` row groups is cut into, so that a few rows
/// against many columns (one query against an archive) still keep every thread busy: one
/// block when the groups alone are enough tasks. (A lane group builds its profile once per
/// block, so columns are only split where that buys threads.)
#[must_use]
pub fn column_blocks(n_groups: usize, n_cols: usize) -> usize {
    let threads = rayon::current_num_threads();
    if n_groups == 0 || n_groups >= 2 * threads {
        return 1;
    }
    (4 * threads)
        .div_ceil(n_groups)
        .min(n_cols.div_ceil(MIN_BLOCK_COLS))
        .max(1)
}

/// Block `b` of `blocks` nearly equal parts of `cols`.
#[must_use]
pub fn column_block(cols: &Range<usize>, b: usize, blocks: usize) -> Range<usize> {
    let n = cols.len();
    cols.start + b * n / blocks..cols.start + (b + 1) * n / blocks
}

fn check_groups(plan: &Plan, groups: &Range<usize>) -> Result<()> {
    if groups.start > groups.end || groups.end > plan.n_groups() {
        return Err(Error::Index {
            index: groups.end,
            len: plan.n_groups(),
        });
    }
    Ok(())
}

/// Fill groups `groups` of `plan` (over `rows`) into the `rows x cols` matrix `out`
/// (row-major). When rows and columns are the same range and the table is symmetric, each
/// unordered pair is aligned once and written to one of its two cells; call
/// [`mirror_missing`] after the last group to fill the other (mirroring is exact). Otherwise
/// every ordered pair is aligned. Diagonal cells (i == j) are exactly 1.
///
/// # Errors
/// [`Error::Index`] when a range leaves the population, [`Error::Shape`] when `out` has the
/// wrong length.
#[allow(clippy::too_many_arguments)]
pub fn fill_matrix<T: Element>(
    pop: &Population,
    table: &ScoreTable,
    plan: &Plan,
    groups: Range<usize>,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [T],
    stop: &Stop,
) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    check_groups(plan, &groups)?;
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Shape {
            what: "the output matrix",
            len: out.len(),
            expected: rows.len() * width,
        });
    }
    let half = rows == cols && table.is_symmetric();
    let out = Out::new(out);
    let at = |i: usize, j: usize| (i - rows.start) * width + (j - cols.start);
    // A half computation's columns differ per group; otherwise a few groups are split over
    // blocks of columns (see `column_blocks`).
    let blocks = if half {
        1
    } else {
        column_blocks(groups.len(), cols.len())
    };
    let tasks: Vec<(usize, usize)> = groups.flat_map(|g| (0..blocks).map(move |b| (g, b))).collect();
    tasks.into_par_iter().for_each(|(g, b)| {
        let mine = plan.group(g);
        let block = column_block(&cols, b, blocks);
        let n_cols = if half {
            plan.rows_from_group(g).len()
        } else {
            block.len()
        };
        let mut lanes = Lanes::new(pop, table, mine, n_cols, stop);
        if half {
            // Columns: this group's rows and every later group's. Only cells of this group's
            // own rows are written here, so no two threads ever share a cache line of output;
            // the cells below (j's row, column i) are filled by `mirror_missing` afterwards.
            for &j in plan.rows_from_group(g) {
                if stop.requested() {
                    return;
                }
                let sims = lanes.sims(pop, table, j);
                for (l, &i) in mine.iter().enumerate() {
                    let v = if i == j { 1.0 } else { sims[l] };
                    // SAFETY: row i belongs to this group only.
                    unsafe { out.write(at(i, j), T::from_f64(v)) };
                }
            }
        } else {
            // Rows are partitioned among groups and columns among a group's blocks: this task
            // alone writes these cells.
            for j in block {
                if stop.requested() {
                    return;
                }
                let sims = lanes.sims(pop, table, j);
                for (l, &i) in mine.iter().enumerate() {
                    let v = if i == j { 1.0 } else { sims[l] };
                    // SAFETY: row i belongs to this group and column j to this block only.
                    unsafe { out.write(at(i, j), T::from_f64(v)) };
                }
            }
        }
    });
    stop.check()
}

/// After every group of a half computation (symmetric table, rows == cols == 0..n) is
/// filled: copy each pair's value into the cell its group did not write, `M[j][i] = M[i][j]`.
/// Exact, since the table is symmetric and the transposed DP is the same computation.
pub fn mirror_missing<T: Element>(plan: &Plan, n: usize, out: &mut [T]) {
    if out.len() != n * n || plan.order.len() != n {
        return;
    }
    // rank[i]: position of row i in the plan; cell (i, j) was written iff rank[j] is in a group
    // at or after i's group, i.e. group(i) <= group(j).
    let mut group_of = vec![0usize; n];
    for (pos, &i) in plan.order.iter().enumerate() {
        group_of[i] = pos / LANES;
    }
    let src = Out::new(out);
    (0..n).into_par_iter().for_each(|i| {
        for j in 0..n {
            if group_of[j] < group_of[i] {
                // SAFETY: this task alone writes row i, and reads only cells (j, i) with
                // group(j) < group(i), which were written in the fill and are never written here.
                unsafe { src.write(i * n + j, src.read(j * n + i)) };
            }
        }
    });
}

/// Offset of row i in the condensed upper triangle of an n x n matrix (scipy's `pdist` layout).
#[must_use]
pub fn condensed_offset(n: usize, i: usize) -> usize {
    i * n - i * (i + 1) / 2
}

/// Fill groups `groups` of `plan` (over the whole population) into the condensed upper
/// triangle `out` (length n(n-1)/2). Symmetric tables only.
///
/// # Errors
/// [`Error::Unsupported`] for a directed table; [`Error::Index`] for bad ranges;
/// [`Error::Shape`] for a wrong output length.
pub fn fill_condensed<T: Element>(
    pop: &Population,
    table: &ScoreTable,
    plan: &Plan,
    groups: Range<usize>,
    out: &mut [T],
    stop: &Stop,
) -> Result<()> {
    let n = pop.len();
    if !table.is_symmetric() {
        return Err(Error::Unsupported(
            "a condensed matrix needs a symmetric scoring schema".into(),
        ));
    }
    check_groups(plan, &groups)?;
    if plan.order.len() != n {
        return Err(Error::Shape {
            what: "the plan",
            len: plan.order.len(),
            expected: n,
        });
    }
    if out.len() != condensed_offset(n, n) {
        return Err(Error::Shape {
            what: "the condensed output",
            len: out.len(),
            expected: condensed_offset(n, n),
        });
    }
    let out = Out::new(out);
    groups.into_par_iter().for_each(|g| {
        let mine = plan.group(g);
        let mut lanes = Lanes::new(pop, table, mine, plan.rows_from_group(g).len(), stop);
        for &j in plan.rows_from_group(g) {
            if stop.requested() {
                return;
            }
            let sims = lanes.sims(pop, table, j);
            for (l, &i) in mine.iter().enumerate() {
                if i != j {
                    let (a, b) = if i < j { (i, j) } else { (j, i) };
                    // SAFETY: the pair {i, j} belongs to this group (as in fill_matrix).
                    unsafe { out.write(condensed_offset(n, a) + b - a - 1, T::from_f64(sims[l])) };
                }
            }
        }
    });
    stop.check()
}

/// Raw alignment scores for rows `rows` against columns `cols` (row-major into `out`).
///
/// # Errors
/// [`Error::Index`] for a bad range, [`Error::Shape`] for a wrong output length.
pub fn fill_scores(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    out: &mut [f64],
    stop: &Stop,
) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Shape {
            what: "the output matrix",
            len: out.len(),
            expected: rows.len() * width,
        });
    }
    if width == 0 {
        return Ok(());
    }
    out.par_chunks_mut(width).enumerate().for_each_init(
        || Aligner::with_stop(stop.clone()),
        |al, (r, row)| {
            for (c, cell) in row.iter_mut().enumerate() {
                if stop.requested() {
                    return;
                }
                *cell = pop.score(table, rows.start + r, cols.start + c, al);
            }
        },
    );
    stop.check()
}

/// For each row of groups `groups` of `plan` (over `rows`), the `k` most similar columns
/// among `cols` (highest similarity first, ties by lower index), skipping the row's own index
/// when `exclude_self`. Writes `k` indices (relative to `cols.start`) and similarities per row
/// at `(i - rows.start) * k`; rows with fewer candidates are padded with -1 and NaN.
///
/// # Errors
/// [`Error::Index`] for a bad range, [`Error::Shape`] for a wrong output length.
#[allow(clippy::too_many_arguments)]
pub fn fill_nearest(
    pop: &Population,
    table: &ScoreTable,
    plan: &Plan,
    groups: Range<usize>,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    exclude_self: bool,
    out_idx: &mut [i64],
    out_sim: &mut [f64],
    stop: &Stop,
) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    check_groups(plan, &groups)?;
    check_nearest_out(rows.len(), k, out_idx, out_sim)?;
    if k == 0 {
        return Ok(());
    }
    let (oi, os) = (Out::new(out_idx), Out::new(out_sim));
    // Each task keeps the k best of its block of columns per row; the blocks of a group are
    // merged in the same order (highest similarity first, ties by lower index), so the result
    // is the one a single pass over all columns gives.
    let blocks = column_blocks(groups.len(), cols.len());
    let tasks: Vec<(usize, usize)> = groups.clone().flat_map(|g| (0..blocks).map(move |b| (g, b))).collect();
    let found: Vec<Option<Best>> = tasks
        .into_par_iter()
        .map(|(g, b)| {
            let mine = plan.group(g);
            let block = column_block(&cols, b, blocks);
            let mut lanes = Lanes::new(pop, table, mine, block.len(), stop);
            let mut best: Best = vec![Vec::with_capacity(k.min(block.len()) + 1); mine.len()];
            for j in block {
                if stop.requested() {
                    return None;
                }
                let sims = lanes.sims(pop, table, j);
                for (l, &i) in mine.iter().enumerate() {
                    if exclude_self && i == j {
                        continue;
                    }
                    keep_best(&mut best[l], k, if i == j { 1.0 } else { sims[l] }, j);
                }
            }
            Some(best)
        })
        .collect();
    stop.check()?;
    for (n, g) in groups.enumerate() {
        let mine = plan.group(g);
        let mut best = vec![Vec::with_capacity(k + 1); mine.len()];
        for part in found[n * blocks..(n + 1) * blocks].iter().flatten() {
            for (l, cands) in part.iter().enumerate() {
                for &(s, j) in cands {
                    keep_best(&mut best[l], k, s, j);
                }
            }
        }
        for (l, &i) in mine.iter().enumerate() {
            for c in 0..k {
                let (idx, sim) = best[l]
                    .get(c)
                    .map_or((-1, f64::NAN), |&(s, j)| ((j - cols.start) as i64, s));
                // SAFETY: the writes run on this thread only.
                unsafe {
                    oi.write((i - rows.start) * k + c, idx);
                    os.write((i - rows.start) * k + c, sim);
                }
            }
        }
    }
    Ok(())
}

/// The outputs of a nearest-neighbour routine: `k` indices and similarities per row.
///
/// # Errors
/// [`Error::Shape`] naming the output of the wrong length.
pub fn check_nearest_out(rows: usize, k: usize, out_idx: &[i64], out_sim: &[f64]) -> Result<()> {
    for (what, len) in [
        ("the index output", out_idx.len()),
        ("the similarity output", out_sim.len()),
    ] {
        if len != rows * k {
            return Err(Error::Shape {
                what,
                len,
                expected: rows * k,
            });
        }
    }
    Ok(())
}

/// Per row of a group, its best (similarity, column) so far, best first.
pub type Best = Vec<Vec<(f64, usize)>>;

/// Put candidate (similarity `s`, column `j`) into `best`, the k best so far in order
/// (highest similarity first, ties by lower index), if it belongs there.
pub fn keep_best(best: &mut Vec<(f64, usize)>, k: usize, s: f64, j: usize) {
    if k == 0 {
        return;
    }
    if best.len() == k {
        let (ws, wj) = best[k - 1];
        if s < ws || (s == ws && j > wj) {
            return;
        }
        best.pop();
    }
    let pos = best.partition_point(|&(bs, bj)| bs > s || (bs == s && bj < j));
    best.insert(pos, (s, j));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_offsets_match_pdist() {
        assert_eq!(condensed_offset(4, 0), 0);
        assert_eq!(condensed_offset(4, 1), 3);
        assert_eq!(condensed_offset(4, 2), 5);
        assert_eq!(condensed_offset(4, 3), 6);
        assert_eq!(condensed_offset(4, 4), 6);
    }
}

#[cfg(test)]
mod best_and_blocks {
    use super::*;

    #[test]
    fn keep_best_keeps_the_k_highest_ties_by_lower_index() {
        let mut best = Vec::new();
        for (s, j) in [(0.5, 4), (0.9, 7), (0.5, 2), (0.1, 0), (0.9, 3), (0.7, 9)] {
            keep_best(&mut best, 3, s, j);
        }
        assert_eq!(best, vec![(0.9, 3), (0.9, 7), (0.7, 9)]);
        let mut none = Vec::new();
        keep_best(&mut none, 0, 1.0, 0);
        assert!(none.is_empty(), "k = 0 keeps nothing");
    }

    #[test]
    fn column_blocks_partition_the_columns() {
        for n in [0usize, 1, 5, 255, 256, 1000, 4097] {
            for blocks in 1..6 {
                let cols = 10..10 + n;
                let parts: Vec<Range<usize>> = (0..blocks).map(|b| column_block(&cols, b, blocks)).collect();
                assert_eq!(parts[0].start, cols.start);
                assert_eq!(parts[blocks - 1].end, cols.end);
                assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
    }

    #[test]
    fn column_blocks_split_only_where_row_groups_are_too_few() {
        let pool = crate::threads::pool(Some(2)).unwrap();
        pool.install(|| {
            assert_eq!(column_blocks(4, 100_000), 1, "enough groups for every thread");
            assert_eq!(column_blocks(1, 100_000), 8, "four tasks a thread");
            assert_eq!(column_blocks(1, 300), 2, "no block under MIN_BLOCK_COLS columns, about");
            assert_eq!(column_blocks(0, 100), 1);
        });
    }
}
