//! `Population`: many encoded sequences over one dictionary of distinct genes.
//!
//! Sequences arrive concatenated: one type code and one parameter row per gene, plus
//! offsets (`offsets[i]..offsets[i + 1]` is sequence i). Identical genes (same type, same
//! parameter bits) share one id, so a population of thousands of architectures drawn from
//! a finite gene pool needs only a small gene-by-gene score table: the alignment loop then
//! reads one f64 per cell and never evaluates a rule.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::score::ScoreTable;

/// One sequence's genes as (type code, parameter bit patterns): the key of a distinct gene.
type SeqKeys = Vec<(u32, Vec<u64>)>;

/// Largest distinct-gene count for which the dense score table is built (32 MiB of f64);
/// beyond it, scores are computed per cell from the rules (same values, slower).
pub const MAX_DENSE_GENES: usize = 2048;

/// Distinct genes (type and parameter row) with their dense score table.
///
/// A score table keeps one of these as a cache that only grows: populations drawn from the
/// same search space keep meeting the same few hundred genes, so after the first calls a new
/// population needs no rule evaluation at all (each rule costs up to three divisions).
#[derive(Debug, Default)]
pub struct GeneSpace {
    ids: FxHashMap<(u32, Vec<u64>), u32>,
    types: Vec<usize>,
    params: Vec<f64>,
    n_params: usize,
    /// `k x k` row-major (row = gene of A), when k <= MAX_DENSE_GENES.
    dense: Option<Vec<f64>>,
}

impl GeneSpace {
    fn len(&self) -> usize {
        self.types.len()
    }

    /// A copy with `new` genes appended and the dense table extended (existing cells copied).
    fn extended(&self, table: &ScoreTable, new: &[(u32, Vec<u64>, usize)], params: &[f64]) -> GeneSpace {
        let np = self.n_params;
        let mut out = GeneSpace {
            ids: self.ids.clone(),
            types: self.types.clone(),
            params: self.params.clone(),
            n_params: np,
            dense: None,
        };
        for (code, key, row) in new {
            let id = out.types.len() as u32;
            if let std::collections::hash_map::Entry::Vacant(e) = out.ids.entry((*code, key.clone())) {
                e.insert(id);
                out.types.push(*code as usize);
                out.params.extend_from_slice(&params[row * np..(row + 1) * np]);
            }
        }
        let (k0, k) = (self.len(), out.len());
        if k <= MAX_DENSE_GENES {
            let mut d = vec![0.0; k * k];
            let old = self.dense.as_deref();
            let (types, gp) = (&out.types, &out.params);
            let fill = |(a, row): (usize, &mut [f64])| {
                let pa = &gp[a * np..(a + 1) * np];
                for (b, cell) in row.iter_mut().enumerate() {
                    *cell = match old {
                        Some(o) if a < k0 && b < k0 => o[a * k0 + b],
                        _ => table.substitution(types[a], pa, types[b], &gp[b * np..(b + 1) * np]),
                    };
                }
            };
            // A small table is cheaper to fill than to hand out to threads.
            if k * (k - k0) >= 1 << 16 {
                d.par_chunks_mut(k).enumerate().for_each(fill);
            } else {
                d.chunks_mut(k).enumerate().for_each(fill);
            }
            out.dense = Some(d);
        }
        out
    }
}

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
        let seq_keys = |s: usize| -> Result<Vec<(u32, Vec<u64>)>> {
            (offsets[s]..offsets[s + 1])
                .map(|g| {
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
                    Ok((code, used[code as usize].iter().map(|&p| row[p].to_bits()).collect()))
                })
                .collect()
        };
        // Large populations are keyed in parallel; the first error in sequence order wins either way.
        let parallel = codes.len() >= 4096;
        let per_seq: Vec<Result<SeqKeys>> = if parallel {
            (0..n_seq).into_par_iter().map(seq_keys).collect()
        } else {
            (0..n_seq).map(seq_keys).collect()
        };
        let mut keys = Vec::with_capacity(codes.len());
        for r in per_seq {
            keys.extend(r?);
        }
        let space = table.gene_cache().resolve(table, &keys, params);
        let genes: Vec<u32> = if parallel {
            keys.par_iter().map(|k| space.ids[k]).collect()
        } else {
            keys.iter().map(|k| space.ids[k]).collect()
        };
        let mut pop = Population {
            genes,
            offsets: offsets.to_vec(),
            space,
            self_scores: Vec::new(),
        };
        let self_score = |i: usize| pop.score(table, i, i, &mut crate::align::Aligner::default());
        pop.self_scores = if parallel {
            (0..n_seq).into_par_iter().map(self_score).collect()
        } else {
            (0..n_seq).map(self_score).collect()
        };
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
        self.space.dense.as_deref()
    }

    /// Match score of distinct genes `a` (from A) and `b` (from B).
    #[inline]
    #[must_use]
    pub fn gene_score(&self, table: &ScoreTable, a: u32, b: u32) -> f64 {
        let (a, b) = (a as usize, b as usize);
        let sp = &*self.space;
        match &sp.dense {
            Some(d) => d[a * sp.len() + b],
            None => table.substitution(
                sp.types[a],
                &sp.params[a * sp.n_params..(a + 1) * sp.n_params],
                sp.types[b],
                &sp.params[b * sp.n_params..(b + 1) * sp.n_params],
            ),
        }
    }

    /// Raw global alignment score of sequence i (as A) against sequence j (as B).
    #[inline]
    pub fn score(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut crate::align::Aligner) -> f64 {
        let (a, b) = (self.seq(i), self.seq(j));
        match &self.space.dense {
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
    pub fn similarity(&self, table: &ScoreTable, i: usize, j: usize, aligner: &mut crate::align::Aligner) -> f64 {
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

/// The growing gene dictionary a score table keeps (see [`GeneSpace`]).
#[derive(Debug, Default)]
pub struct GeneCache {
    current: RwLock<Arc<GeneSpace>>,
}

impl GeneCache {
    /// An empty cache for genes with `n_params` parameter columns.
    #[must_use]
    pub fn new(n_params: usize) -> Self {
        GeneCache {
            current: RwLock::new(Arc::new(GeneSpace {
                n_params,
                ..GeneSpace::default()
            })),
        }
    }

    /// A gene space holding every key: the cached one, extended if needed; past
    /// `MAX_DENSE_GENES` the cache stops growing and the population gets a space of its own.
    fn resolve(&self, table: &ScoreTable, keys: &[(u32, Vec<u64>)], params: &[f64]) -> Arc<GeneSpace> {
        let snapshot = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let missing = |sp: &GeneSpace| -> Vec<(u32, Vec<u64>, usize)> {
            let mut seen = FxHashSet::default();
            keys.iter()
                .enumerate()
                .filter(|(_, k)| !sp.ids.contains_key(*k) && seen.insert(*k))
                .map(|(row, (c, k))| (*c, k.clone(), row))
                .collect()
        };
        if keys.par_iter().all(|k| snapshot.ids.contains_key(k)) {
            return snapshot;
        }
        let mut guard = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let base = guard.clone();
        let new = missing(&base);
        if base.len() + new.len() <= MAX_DENSE_GENES {
            let grown = Arc::new(base.extended(table, &new, params));
            *guard = grown.clone();
            return grown;
        }
        drop(guard);
        // Too many distinct genes to cache: a space of this population's genes only.
        let empty = GeneSpace {
            n_params: table.n_params(),
            ..GeneSpace::default()
        };
        let all: Vec<(u32, Vec<u64>, usize)> = {
            let mut seen = FxHashSet::default();
            keys.iter()
                .enumerate()
                .filter(|(_, k)| seen.insert(*k))
                .map(|(row, (c, k))| (*c, k.clone(), row))
                .collect()
        };
        Arc::new(empty.extended(table, &all, params))
    }
}
