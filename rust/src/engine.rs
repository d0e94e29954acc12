//! The compute dispatcher: the one place that decides how a request runs.
//!
//! A request is a population, its table, the row sequences (as A), the column sequences (as
//! B) and what to produce ([`Kind`]: a matrix, a condensed upper triangle, the k nearest
//! columns per row, or raw scores). [`Job::new`] decides, from the thresholds named below:
//!
//! - **where** ([`Place`]): on the calling thread, for work of at most [`HERE_CELLS`] DP
//!   cells (less than waking a pool costs), or on a pool;
//! - **the tier** ([`Tier`]): the small lockstep kernel ([`crate::small`]) on the calling
//!   thread; the same kernel over blocks of columns for a few rows against other columns
//!   ([`Tier::FewRows`], 2 to [`FEW_ROWS`] rows); the 32-lane kernel per row group
//!   ([`crate::lanes`], linear gaps); or the scalar aligner (affine gaps, raw scores);
//! - **the batches**: the units of work (row groups, columns or rows, per tier) cut into
//!   batches of about [`BATCH_PAIRS`] alignments. A caller runs them one by one and may look
//!   at Ctrl-C and report progress between them; every cell is computed by exactly one batch.
//!
//! The pair path (one pair without a population, [`crate::pair`]) and population building
//! have their own small decisions here too: [`pair_place`] and [`build_place`].
//!
//! Every tier gives the same doubles as the scalar aligner, bit for bit (each kernel's module
//! argues why; the tests compare them), so the choice only changes the speed. The measured
//! reasons for each threshold are in BENCHMARKS.md.

use std::ops::Range;

use crate::align::{Aligner, Stop};
use crate::error::{Error, Result};
use crate::lanes::LANES;
use crate::matrix::{self, Best, Element};
use crate::score::ScoreTable;
use crate::seq::Population;

/// DP cells (genes of the rows times genes of the columns) up to which work runs on the
/// calling thread: about a tenth of a millisecond, less than waking a pool costs.
pub const HERE_CELLS: u64 = 1 << 18;

/// Genes up to which a population is built (its self-alignments) on the calling thread.
pub const HERE_GENES: usize = 4096;

/// Alignments per batch, about: long enough to amortise a hand-over to the pool, short
/// enough (well under a second) that Ctrl-C and progress are noticed promptly.
pub const BATCH_PAIRS: usize = 1 << 22;

/// DP cells of a batch from which a caller should watch for Ctrl-C while it runs (below, it
/// is over within milliseconds and a look after it is enough).
pub const WATCH_CELLS: u128 = 1 << 24;

/// Rows up to which a matrix of rows against other columns (queries against an archive)
/// takes [`Tier::FewRows`]: the lane kernel's profile of 32 rows against every distinct gene
/// outgrows the L2 cache and pays off only over many rows.
pub const FEW_ROWS: usize = 256;

/// A lane group's profile costs about as much as aligning the group against `k / 8` columns
/// (`k` distinct genes): a group that meets fewer columns runs on the scalar aligner.
pub const PROFILE_COLUMNS_PER_GENE: usize = 8;

/// What a request produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Similarities, rows x columns, row-major.
    Matrix,
    /// The strict upper triangle of the rows x rows matrix (scipy's `pdist` layout); rows and
    /// columns the whole population, symmetric tables only.
    Condensed,
    /// The `k` most similar columns per row (highest first, ties by lower index), skipping the
    /// row's own index when `exclude_self`; rows with fewer candidates padded with -1 and NaN.
    Nearest { k: usize, exclude_self: bool },
    /// Raw alignment scores, rows x columns, row-major.
    Scores,
}

/// Where a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On the calling thread, in one batch (see [`crate::calling_thread`]).
    Here,
    /// On a pool, batch by batch.
    Pool,
}

/// Which kernel computes the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// [`crate::small::fill_small`]: 8 rows in lockstep against 4 columns, a profile of only the
    /// genes the rows meet; on the calling thread. Under a symmetric table each pair once.
    Small,
    /// The small kernel over blocks of columns in parallel: 2 to [`FEW_ROWS`] rows against
    /// other columns (linear gaps, a dense gene table). Batches are ranges of columns.
    FewRows,
    /// [`crate::lanes`]: 32 rows against one column, a profile of every distinct gene; linear
    /// gaps and a dense table. A group that meets too few columns to pay for its profile
    /// ([`lane_kernel_pays`]) runs on the scalar aligner. Batches are ranges of row groups.
    Lanes,
    /// [`crate::align::Aligner`] pair by pair: affine gaps, no dense table, raw scores.
    Scalar,
}

/// Output buffers of a job, one variant per [`Kind`].
pub enum Target<'o, T> {
    /// rows x columns.
    Matrix(&'o mut [T]),
    /// n (n - 1) / 2.
    Condensed(&'o mut [T]),
    /// Indices (relative to the first column) and similarities, rows x k each.
    Nearest(&'o mut [i64], &'o mut [f64]),
    /// rows x columns.
    Scores(&'o mut [f64]),
}

impl<T> Target<'_, T> {
    fn name(&self) -> &'static str {
        match self {
            Target::Matrix(_) => "a matrix",
            Target::Condensed(_) => "a condensed matrix",
            Target::Nearest(..) => "nearest neighbours",
            Target::Scores(_) => "raw scores",
        }
    }
}

/// The thresholds a job is planned with: [`Limits::default`] in use, others in tests (to put
/// small inputs on every tier and in several batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`HERE_CELLS`].
    pub here_cells: u64,
    /// [`BATCH_PAIRS`].
    pub batch_pairs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            here_cells: HERE_CELLS,
            batch_pairs: BATCH_PAIRS,
        }
    }
}

/// Where a pair of sequences of `len_a` and `len_b` genes (with its two self-alignments) is
/// computed: here on the pair path, or as a population of two on a pool.
#[must_use]
pub fn pair_place(len_a: usize, len_b: usize) -> Place {
    let (m, n) = (len_a as u64, len_b as u64);
    if m * m + n * n + m * n <= HERE_CELLS {
        Place::Here
    } else {
        Place::Pool
    }
}

/// Where a population of `n_genes` genes is built.
#[must_use]
pub fn build_place(n_genes: usize) -> Place {
    if n_genes <= HERE_GENES {
        Place::Here
    } else {
        Place::Pool
    }
}

/// Whether a lane group of `group_rows` rows that meets `n_cols` columns pays for its
/// profile of `n_distinct` genes (else it runs on the scalar aligner).
#[must_use]
pub fn lane_kernel_pays(n_cols: usize, n_distinct: usize, group_rows: usize) -> bool {
    n_cols.saturating_mul(PROFILE_COLUMNS_PER_GENE) >= n_distinct && group_rows * 2 >= LANES
}

/// DP cells of aligning every sequence of `rows` against every one of `cols`.
#[must_use]
pub fn dp_cells(pop: &Population, rows: &Range<usize>, cols: &Range<usize>) -> u128 {
    let genes = |r: &Range<usize>| r.clone().map(|i| pop.seq(i).len() as u128).sum::<u128>();
    genes(rows) * genes(cols)
}

/// Whether a job over `pop` needs the population's self scores (else the caller may build it
/// without them: the symmetric small kernel aligns every sequence with itself anyway).
#[must_use]
pub fn needs_self_scores(pop: &Population, table: &ScoreTable, rows: &Range<usize>, cols: &Range<usize>) -> bool {
    let here = dp_cells(pop, rows, cols) <= u128::from(HERE_CELLS);
    !(here && small_half(pop, table, rows, cols))
}

/// The symmetric small kernel's case: rows and columns the same, a symmetric table, linear
/// gaps, a dense gene table.
fn small_half(pop: &Population, table: &ScoreTable, rows: &Range<usize>, cols: &Range<usize>) -> bool {
    rows == cols && table.is_symmetric() && table.gaps().is_linear() && pop.dense_table().is_some()
}

/// One request, planned: its place, tier and batches. Run it with [`Job::run_all`], or batch
/// by batch with [`Job::run`] and then [`Job::finish`].
pub struct Job<'a> {
    pop: &'a Population,
    table: &'a ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    kind: Kind,
    place: Place,
    tier: Tier,
    /// Row groups of the lane and scalar tiers.
    plan: Option<matrix::Plan>,
    /// Units of work (row groups, columns relative to the first, or rows relative to the first).
    units: usize,
    batches: Vec<Range<usize>>,
    cells: u128,
    /// [`Tier::FewRows`] nearest neighbours: each row's best so far, merged batch by batch.
    best: Best,
}

impl<'a> Job<'a> {
    /// Plan `kind` for rows `rows` against columns `cols` of `pop` with the default limits.
    ///
    /// # Errors
    /// [`Error::Index`] for a range outside the population; [`Error::Unsupported`] for a
    /// condensed matrix of a directed table or of part of the population, or a population
    /// without self scores where the tier needs them.
    pub fn new(
        pop: &'a Population,
        table: &'a ScoreTable,
        rows: Range<usize>,
        cols: Range<usize>,
        kind: Kind,
    ) -> Result<Self> {
        Self::with_limits(pop, table, rows, cols, kind, Limits::default())
    }

    /// [`Job::new`] with other thresholds.
    ///
    /// # Errors
    /// As [`Job::new`].
    pub fn with_limits(
        pop: &'a Population,
        table: &'a ScoreTable,
        rows: Range<usize>,
        cols: Range<usize>,
        kind: Kind,
        limits: Limits,
    ) -> Result<Self> {
        for r in [&rows, &cols] {
            if r.start > r.end || r.end > pop.len() {
                return Err(Error::Index {
                    index: r.end,
                    len: pop.len(),
                });
            }
        }
        if kind == Kind::Condensed {
            if !table.is_symmetric() {
                return Err(Error::Unsupported(
                    "a condensed (upper-triangle) matrix needs a symmetric scoring schema; this one is directed".into(),
                ));
            }
            if rows != (0..pop.len()) || cols != rows {
                return Err(Error::Unsupported(
                    "a condensed matrix covers the whole population".into(),
                ));
            }
        }
        let cells = dp_cells(pop, &rows, &cols);
        let place = if cells <= u128::from(limits.here_cells) {
            Place::Here
        } else {
            Place::Pool
        };
        let tier = Self::choose_tier(pop, table, &rows, &cols, kind, place);
        let selves_here = tier == Tier::Small && small_half(pop, table, &rows, &cols);
        if !pop.is_scored() && !selves_here {
            return Err(Error::Unsupported(
                "the population has no self scores (build it with them)".into(),
            ));
        }
        let grouped = matches!(tier, Tier::Lanes | Tier::Scalar) && kind != Kind::Scores;
        let plan = grouped.then(|| matrix::Plan::new(pop, rows.clone()));
        let units = match (tier, &plan) {
            (Tier::Small, _) => 1,
            (Tier::FewRows, _) => cols.len(),
            (_, Some(plan)) => plan.n_groups(),
            (_, None) => rows.len(),
        };
        let batches = match place {
            Place::Here => std::iter::once(0..units).collect(),
            Place::Pool => batches(units, rows.len().saturating_mul(cols.len()), limits.batch_pairs),
        };
        Ok(Job {
            pop,
            table,
            rows,
            cols,
            kind,
            place,
            tier,
            plan,
            units,
            batches,
            cells,
            best: Vec::new(),
        })
    }

    fn choose_tier(
        pop: &Population,
        table: &ScoreTable,
        rows: &Range<usize>,
        cols: &Range<usize>,
        kind: Kind,
        place: Place,
    ) -> Tier {
        let lanes = table.gaps().is_linear() && pop.dense_table().is_some();
        if kind == Kind::Scores {
            return Tier::Scalar;
        }
        if place == Place::Here {
            return Tier::Small;
        }
        let disjoint = rows.end <= cols.start || cols.end <= rows.start;
        let self_excluded = matches!(kind, Kind::Nearest { exclude_self: true, .. });
        let few = (2..=FEW_ROWS).contains(&rows.len()) && disjoint && !self_excluded;
        if kind != Kind::Condensed && few && lanes && pop.is_scored() {
            return Tier::FewRows;
        }
        if lanes {
            Tier::Lanes
        } else {
            Tier::Scalar
        }
    }

    /// Where the job runs.
    #[must_use]
    pub fn place(&self) -> Place {
        self.place
    }

    /// What it produces.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Which kernel computes its cells.
    #[must_use]
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Its batches, in units of work: progress is `(batch.end, units)` after each.
    #[must_use]
    pub fn batches(&self) -> &[Range<usize>] {
        &self.batches
    }

    /// The units of work (row groups, columns or rows) its batches cut up.
    #[must_use]
    pub fn units(&self) -> usize {
        self.units
    }

    /// DP cells of the whole job.
    #[must_use]
    pub fn cells(&self) -> u128 {
        self.cells
    }

    /// DP cells of batch `b`, about (the job's cells in proportion to the batch's units).
    #[must_use]
    pub fn batch_cells(&self, b: usize) -> u128 {
        let len = self.batches.get(b).map_or(0, ExactSizeIterator::len);
        self.cells * len as u128 / self.units.max(1) as u128
    }

    /// The output lengths the job writes: (first, second), second only for nearest
    /// neighbours (the similarities beside the indices).
    #[must_use]
    pub fn output_len(&self) -> (usize, usize) {
        let (r, c) = (self.rows.len(), self.cols.len());
        match self.kind {
            Kind::Matrix | Kind::Scores => (r * c, 0),
            Kind::Condensed => (matrix::condensed_offset(r, r), 0),
            Kind::Nearest { k, .. } => (r * k, r * k),
        }
    }

    fn check_target<T>(&self, target: &Target<'_, T>) -> Result<()> {
        let (first, second) = self.output_len();
        let (len, len2) = match (target, self.kind) {
            (Target::Matrix(o), Kind::Matrix) | (Target::Condensed(o), Kind::Condensed) => (o.len(), 0),
            (Target::Scores(o), Kind::Scores) => (o.len(), 0),
            (Target::Nearest(i, s), Kind::Nearest { .. }) => (i.len(), s.len()),
            _ => {
                return Err(Error::Unsupported(format!(
                    "{} is not the output of this job ({:?})",
                    target.name(),
                    self.kind
                )))
            }
        };
        for (what, len, expected) in [("the output", len, first), ("the similarity output", len2, second)] {
            if len != expected {
                return Err(Error::Shape { what, len, expected });
            }
        }
        Ok(())
    }

    /// Compute batch `b` into `target` (on the current rayon pool: run it inside the pool's
    /// `install`, or inside [`crate::calling_thread::run_here`] for [`Place::Here`]).
    ///
    /// # Errors
    /// [`Error::Index`] for a batch that does not exist, [`Error::Shape`] or
    /// [`Error::Unsupported`] for a target that does not fit, [`Error::Interrupted`] once
    /// `stop` is requested.
    pub fn run<T: Element>(&mut self, b: usize, target: &mut Target<'_, T>, stop: &Stop) -> Result<()> {
        self.check_target(target)?;
        let batch = self.batches.get(b).cloned().ok_or(Error::Index {
            index: b,
            len: self.batches.len(),
        })?;
        let (pop, table) = (self.pop, self.table);
        let (rows, cols) = (self.rows.clone(), self.cols.clone());
        match self.tier {
            Tier::Small => self.run_small(target),
            Tier::FewRows => {
                let part = cols.start + batch.start..cols.start + batch.end;
                match target {
                    Target::Matrix(out) => crate::small::fill_few(pop, table, rows, cols, part, out, stop),
                    Target::Nearest(..) => {
                        let Kind::Nearest { k, .. } = self.kind else {
                            unreachable!("checked")
                        };
                        let found = crate::small::nearest_few(pop, table, rows.clone(), part, k, stop)?;
                        if self.best.is_empty() {
                            self.best = vec![Vec::with_capacity(k + 1); rows.len()];
                        }
                        for (best, cands) in self.best.iter_mut().zip(found) {
                            for (s, j) in cands {
                                matrix::keep_best(best, k, s, j);
                            }
                        }
                        Ok(())
                    }
                    _ => unreachable!("the few-rows tier computes matrices and nearest neighbours"),
                }
            }
            Tier::Lanes | Tier::Scalar => match (target, &self.plan) {
                (Target::Scores(out), None) => {
                    let w = cols.len();
                    let part = rows.start + batch.start..rows.start + batch.end;
                    let out = &mut out[batch.start * w..batch.end * w];
                    matrix::fill_scores(pop, table, part, cols, out, stop)
                }
                (Target::Matrix(out), Some(plan)) => {
                    matrix::fill_matrix(pop, table, plan, batch, rows, cols, out, stop)
                }
                (Target::Condensed(out), Some(plan)) => matrix::fill_condensed(pop, table, plan, batch, out, stop),
                (Target::Nearest(idx, sim), Some(plan)) => {
                    let Kind::Nearest { k, exclude_self } = self.kind else {
                        unreachable!("checked")
                    };
                    matrix::fill_nearest(pop, table, plan, batch, rows, cols, k, exclude_self, idx, sim, stop)
                }
                _ => unreachable!("checked: the plan exists for all but raw scores"),
            },
        }
    }

    /// Everything on the small kernel at once (one batch).
    fn run_small<T: Element>(&self, target: &mut Target<'_, T>) -> Result<()> {
        let (pop, table) = (self.pop, self.table);
        let (rows, cols) = (self.rows.clone(), self.cols.clone());
        match target {
            Target::Matrix(out) => crate::small::fill_small(pop, table, rows, cols, out),
            Target::Condensed(out) => {
                let n = rows.len();
                let mut full = vec![0.0f64; n * n];
                crate::small::fill_small(pop, table, rows, cols, &mut full)?;
                let upper = (0..n).flat_map(|i| full[i * n + i + 1..(i + 1) * n].iter());
                for (o, &v) in out.iter_mut().zip(upper) {
                    *o = T::from_f64(v);
                }
                Ok(())
            }
            Target::Nearest(idx, sim) => {
                let Kind::Nearest { k, exclude_self } = self.kind else {
                    unreachable!("checked")
                };
                let w = cols.len();
                let mut sims = vec![0.0f64; rows.len() * w];
                crate::small::fill_small(pop, table, rows.clone(), cols.clone(), &mut sims)?;
                let best: Best = rows
                    .clone()
                    .enumerate()
                    .map(|(r, i)| {
                        let mut best = Vec::with_capacity(k + 1);
                        for (x, j) in cols.clone().enumerate() {
                            if !(exclude_self && i == j) {
                                matrix::keep_best(&mut best, k, sims[r * w + x], j);
                            }
                        }
                        best
                    })
                    .collect();
                write_best(&best, k, cols.start, idx, sim);
                Ok(())
            }
            Target::Scores(_) => unreachable!("raw scores take the scalar tier"),
        }
    }

    /// After the last batch: what no batch could write alone (the mirrored half of a symmetric
    /// matrix on the lane and scalar tiers; the merged nearest neighbours of the few-rows tier).
    ///
    /// # Errors
    /// As [`Job::run`] for a target that does not fit.
    pub fn finish<T: Element>(&mut self, target: &mut Target<'_, T>) -> Result<()> {
        self.check_target(target)?;
        match (self.tier, target, &self.plan) {
            (Tier::Lanes | Tier::Scalar, Target::Matrix(out), Some(plan))
                if self.rows == self.cols && self.table.is_symmetric() =>
            {
                matrix::mirror_missing(plan, self.rows.len(), out);
            }
            (Tier::FewRows, Target::Nearest(idx, sim), _) => {
                let Kind::Nearest { k, .. } = self.kind else {
                    unreachable!("checked")
                };
                if self.best.is_empty() {
                    self.best = vec![Vec::new(); self.rows.len()];
                }
                write_best(&self.best, k, self.cols.start, idx, sim);
            }
            _ => {}
        }
        Ok(())
    }

    /// Every batch and then [`Job::finish`], on the current rayon pool.
    ///
    /// # Errors
    /// As [`Job::run`].
    pub fn run_all<T: Element>(mut self, target: &mut Target<'_, T>, stop: &Stop) -> Result<()> {
        for b in 0..self.batches.len() {
            self.run(b, target, stop)?;
        }
        self.finish(target)
    }
}

/// Batches of about `batch_pairs` alignments over `units` units of work (at least one unit
/// each, one batch at least).
fn batches(units: usize, pairs: usize, batch_pairs: usize) -> Vec<Range<usize>> {
    let n_batches = (pairs / batch_pairs.max(1)).clamp(1, units.max(1));
    let per = units.div_ceil(n_batches).max(1);
    (0..units.max(1))
        .step_by(per)
        .map(|s| s..(s + per).min(units))
        .collect()
}

/// Write each row's `k` best (padded with -1 and NaN) with column indices relative to `first`.
fn write_best(best: &Best, k: usize, first: usize, idx: &mut [i64], sim: &mut [f64]) {
    for (r, b) in best.iter().enumerate() {
        for c in 0..k {
            let (j, s) = b.get(c).map_or((-1, f64::NAN), |&(s, j)| ((j - first) as i64, s));
            idx[r * k + c] = j;
            sim[r * k + c] = s;
        }
    }
}

/// The scalar aligner's similarity of every ordered pair (rows x columns): the reference every
/// tier is tested against.
#[must_use]
pub fn reference_matrix(pop: &Population, table: &ScoreTable, rows: Range<usize>, cols: Range<usize>) -> Vec<f64> {
    let mut al = Aligner::default();
    rows.flat_map(|i| cols.clone().map(move |j| (i, j)))
        .map(|(i, j)| {
            if i == j {
                1.0
            } else {
                pop.similarity(table, i, j, &mut al)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_about_batch_pairs_each_and_at_least_one_unit() {
        assert_eq!(batches(10, 5, 100), vec![0..10], "less than a batch: one");
        assert_eq!(batches(10, 1000, 100), (0..10).map(|u| u..u + 1).collect::<Vec<_>>());
        assert_eq!(
            batches(3, 1_000_000, 1),
            vec![0..1, 1..2, 2..3],
            "never more than the units"
        );
        assert_eq!(batches(10, 300, 100), vec![0..4, 4..8, 8..10]);
        assert_eq!(batches(0, 0, 100), vec![0..0], "no units: one empty batch");
        assert_eq!(batches(7, 70, 0), batches(7, 70, 1), "a zero batch size is one pair");
    }

    #[test]
    fn best_lists_are_written_padded_and_relative_to_the_first_column() {
        let best: Best = vec![vec![(0.9, 12), (0.5, 10)], vec![]];
        let (mut idx, mut sim) = (vec![0i64; 6], vec![0.0f64; 6]);
        write_best(&best, 3, 10, &mut idx, &mut sim);
        assert_eq!(idx, vec![2, 0, -1, -1, -1, -1]);
        assert_eq!(&sim[..2], &[0.9, 0.5]);
        assert!(sim[2..].iter().all(|s| s.is_nan()));
    }
}
