//! The distinct-gene dictionary: every distinct gene (type code and the parameter values its
//! rules read) gets one id, with a dense id-by-id score table, so the alignment loop reads one
//! f64 per cell and never evaluates a rule.
//!
//! A [`GeneCache`] keeps one dictionary that only grows, for one [`ScoreTable`]: populations
//! drawn from the same search space keep meeting the same few hundred genes, so after the first
//! calls a new population needs no rule evaluation at all (each rule costs up to three
//! divisions). The cache is mutable state, so it lives beside the (immutable) table, in the
//! Python-facing wrapper, never inside it.

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Arc, RwLock};

use rayon::prelude::*;

use crate::score::ScoreTable;
use crate::threads::{fork_generation, install_fork_guard};

mod merge;

/// The key of a distinct gene: (type code, bit patterns of the parameters its rules read).
pub type GeneKey = (u32, Vec<u64>);

/// Largest distinct-gene count for which the dense score table is built (32 MiB of f64);
/// beyond it, scores are computed per cell from the rules (same values, slower).
pub const MAX_DENSE_GENES: usize = 2048;

/// Distinct genes (type and parameter row) with their dense score table.
#[derive(Debug, Default)]
pub struct GeneSpace {
    ids: FxHashMap<GeneKey, u32>,
    types: Vec<usize>,
    params: Vec<f64>,
    n_params: usize,
    /// `k x k` row-major (row = gene of A), when k <= MAX_DENSE_GENES.
    dense: Option<Vec<f64>>,
}

impl GeneSpace {
    /// An empty dictionary for genes with `n_params` parameter columns.
    #[must_use]
    pub fn empty(n_params: usize) -> Self {
        GeneSpace {
            n_params,
            ..GeneSpace::default()
        }
    }

    /// Number of distinct genes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// True when the dictionary holds no gene.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Id of a gene, if the dictionary has it.
    #[must_use]
    pub fn id(&self, key: &GeneKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    /// Id of a gene the dictionary has (resolved from these keys).
    pub(crate) fn id_of(&self, key: &GeneKey) -> u32 {
        self.ids[key]
    }

    /// Dense score table (`k x k`, row = gene of A), if it was built.
    #[must_use]
    pub fn dense(&self) -> Option<&[f64]> {
        self.dense.as_deref()
    }

    /// Match score of distinct genes `a` (from A) and `b` (from B).
    #[inline]
    #[must_use]
    pub fn score(&self, table: &ScoreTable, a: u32, b: u32) -> f64 {
        let (a, b) = (a as usize, b as usize);
        match &self.dense {
            Some(d) => d[a * self.len() + b],
            None => table.substitution(
                self.types[a],
                &self.params[a * self.n_params..(a + 1) * self.n_params],
                self.types[b],
                &self.params[b * self.n_params..(b + 1) * self.n_params],
            ),
        }
    }

    /// A dictionary of exactly the genes in `keys` (`params` holds one row per key).
    #[must_use]
    pub fn of(table: &ScoreTable, keys: &[GeneKey], params: &[f64]) -> GeneSpace {
        GeneSpace::empty(table.n_params()).extended(table, &missing(&GeneSpace::default(), keys), params)
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
        if k > 0 && k <= MAX_DENSE_GENES {
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

/// The keys of `keys` that `space` lacks, once each, with the row of their first occurrence.
fn missing(space: &GeneSpace, keys: &[GeneKey]) -> Vec<(u32, Vec<u64>, usize)> {
    let mut seen = FxHashSet::default();
    keys.iter()
        .enumerate()
        .filter(|(_, k)| !space.ids.contains_key(*k) && seen.insert(*k))
        .map(|(row, (c, k))| (*c, k.clone(), row))
        .collect()
}

/// The growing gene dictionary of one score table (see the module docs). Always use a cache
/// with the table it was made for: the dense scores it holds are that table's.
///
/// In the child of a `fork()` the cache's lock may be held by a thread that does not exist
/// there, so a cache made before the fork is only ever *tried*: when it is busy the population
/// gets a dictionary of its own (same scores), and nothing waits.
#[derive(Debug)]
pub struct GeneCache {
    current: RwLock<Arc<GeneSpace>>,
    generation: u64,
}

impl GeneCache {
    /// An empty cache for `table`'s genes.
    #[must_use]
    pub fn new(table: &ScoreTable) -> Self {
        install_fork_guard();
        GeneCache {
            current: RwLock::new(Arc::new(GeneSpace::empty(table.n_params()))),
            generation: fork_generation(),
        }
    }

    /// A gene space holding every key (`params` holds one row per key): the cached one,
    /// extended if needed; past `MAX_DENSE_GENES` the cache stops growing and the population
    /// gets a space of its own.
    #[must_use]
    pub fn resolve(&self, table: &ScoreTable, keys: &[GeneKey], params: &[f64]) -> Arc<GeneSpace> {
        use std::sync::{PoisonError, TryLockError};
        let own = || Arc::new(GeneSpace::of(table, keys, params));
        let forked = self.generation != fork_generation();
        let snapshot = if forked {
            match self.current.try_read() {
                Ok(g) => g.clone(),
                Err(TryLockError::Poisoned(p)) => p.into_inner().clone(),
                Err(TryLockError::WouldBlock) => return own(),
            }
        } else {
            self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
        };
        if keys.par_iter().all(|k| snapshot.ids.contains_key(k)) {
            return snapshot;
        }
        let mut guard = if forked {
            match self.current.try_write() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return own(),
            }
        } else {
            self.current.write().unwrap_or_else(PoisonError::into_inner)
        };
        let base = guard.clone();
        let new = missing(&base, keys);
        if base.len() + new.len() <= MAX_DENSE_GENES {
            let grown = Arc::new(base.extended(table, &new, params));
            *guard = grown.clone();
            return grown;
        }
        drop(guard);
        // Too many distinct genes to cache: a space of this population's genes only.
        own()
    }
}
