//! The pair functions: one similarity or traced alignment of two architectures, given as plain
//! chromosomes (encoded here) or `(codes, params)` arrays. A short pair runs on the calling
//! thread with no population ([`crate::pair`]); a long one as a population of two on the pool
//! ([`crate::engine::pair_place`] decides).

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::sync::Arc;

use super::encoder::{Keys, PyEncoder};
use super::run::{check_param_shape, compute};
use super::table::PyScoreTable;
use crate::align::{Aligner, Op, Stop};
use crate::engine::{pair_place, Place};
use crate::score::ScoreTable;
use crate::seq::Population;
use crate::threads;

thread_local! {
    static PAIR: std::cell::RefCell<crate::pair::PairScorer> = std::cell::RefCell::default();
    /// The encoded sides of the pair being computed, kept between calls (no allocation per
    /// pair once warm).
    static SIDES: std::cell::RefCell<Sides> = std::cell::RefCell::default();
}

/// Where a side of a pair came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Encoded here from a plain chromosome.
    Encoded,
    /// Given as `(codes, params)` arrays (checked by the scorer).
    Arrays,
}

/// One side of a pair into `codes` and `params`: a plain chromosome (encoded here; None if it
/// needs the validating Python path) or a `(codes, params)` tuple of arrays.
fn pair_side(
    table: &ScoreTable,
    encoder: &PyEncoder,
    keys: &mut Keys,
    x: &Bound<'_, PyAny>,
    codes: &mut Vec<u32>,
    params: &mut Vec<f64>,
) -> PyResult<Option<Side>> {
    if let Ok(t) = x.cast::<pyo3::types::PyTuple>() {
        let (c, p): (PyReadonlyArray1<'_, u32>, PyReadonlyArray2<'_, f64>) = t.extract()?;
        check_param_shape(table, c.len(), &p)?;
        codes.extend(c.as_array().iter());
        params.extend(p.as_array().iter());
        return Ok(Some(Side::Arrays));
    }
    Ok(encoder.encode_one(keys, x, codes, params)?.then_some(Side::Encoded))
}

/// `pair_align`'s answer: (pairs flattened, column scores, raw score, similarity).
type FlatAlignment = (Vec<i64>, Vec<f64>, f64, f64);

/// Encode both sides of a pair into `sides` (emptied first); None when either needs the
/// Python path, else whether both sides are known to pass [`crate::pair::check`] already
/// (encoded here by an encoder that covers the table).
fn pair_input(
    table: &Arc<ScoreTable>,
    encoder: &PyEncoder,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    sides: &mut Sides,
) -> PyResult<Option<bool>> {
    let mut keys = encoder.keys();
    let mut checked = true;
    let ((ca, pa), (cb, pb)) = sides;
    for (x, (c, p)) in [(a, (ca, pa)), (b, (cb, pb))] {
        c.clear();
        p.clear();
        match pair_side(table, encoder, &mut keys, x, c, p)? {
            None => return Ok(None),
            Some(side) => checked &= side == Side::Encoded,
        }
    }
    drop(keys);
    Ok(Some(checked && encoder.covers(table)))
}

/// Run `f` on this thread's pair buffers (fresh ones, defensively, when a call on this thread
/// is already using them; the encoder runs no Python code that could call back).
fn with_sides<R>(f: impl FnOnce(&mut Sides) -> R) -> R {
    SIDES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut sides) => f(&mut sides),
        Err(_) => f(&mut Sides::default()),
    })
}

/// One pair's encoded sides.
type Sides = ((Vec<u32>, Vec<f64>), (Vec<u32>, Vec<f64>));

/// The two sides as the pair scorer takes them.
fn pair_seqs(((ca, pa), (cb, pb)): &Sides) -> (crate::pair::Seq<'_>, crate::pair::Seq<'_>) {
    (
        crate::pair::Seq { codes: ca, params: pa },
        crate::pair::Seq { codes: cb, params: pb },
    )
}

/// Where the pair in `sides` runs.
fn place(((ca, _), (cb, _)): &Sides) -> Place {
    pair_place(ca.len(), cb.len())
}

/// A long pair as the population path handles it (gene dictionary from the table's cache,
/// the pool, the GIL released, Ctrl-C noticed inside the alignment): a population of the two,
/// built and then used by `work` under one watched computation each.
fn pair_on_pool<R: Send>(
    py: Python<'_>,
    table: &PyScoreTable,
    ((ca, pa), (cb, pb)): Sides,
    work: impl FnOnce(&Population, &Stop) -> crate::Result<R> + Send,
) -> PyResult<R> {
    let (t, genes) = (&*table.inner, &*table.genes);
    let (m, n) = (ca.len(), cb.len());
    let codes = [ca, cb].concat();
    let params = [pa, pb].concat();
    let offsets = [0, m, m + n];
    let pool = threads::pool(None)?;
    let cells = (m as u128).pow(2) + (n as u128).pow(2);
    let pop = compute(py, &pool, cells, |stop| {
        Population::with_cache(t, genes, &codes, &params, &offsets, stop)
    })?;
    compute(py, &pool, 2 * m as u128 * n as u128, |stop| work(&pop, stop))
}

/// Flat (i, j) per column, -1 on the side of a gap: small ints, no tuple per column.
pub(crate) fn flat_pairs(ops: &[Op]) -> Vec<i64> {
    ops.iter()
        .flat_map(|op| match *op {
            Op::Match { i, j } => [i as i64, j as i64],
            Op::GapA { j } => [-1, j as i64],
            Op::GapB { i } => [i as i64, -1],
        })
        .collect()
}

/// Similarity of `a` (as A) against `b` (as B), each a plain chromosome or `(codes, params)`
/// arrays; None when a chromosome needs the validating Python path. A pair of up to
/// `engine::HERE_CELLS` DP cells runs on the calling thread (no population, no pool); a longer one
/// on the population path.
#[pyfunction]
pub(crate) fn pair_similarity(
    py: Python<'_>,
    table: &Bound<'_, PyScoreTable>,
    encoder: &Bound<'_, PyEncoder>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Option<f64>> {
    pair_similarity_of(py, table.get(), encoder.get(), a, b)
}

pub(crate) fn pair_similarity_of(
    py: Python<'_>,
    table: &PyScoreTable,
    encoder: &PyEncoder,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Option<f64>> {
    let t = &table.inner;
    with_sides(|sides| {
        let Some(checked) = pair_input(t, encoder, a, b, sides)? else {
            return Ok(None);
        };
        if place(sides) == Place::Pool {
            let sim = pair_on_pool(py, table, std::mem::take(sides), |pop, stop| {
                let s = pop.similarity(t, 0, 1, &mut Aligner::with_stop(stop.clone()));
                stop.check().map(|()| s)
            })?;
            return Ok(Some(sim));
        }
        let (sa, sb) = pair_seqs(sides);
        let sim = PAIR.with(|s| {
            let mut s = s.borrow_mut();
            if checked {
                Ok(s.similarity_of_checked(t, sa, sb))
            } else {
                s.similarity(t, sa, sb)
            }
        })?;
        Ok(Some(sim))
    })
}

/// Traced alignment of `a` (as A) against `b` (as B): (pairs flattened, `[i0, j0, i1, j1, ...]`
/// with -1 on the side of a gap, column scores, raw score, similarity); None when a chromosome
/// needs the validating Python path. Small pairs on the calling thread, as `pair_similarity`.
#[pyfunction]
pub(crate) fn pair_align(
    py: Python<'_>,
    table: &Bound<'_, PyScoreTable>,
    encoder: &Bound<'_, PyEncoder>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Option<FlatAlignment>> {
    let t = &table.get().inner;
    with_sides(|sides| {
        if pair_input(t, encoder.get(), a, b, sides)?.is_none() {
            return Ok(None);
        }
        if place(sides) == Place::Pool {
            let (al, sim) = pair_on_pool(py, table.get(), std::mem::take(sides), |pop, stop| {
                let (a, b) = (pop.seq(0), pop.seq(1));
                let sub = |x: usize, y: usize| pop.gene_score(t, a[x], b[y]);
                let al = Aligner::with_stop(stop.clone()).align(a.len(), b.len(), sub, t.gaps())?;
                let selfs = pop.self_scores();
                let sim = t.normalise(al.score, a.len(), b.len(), selfs[0], selfs[1]);
                Ok((al, sim))
            })?;
            return Ok(Some((flat_pairs(&al.ops), al.column_scores, al.score, sim)));
        }
        let (sa, sb) = pair_seqs(sides);
        let (al, sim) = PAIR.with(|s| s.borrow_mut().align(t, sa, sb))?;
        Ok(Some((flat_pairs(&al.ops), al.column_scores, al.score, sim)))
    })
}
