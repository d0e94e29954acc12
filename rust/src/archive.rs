//! An archive: a population that grows by appending, for queries against all its members.
//!
//! Members are encoded once, when they are added; a query set is appended to a copy of the
//! members (gene ids only, no re-encoding) so that the matrix routines see queries as rows
//! and members as columns of one population. Every similarity is therefore the very cell
//! `similarity_matrix(queries, others=members)` computes, bit for bit.

use std::ops::Range;

use crate::score::ScoreTable;
use crate::seq::Population;

/// Members (a population) and the number of their genes.
#[derive(Debug, Clone)]
pub struct Archive {
    members: Population,
    n_genes: usize,
}

/// Queries appended after an archive's members: rows `queries` against columns `members`.
#[derive(Debug)]
pub struct Joined {
    pub pop: Population,
    pub members: Range<usize>,
    pub queries: Range<usize>,
}

impl Archive {
    /// An empty archive for `table`.
    ///
    /// # Panics
    /// Never: an empty population is always valid.
    #[must_use]
    pub fn new(table: &ScoreTable) -> Self {
        let members = Population::new(table, &[], &[], &[0]).expect("an empty population is valid");
        Archive { members, n_genes: 0 }
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the archive has no member.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Genes of all members together.
    #[must_use]
    pub fn n_genes(&self) -> usize {
        self.n_genes
    }

    /// The members as a population.
    #[must_use]
    pub fn members(&self) -> &Population {
        &self.members
    }

    /// Add `new` (a population built against `table`); returns the new members' indices.
    pub fn add(&mut self, table: &ScoreTable, new: &Population) -> Range<usize> {
        let start = self.len();
        self.members.append(table, new);
        self.n_genes += (0..new.len()).map(|i| new.seq(i).len()).sum::<usize>();
        start..self.len()
    }

    /// The members followed by `queries`, to compute rows `queries` against columns `members`.
    #[must_use]
    pub fn join(&self, table: &ScoreTable, queries: &Population) -> Joined {
        let n = self.len();
        let mut pop = self.members.clone();
        pop.append(table, queries);
        let total = pop.len();
        Joined {
            pop,
            members: 0..n,
            queries: n..total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Aligner;
    use crate::align::{Gaps, Stop};
    use crate::genes::GeneCache;
    use crate::matrix::{fill_matrix, Plan};
    use crate::score::{LowerBound, Term};

    fn table(n_params: usize) -> ScoreTable {
        let t = Term {
            param: 0,
            weight: 0.5,
            norm: 100.0,
        };
        ScoreTable::new(
            2,
            n_params,
            vec![2.0, -1.0, -1.0, 1.5],
            vec![vec![t], vec![], vec![], vec![]],
            Gaps {
                open: -0.5,
                extend: -0.5,
            },
            LowerBound::Paper,
        )
        .unwrap()
    }

    type Raw = (Vec<u32>, Vec<f64>, Vec<usize>);

    /// Sequences with parameters drawn from a wide range, so many distinct genes.
    fn raw(seed: u64, n: usize) -> Raw {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        let (mut codes, mut params, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        for _ in 0..n {
            let len = 1 + (next() % 12) as usize;
            for _ in 0..len {
                codes.push((next() % 2) as u32);
                params.push((next() % 5000) as f64);
            }
            offsets.push(codes.len());
        }
        (codes, params, offsets)
    }

    fn concat(parts: &[&Raw]) -> Raw {
        let (mut codes, mut params, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
        for (c, p, o) in parts {
            let base = codes.len();
            codes.extend_from_slice(c);
            params.extend_from_slice(p);
            offsets.extend(o[1..].iter().map(|x| x + base));
        }
        (codes, params, offsets)
    }

    fn pop(table: &ScoreTable, cache: Option<&GeneCache>, r: &Raw) -> Population {
        match cache {
            Some(c) => Population::with_cache(table, c, &r.0, &r.1, &r.2, &Stop::never()).unwrap(),
            None => Population::new(table, &r.0, &r.1, &r.2).unwrap(),
        }
    }

    #[test]
    fn grown_archive_equals_one_population() {
        // Populations over their own gene spaces (every append merges two spaces), and over
        // one cache (appends share its ids until it overflows, then spaces diverge too).
        let t = table(1);
        let cache = GeneCache::new(&t);
        for cache in [None, Some(&cache)] {
            grown(&t, cache);
        }
    }

    fn grown(t: &ScoreTable, cache: Option<&GeneCache>) {
        let parts: Vec<Raw> = (0..6).map(|s| raw(s, 60)).collect();
        let mut ar = Archive::new(t);
        for p in &parts {
            let p = pop(t, cache, p);
            let r = ar.add(t, &p);
            assert_eq!(r.len(), p.len());
        }
        let q = raw(99, 40);
        let joined = ar.join(t, &pop(t, cache, &q));
        let (rows, cols) = (joined.queries.clone(), joined.members.clone());
        let mut out = vec![0.0f64; rows.len() * cols.len()];
        let plan = Plan::new(&joined.pop, rows.clone());
        fill_matrix(
            &joined.pop,
            t,
            &plan,
            0..plan.n_groups(),
            rows.clone(),
            cols.clone(),
            &mut out,
            &Stop::never(),
        )
        .unwrap();
        // The same cells from one population built from scratch (queries first, as
        // `similarity_matrix(queries, others=members)` builds it).
        let mut all: Vec<&Raw> = vec![&q];
        all.extend(parts.iter());
        let whole = pop(t, None, &concat(&all));
        let (nq, nm) = (rows.len(), cols.len());
        assert_eq!(ar.n_genes(), (nq..nq + nm).map(|i| whole.seq(i).len()).sum::<usize>());
        let mut al = Aligner::default();
        for i in 0..nq {
            assert_eq!(
                joined.pop.self_scores()[nm + i].to_bits(),
                whole.self_scores()[i].to_bits()
            );
            for j in 0..nm {
                let direct = whole.similarity(t, i, nq + j, &mut al);
                assert_eq!(out[i * nm + j].to_bits(), direct.to_bits(), "cell {i} {j}");
            }
        }
    }
}
