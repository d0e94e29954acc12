//! One pair of sequences, straight from their encoded genes: no population, no gene
//! dictionary, no thread pool.
//!
//! This is the per-call path (`similarity(a, b)` inside someone else's loop): for two
//! sequences of ten genes the whole computation is a few hundred substitutions and three
//! small DPs, well under a microsecond, so anything shared (a dictionary lookup per gene,
//! waking a pool) would cost more than the work. The match scores are computed from the
//! table's rules for exactly the pairs the DPs read, with the same function, arguments and
//! operation order as the dense table of a [`Population`](crate::seq::Population), so the
//! results are the matrix path's doubles bit for bit.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::align::{Aligner, Alignment};
use crate::error::{Error, Result};
use crate::score::ScoreTable;

/// Self scores a scorer remembers per table before it starts that table afresh.
const MEMO_SIZE: usize = 4096;

/// Tables a scorer remembers self scores under (a loop may alternate schemas: `default` for
/// one measure, `paper` for another, a file for a third).
const MEMO_TABLES: usize = 4;

/// One encoded sequence: a type code per gene and `n_params` parameters per gene (row-major;
/// NaN where a gene lacks a column).
#[derive(Debug, Clone, Copy)]
pub struct Seq<'a> {
    pub codes: &'a [u32],
    pub params: &'a [f64],
}

impl Seq<'_> {
    fn len(&self) -> usize {
        self.codes.len()
    }
}

/// Check a sequence as [`Population::new`](crate::seq::Population::new) does, with `seq` as
/// its index in error messages: parameter shape, at least one gene, known type codes, finite
/// values in every parameter a rule of the gene's type reads.
///
/// # Errors
/// [`Error::ParamShape`], [`Error::EmptySequence`], [`Error::UnknownType`], [`Error::NonFinite`].
pub fn check(table: &ScoreTable, s: Seq<'_>, seq: usize) -> Result<()> {
    let np = table.n_params();
    if s.params.len() != s.codes.len() * np {
        return Err(Error::ParamShape {
            rows: s.params.len().checked_div(np).unwrap_or(0),
            cols: np,
            expected_rows: s.codes.len(),
            expected_cols: np,
        });
    }
    if s.codes.is_empty() {
        return Err(Error::EmptySequence { seq });
    }
    let used = table.used_params_by_type();
    for (index, &code) in s.codes.iter().enumerate() {
        if code as usize >= table.n_types() {
            return Err(Error::UnknownType {
                seq,
                index,
                code,
                n_types: table.n_types(),
            });
        }
        let row = &s.params[index * np..(index + 1) * np];
        for &p in &used[code as usize] {
            if !row[p].is_finite() {
                return Err(Error::NonFinite {
                    seq,
                    index,
                    param: p,
                    value: row[p],
                });
            }
        }
    }
    Ok(())
}

/// Self scores by sequence content (type codes, then parameter bits).
type SelfScores = FxHashMap<Vec<u64>, f64>;

/// Reusable buffers for pairs (one per thread; no allocation per pair once warm), and the self
/// scores of the sequences it has met under one table.
///
/// A loop that calls `similarity(a, b)` pair by pair meets the same architectures again and
/// again (an archive, a population); a sequence's self score (its alignment with itself, which
/// normalises every similarity it takes part in) costs as much as the pair's own alignment, so
/// it is kept, keyed by the sequence's full content (type codes and parameter bits: equal keys
/// are equal sequences, so a remembered score is exactly the one computed), per table for the
/// last `MEMO_TABLES` tables used.
#[derive(Debug, Default, Clone)]
pub struct PairScorer {
    al: Aligner,
    sub: Vec<f64>,
    /// Most recently used table first. Holding a table keeps its address from being reused
    /// by another one.
    memos: Vec<(Arc<ScoreTable>, SelfScores)>,
    key: Vec<u64>,
}

impl PairScorer {
    /// Put the self-score memo of `table` first (a new one, the oldest dropped, for a table
    /// not among the last few).
    fn use_memo_of(&mut self, table: &Arc<ScoreTable>) {
        match self.memos.iter().position(|(t, _)| Arc::ptr_eq(t, table)) {
            Some(0) => {}
            Some(i) => self.memos[..=i].rotate_right(1),
            None => {
                self.memos.truncate(MEMO_TABLES - 1);
                self.memos.insert(0, (table.clone(), SelfScores::default()));
            }
        }
    }

    /// Self score of `s` under `table` (remembered per content and table).
    fn self_score(&mut self, table: &Arc<ScoreTable>, s: Seq<'_>) -> f64 {
        self.use_memo_of(table);
        self.key.clear();
        self.key.extend(s.codes.iter().map(|&c| u64::from(c)));
        self.key.extend(s.params.iter().map(|p| p.to_bits()));
        if let Some(&v) = self.memos[0].1.get(&self.key) {
            return v;
        }
        let v = self.score(table, s, s);
        let memo = &mut self.memos[0].1;
        if memo.len() >= MEMO_SIZE {
            memo.clear();
        }
        memo.insert(self.key.clone(), v);
        v
    }

    /// Match scores of every gene of `a` (rows) against every gene of `b` into `self.sub`.
    fn fill(&mut self, table: &ScoreTable, a: Seq<'_>, b: Seq<'_>) {
        let np = table.n_params();
        self.sub.clear();
        self.sub.reserve(a.len() * b.len());
        for (x, &ta) in a.codes.iter().enumerate() {
            let pa = &a.params[x * np..(x + 1) * np];
            for (y, &tb) in b.codes.iter().enumerate() {
                let pb = &b.params[y * np..(y + 1) * np];
                self.sub.push(table.substitution(ta as usize, pa, tb as usize, pb));
            }
        }
    }

    /// Raw global alignment score of `a` (as A) against `b` (as B). Both must be checked.
    pub fn score(&mut self, table: &ScoreTable, a: Seq<'_>, b: Seq<'_>) -> f64 {
        self.fill(table, a, b);
        let (sub, n) = (&self.sub, b.len());
        self.al.score(a.len(), n, |x, y| sub[x * n + y], table.gaps())
    }

    /// Similarity of `a` (as A) against `b` (as B), in [0, 1]: equal to the cell of a
    /// similarity matrix with `a` as a row and `b` as a column, bit for bit.
    ///
    /// # Errors
    /// As [`check`], with `a` as sequence 0 and `b` as sequence 1.
    pub fn similarity(&mut self, table: &Arc<ScoreTable>, a: Seq<'_>, b: Seq<'_>) -> Result<f64> {
        check(table, a, 0)?;
        check(table, b, 1)?;
        Ok(self.similarity_of_checked(table, a, b))
    }

    /// [`PairScorer::similarity`] of two sequences known to pass [`check`] (made by an
    /// encoder that only produces such sequences).
    pub fn similarity_of_checked(&mut self, table: &Arc<ScoreTable>, a: Seq<'_>, b: Seq<'_>) -> f64 {
        let self_a = self.self_score(table, a);
        let self_b = self.self_score(table, b);
        let s = self.score(table, a, b);
        table.normalise(s, a.len(), b.len(), self_a, self_b)
    }

    /// One optimal alignment of `a` against `b` with its similarity (as
    /// `Population::align` would give for the two sequences).
    ///
    /// # Errors
    /// As [`PairScorer::similarity`].
    pub fn align(&mut self, table: &Arc<ScoreTable>, a: Seq<'_>, b: Seq<'_>) -> Result<(Alignment, f64)> {
        check(table, a, 0)?;
        check(table, b, 1)?;
        let self_a = self.self_score(table, a);
        let self_b = self.self_score(table, b);
        self.fill(table, a, b);
        let (sub, n) = (&self.sub, b.len());
        let al = self.al.align(a.len(), n, |x, y| sub[x * n + y], table.gaps())?;
        let sim = table.normalise(al.score, a.len(), b.len(), self_a, self_b);
        Ok((al, sim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Aligner;
    use crate::align::Gaps;
    use crate::score::{LowerBound, Term};
    use crate::seq::Population;

    fn table(open: f64) -> ScoreTable {
        let t = Term {
            param: 0,
            weight: 0.6,
            norm: 7.0,
        };
        ScoreTable::new(
            3,
            1,
            vec![3.0, 1.0, -1.0, 1.0, 2.0, -1.5, -1.0, -1.5, 1.0],
            vec![
                vec![t],
                vec![t],
                vec![],
                vec![t],
                vec![t],
                vec![],
                vec![],
                vec![],
                vec![],
            ],
            Gaps { open, extend: -0.5 },
            LowerBound::Paper,
        )
        .unwrap()
    }

    fn seqs() -> Vec<(Vec<u32>, Vec<f64>)> {
        vec![
            (vec![0, 1, 2, 0], vec![16.0, 3.0, f64::NAN, 64.0]),
            (vec![0, 2, 1], vec![32.0, f64::NAN, 5.0]),
            (vec![2], vec![f64::NAN]),
            (vec![1, 1, 0, 2, 2, 0], vec![1.0, 2.0, 3.0, f64::NAN, f64::NAN, 4.0]),
        ]
    }

    #[test]
    fn pairs_equal_the_population_bit_for_bit() {
        // One scorer for several tables, more than it remembers, met again in turn: its
        // remembered self scores must not leak across them.
        let mut ps = PairScorer::default();
        let tables: Vec<Arc<ScoreTable>> = [-0.5, -2.0, -1.0, -3.0, -4.0].map(|o| Arc::new(table(o))).into();
        for k in [0, 1, 0, 2, 3, 4, 1, 0, 4, 0] {
            let t = tables[k].clone();
            let s = seqs();
            let codes: Vec<u32> = s.iter().flat_map(|x| x.0.clone()).collect();
            let params: Vec<f64> = s.iter().flat_map(|x| x.1.clone()).collect();
            let mut offsets = vec![0];
            for x in &s {
                offsets.push(offsets.last().unwrap() + x.0.len());
            }
            let pop = Population::new(&t, &codes, &params, &offsets).unwrap();
            let mut al = Aligner::default();
            for i in 0..s.len() {
                for j in 0..s.len() {
                    let (a, b) = (
                        Seq {
                            codes: &s[i].0,
                            params: &s[i].1,
                        },
                        Seq {
                            codes: &s[j].0,
                            params: &s[j].1,
                        },
                    );
                    let sim = ps.similarity(&t, a, b).unwrap();
                    assert_eq!(sim.to_bits(), pop.similarity(&t, i, j, &mut al).to_bits());
                    let (traced, tsim) = ps.align(&t, a, b).unwrap();
                    assert_eq!(traced.score.to_bits(), pop.score(&t, i, j, &mut al).to_bits());
                    assert_eq!(tsim.to_bits(), sim.to_bits());
                }
            }
            assert!(ps.memos.len() <= MEMO_TABLES);
            assert!(Arc::ptr_eq(&ps.memos[0].0, &t));
        }
    }

    #[test]
    fn remembered_self_scores_are_per_content_exactly() {
        // Sequences that differ in one code, one parameter or only a zero's sign, more of them
        // than the memo holds: every self score is the one computed afresh.
        let t = Arc::new(table(-0.5));
        let mut ps = PairScorer::default();
        let mut seqs: Vec<(Vec<u32>, Vec<f64>)> = Vec::new();
        for i in 0..(MEMO_SIZE + 500) {
            let x = (i % 97) as f64;
            seqs.push((
                vec![0, (i % 2) as u32, 2],
                vec![x, if i % 3 == 0 { -0.0 } else { 0.0 }, f64::NAN],
            ));
        }
        seqs.push((vec![0, 1], vec![1.0, 2.0]));
        seqs.push((vec![0], vec![1.0]));
        for pass in 0..2 {
            for (c, p) in &seqs {
                let s = Seq { codes: c, params: p };
                let want = PairScorer::default().score(&t, s, s);
                assert_eq!(
                    ps.self_score(&t, s).to_bits(),
                    want.to_bits(),
                    "pass {pass}, {c:?} {p:?}"
                );
            }
        }
        assert!(ps.memos[0].1.len() <= MEMO_SIZE);
    }

    #[test]
    fn bad_input_is_the_population_error() {
        let t = Arc::new(table(-0.5));
        let mut ps = PairScorer::default();
        let ok = Seq {
            codes: &[0],
            params: &[1.0],
        };
        let empty = Seq {
            codes: &[],
            params: &[],
        };
        assert_eq!(ps.similarity(&t, ok, empty), Err(Error::EmptySequence { seq: 1 }));
        let unknown = Seq {
            codes: &[0, 7],
            params: &[1.0, 1.0],
        };
        assert!(matches!(
            ps.similarity(&t, unknown, ok),
            Err(Error::UnknownType { seq: 0, index: 1, .. })
        ));
        let nan = Seq {
            codes: &[0],
            params: &[f64::NAN],
        };
        assert!(matches!(
            ps.similarity(&t, ok, nan),
            Err(Error::NonFinite { seq: 1, .. })
        ));
        let shape = Seq {
            codes: &[0],
            params: &[1.0, 2.0],
        };
        assert!(matches!(ps.similarity(&t, shape, ok), Err(Error::ParamShape { .. })));
    }
}
