//! Growing a population: appending another population's sequences.
//!
//! An archive grows this way (each addition is encoded once and appended), and a query
//! against it is appended to a copy of the members, so rows and columns share one gene
//! space. Populations built from one score table share its gene cache, whose ids never change
//! as it grows, so appending is usually a copy of ids; when the two spaces diverged (the cache
//! stopped growing past `MAX_DENSE_GENES`) the other population's genes are re-numbered into
//! this one's space. Gene scores, self scores and so every similarity stay the same doubles.

use std::sync::Arc;

use super::Population;
use crate::score::ScoreTable;

impl Population {
    /// Append `other`'s sequences (built against the same `table`) after this population's.
    ///
    /// Sequence `len() + i` is then `other`'s sequence `i`, with the same self score, and every
    /// similarity between any two sequences is the one either population gave.
    pub fn append(&mut self, table: &ScoreTable, other: &Population) {
        let remap = if Arc::ptr_eq(&self.space, &other.space) || self.space.extends(&other.space) {
            None
        } else if other.space.extends(&self.space) {
            self.space = other.space.clone();
            None
        } else {
            let (merged, remap) = self.space.with_genes_of(table, &other.space);
            self.space = Arc::new(merged);
            Some(remap)
        };
        match remap {
            None => self.genes.extend_from_slice(&other.genes),
            Some(r) => self.genes.extend(other.genes.iter().map(|&g| r[g as usize])),
        }
        let base = *self.offsets.last().unwrap_or(&0);
        self.offsets.extend(other.offsets[1..].iter().map(|&o| o + base));
        self.self_scores.extend_from_slice(&other.self_scores);
    }
}
