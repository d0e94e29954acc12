//! `Population`: encoded sequences over the table's gene dictionary, and the matrices of them
//! (every one planned by [`crate::engine::Job`]).

use std::ops::Range;
use std::sync::Arc;

use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use super::run::{build_population, compute, new_array, run_job};
use super::table::PyScoreTable;
use crate::align::{Aligner, Op};
use crate::engine::{Job, Kind, Target};
use crate::matrix::Element;
use crate::mem;
use crate::score::ScoreTable;
use crate::seq::Population;
use crate::threads;

/// `Population.align`'s answer: (pairs [(i or -1, j or -1)], column scores, raw score, similarity).
type TracedAlignment = (Vec<(i64, i64)>, Vec<f64>, f64, f64);

#[pyclass(frozen, name = "Population", module = "pyevonas._core")]
pub(crate) struct PyPopulation {
    pop: Arc<Population>,
    table: Arc<ScoreTable>,
}

/// Rows and columns of a population of `n`: all against all, or `[0, split)` against `[split, n)`.
pub(crate) fn split_ranges(n: usize, split: Option<usize>) -> PyResult<(Range<usize>, Range<usize>)> {
    match split {
        None => Ok((0..n, 0..n)),
        Some(s) if s <= n => Ok((0..s, s..n)),
        Some(s) => Err(PyIndexError::new_err(format!(
            "split {s} is beyond the population ({n})"
        ))),
    }
}

impl PyPopulation {
    fn matrix_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        split: Option<usize>,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = split_ranges(self.pop.len(), split)?;
        let mut out = new_array::<T>(rows.len(), cols.len())?;
        let job = Job::new(&self.pop, &self.table, rows, cols, Kind::Matrix)?;
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        run_job(py, job, &mut Target::Matrix(slice), n_threads, progress)?;
        Ok(out.into_pyarray(py).into_any())
    }

    fn condensed_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = self.pop.len();
        let job = Job::new(&self.pop, &self.table, 0..n, 0..n, Kind::Condensed)?;
        let len = job.output_len().0;
        let what = || {
            format!(
                "a condensed matrix of {n} architectures ({len} {})",
                std::any::type_name::<T>()
            )
        };
        let mut out = Array1::from(mem::zeroed::<T>(len as u128, &what)?);
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        run_job(py, job, &mut Target::Condensed(slice), n_threads, progress)?;
        Ok(out.into_pyarray(py).into_any())
    }
}

#[pymethods]
impl PyPopulation {
    #[new]
    #[pyo3(signature = (table, codes, params, offsets))]
    fn new(
        py: Python<'_>,
        table: &Bound<'_, PyScoreTable>,
        codes: PyReadonlyArray1<'_, u32>,
        params: PyReadonlyArray2<'_, f64>,
        offsets: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Self> {
        let (table, genes) = (table.get().inner.clone(), table.get().genes.clone());
        let pop = build_population(py, &table, &genes, &codes, &params, &offsets)?;
        Ok(PyPopulation {
            pop: Arc::new(pop),
            table,
        })
    }

    fn __len__(&self) -> usize {
        self.pop.len()
    }

    #[getter]
    fn n_distinct_genes(&self) -> usize {
        self.pop.n_distinct_genes()
    }

    /// Similarity matrix: N x N, or rows [0, split) against columns [split, N).
    #[pyo3(signature = (split=None, float32=false, n_threads=None, progress=None))]
    fn matrix<'py>(
        &self,
        py: Python<'py>,
        split: Option<usize>,
        float32: bool,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if float32 {
            self.matrix_typed::<f32>(py, split, n_threads, progress)
        } else {
            self.matrix_typed::<f64>(py, split, n_threads, progress)
        }
    }

    /// Condensed upper triangle (scipy `pdist` layout) of the N x N matrix; symmetric tables only.
    #[pyo3(signature = (float32=false, n_threads=None, progress=None))]
    fn condensed<'py>(
        &self,
        py: Python<'py>,
        float32: bool,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if float32 {
            self.condensed_typed::<f32>(py, n_threads, progress)
        } else {
            self.condensed_typed::<f64>(py, n_threads, progress)
        }
    }

    /// Raw alignment scores, N x N or rows [0, split) against columns [split, N).
    #[pyo3(signature = (split=None, n_threads=None))]
    fn scores<'py>(
        &self,
        py: Python<'py>,
        split: Option<usize>,
        n_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = split_ranges(self.pop.len(), split)?;
        let mut out = new_array::<f64>(rows.len(), cols.len())?;
        let job = Job::new(&self.pop, &self.table, rows, cols, Kind::Scores)?;
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        run_job::<f64>(py, job, &mut Target::Scores(slice), n_threads, None)?;
        Ok(out.into_pyarray(py).into_any())
    }

    /// k nearest (most similar) columns per row: (indices int64 (R, k'), similarities (R, k')),
    /// k' = k capped at the number of candidates (the columns, less the row itself without a split).
    #[pyo3(signature = (k, split=None, n_threads=None, progress=None))]
    fn nearest<'py>(
        &self,
        py: Python<'py>,
        k: usize,
        split: Option<usize>,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (rows, cols) = split_ranges(self.pop.len(), split)?;
        let exclude_self = split.is_none();
        let candidates = if exclude_self {
            cols.len().saturating_sub(1)
        } else {
            cols.len()
        };
        let k = k.min(candidates);
        nearest_of(
            py,
            &self.pop,
            &self.table,
            rows,
            cols,
            k,
            exclude_self,
            n_threads,
            progress,
        )
    }

    /// Traced alignment of sequence i (as A) against j (as B):
    /// (pairs [(i or -1, j or -1)], column scores, raw score, similarity).
    fn align(&self, py: Python<'_>, i: usize, j: usize) -> PyResult<TracedAlignment> {
        let n = self.pop.len();
        if i >= n || j >= n {
            return Err(PyIndexError::new_err(format!(
                "index out of range for a population of {n}"
            )));
        }
        let (a, b) = (self.pop.seq(i), self.pop.seq(j));
        let table = &*self.table;
        let pop = &*self.pop;
        let pool = threads::pool(None)?;
        let cells = 2 * a.len() as u128 * b.len() as u128;
        let al = compute(py, &pool, cells, |stop| {
            let sub = |x: usize, y: usize| pop.gene_score(table, a[x], b[y]);
            Aligner::with_stop(stop.clone()).align(a.len(), b.len(), sub, table.gaps())
        })?;
        let pairs = al
            .ops
            .iter()
            .map(|op| match *op {
                Op::Match { i, j } => (i as i64, j as i64),
                Op::GapA { j } => (-1, j as i64),
                Op::GapB { i } => (i as i64, -1),
            })
            .collect();
        let sim = table.normalise(al.score, a.len(), b.len(), pop.self_scores()[i], pop.self_scores()[j]);
        Ok((pairs, al.column_scores, al.score, sim))
    }
}

/// The `k` nearest columns of each row as numpy arrays (indices int64, similarities).
#[allow(clippy::too_many_arguments)]
pub(crate) fn nearest_of<'py>(
    py: Python<'py>,
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    exclude_self: bool,
    n_threads: Option<usize>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let mut idx = new_array::<i64>(rows.len(), k)?;
    let mut sim = new_array::<f64>(rows.len(), k)?;
    let job = Job::new(pop, table, rows, cols, Kind::Nearest { k, exclude_self })?;
    {
        let is = idx.as_slice_mut().expect("contiguous");
        let ss = sim.as_slice_mut().expect("contiguous");
        run_job::<f64>(py, job, &mut Target::Nearest(is, ss), n_threads, progress)?;
    }
    Ok((idx.into_pyarray(py).into_any(), sim.into_pyarray(py).into_any()))
}
