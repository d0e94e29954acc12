//! Putting two gene spaces together, for appending one population to another (`seq::append`).

use super::{new_lineage, GeneSpace};
use crate::score::ScoreTable;

impl GeneSpace {
    /// True when every gene of `old` has the same id here (so ids into `old` are valid here).
    pub(crate) fn extends(&self, old: &GeneSpace) -> bool {
        if std::ptr::eq(self, old) || (self.lineage == old.lineage && self.len() >= old.len()) {
            return true;
        }
        self.len() >= old.len()
            && (0..old.len()).all(|id| {
                let np = old.n_params;
                self.find(old.codes[id], &old.keys[id * np..(id + 1) * np], old.hashes[id]) == Some(id as u32)
            })
    }

    /// This space with the genes of `other` it lacks appended (its own ids unchanged), and
    /// for every id of `other` its id in the result.
    pub(crate) fn with_genes_of(&self, table: &ScoreTable, other: &GeneSpace) -> (GeneSpace, Vec<u32>) {
        let np = self.n_params;
        let mut merged = self.clone_without_dense();
        // In id order, so the result does not depend on hashing.
        for id in 0..other.len() {
            let row = &other.keys[id * np..(id + 1) * np];
            merged.push(
                other.codes[id],
                row,
                other.hashes[id],
                &other.params[id * np..(id + 1) * np],
            );
        }
        let remap = (0..other.len())
            .map(|id| {
                let row = &other.keys[id * np..(id + 1) * np];
                merged
                    .find(other.codes[id], row, other.hashes[id])
                    .expect("every gene was just added")
            })
            .collect();
        merged.dense = self.dense_for(table, &merged);
        // A branch off this space's lineage: another space of it may grow differently.
        merged.lineage = new_lineage();
        (merged, remap)
    }
}
