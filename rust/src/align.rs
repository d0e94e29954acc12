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
}

impl Aligner {
    /// Aligner with room for sequences of length `n` without reallocating.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Aligner {
            h: Vec::with_capacity(n + 1),
            f: Vec::with_capacity(n + 1),
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
        let mut col0 = 0.0;
        if gaps.is_linear() {
            let g = gaps.open;
            for i in 0..m {
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

    /// Best global alignment with its traceback (full matrices; for reports, not for matrices).
    pub fn align<S>(&mut self, m: usize, n: usize, sub: S, gaps: Gaps) -> Alignment
    where
        S: Fn(usize, usize) -> f64,
    {
        let w = n + 1;
        let ninf = f64::NEG_INFINITY;
        let mut h = vec![0.0; (m + 1) * w];
        let mut e = vec![ninf; (m + 1) * w];
        let mut f = vec![ninf; (m + 1) * w];
        for j in 1..=n {
            h[j] = if j == 1 { gaps.open } else { h[j - 1] + gaps.extend };
            e[j] = h[j];
        }
        for i in 1..=m {
            h[i * w] = if i == 1 {
                gaps.open
            } else {
                h[(i - 1) * w] + gaps.extend
            };
            f[i * w] = h[i * w];
            for j in 1..=n {
                let k = i * w + j;
                let eo = h[k - 1] + gaps.open;
                let ee = e[k - 1] + gaps.extend;
                e[k] = if ee > eo { ee } else { eo };
                let fo = h[k - w] + gaps.open;
                let fe = f[k - w] + gaps.extend;
                f[k] = if fe > fo { fe } else { fo };
                let mut v = h[k - w - 1] + sub(i - 1, j - 1);
                if e[k] > v {
                    v = e[k];
                }
                if f[k] > v {
                    v = f[k];
                }
                h[k] = v;
            }
        }
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
            let k = i * w + j;
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
        Alignment {
            ops,
            column_scores: scores,
            score: h[m * w + n],
        }
    }
}

/// Sum of column scores in order: equals the DP score bit for bit.
#[must_use]
pub fn rescore(alignment: &Alignment) -> f64 {
    alignment.column_scores.iter().fold(0.0, |acc, s| acc + s)
}
