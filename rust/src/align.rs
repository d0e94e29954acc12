//! Global alignment with affine gaps (Gotoh), score-only and with traceback.
//!
//! Conventions (as in rust-bio's `pairwise`):
//! - row = sequence A (the first argument of the match function), column = sequence B;
//! - a gap of length k scores `open + (k - 1) * extend` (scores, with `open <= extend <= 0`:
//!   opening a gap costs at least as much as extending one, which is what makes Gotoh's
//!   three-state recursion exact);
//! - end gaps are penalised like any other gap (true global alignment);
//! - with `open == extend` the recursion reduces *exactly* (bit for bit) to linear-gap
//!   Needleman-Wunsch, `H[i][j] = max(H[i-1][j-1] + s, H[i][j-1] + g, H[i-1][j] + g)`:
//!   the gap-extension candidate can never beat the opening one, and every cell is the
//!   max of the same candidate doubles.
//!
//! ```
//! use _core::align::Aligner;
//! use _core::align::Gaps;
//! let gaps = Gaps { open: -0.5, extend: -0.5 };
//! let (a, b) = ([0u32, 1], [0u32]);
//! let s = Aligner::default().score(a.len(), b.len(), |i, j| if a[i] == b[j] { 3.0 } else { -2.0 }, gaps);
//! assert_eq!(s, 2.5); // match 3, one gap -0.5
//! ```
//!
//! Long alignments: the score-only DP keeps two rows (memory linear in the length). The
//! traceback keeps checkpoint rows every `b ~ sqrt(m)` rows and recomputes one block of rows at
//! a time while it walks back, so it needs about `48 * sqrt(m) * (n + 1)` bytes instead of a
//! full `(m + 1) x (n + 1)` table (the recomputed rows are the same doubles, so the alignment
//! is bit for bit the full table's). Both loops look at a [`Stop`] flag every few hundred rows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::mem;

/// Gap scores (`open <= extend <= 0`): a gap of length k scores `open + (k - 1) * extend`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaps {
    pub open: f64,
    pub extend: f64,
}

impl Gaps {
    /// Score of one gap of length `k` (0 for `k == 0`).
    #[must_use]
    pub fn cost(&self, k: usize) -> f64 {
        if k == 0 {
            0.0
        } else {
            self.open + (k - 1) as f64 * self.extend
        }
    }

    /// True when the affine model reduces to a linear one.
    #[must_use]
    pub fn is_linear(&self) -> bool {
        self.open == self.extend
    }
}

/// A request to abandon a long computation, set from another thread (on Ctrl-C). The loops
/// that can run long look at it every [`STOP_EVERY`] rows; a stopped computation's values are
/// meaningless and its caller reports [`Error::Interrupted`].
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<Arc<AtomicBool>>);

/// Rows between two looks at the stop flag.
pub const STOP_EVERY: usize = 256;

impl Stop {
    /// A flag that can be set with [`Stop::request`].
    #[must_use]
    pub fn new() -> Self {
        Stop(Some(Arc::new(AtomicBool::new(false))))
    }

    /// A flag that is never set.
    #[must_use]
    pub fn never() -> Self {
        Stop(None)
    }

    /// Ask every computation that holds this flag to stop.
    pub fn request(&self) {
        if let Some(f) = &self.0 {
            f.store(true, Ordering::Relaxed);
        }
    }

    /// True once a stop was requested.
    #[inline]
    #[must_use]
    pub fn requested(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// [`Error::Interrupted`] once a stop was requested.
    ///
    /// # Errors
    /// As above.
    pub fn check(&self) -> Result<()> {
        if self.requested() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// One column of an alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A_i aligned with B_j.
    Match { i: usize, j: usize },
    /// B_j aligned with a gap (a gap in A).
    GapA { j: usize },
    /// A_i aligned with a gap (a gap in B).
    GapB { i: usize },
}

/// A traced alignment: its columns, each column's score, and the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    pub ops: Vec<Op>,
    pub column_scores: Vec<f64>,
    pub score: f64,
}

/// Reusable DP buffers: one aligner per worker thread, no allocation per pair.
#[derive(Debug, Default, Clone)]
pub struct Aligner {
    h: Vec<f64>,
    f: Vec<f64>,
    stop: Stop,
}

/// Largest traceback table kept whole (bytes): above it the traceback is checkpointed.
const WHOLE_TABLE_BYTES: u128 = 1 << 26;

/// The three DP matrices over a run of rows (`rows x w`, row-major).
struct Rows {
    h: Vec<f64>,
    e: Vec<f64>,
    f: Vec<f64>,
}

impl Rows {
    fn new(rows: usize, w: usize, what: &dyn Fn() -> String) -> Result<Self> {
        let cells = rows as u128 * w as u128;
        let ninf = f64::NEG_INFINITY;
        // One size check for all three, so the message names the whole need.
        mem::check::<f64>(3 * cells, what)?;
        Ok(Rows {
            h: mem::filled(cells, 0.0, what)?,
            e: mem::filled(cells, ninf, what)?,
            f: mem::filled(cells, ninf, what)?,
        })
    }
}

impl Aligner {
    /// Aligner with room for sequences of length `n` without reallocating.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Aligner {
            h: Vec::with_capacity(n + 1),
            f: Vec::with_capacity(n + 1),
            stop: Stop::never(),
        }
    }

    /// An aligner whose long alignments give up (NaN, or [`Error::Interrupted`]) once `stop`
    /// is requested.
    #[must_use]
    pub fn with_stop(stop: Stop) -> Self {
        Aligner {
            stop,
            ..Aligner::default()
        }
    }

    fn init_row(&mut self, n: usize, gaps: Gaps) {
        self.h.clear();
        self.h.resize(n + 1, 0.0);
        for j in 1..=n {
            // Built incrementally, as the DP builds every other gap run.
            self.h[j] = if j == 1 { gaps.open } else { self.h[j - 1] + gaps.extend };
        }
    }

    /// Score of the best global alignment, reading match scores from per-gene rows:
    /// `row_of(a_i)[b_j]` is the score of gene `a_i` against gene `b_j`.
    /// This is the hot path: one table read per cell, no rule evaluation.
    pub fn score_rows<'t, R>(&mut self, a: &[u32], b: &[u32], row_of: R, gaps: Gaps) -> f64
    where
        R: Fn(u32) -> &'t [f64],
    {
        self.score_impl(
            a.len(),
            b.len(),
            |i| {
                let row = row_of(a[i]);
                move |j: usize| row[b[j] as usize]
            },
            gaps,
        )
    }

    /// Score of the best global alignment with match scores `sub(i, j)` (A_i against B_j).
    /// NaN if the aligner's stop flag was set meanwhile.
    pub fn score<S>(&mut self, m: usize, n: usize, sub: S, gaps: Gaps) -> f64
    where
        S: Fn(usize, usize) -> f64,
    {
        let sub = &sub;
        self.score_impl(m, n, |i| move |j: usize| sub(i, j), gaps)
    }

    #[inline]
    fn score_impl<RowF, CellF>(&mut self, m: usize, n: usize, row: RowF, gaps: Gaps) -> f64
    where
        RowF: Fn(usize) -> CellF,
        CellF: Fn(usize) -> f64,
    {
        self.init_row(n, gaps);
        let h = &mut self.h;
        let stop = &self.stop;
        let mut col0 = 0.0;
        if gaps.is_linear() {
            let g = gaps.open;
            for i in 0..m {
                if i % STOP_EVERY == STOP_EVERY - 1 && stop.requested() {
                    return f64::NAN;
                }
                let s = row(i);
                col0 = if i == 0 { gaps.open } else { col0 + gaps.extend };
                let mut diag = h[0];
                h[0] = col0;
                let mut left = col0;
                for j in 1..=n {
                    let up = h[j];
                    let mut v = diag + s(j - 1);
                    let gl = left + g;
                    if gl > v {
                        v = gl;
                    }
                    let gu = up + g;
                    if gu > v {
                        v = gu;
                    }
                    diag = up;
                    h[j] = v;
                    left = v;
                }
            }
        } else {
            let f = &mut self.f;
            f.clear();
            f.resize(n + 1, f64::NEG_INFINITY);
            for i in 0..m {
                if i % STOP_EVERY == STOP_EVERY - 1 && stop.requested() {
                    return f64::NAN;
                }
                let s = row(i);
                col0 = if i == 0 { gaps.open } else { col0 + gaps.extend };
                let mut diag = h[0];
                h[0] = col0;
                let mut left = col0;
                let mut e = f64::NEG_INFINITY;
                for j in 1..=n {
                    let up = h[j];
                    // E: gap in A ending at (i, j); F: gap in B ending at (i, j).
                    let eo = left + gaps.open;
                    let ee = e + gaps.extend;
                    e = if ee > eo { ee } else { eo };
                    let fo = up + gaps.open;
                    let fe = f[j] + gaps.extend;
                    let fv = if fe > fo { fe } else { fo };
                    f[j] = fv;
                    let mut v = diag + s(j - 1);
                    if e > v {
                        v = e;
                    }
                    if fv > v {
                        v = fv;
                    }
                    diag = up;
                    h[j] = v;
                    left = v;
                }
            }
        }
        if n == 0 {
            // No columns: the whole of A faces one gap, summed as the DP sums every gap run.
            return col0;
        }
        h[n]
    }

    /// Best global alignment with its traceback (for reports, not for matrices). Memory: the
    /// whole table for small pairs, checkpointed rows for long ones (see the module docs).
    ///
    /// # Errors
    /// [`Error::Memory`] when even the checkpointed tables cannot be allocated;
    /// [`Error::Interrupted`] when the aligner's stop flag is set meanwhile.
    pub fn align<S>(&mut self, m: usize, n: usize, sub: S, gaps: Gaps) -> Result<Alignment>
    where
        S: Fn(usize, usize) -> f64,
    {
        let whole = (m as u128 + 1) * (n as u128 + 1) * 24 <= WHOLE_TABLE_BYTES;
        // Block height: all rows at once when small, else about sqrt(m) rows per block, with a
        // checkpoint (the block's first row) kept for each block.
        let b = if whole { m } else { m.isqrt() };
        self.align_in_blocks(m, n, sub, gaps, b)
    }

    /// [`Aligner::align`] with blocks of `b` rows (at least 1): the same alignment for every
    /// `b`, in `(m / b + b) * (n + 1) * 24` bytes.
    ///
    /// # Errors
    /// As [`Aligner::align`].
    pub fn align_in_blocks<S>(&mut self, m: usize, n: usize, sub: S, gaps: Gaps, b: usize) -> Result<Alignment>
    where
        S: Fn(usize, usize) -> f64,
    {
        let w = n + 1;
        let b = b.clamp(1, m.max(1));
        let n_blocks = if m == 0 { 1 } else { (m - 1) / b + 1 };
        let what = || format!("the traceback of a {m} x {n} alignment ({n_blocks} blocks of {b} rows)");
        mem::check::<f64>((n_blocks as u128 + b as u128 + 1) * w as u128 * 3, &what)?;
        let mut ck = Rows::new(n_blocks, w, &what)?;
        let mut blk = Rows::new(b + 1, w, &what)?;
        // Row 0.
        for j in 1..=n {
            // Built incrementally, as the DP builds every other gap run.
            ck.h[j] = if j == 1 { gaps.open } else { ck.h[j - 1] + gaps.extend };
            ck.e[j] = ck.h[j];
        }
        // Forward pass: the first row of every block after the first.
        for c in 0..n_blocks - 1 {
            self.fill_block(&ck, c, b, m, n, &sub, gaps, &mut blk)?;
            let (src, dst) = (b * w..(b + 1) * w, (c + 1) * w..(c + 2) * w);
            ck.h[dst.clone()].copy_from_slice(&blk.h[src.clone()]);
            ck.e[dst.clone()].copy_from_slice(&blk.e[src.clone()]);
            ck.f[dst].copy_from_slice(&blk.f[src]);
        }
        let block_of = |i: usize| if i == 0 { 0 } else { (i - 1) / b };
        let mut loaded = block_of(m);
        self.fill_block(&ck, loaded, b, m, n, &sub, gaps, &mut blk)?;
        let score = blk.h[(m - loaded * b) * w + n];
        // Trace back from (m, n) in state H; prefer a match, then a gap in A, then in B.
        // Each gap column is scored by the derivation the DP actually used (opened or
        // extended), so re-scoring the columns in order gives the DP score bit for bit.
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            H,
            E,
            F,
        }
        let mut ops = Vec::with_capacity(m + n);
        let mut scores = Vec::with_capacity(m + n);
        let (mut i, mut j, mut state) = (m, n, State::H);
        while i > 0 || j > 0 {
            if i == 0 {
                ops.push(Op::GapA { j: j - 1 });
                scores.push(if j == 1 { gaps.open } else { gaps.extend });
                j -= 1;
                continue;
            }
            if j == 0 {
                ops.push(Op::GapB { i: i - 1 });
                scores.push(if i == 1 { gaps.open } else { gaps.extend });
                i -= 1;
                continue;
            }
            if block_of(i) != loaded {
                loaded = block_of(i);
                self.fill_block(&ck, loaded, b, m, n, &sub, gaps, &mut blk)?;
            }
            // Rows i - 1 and i are both in the loaded block.
            let k = (i - loaded * b) * w + j;
            let (h, e, f) = (&blk.h, &blk.e, &blk.f);
            match state {
                State::H => {
                    let s = sub(i - 1, j - 1);
                    if h[k] == h[k - w - 1] + s {
                        ops.push(Op::Match { i: i - 1, j: j - 1 });
                        scores.push(s);
                        i -= 1;
                        j -= 1;
                    } else if h[k] == e[k] {
                        state = State::E;
                    } else {
                        state = State::F;
                    }
                }
                State::E => {
                    ops.push(Op::GapA { j: j - 1 });
                    if j > 1 && e[k] == e[k - 1] + gaps.extend {
                        scores.push(gaps.extend);
                    } else {
                        scores.push(gaps.open);
                        state = State::H;
                    }
                    j -= 1;
                }
                State::F => {
                    ops.push(Op::GapB { i: i - 1 });
                    if i > 1 && f[k] == f[k - w] + gaps.extend {
                        scores.push(gaps.extend);
                    } else {
                        scores.push(gaps.open);
                        state = State::H;
                    }
                    i -= 1;
                }
            }
        }
        ops.reverse();
        scores.reverse();
        Ok(Alignment {
            ops,
            column_scores: scores,
            score,
        })
    }

    /// Rows `c * b ..= min((c + 1) * b, m)` of the DP into `blk` (local row 0 = the block's
    /// checkpoint row), with the recursion of the full table, cell for cell.
    #[allow(clippy::too_many_arguments)]
    fn fill_block<S>(
        &self,
        ck: &Rows,
        c: usize,
        b: usize,
        m: usize,
        n: usize,
        sub: &S,
        gaps: Gaps,
        blk: &mut Rows,
    ) -> Result<()>
    where
        S: Fn(usize, usize) -> f64,
    {
        let w = n + 1;
        let r0 = c * b;
        let rows = (r0 + b).min(m) - r0;
        blk.h[..w].copy_from_slice(&ck.h[c * w..(c + 1) * w]);
        blk.e[..w].copy_from_slice(&ck.e[c * w..(c + 1) * w]);
        blk.f[..w].copy_from_slice(&ck.f[c * w..(c + 1) * w]);
        for li in 1..=rows {
            let i = r0 + li;
            if i.is_multiple_of(STOP_EVERY) {
                self.stop.check()?;
            }
            let base = li * w;
            blk.h[base] = if i == 1 {
                gaps.open
            } else {
                blk.h[base - w] + gaps.extend
            };
            blk.f[base] = blk.h[base];
            blk.e[base] = f64::NEG_INFINITY;
            for j in 1..=n {
                let k = base + j;
                let eo = blk.h[k - 1] + gaps.open;
                let ee = blk.e[k - 1] + gaps.extend;
                blk.e[k] = if ee > eo { ee } else { eo };
                let fo = blk.h[k - w] + gaps.open;
                let fe = blk.f[k - w] + gaps.extend;
                blk.f[k] = if fe > fo { fe } else { fo };
                let mut v = blk.h[k - w - 1] + sub(i - 1, j - 1);
                if blk.e[k] > v {
                    v = blk.e[k];
                }
                if blk.f[k] > v {
                    v = blk.f[k];
                }
                blk.h[k] = v;
            }
        }
        Ok(())
    }
}

/// Sum of column scores in order: equals the DP score bit for bit.
#[must_use]
pub fn rescore(alignment: &Alignment) -> f64 {
    alignment.column_scores.iter().fold(0.0, |acc, s| acc + s)
}
