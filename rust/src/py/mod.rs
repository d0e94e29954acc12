//! The PyO3 binding: the `pyevonas._core` module. A thin layer: each file extracts Python
//! input for one Python class (or group of functions), calls the core, and converts the
//! result; which kernel runs, where and in which batches is the core's decision
//! ([`crate::engine`]), and how a job runs with the GIL released is in [`run`].
//!
//! - `table.rs`: `ScoreTable`, a compiled schema;
//! - `population.rs`: `Population` and its matrices;
//! - `archive.rs`: `Archive`, members that grow, and queries against them;
//! - `encoder.rs`: `Encoder`, the fast encoder of plain chromosomes;
//! - `pair.rs`: `pair_similarity`, `pair_align`;
//! - `similarity.rs`: `similarity` itself and the state it dispatches on;
//! - `matrix.rs`: the one-call matrix functions of `similarity_matrix`;
//! - `graph.rs`: `GraphCostTable`, `GraphBatch`, `graph_distance`, `graph_matrix` (cells and DAGs);
//! - `run.rs`: running core work on a pool or the calling thread.

mod archive;
mod encoder;
mod graph;
mod matrix;
mod pair;
mod population;
mod run;
mod similarity;
mod table;

use pyo3::exceptions::{PyIndexError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::error::Error;
use crate::{engine, threads};

pyo3::import_exception!(pyevonas.errors, SchemaError);
pyo3::import_exception!(pyevonas.errors, EncodingError);

/// Every core error becomes the Python exception a user of pyevonas catches.
impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::InvalidTable(_) => SchemaError::new_err(msg),
            Error::UnknownType { .. }
            | Error::ParamShape { .. }
            | Error::Offsets(_)
            | Error::NonFinite { .. }
            | Error::EmptySequence { .. } => EncodingError::new_err(msg),
            Error::Index { .. } => PyIndexError::new_err(msg),
            Error::Shape { .. } | Error::Threads(_) | Error::Unsupported(_) => PyValueError::new_err(msg),
            Error::ThreadPool(_) => PyRuntimeError::new_err(msg),
            Error::Memory { .. } => PyMemoryError::new_err(msg),
            Error::Interrupted => PyKeyboardInterrupt::new_err(msg),
        }
    }
}

/// Threads the default pool uses (`PYEVONAS_NUM_THREADS` or the machine's parallelism);
/// ValueError naming the variable when its value is not a usable thread count.
#[pyfunction]
fn default_threads() -> PyResult<usize> {
    Ok(threads::default_threads()?)
}

/// Most threads one call may use (`n_threads` or `PYEVONAS_NUM_THREADS` above it are refused).
#[pyfunction]
fn max_threads() -> usize {
    threads::max_threads()
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<table::PyScoreTable>()?;
    m.add_class::<population::PyPopulation>()?;
    m.add_class::<encoder::PyEncoder>()?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_threads, m)?)?;
    m.add_class::<archive::PyArchive>()?;
    m.add_function(wrap_pyfunction!(pair::pair_similarity, m)?)?;
    m.add_class::<similarity::PyPairKit>()?;
    m.add_function(wrap_pyfunction!(similarity::install_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(similarity::remember_schema, m)?)?;
    m.add_function(wrap_pyfunction!(similarity::remember_file, m)?)?;
    m.add_function(wrap_pyfunction!(similarity::similarity, m)?)?;
    m.add_function(wrap_pyfunction!(pair::pair_align, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::matrix_here, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::plain_matrix, m)?)?;
    m.add_class::<graph::PyGraphCostTable>()?;
    m.add_class::<graph::PyGraphBatch>()?;
    m.add_function(wrap_pyfunction!(graph::graph_distance, m)?)?;
    m.add_function(wrap_pyfunction!(graph::graph_matrix, m)?)?;
    // The engine's calling-thread threshold, for the Python side's own one-call decision.
    m.add("SMALL_CELLS", engine::HERE_CELLS)?;
    threads::install_fork_guard();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
