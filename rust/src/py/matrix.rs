//! The one-call matrix functions of `similarity_matrix`: plain chromosomes encoded and, when
//! the work is small, computed in one call (`plain_matrix`); encoded arrays computed without a
//! `Population` object in between (`matrix_here`).

use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use super::encoder::PyEncoder;
use super::population::split_ranges;
use super::run::{check_n_threads, encoded_parts, new_array, run_job};
use super::table::PyScoreTable;
use crate::align::Stop;
use crate::calling_thread::run_here;
use crate::engine::{self, Job, Kind, Target, HERE_CELLS};
use crate::error::Error;
use crate::matrix::Element;
use crate::seq::Population;

/// The matrix (or condensed upper triangle) of encoded vectors, over a population built here
/// on the calling thread (its self scores only where the engine's tier needs them). Small
/// work runs here too; `n_threads` is checked either way.
#[allow(clippy::too_many_arguments)]
fn matrix_of<'py>(
    py: Python<'py>,
    table: &PyScoreTable,
    c: &[u32],
    p: &[f64],
    o: &[usize],
    split: Option<usize>,
    float32: bool,
    condensed: bool,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    check_n_threads(n_threads)?;
    let (t, genes) = (&*table.inner, &*table.genes);
    let n = o.len().saturating_sub(1);
    let (rows, cols) = if condensed {
        (0..n, 0..n)
    } else {
        split_ranges(n, split)?
    };
    let pop = run_here(|| {
        let mut pop = Population::with_cache_unscored(t, genes, c, p, o)?;
        if engine::needs_self_scores(&pop, t, &rows, &cols) {
            pop.score_selves(t, &Stop::never())?;
        }
        Ok::<_, Error>(pop)
    })??;
    let kind = if condensed { Kind::Condensed } else { Kind::Matrix };
    let job = Job::new(&pop, t, rows.clone(), cols.clone(), kind)?;
    if float32 {
        typed::<f32>(py, job, rows.len(), cols.len(), n_threads)
    } else {
        typed::<f64>(py, job, rows.len(), cols.len(), n_threads)
    }
}

/// Run a matrix or condensed `job` of `rows x cols` into a new array of `T`.
fn typed<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    job: Job<'_>,
    rows: usize,
    cols: usize,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    if job.kind() == Kind::Condensed {
        let mut out = Array1::from(vec![T::default(); job.output_len().0]);
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        run_job(py, job, &mut Target::Condensed(slice), n_threads, None)?;
        return Ok(out.into_pyarray(py).into_any());
    }
    let mut out = new_array::<T>(rows, cols)?;
    let slice = out.as_slice_mut().expect("a fresh array is contiguous");
    run_job(py, job, &mut Target::Matrix(slice), n_threads, None)?;
    Ok(out.into_pyarray(py).into_any())
}

/// `Population(table, codes, params, offsets).matrix(split, float32)` (or `.condensed`) in one
/// call, the population built on the calling thread: for small work, where a pool costs more
/// than the alignments (the engine then computes it here too). Same values, bit for bit.
#[pyfunction]
#[pyo3(signature = (table, codes, params, offsets, split=None, float32=false, condensed=false, n_threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn matrix_here<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyScoreTable>,
    codes: PyReadonlyArray1<'py, u32>,
    params: PyReadonlyArray2<'py, f64>,
    offsets: PyReadonlyArray1<'py, i64>,
    split: Option<usize>,
    float32: bool,
    condensed: bool,
    n_threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let (c, p, o) = encoded_parts(&table.get().inner, &codes, &params, &offsets)?;
    matrix_of(py, table.get(), &c, &p, &o, split, float32, condensed, n_threads)
}

/// `similarity_matrix` of a list of plain chromosomes (`split`: where the columns' `others`
/// start) in one call: encoded here, and when the work is small (`HERE_CELLS`) computed here
/// too, as `matrix_here` does. Returns the matrix; or, for larger work, the encoded
/// (codes, params, offsets) arrays for the pool path; or None when a chromosome needs the
/// validating Python path.
#[pyfunction]
#[pyo3(signature = (table, encoder, archs, split=None, float32=false, condensed=false, n_threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plain_matrix<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyScoreTable>,
    encoder: &Bound<'py, PyEncoder>,
    archs: &Bound<'py, PyAny>,
    split: Option<usize>,
    float32: bool,
    condensed: bool,
    n_threads: Option<usize>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(parts) = encoder.get().encode_parts(archs)? else {
        return Ok(None);
    };
    let n_seqs = parts.offsets.len() - 1;
    let total = parts.codes.len() as u64;
    let (rows, cols) = match split {
        None => (total, total),
        Some(s) if s <= n_seqs => {
            let r = parts.offsets[s] as u64;
            (r, total - r)
        }
        Some(s) => {
            return Err(PyIndexError::new_err(format!(
                "split {s} is beyond the population ({n_seqs})"
            )))
        }
    };
    if rows * cols <= HERE_CELLS {
        let (c, p, o) = (&parts.codes, &parts.params, &parts.offsets);
        return matrix_of(py, table.get(), c, p, o, split, float32, condensed, n_threads).map(Some);
    }
    let (c, p, o) = parts.into_arrays(py, encoder.get().n_params)?;
    Ok(Some(pyo3::types::PyTuple::new(py, [c, p, o])?.into_any()))
}
