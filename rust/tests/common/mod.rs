//! Helpers shared by the integration tests.

use _core::score::ScoreTable;
use _core::seq::Population;

/// Sequences of (type code, one parameter) as the concatenated codes, parameter rows and offsets
/// a population is built from.
pub fn encoded(seqs: &[Vec<(u32, f64)>]) -> (Vec<u32>, Vec<f64>, Vec<usize>) {
    let mut codes = Vec::new();
    let mut params = Vec::new();
    let mut offsets = vec![0];
    for s in seqs {
        for &(c, p) in s {
            codes.push(c);
            params.push(p);
        }
        offsets.push(codes.len());
    }
    (codes, params, offsets)
}

/// The population of `seqs` under `table` (one parameter column), with its self scores.
pub fn population(table: &ScoreTable, seqs: &[Vec<(u32, f64)>]) -> Population {
    let (codes, params, offsets) = encoded(seqs);
    Population::new(table, &codes, &params, &offsets).unwrap()
}
