//! How the binding runs core work: with the GIL released on pyevonas's own rayon pool,
//! watched for Ctrl-C, or on the calling thread when the engine says it is small.
//!
//! Order of every heavy call (as in tokenizers): extract with the GIL held, compute with the
//! GIL released, then hand the owned result to numpy without a copy. A job runs batch by
//! batch ([`crate::engine::Job`]), with Ctrl-C and the progress callback between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use numpy::ndarray::Array2;
use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rayon::ThreadPool;

use crate::align::Stop;
use crate::calling_thread::run_here;
use crate::engine::{build_place, Job, Place, Target, WATCH_CELLS};
use crate::error::Error;
use crate::genes::GeneCache;
use crate::matrix::Element;
use crate::mem;
use crate::score::ScoreTable;
use crate::seq::Population;
use crate::threads;

/// How often a watched computation looks at Python's signals.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Run `work` on `pool` with the GIL released. When it is long (`cells` DP cells, at least
/// [`WATCH_CELLS`]), the calling thread watches for Ctrl-C meanwhile and on a signal asks
/// `work` to stop (through the [`Stop`] it gets), then raises the signal's exception once
/// `work` has returned.
pub(crate) fn compute<R, F>(py: Python<'_>, pool: &ThreadPool, cells: u128, work: F) -> PyResult<R>
where
    R: Send,
    F: FnOnce(&Stop) -> crate::Result<R> + Send,
{
    if cells < WATCH_CELLS {
        let out = py.detach(|| pool.install(|| work(&Stop::never())));
        py.check_signals()?;
        return Ok(out?);
    }
    let stop = Stop::new();
    let done = AtomicBool::new(false);
    let me = std::thread::current();
    let mut signal = None;
    let out = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let out = pool.install(|| work(&stop));
            done.store(true, Ordering::Release);
            me.unpark();
            out
        });
        while !done.load(Ordering::Acquire) {
            py.detach(|| std::thread::park_timeout(WATCH_EVERY));
            if signal.is_none() {
                if let Err(e) = py.check_signals() {
                    stop.request();
                    signal = Some(e);
                }
            }
        }
        worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    if let Some(e) = signal {
        return Err(e);
    }
    py.check_signals()?;
    Ok(out?)
}

/// Refuse a thread count (argument or `PYEVONAS_NUM_THREADS`) that a pool would refuse, also
/// where the work is small enough to need no pool: the same call fails the same way at any size.
pub(crate) fn check_n_threads(n_threads: Option<usize>) -> PyResult<()> {
    match n_threads {
        Some(n) => threads::check_threads(n, "n_threads")?,
        None => threads::default_threads()?,
    };
    Ok(())
}

/// Run `job` into `target` where the engine placed it: on the calling thread with the GIL
/// held (`n_threads` only checked), or batch by batch on the pool for `n_threads` with the GIL
/// released, Ctrl-C looked at and `progress(done, total)` called (its exceptions propagate)
/// after each batch.
pub(crate) fn run_job<T: Element>(
    py: Python<'_>,
    mut job: Job<'_>,
    target: &mut Target<'_, T>,
    n_threads: Option<usize>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let units = job.units();
    match job.place() {
        Place::Here => {
            check_n_threads(n_threads)?;
            run_here(|| job.run_all(target, &Stop::never()))??;
            if let Some(cb) = progress {
                cb.call1((units, units))?;
            }
        }
        Place::Pool => {
            let pool = threads::pool(n_threads)?;
            for b in 0..job.batches().len() {
                let done = job.batches()[b].end;
                let cells = job.batch_cells(b);
                compute(py, &pool, cells, |stop| job.run(b, target, stop))?;
                if let Some(cb) = progress {
                    cb.call1((done, units))?;
                }
            }
            py.detach(|| pool.install(|| job.finish(target)))?;
        }
    }
    Ok(())
}

/// A `rows x cols` array, allocated fallibly (MemoryError naming the size).
pub(crate) fn new_array<T: mem::Zeroed + numpy::Element>(rows: usize, cols: usize) -> PyResult<Array2<T>> {
    let what = || format!("a {rows} x {cols} {} array", std::any::type_name::<T>());
    let v = mem::zeroed(rows as u128 * cols as u128, &what)?;
    Array2::from_shape_vec((rows, cols), v).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Parameter rows for `n_genes` genes of `table`: one row each, one column per parameter.
pub(crate) fn check_param_shape(
    table: &ScoreTable,
    n_genes: usize,
    params: &PyReadonlyArray2<'_, f64>,
) -> PyResult<()> {
    let shape = params.shape();
    if shape[0] != n_genes || shape[1] != table.n_params() {
        return Err(Error::ParamShape {
            rows: shape[0],
            cols: shape[1],
            expected_rows: n_genes,
            expected_cols: table.n_params(),
        }
        .into());
    }
    Ok(())
}

/// Encoded arrays (codes, params, offsets) as owned vectors, their shapes checked.
pub(crate) fn encoded_parts(
    table: &ScoreTable,
    codes: &PyReadonlyArray1<'_, u32>,
    params: &PyReadonlyArray2<'_, f64>,
    offsets: &PyReadonlyArray1<'_, i64>,
) -> PyResult<(Vec<u32>, Vec<f64>, Vec<usize>)> {
    let codes: Vec<u32> = codes.as_array().iter().copied().collect();
    check_param_shape(table, codes.len(), params)?;
    let params: Vec<f64> = params.as_array().iter().copied().collect();
    let offsets = offsets
        .as_array()
        .iter()
        .map(|&o| usize::try_from(o).map_err(|_| Error::Offsets(format!("negative offset {o}"))))
        .collect::<Result<Vec<usize>, Error>>()?;
    Ok((codes, params, offsets))
}

/// A population of encoded arrays over the table's gene cache, with its self scores.
pub(crate) fn build_population(
    py: Python<'_>,
    t: &ScoreTable,
    genes: &GeneCache,
    codes: &PyReadonlyArray1<'_, u32>,
    params: &PyReadonlyArray2<'_, f64>,
    offsets: &PyReadonlyArray1<'_, i64>,
) -> PyResult<Population> {
    let (c, p, o) = encoded_parts(t, codes, params, offsets)?;
    population_of(py, t, genes, &c, &p, &o)
}

/// `build_population` of encoded vectors: on the calling thread or the default pool, as
/// [`build_place`] decides.
pub(crate) fn population_of(
    py: Python<'_>,
    t: &ScoreTable,
    genes: &GeneCache,
    c: &[u32],
    p: &[f64],
    o: &[usize],
) -> PyResult<Population> {
    match build_place(c.len()) {
        Place::Here => {
            check_n_threads(None)?;
            Ok(run_here(|| Population::with_cache(t, genes, c, p, o, &Stop::never()))??)
        }
        Place::Pool => {
            let pool = threads::pool(None)?;
            // The self-alignments are the long part: the sum of the squared lengths.
            let cells = o.windows(2).map(|w| (w[1].saturating_sub(w[0]) as u128).pow(2)).sum();
            compute(py, &pool, cells, |stop| Population::with_cache(t, genes, c, p, o, stop))
        }
    }
}
