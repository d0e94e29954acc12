//! The distinct-gene dictionary: every distinct gene (type code and the parameter values its
//! rules read) gets one id, with a dense id-by-id score table, so the alignment loop reads one
//! f64 per cell and never evaluates a rule.
//!
//! A gene is looked up by its *key*: its type code and one word per parameter column, the bit
//! pattern of each parameter a rule of its type reads and 0 for the others (parameters no rule
//! reads do not tell genes apart). Keys are written into one flat buffer per population
//! ([`Keys`]) and probed against a hash table of ids whose entries compare against the
//! dictionary's own key rows, so looking a gene up allocates nothing.
//!
//! A [`GeneCache`] keeps one dictionary that only grows, for one [`ScoreTable`]: populations
//! drawn from the same search space keep meeting the same few hundred genes, so after the first
//! calls a new population needs no rule evaluation at all (each rule costs up to three
//! divisions). The cache is mutable state, so it lives beside the (immutable) table, in the
//! Python-facing wrapper, never inside it.

use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;
use rayon::prelude::*;
use rustc_hash::FxHasher;

use crate::score::ScoreTable;
use crate::threads::{fork_generation, install_fork_guard};

mod merge;

/// Largest distinct-gene count for which the dense score table is built (32 MiB of f64);
/// beyond it, scores are computed per cell from the rules (same values, slower).
pub const MAX_DENSE_GENES: usize = 2048;

/// Genes from which keys are hashed and looked up in parallel.
const PARALLEL_GENES: usize = 4096;

/// The keys of a run of genes: per gene its type code, its key row (`n_params` words) and
/// their hash. Built once per population; every lookup reads it.
#[derive(Debug, Default)]
pub struct Keys {
    codes: Vec<u32>,
    rows: Vec<u64>,
    hashes: Vec<u64>,
    n_params: usize,
}

impl Keys {
    /// The keys of genes `codes` with parameter rows `params` (`n_params` per gene), for
    /// `table`'s rules. Every code must be below `table.n_types()`.
    #[must_use]
    pub fn new(table: &ScoreTable, codes: &[u32], params: &[f64]) -> Self {
        let np = table.n_params();
        let used = table.used_params_by_type();
        let mut rows = vec![0u64; codes.len() * np];
        let mut hashes = vec![0u64; codes.len()];
        let fill = |((row, hash), (g, &code)): ((&mut [u64], &mut u64), (usize, &u32))| {
            let src = &params[g * np..(g + 1) * np];
            for &p in &used[code as usize] {
                row[p] = src[p].to_bits();
            }
            *hash = key_hash(code, row);
        };
        if np == 0 {
            hashes.iter_mut().zip(codes).for_each(|(h, &c)| *h = key_hash(c, &[]));
        } else if codes.len() >= PARALLEL_GENES {
            rows.par_chunks_mut(np)
                .zip(hashes.par_iter_mut())
                .zip(codes.par_iter().enumerate())
                .for_each(fill);
        } else {
            rows.chunks_mut(np)
                .zip(hashes.iter_mut())
                .zip(codes.iter().enumerate())
                .for_each(fill);
        }
        Keys {
            codes: codes.to_vec(),
            rows,
            hashes,
            n_params: np,
        }
    }

    /// Number of genes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when there are no genes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    fn row(&self, g: usize) -> &[u64] {
        &self.rows[g * self.n_params..(g + 1) * self.n_params]
    }
}

fn key_hash(code: u32, row: &[u64]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u32(code);
    for &w in row {
        h.write_u64(w);
    }
    // Parameters are mostly small whole numbers, whose f64 bits differ only in the high
    // bits: a final mix (murmur3's) spreads them over the low bits the table indexes by.
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A fresh lineage number (see [`GeneSpace::extends`]).
fn new_lineage() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Distinct genes (type and parameter row) with their dense score table.
#[derive(Debug, Clone)]
pub struct GeneSpace {
    /// Ids, hashed by key (the key itself is read from `codes` and `keys`).
    index: HashTable<u32>,
    hashes: Vec<u64>,
    codes: Vec<u32>,
    /// Key rows, `n_params` words per gene.
    keys: Vec<u64>,
    /// Parameter rows (of the gene's first occurrence), `n_params` per gene.
    params: Vec<f64>,
    n_params: usize,
    /// `k x k` row-major (row = gene of A), when k <= MAX_DENSE_GENES.
    dense: Option<Vec<f64>>,
    /// Spaces of one lineage only ever grow by appending genes (a cache's successive spaces):
    /// of two such spaces the shorter is a prefix of the longer.
    lineage: u64,
}

impl GeneSpace {
    /// An empty dictionary for genes with `n_params` parameter columns.
    #[must_use]
    pub fn empty(n_params: usize) -> Self {
        GeneSpace {
            index: HashTable::new(),
            hashes: Vec::new(),
            codes: Vec::new(),
            keys: Vec::new(),
            params: Vec::new(),
            n_params,
            dense: None,
            lineage: new_lineage(),
        }
    }

    /// Number of distinct genes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when the dictionary holds no gene.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Id of a gene with this code, key row and hash, if the dictionary has it.
    fn find(&self, code: u32, row: &[u64], hash: u64) -> Option<u32> {
        let np = self.n_params;
        self.index
            .find(hash, |&id| {
                let id = id as usize;
                // Word by word (a slice comparison would call memcmp for a few words).
                self.codes[id] == code && self.keys[id * np..(id + 1) * np].iter().zip(row).all(|(a, b)| a == b)
            })
            .copied()
    }

    /// Id of gene `g` of `keys`, if the dictionary has it.
    #[must_use]
    pub fn id(&self, keys: &Keys, g: usize) -> Option<u32> {
        self.find(keys.codes[g], keys.row(g), keys.hashes[g])
    }

    /// Ids of every gene of `keys`, or None if the dictionary lacks any.
    #[must_use]
    pub fn ids(&self, keys: &Keys) -> Option<Vec<u32>> {
        if keys.len() >= PARALLEL_GENES {
            (0..keys.len()).into_par_iter().map(|g| self.id(keys, g)).collect()
        } else {
            (0..keys.len()).map(|g| self.id(keys, g)).collect()
        }
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
                self.codes[a] as usize,
                &self.params[a * self.n_params..(a + 1) * self.n_params],
                self.codes[b] as usize,
                &self.params[b * self.n_params..(b + 1) * self.n_params],
            ),
        }
    }

    /// A dictionary of exactly the genes of `keys` (`params` holds one row per gene), with
    /// the id of every gene.
    #[must_use]
    pub fn of(table: &ScoreTable, keys: &Keys, params: &[f64]) -> (GeneSpace, Vec<u32>) {
        let space = GeneSpace::empty(table.n_params()).extended(table, keys, params, 0..keys.len());
        let ids = space.ids(keys).expect("every gene was just added");
        (space, ids)
    }

    /// Add one gene unless present (`row` its key row, `param_row` its parameters).
    fn push(&mut self, code: u32, row: &[u64], hash: u64, param_row: &[f64]) {
        if self.find(code, row, hash).is_some() {
            return;
        }
        let id = self.codes.len() as u32;
        self.codes.push(code);
        self.keys.extend_from_slice(row);
        self.params.extend_from_slice(param_row);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.index.insert_unique(hash, id, |&i| hashes[i as usize]);
    }

    /// A copy with the genes `genes` of `keys` it lacks appended (same lineage: ids into this
    /// space stay valid) and the dense table extended (existing cells copied).
    fn extended(
        &self,
        table: &ScoreTable,
        keys: &Keys,
        params: &[f64],
        genes: impl IntoIterator<Item = usize>,
    ) -> GeneSpace {
        let np = self.n_params;
        let mut out = self.clone_without_dense();
        for g in genes {
            out.push(
                keys.codes[g],
                keys.row(g),
                keys.hashes[g],
                &params[g * np..(g + 1) * np],
            );
        }
        out.dense = self.dense_for(table, &out);
        out
    }

    /// Everything but the dense table (which `extended` rebuilds anyway).
    fn clone_without_dense(&self) -> GeneSpace {
        GeneSpace {
            index: self.index.clone(),
            hashes: self.hashes.clone(),
            codes: self.codes.clone(),
            keys: self.keys.clone(),
            params: self.params.clone(),
            n_params: self.n_params,
            dense: None,
            lineage: self.lineage,
        }
    }

    /// The dense table of `out` (this space with genes appended), this one's cells copied.
    fn dense_for(&self, table: &ScoreTable, out: &GeneSpace) -> Option<Vec<f64>> {
        let np = self.n_params;
        let (k0, k) = (self.len(), out.len());
        if k == 0 || k > MAX_DENSE_GENES {
            return None;
        }
        let mut d = vec![0.0; k * k];
        let old = self.dense.as_deref();
        let (codes, gp) = (&out.codes, &out.params);
        let fill = |(a, row): (usize, &mut [f64])| {
            let pa = &gp[a * np..(a + 1) * np];
            for (b, cell) in row.iter_mut().enumerate() {
                *cell = match old {
                    Some(o) if a < k0 && b < k0 => o[a * k0 + b],
                    _ => table.substitution(codes[a] as usize, pa, codes[b] as usize, &gp[b * np..(b + 1) * np]),
                };
            }
        };
        // A small table is cheaper to fill than to hand out to threads.
        if k * (k - k0) >= 1 << 16 {
            d.par_chunks_mut(k).enumerate().for_each(fill);
        } else {
            d.chunks_mut(k).enumerate().for_each(fill);
        }
        Some(d)
    }
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

    /// A gene space holding every gene of `keys` (`params` holds one row per gene) and the id
    /// of every gene: the cached space, extended if needed; past `MAX_DENSE_GENES` the cache
    /// stops growing and the population gets a space of its own.
    #[must_use]
    pub fn resolve(&self, table: &ScoreTable, keys: &Keys, params: &[f64]) -> (Arc<GeneSpace>, Vec<u32>) {
        use std::sync::{PoisonError, TryLockError};
        let own = || {
            let (space, ids) = GeneSpace::of(table, keys, params);
            (Arc::new(space), ids)
        };
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
        if let Some(ids) = snapshot.ids(keys) {
            return (snapshot, ids);
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
        // The genes the cache lacks, appended (each once: `push` skips a gene already there);
        // past MAX_DENSE_GENES no dense table is built and the cache is left as it was.
        let grown = base.extended(
            table,
            keys,
            params,
            (0..keys.len()).filter(|&g| base.id(keys, g).is_none()),
        );
        if grown.len() <= MAX_DENSE_GENES {
            let grown = Arc::new(grown);
            *guard = grown.clone();
            drop(guard);
            let ids = grown.ids(keys).expect("every gene was just added");
            return (grown, ids);
        }
        drop(guard);
        // Too many distinct genes to cache: a space of this population's genes only.
        own()
    }
}
