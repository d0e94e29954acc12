//! `ScoreTable`: the scoring schema compiled to plain data, immutable once built (the cache of
//! distinct genes a Python-facing table keeps lives beside it, in `genes.rs`).
//!
//! For every ordered pair of gene types `(x, y)` the table holds one rule
//! `base - d`, `d = sum_k (|x_p - y_p| * w_k) / n_k` over the rule's terms, in order.
//! A pair without a rule is a constant (its mismatch score) with no terms.
//! Rules are stored per *ordered* pair because a schema may be directed (the `paper`
//! schema scores Flatten->GlobalPool 0.5 but GlobalPool->Flatten -1).
//!
//! Gap costs are scores added per gapped position: a gap of length `k` scores
//! `open + (k - 1) * extend` (both <= 0).

use crate::align::Gaps;
use crate::error::{Error, Result};

/// One weighted, normalised parameter difference of a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// Column of the parameter in the gene parameter rows.
    pub param: usize,
    /// Weight `w`.
    pub weight: f64,
    /// Normaliser `n` (> 0).
    pub norm: f64,
}

/// Which value normalises a raw score to 0 (the lower end of the similarity scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerBound {
    /// The paper's `rho * max(len(A), len(B))`: one gap as long as the longer sequence.
    /// Not a true bound: odd pairs fall below it (their similarity is clamped to 0).
    Paper,
    /// The score of aligning every gene of both sequences to a gap: a true lower bound.
    AllGaps,
}

/// Bound on the magnitude of every base score, gap score and term weight. A global alignment of
/// sequences of lengths m and n sums at most m + n scores, so every raw score, self score and
/// normalisation bound stays below `(m + n) * 1e12` in magnitude: finite (and far from
/// overflow) for any length that fits in memory, which keeps `sim(S, S) == 1` for every table
/// that loads. (1e308 was accepted before and made `sim(S, S)` 0.)
pub const MAX_SCORE: f64 = 1e12;

/// A compiled scoring schema: per ordered type pair, a base score and its terms.
#[derive(Debug, Clone)]
pub struct ScoreTable {
    n_types: usize,
    n_params: usize,
    base: Vec<f64>,
    term_start: Vec<usize>,
    terms: Vec<Term>,
    gaps: Gaps,
    lower_bound: LowerBound,
    symmetric: bool,
    used: Vec<Vec<usize>>,
}

impl ScoreTable {
    /// Build and check a table.
    ///
    /// `base` is `n_types * n_types` row-major (row = first gene); `rule_terms[x * n_types + y]`
    /// lists the terms of the rule for `(x, y)` in accumulation order.
    ///
    /// # Errors
    /// [`Error::InvalidTable`] for a wrong shape, a non-finite or negative weight, a normaliser
    /// that is not positive, a parameter column out of range, a positive gap score, or a self
    /// match (`base[x][x]`) that is not positive.
    pub fn new(
        n_types: usize,
        n_params: usize,
        base: Vec<f64>,
        rule_terms: Vec<Vec<Term>>,
        gaps: Gaps,
        lower_bound: LowerBound,
    ) -> Result<Self> {
        let bad = |m: String| Err(Error::InvalidTable(m));
        if n_types == 0 {
            return bad("the table has no gene types".into());
        }
        if n_types > u16::MAX as usize {
            return bad(format!("too many gene types ({n_types})"));
        }
        let cells = n_types * n_types;
        if base.len() != cells || rule_terms.len() != cells {
            return bad(format!(
                "expected {cells} rules for {n_types} gene types, got base {} and terms {}",
                base.len(),
                rule_terms.len()
            ));
        }
        for (k, b) in base.iter().enumerate() {
            if !b.is_finite() {
                return bad(format!(
                    "score of pair ({}, {}) is not finite",
                    k / n_types,
                    k % n_types
                ));
            }
        }
        if let Some(k) = base.iter().position(|b| b.abs() > MAX_SCORE) {
            return bad(format!(
                "score of pair ({}, {}) is {}, beyond the bound of {MAX_SCORE:e} on every score",
                k / n_types,
                k % n_types,
                base[k]
            ));
        }
        if gaps.open < -MAX_SCORE || gaps.extend < -MAX_SCORE {
            return bad(format!(
                "gap scores must be at least -{MAX_SCORE:e} (open {}, extend {})",
                gaps.open, gaps.extend
            ));
        }
        for x in 0..n_types {
            if base[x * n_types + x] <= 0.0 {
                return bad(format!("self match of gene type {x} is not positive"));
            }
        }
        if !(gaps.open.is_finite() && gaps.extend.is_finite()) || gaps.open > gaps.extend || gaps.extend > 0.0 {
            return bad(format!(
                "gap scores must be finite with open <= extend <= 0 (open {}, extend {})",
                gaps.open, gaps.extend
            ));
        }
        let mut term_start = Vec::with_capacity(cells + 1);
        let mut terms = Vec::new();
        for (k, rule) in rule_terms.into_iter().enumerate() {
            term_start.push(terms.len());
            for t in rule {
                if t.param >= n_params {
                    return bad(format!("rule {k} uses parameter column {} of {n_params}", t.param));
                }
                if !t.weight.is_finite() || t.weight < 0.0 || t.weight > MAX_SCORE {
                    return bad(format!(
                        "rule {k} has a weight that is negative, not finite or above {MAX_SCORE:e} ({})",
                        t.weight
                    ));
                }
                if !t.norm.is_finite() || t.norm <= 0.0 {
                    return bad(format!("rule {k} has a normaliser that is not positive ({})", t.norm));
                }
                terms.push(t);
            }
        }
        term_start.push(terms.len());
        let mut table = ScoreTable {
            n_types,
            n_params,
            base,
            term_start,
            terms,
            gaps,
            lower_bound,
            symmetric: false,
            used: Vec::new(),
        };
        table.symmetric = table.compute_symmetric();
        table.used = (0..n_types).map(|t| table.used_params(t)).collect();
        Ok(table)
    }

    fn rule_terms(&self, x: usize, y: usize) -> &[Term] {
        let k = x * self.n_types + y;
        &self.terms[self.term_start[k]..self.term_start[k + 1]]
    }

    fn compute_symmetric(&self) -> bool {
        (0..self.n_types).all(|x| {
            (x + 1..self.n_types).all(|y| {
                self.base[x * self.n_types + y] == self.base[y * self.n_types + x]
                    && self.rule_terms(x, y) == self.rule_terms(y, x)
            })
        })
    }

    /// Match score of gene `(ta, pa)` from sequence A against gene `(tb, pb)` from B.
    ///
    /// Type codes must be valid (checked when sequences are encoded).
    #[inline]
    #[must_use]
    pub fn substitution(&self, ta: usize, pa: &[f64], tb: usize, pb: &[f64]) -> f64 {
        let k = ta * self.n_types + tb;
        // Accumulate the terms left to right into d, then subtract from base: the authors'
        // code does exactly this, and the same operation order is what makes the `paper`
        // schema reproduce its doubles bit for bit.
        let mut d = 0.0;
        for t in &self.terms[self.term_start[k]..self.term_start[k + 1]] {
            d += ((pa[t.param] - pb[t.param]).abs() * t.weight) / t.norm;
        }
        self.base[k] - d
    }

    /// Number of gene types.
    #[must_use]
    pub fn n_types(&self) -> usize {
        self.n_types
    }

    /// Number of parameter columns.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Gap scores.
    #[must_use]
    pub fn gaps(&self) -> Gaps {
        self.gaps
    }

    /// Lower bound used by the normalisation.
    #[must_use]
    pub fn lower_bound(&self) -> LowerBound {
        self.lower_bound
    }

    /// True when `f(x, y) == f(y, x)` for every pair of genes, so `sim(a, b) == sim(b, a)`.
    #[must_use]
    pub fn is_symmetric(&self) -> bool {
        self.symmetric
    }

    /// Parameter columns that some rule reads (their values must be finite).
    #[must_use]
    pub fn used_params(&self, ty: usize) -> Vec<usize> {
        let mut used: Vec<usize> = (0..self.n_types)
            .flat_map(|o| {
                self.rule_terms(ty, o)
                    .iter()
                    .chain(self.rule_terms(o, ty))
                    .map(|t| t.param)
                    .collect::<Vec<_>>()
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    /// `used_params` of every type, computed once.
    #[must_use]
    pub fn used_params_by_type(&self) -> &[Vec<usize>] {
        &self.used
    }

    /// Similarity from a raw score, the two self scores and the lengths; clamped below at 0.
    #[inline]
    #[must_use]
    pub fn normalise(&self, score: f64, len_a: usize, len_b: usize, self_a: f64, self_b: f64) -> f64 {
        let lo = match self.lower_bound {
            LowerBound::Paper => self.gaps.cost(len_a.max(len_b)),
            LowerBound::AllGaps => self.gaps.cost(len_a) + self.gaps.cost(len_b),
        };
        let hi = self_a.max(self_b);
        // Same expression as the original, `(score - min) / (max - min)`; rounding to 3
        // decimals is left to Python because only Python's round() matches the original.
        let sim = (score - lo) / (hi - lo);
        if sim > 0.0 {
            sim
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(base: Vec<f64>, terms: Vec<Vec<Term>>) -> Result<ScoreTable> {
        ScoreTable::new(
            2,
            1,
            base,
            terms,
            Gaps {
                open: -0.5,
                extend: -0.5,
            },
            LowerBound::Paper,
        )
    }

    #[test]
    fn substitution_accumulates_terms() {
        let t = Term {
            param: 0,
            weight: 0.6,
            norm: 112.0,
        };
        let tb = table(vec![3.0, -2.0, -1.0, 1.0], vec![vec![t], vec![], vec![], vec![]]).unwrap();
        let s = tb.substitution(0, &[16.0], 0, &[128.0]);
        assert_eq!(s, 3.0 - (112.0 * 0.6) / 112.0);
        assert_eq!(tb.substitution(0, &[1.0], 1, &[2.0]), -2.0);
        assert!(!tb.is_symmetric());
    }

    #[test]
    fn rejects_bad_tables() {
        assert!(table(vec![3.0, -2.0, -2.0], vec![vec![], vec![], vec![], vec![]]).is_err());
        assert!(table(vec![0.0, -2.0, -2.0, 1.0], vec![vec![], vec![], vec![], vec![]]).is_err());
        assert!(table(vec![f64::NAN, -2.0, -2.0, 1.0], vec![vec![], vec![], vec![], vec![]]).is_err());
        let neg = Term {
            param: 0,
            weight: -1.0,
            norm: 1.0,
        };
        assert!(table(vec![3.0, -2.0, -2.0, 1.0], vec![vec![neg], vec![], vec![], vec![]]).is_err());
        let col = Term {
            param: 3,
            weight: 1.0,
            norm: 1.0,
        };
        assert!(table(vec![3.0, -2.0, -2.0, 1.0], vec![vec![col], vec![], vec![], vec![]]).is_err());
        let ok = table(vec![3.0, -2.0, -2.0, 1.0], vec![vec![], vec![], vec![], vec![]]).unwrap();
        assert!(ok.is_symmetric());
    }

    #[test]
    fn scores_that_could_overflow_are_refused() {
        let none = || vec![vec![], vec![], vec![], vec![]];
        let huge = table(vec![1e308, -2.0, -2.0, 1.0], none()).unwrap_err();
        assert!(huge.to_string().contains("beyond the bound of 1e12"), "{huge}");
        assert!(table(vec![3.0, -1e13, -2.0, 1.0], none()).is_err());
        let deep_gap = ScoreTable::new(
            2,
            1,
            vec![3.0, -2.0, -2.0, 1.0],
            none(),
            Gaps {
                open: -1e308,
                extend: -0.5,
            },
            LowerBound::Paper,
        );
        assert!(deep_gap.is_err());
        let heavy = Term {
            param: 0,
            weight: 1e300,
            norm: 1.0,
        };
        assert!(table(vec![3.0, -2.0, -2.0, 1.0], vec![vec![heavy], vec![], vec![], vec![]]).is_err());
        // At the bound: fine, and self similarity is exactly 1 for a long sequence.
        let edge = table(vec![1e12, -1e12, -1e12, 1e12], none()).unwrap();
        let s = 1e12 * 10_000.0;
        assert_eq!(edge.normalise(s, 10_000, 10_000, s, s), 1.0);
    }

    #[test]
    fn paper_lower_bound_allows_negative_then_clamps() {
        let tb = table(vec![1.0, -1.0, -1.0, 1.5], vec![vec![], vec![], vec![], vec![]]).unwrap();
        // L vs E: score -1 (two gaps), lo -0.5, hi 1.5 -> -0.25, clamped to 0.
        assert_eq!(tb.normalise(-1.0, 1, 1, 1.0, 1.5), 0.0);
        assert_eq!(tb.normalise(1.5, 1, 1, 1.5, 1.5), 1.0);
    }
}
