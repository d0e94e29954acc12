//! `Population`: many encoded sequences over one dictionary of distinct genes.
//!
//! Sequences arrive concatenated: one type code and one parameter row per gene, plus
//! offsets (`offsets[i]..offsets[i + 1]` is sequence i). Identical genes (same type, same
//! parameter bits) share one id, so a population of thousands of architectures drawn from
//! a finite gene pool needs only a small gene-by-gene score table: the alignment loop then
//! reads one f64 per cell and never evaluates a rule.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::score::ScoreTable;

/// Largest distinct-gene count for which the dense score table is built (32 MiB of f64);
/// beyond it, scores are computed per cell from the rules (same values, slower).
pub const MAX_DENSE_GENES: usize = 2048;

/// Encoded sequences sharing a gene dictionary, with precomputed scores.
#[derive(Debug, Clone)]
pub struct Population {
    /// Gene ids, all sequences concatenated.
    genes: Vec<u32>,
    offsets: Vec<usize>,
    /// Distinct genes: type code and parameter row.
    gene_types: Vec<usize>,
    gene_params: Vec<f64>,
    n_params: usize,
    /// Dense `k x k` substitution scores (row = gene of A), when k <= MAX_DENSE_GENES.
    dense: Option<Vec<f64>>,
    self_scores: Vec<f64>,
}

impl Population {
    /// Encode and check sequences against `table`.
    ///
    /// `codes[g]` is gene g's type, `params[g * n_params..][..n_params]` its parameters (NaN for
    /// a parameter the gene does not have), `offsets` has one more entry than sequences.
    ///
    /// # Errors
    /// Wrong shapes, bad offsets, an empty sequence, a type code outside the table, or a
    /// non-finite value in a parameter that a rule of the gene's type reads.
    pub fn new(table: &ScoreTable, codes: &[u32], params: &[f64], offsets: &[usize]) -> Result<Self> {
        let n_params = table.n_params();
        if params.len() != codes.len() * n_params {
            return Err(Error::ParamShape {
                rows: if n_params == 0 { 0 } else { params.len() / n_params },
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
        let used: Vec<Vec<usize>> = (0..table.n_types()).map(|t| table.used_params(t)).collect();
        let mut ids: HashMap<(u32, Vec<u64>), u32> = HashMap::new();
        let mut gene_types = Vec::new();
        let mut gene_params = Vec::new();
        let mut genes = Vec::with_capacity(codes.len());
        for s in 0..offsets.len() - 1 {
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
                // Parameters no rule reads do not distinguish genes.
                let key: Vec<u64> = used[code as usize].iter().map(|&p| row[p].to_bits()).collect();
                let next = gene_types.len() as u32;
                let id = *ids.entry((code, key)).or_insert_with(|| {
                    gene_types.push(code as usize);
                    gene_params.extend_from_slice(row);
                    next
                });
                genes.push(id);
            }
        }
        let k = gene_types.len();
        let dense = (k <= MAX_DENSE_GENES).then(|| {
            let mut d = vec![0.0; k * k];
            let fill = |(a, row): (usize, &mut [f64])| {
                let pa = &gene_params[a * n_params..(a + 1) * n_params];
                for (b, cell) in row.iter_mut().enumerate() {
                    let pb = &gene_params[b * n_params..(b + 1) * n_params];
                    *cell = table.substitution(gene_types[a], pa, gene_types[b], pb);
                }
            };
            // A small table is cheaper to fill than to hand out to threads.
            if k >= 256 {
                d.par_chunks_mut(k.max(1)).enumerate().for_each(fill);
            } else {
                d.chunks_mut(k.max(1)).enumerate().for_each(fill);
            }
            d
        });
        let mut pop = Population {
            genes,
            offsets: offsets.to_vec(),
            gene_types,
            gene_params,
            n_params,
            dense,
            self_scores: Vec::new(),
        };
        let mut aligner = crate::align::Aligner::default();
        pop.self_scores = (0..pop.len()).map(|i| pop.score(table, i, i, &mut aligner)).collect();
        Ok(pop)
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
        self.gene_types.len()
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
        self.dense.as_deref()
    }

    /// Match score of distinct genes `a` (from A) and `b` (from B).
    #[inline]
    #[must_use]
    pub fn gene_score(&self, table: &ScoreTable, a: u32, b: u32) -> f64 {
        let (a, b) = (a as usize, b as usize);
        match &self.dense {
            Some(d) => d[a * self.gene_types.len() + b],
            None => table.substitution(
                self.gene_types[a],
                &self.gene_params[a * self.n_params..(a + 1) * self.n_params],
                self.gene_types[b],
                &self.gene_params[b * self.n_params..(b + 1) * self.n_params],
            ),
        }
    }

    /// Raw global alignment score of sequence i (as A) against sequence j (as B).
    #[inline]
    pub fn score(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut crate::align::Aligner) -> f64 {
        let (a, b) = (self.seq(i), self.seq(j));
        match &self.dense {
            Some(d) => {
                let k = self.gene_types.len();
                aligner.score_rows(a, b, |ga| &d[ga as usize * k..(ga as usize + 1) * k], table.gaps())
            }
            None => aligner.score(a.len(), b.len(), |x, y| self.gene_score(table, a[x], b[y]), table.gaps()),
        }
    }

    /// Similarity of sequence i (as A) against sequence j (as B), in [0, 1].
    #[inline]
    pub fn similarity(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut crate::align::Aligner) -> f64 {
        let s = self.score(table, i, j, aligner);
        table.normalise(s, self.seq(i).len(), self.seq(j).len(), self.self_scores[i], self.self_scores[j])
    }
}
