//! Similarity matrices of a population, computed in parallel on a dedicated rayon pool.
//!
//! Orientation: `M[i][j]` = similarity of sequence i as A (rows, the first argument of the
//! match function) against sequence j as B. Every cell is an independent pure computation
//! written to its own index (no reduction across cells), so the parallel result is bit for
//! bit the serial one. For a symmetric table only `j > i` is aligned and mirrored: the
//! transposed DP visits the same candidates in the same order, so mirroring is exact.
//! The diagonal is exactly 1 (`(s - lo) / (s - lo)`).
//!
//! Row ranges let callers work in blocks (and check for Ctrl-C between them).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rayon::ThreadPool;

use crate::align::Aligner;
use crate::error::{Error, Result};
use crate::score::ScoreTable;
use crate::seq::Population;

/// Output element types of the matrix routines.
pub trait Element: Copy + Send + Sync + Default {
    fn from_f64(x: f64) -> Self;
}
impl Element for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
}
impl Element for f32 {
    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

/// Thread count from `PYEVONAS_NUM_THREADS`, else the machine's available parallelism.
#[must_use]
pub fn default_threads() -> usize {
    std::env::var("PYEVONAS_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
}

/// The pool for `n_threads` (None: the default). Pools are built once and kept: pyevonas
/// never uses rayon's global pool, so it cannot fight other rayon users (or PyTorch).
#[must_use]
pub fn pool(n_threads: Option<usize>) -> Arc<ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let n = n_threads.filter(|&n| n > 0).unwrap_or_else(default_threads);
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .entry(n)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("pyevonas-{i}"))
                    .build()
                    .expect("building a rayon thread pool"),
            )
        })
        .clone()
}

fn check_rows(rows: &Range<usize>, len: usize) -> Result<()> {
    if rows.start > rows.end || rows.end > len {
        return Err(Error::Index { index: rows.end, len });
    }
    Ok(())
}

/// Fill rows `rows` of a similarity matrix of rows x `cols` into `out` (row-major,
/// `rows.len() * cols.len()` cells). With `upper_only`, only cells with column index
/// (in population terms) greater than the row are computed; the others are left as they are.
///
/// # Errors
/// [`Error::Index`] when a range leaves the population or `out` has the wrong length.
pub fn fill_rows<T: Element>(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    upper_only: bool,
    out: &mut [T],
) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Index { index: out.len(), len: rows.len() * width });
    }
    if width == 0 {
        return Ok(());
    }
    let work = |al: &mut Aligner, (r, row): (usize, &mut [T])| {
        let i = rows.start + r;
        for (c, cell) in row.iter_mut().enumerate() {
            let j = cols.start + c;
            if i == j {
                *cell = T::from_f64(1.0);
            } else if !upper_only || j > i {
                *cell = T::from_f64(pop.similarity(table, i, j, al));
            }
        }
    };
    out.par_chunks_mut(width).enumerate().for_each_init(Aligner::default, work);
    Ok(())
}

/// Offset of row i in the condensed upper triangle of an n x n matrix (scipy's `pdist` layout).
#[must_use]
pub fn condensed_offset(n: usize, i: usize) -> usize {
    i * n - i * (i + 1) / 2
}

/// Fill the condensed upper triangle (`j > i`) for rows `rows` of the whole population;
/// `out` is exactly the slice `condensed_offset(n, rows.start)..condensed_offset(n, rows.end)`.
///
/// # Errors
/// [`Error::Index`] for a bad range or output length.
pub fn fill_condensed<T: Element>(pop: &Population, table: &ScoreTable, rows: Range<usize>, out: &mut [T]) -> Result<()> {
    let n = pop.len();
    check_rows(&rows, n)?;
    let base = condensed_offset(n, rows.start);
    if out.len() != condensed_offset(n, rows.end) - base {
        return Err(Error::Index { index: out.len(), len: condensed_offset(n, rows.end) - base });
    }
    // Split the slice into per-row chunks of decreasing length.
    let mut chunks: Vec<(usize, &mut [T])> = Vec::with_capacity(rows.len());
    let mut rest = out;
    for i in rows {
        let (head, tail) = rest.split_at_mut(n - 1 - i);
        chunks.push((i, head));
        rest = tail;
    }
    chunks.into_par_iter().for_each_init(Aligner::default, |al, (i, row)| {
        for (c, cell) in row.iter_mut().enumerate() {
            *cell = T::from_f64(pop.similarity(table, i, i + 1 + c, al));
        }
    });
    Ok(())
}

/// Raw alignment scores for rows `rows` against columns `cols` (row-major into `out`).
///
/// # Errors
/// [`Error::Index`] for a bad range or output length.
pub fn fill_scores(pop: &Population, table: &ScoreTable, rows: Range<usize>, cols: Range<usize>, out: &mut [f64]) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    let width = cols.len();
    if out.len() != rows.len() * width {
        return Err(Error::Index { index: out.len(), len: rows.len() * width });
    }
    if width == 0 {
        return Ok(());
    }
    out.par_chunks_mut(width).enumerate().for_each_init(Aligner::default, |al, (r, row)| {
        for (c, cell) in row.iter_mut().enumerate() {
            *cell = pop.score(table, rows.start + r, cols.start + c, al);
        }
    });
    Ok(())
}

/// For each row in `rows`, the `k` most similar columns among `cols` (highest similarity
/// first, ties by lower index), skipping the row's own index when `exclude_self`.
/// Writes `rows.len() * k` indices (relative to `cols.start`) and similarities; rows with
/// fewer candidates than k are padded with index -1 and similarity NaN.
///
/// # Errors
/// [`Error::Index`] for a bad range or output length.
pub fn fill_nearest(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    exclude_self: bool,
    out_idx: &mut [i64],
    out_sim: &mut [f64],
) -> Result<()> {
    check_rows(&rows, pop.len())?;
    check_rows(&cols, pop.len())?;
    if out_idx.len() != rows.len() * k || out_sim.len() != rows.len() * k {
        return Err(Error::Index { index: out_idx.len(), len: rows.len() * k });
    }
    if k == 0 {
        return Ok(());
    }
    out_idx
        .par_chunks_mut(k)
        .zip(out_sim.par_chunks_mut(k))
        .enumerate()
        .for_each_init(
            || (Aligner::default(), Vec::<(f64, usize)>::new()),
            |(al, best), (r, (idx, sim))| {
                let i = rows.start + r;
                best.clear();
                for j in cols.clone() {
                    if exclude_self && j == i {
                        continue;
                    }
                    let s = if i == j { 1.0 } else { pop.similarity(table, i, j, al) };
                    // Keep the k best, sorted by similarity desc then index asc.
                    if best.len() == k {
                        let (ws, wj) = best[k - 1];
                        if s < ws || (s == ws && j > wj) {
                            continue;
                        }
                        best.pop();
                    }
                    let pos = best.partition_point(|&(bs, bj)| bs > s || (bs == s && bj < j));
                    best.insert(pos, (s, j));
                }
                for c in 0..k {
                    if let Some(&(s, j)) = best.get(c) {
                        idx[c] = (j - cols.start) as i64;
                        sim[c] = s;
                    } else {
                        idx[c] = -1;
                        sim[c] = f64::NAN;
                    }
                }
            },
        );
    Ok(())
}

/// Mirror the upper triangle of a full n x n row-major matrix into its lower triangle.
pub fn mirror_upper<T: Element>(out: &mut [T], n: usize) {
    // Blocked transpose keeps both reads and writes cache-friendly.
    const B: usize = 64;
    for ib in (0..n).step_by(B) {
        for jb in (0..=ib).step_by(B) {
            for i in ib..(ib + B).min(n) {
                for j in jb..(jb + B).min(i) {
                    out[i * n + j] = out[j * n + i];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condensed_offsets_match_pdist() {
        assert_eq!(condensed_offset(4, 0), 0);
        assert_eq!(condensed_offset(4, 1), 3);
        assert_eq!(condensed_offset(4, 2), 5);
        assert_eq!(condensed_offset(4, 3), 6);
        assert_eq!(condensed_offset(4, 4), 6);
    }

    #[test]
    fn mirror_copies_upper_to_lower() {
        let n = 130;
        let mut m: Vec<f64> = (0..n * n).map(|x| x as f64).collect();
        mirror_upper(&mut m, n);
        for i in 0..n {
            for j in 0..n {
                assert_eq!(m[i * n + j], m[j * n + i]);
            }
        }
    }
}
