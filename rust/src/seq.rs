//! `Population`: many encoded sequences over one dictionary of distinct genes.
//!
//! Sequences arrive concatenated: one type code and one parameter row per gene, plus
//! offsets (`offsets[i]..offsets[i + 1]` is sequence i). Identical genes (same type, same
//! parameter bits) share one id in a [`GeneSpace`](crate::genes::GeneSpace), so a population
//! of thousands of architectures drawn from a finite gene pool needs only a small gene-by-gene
//! score table: the alignment loop then reads one f64 per cell and never evaluates a rule.

use std::sync::Arc;

use rayon::prelude::*;

use crate::align::{Aligner, Stop};
use crate::error::{Error, Result};
use crate::genes::{GeneCache, GeneSpace, Keys};
use crate::score::ScoreTable;

mod append;

/// Encoded sequences sharing a gene dictionary, with precomputed scores.
#[derive(Debug, Clone)]
pub struct Population {
    /// Gene ids (into `space`), all sequences concatenated.
    genes: Vec<u32>,
    offsets: Vec<usize>,
    space: Arc<GeneSpace>,
    self_scores: Vec<f64>,
}

impl Population {
    /// Encode and check sequences against `table`, over a dictionary of their own genes.
    ///
    /// # Errors
    /// As [`Population::with_cache`].
    pub fn new(table: &ScoreTable, codes: &[u32], params: &[f64], offsets: &[usize]) -> Result<Self> {
        Self::build(table, None, codes, params, offsets, &Stop::never())
    }

    /// Encode and check sequences against `table`, over the dictionary `cache` keeps for it;
    /// the self-alignments (quadratic in each length) give up once `stop` is requested.
    ///
    /// `codes[g]` is gene g's type, `params[g * n_params..][..n_params]` its parameters (NaN for
    /// a parameter the gene does not have), `offsets` has one more entry than sequences.
    ///
    /// # Errors
    /// Wrong shapes, bad offsets, an empty sequence, a type code outside the table, or a
    /// non-finite value in a parameter that a rule of the gene's type reads;
    /// [`Error::Interrupted`] once `stop` is requested.
    pub fn with_cache(
        table: &ScoreTable,
        cache: &GeneCache,
        codes: &[u32],
        params: &[f64],
        offsets: &[usize],
        stop: &Stop,
    ) -> Result<Self> {
        Self::build(table, Some(cache), codes, params, offsets, stop)
    }

    /// As [`Population::with_cache`], without the self scores: for a caller that gets them
    /// along with its own alignments (the symmetric small matrix aligns every sequence with
    /// itself anyway), or calls [`Population::score_selves`] when it turns out not to.
    ///
    /// # Errors
    /// As [`Population::with_cache`], but never [`Error::Interrupted`].
    pub fn with_cache_unscored(
        table: &ScoreTable,
        cache: &GeneCache,
        codes: &[u32],
        params: &[f64],
        offsets: &[usize],
    ) -> Result<Self> {
        Self::build_unscored(table, Some(cache), codes, params, offsets)
    }

    fn build(
        table: &ScoreTable,
        cache: Option<&GeneCache>,
        codes: &[u32],
        params: &[f64],
        offsets: &[usize],
        stop: &Stop,
    ) -> Result<Self> {
        let mut pop = Self::build_unscored(table, cache, codes, params, offsets)?;
        pop.score_selves(table, stop)?;
        Ok(pop)
    }

    /// True once every sequence has its self score.
    #[must_use]
    pub fn is_scored(&self) -> bool {
        self.self_scores.len() == self.len()
    }

    /// Align every sequence with itself (in lanes where the table allows, in parallel for a
    /// large population); give up once `stop` is requested.
    ///
    /// # Errors
    /// [`Error::Interrupted`] once `stop` is requested.
    pub fn score_selves(&mut self, table: &ScoreTable, stop: &Stop) -> Result<()> {
        let parallel = self.genes.len() >= 4096;
        let n_seq = self.len();
        let scores = match crate::small::self_scores(self, table.gaps(), parallel, stop) {
            Some(scores) => scores,
            None => {
                let self_score = |i: usize| self.score(table, i, i, &mut Aligner::with_stop(stop.clone()));
                if parallel {
                    (0..n_seq).into_par_iter().map(self_score).collect()
                } else {
                    (0..n_seq).map(self_score).collect()
                }
            }
        };
        stop.check()?;
        self.self_scores = scores;
        Ok(())
    }

    fn build_unscored(
        table: &ScoreTable,
        cache: Option<&GeneCache>,
        codes: &[u32],
        params: &[f64],
        offsets: &[usize],
    ) -> Result<Self> {
        let n_params = table.n_params();
        if params.len() != codes.len() * n_params {
            return Err(Error::ParamShape {
                rows: params.len().checked_div(n_params).unwrap_or(0),
                cols: n_params,
                expected_rows: codes.len(),
                expected_cols: n_params,
            });
        }
        if offsets.is_empty() || offsets[0] != 0 || *offsets.last().unwrap_or(&0) != codes.len() {
            return Err(Error::Offsets(format!(
                "must start at 0 and end at the number of genes ({})",
                codes.len()
            )));
        }
        for (s, w) in offsets.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(Error::Offsets(format!("offsets decrease at sequence {s}")));
            }
            if w[1] == w[0] {
                return Err(Error::EmptySequence { seq: s });
            }
        }
        let used = table.used_params_by_type();
        let n_seq = offsets.len() - 1;
        // Check every gene, in sequence order (the first error wins).
        for s in 0..n_seq {
            for g in offsets[s]..offsets[s + 1] {
                let code = codes[g];
                if code as usize >= table.n_types() {
                    return Err(Error::UnknownType {
                        seq: s,
                        index: g - offsets[s],
                        code,
                        n_types: table.n_types(),
                    });
                }
                let row = &params[g * n_params..(g + 1) * n_params];
                for &p in &used[code as usize] {
                    if !row[p].is_finite() {
                        return Err(Error::NonFinite {
                            seq: s,
                            index: g - offsets[s],
                            param: p,
                            value: row[p],
                        });
                    }
                }
            }
        }
        let keys = Keys::new(table, codes, params);
        let (space, genes) = match cache {
            Some(c) => c.resolve(table, &keys, params),
            None => {
                let (space, ids) = GeneSpace::of(table, &keys, params);
                (Arc::new(space), ids)
            }
        };
        Ok(Population {
            genes,
            offsets: offsets.to_vec(),
            space,
            self_scores: Vec::new(),
        })
    }

    /// Number of sequences.
    #[must_use]
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no sequences.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct genes.
    #[must_use]
    pub fn n_distinct_genes(&self) -> usize {
        self.space.len()
    }

    /// Gene ids of sequence i.
    #[must_use]
    pub fn seq(&self, i: usize) -> &[u32] {
        &self.genes[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Self-alignment score of every sequence.
    #[must_use]
    pub fn self_scores(&self) -> &[f64] {
        &self.self_scores
    }

    /// Dense distinct-gene score table (`k x k`, row = gene of A), if it was built.
    #[must_use]
    pub fn dense_table(&self) -> Option<&[f64]> {
        self.space.dense()
    }

    /// Match score of distinct genes `a` (from A) and `b` (from B).
    #[inline]
    #[must_use]
    pub fn gene_score(&self, table: &ScoreTable, a: u32, b: u32) -> f64 {
        self.space.score(table, a, b)
    }

    /// Raw global alignment score of sequence i (as A) against sequence j (as B).
    #[inline]
    pub fn score(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut Aligner) -> f64 {
        let (a, b) = (self.seq(i), self.seq(j));
        match self.space.dense() {
            Some(d) => {
                let k = self.space.len();
                aligner.score_rows(a, b, |ga| &d[ga as usize * k..(ga as usize + 1) * k], table.gaps())
            }
            None => aligner.score(
                a.len(),
                b.len(),
                |x, y| self.gene_score(table, a[x], b[y]),
                table.gaps(),
            ),
        }
    }

    /// Similarity of sequence i (as A) against sequence j (as B), in [0, 1].
    #[inline]
    pub fn similarity(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut Aligner) -> f64 {
        let s = self.score(table, i, j, aligner);
        table.normalise(
            s,
            self.seq(i).len(),
            self.seq(j).len(),
            self.self_scores[i],
            self.self_scores[j],
        )
    }
}
