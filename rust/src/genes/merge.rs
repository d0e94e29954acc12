//! Putting two gene spaces together, for appending one population to another (`seq::append`).

use super::GeneSpace;
use crate::score::ScoreTable;

impl GeneSpace {
    /// True when every gene of `old` has the same id here (so ids into `old` are valid here).
    pub(crate) fn extends(&self, old: &GeneSpace) -> bool {
        std::ptr::eq(self, old)
            || (self.len() >= old.len() && old.ids.iter().all(|(key, id)| self.ids.get(key) == Some(id)))
    }

    /// This space with the genes of `other` it lacks appended (its own ids unchanged), and
    /// for every id of `other` its id in the result.
    pub(crate) fn with_genes_of(&self, table: &ScoreTable, other: &GeneSpace) -> (GeneSpace, Vec<u32>) {
        let np = self.n_params;
        let mut new: Vec<(u32, Vec<u64>, usize)> = other
            .ids
            .iter()
            .filter(|(key, _)| !self.ids.contains_key(*key))
            .map(|((code, bits), &id)| (*code, bits.clone(), id as usize))
            .collect();
        // In id order, so the result does not depend on the hash map's iteration order.
        new.sort_unstable_by_key(|n| n.2);
        let merged = self.extended(table, &new, &other.params);
        let mut remap = vec![0u32; other.len()];
        for (key, &id) in &other.ids {
            remap[id as usize] = merged.ids[key];
        }
        debug_assert_eq!(other.params.len(), other.len() * np);
        (merged, remap)
    }
}
