//! `Archive`: encoded members that grow by appending (see [`crate::archive`]); queries are
//! rows, members columns, and every value is the cell `similarity_matrix` computes.

use std::sync::Arc;

use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use super::encoder::PyEncoder;
use super::population::nearest_of;
use super::run::{build_population, new_array, population_of, run_job};
use super::table::PyScoreTable;
use crate::archive::{Archive, Joined};
use crate::engine::{Job, Kind, Target};
use crate::genes::GeneCache;
use crate::matrix::Element;
use crate::score::ScoreTable;
use crate::seq::Population;

#[pyclass(frozen, name = "Archive", module = "pyevonas._core")]
pub(crate) struct PyArchive {
    table: Arc<ScoreTable>,
    genes: Arc<GeneCache>,
    inner: std::sync::RwLock<Arc<Archive>>,
}

impl PyArchive {
    fn snapshot(&self) -> Arc<Archive> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Append a population built against the table; the index of its first member.
    fn append(&self, new: &Population) -> usize {
        let mut guard = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::make_mut(&mut guard).add(&self.table, new).start
    }

    /// The members with `queries` appended.
    fn joined(
        &self,
        py: Python<'_>,
        codes: &PyReadonlyArray1<'_, u32>,
        params: &PyReadonlyArray2<'_, f64>,
        offsets: &PyReadonlyArray1<'_, i64>,
    ) -> PyResult<Joined> {
        let queries = build_population(py, &self.table, &self.genes, codes, params, offsets)?;
        Ok(self.snapshot().join(&self.table, &queries))
    }

    fn matrix_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        joined: &Joined,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = (joined.queries.clone(), joined.members.clone());
        let mut out = new_array::<T>(rows.len(), cols.len())?;
        let job = Job::new(&joined.pop, &self.table, rows, cols, Kind::Matrix)?;
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        run_job(py, job, &mut Target::Matrix(slice), n_threads, progress)?;
        Ok(out.into_pyarray(py).into_any())
    }
}

#[pymethods]
impl PyArchive {
    #[new]
    fn new(table: &Bound<'_, PyScoreTable>) -> Self {
        let (table, genes) = (table.get().inner.clone(), table.get().genes.clone());
        let inner = Arc::new(Archive::new(&table));
        PyArchive {
            table,
            genes,
            inner: std::sync::RwLock::new(inner),
        }
    }

    fn __len__(&self) -> usize {
        self.snapshot().len()
    }

    /// Genes of all members together.
    #[getter]
    fn n_genes(&self) -> usize {
        self.snapshot().n_genes()
    }

    /// Append encoded sequences as members; returns the index of the first.
    fn add(
        &self,
        py: Python<'_>,
        codes: PyReadonlyArray1<'_, u32>,
        params: PyReadonlyArray2<'_, f64>,
        offsets: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<usize> {
        let new = build_population(py, &self.table, &self.genes, &codes, &params, &offsets)?;
        Ok(self.append(&new))
    }

    /// `add` of a list of plain chromosomes, encoded here (no arrays in between); None, with
    /// nothing added, when one needs the validating Python path.
    fn add_plain(
        &self,
        py: Python<'_>,
        encoder: &Bound<'_, PyEncoder>,
        archs: &Bound<'_, PyAny>,
    ) -> PyResult<Option<usize>> {
        let Some(parts) = encoder.get().encode_parts(archs)? else {
            return Ok(None);
        };
        let (c, p, o) = (&parts.codes, &parts.params, &parts.offsets);
        let new = population_of(py, &self.table, &self.genes, c, p, o)?;
        Ok(Some(self.append(&new)))
    }

    /// Similarities of encoded queries (rows, as A) against every member (columns, as B).
    #[pyo3(signature = (codes, params, offsets, float32=false, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn matrix<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray1<'py, u32>,
        params: PyReadonlyArray2<'py, f64>,
        offsets: PyReadonlyArray1<'py, i64>,
        float32: bool,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let joined = self.joined(py, &codes, &params, &offsets)?;
        if float32 {
            self.matrix_typed::<f32>(py, &joined, n_threads, progress)
        } else {
            self.matrix_typed::<f64>(py, &joined, n_threads, progress)
        }
    }

    /// The k most similar members of each encoded query (k capped at the number of members):
    /// (indices int64 (Q, k), similarities (Q, k)), most similar first, ties by lower index.
    #[pyo3(signature = (codes, params, offsets, k, n_threads=None, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn nearest<'py>(
        &self,
        py: Python<'py>,
        codes: PyReadonlyArray1<'py, u32>,
        params: PyReadonlyArray2<'py, f64>,
        offsets: PyReadonlyArray1<'py, i64>,
        k: usize,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let joined = self.joined(py, &codes, &params, &offsets)?;
        let (rows, cols) = (joined.queries.clone(), joined.members.clone());
        let k = k.min(cols.len());
        nearest_of(py, &joined.pop, &self.table, rows, cols, k, false, n_threads, progress)
    }
}
