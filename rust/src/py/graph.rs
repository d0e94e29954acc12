//! Graph architectures: `GraphCostTable` (edit costs over label ids), `GraphBatch` (cells as
//! flat arrays, checked once), `graph_distance` (one pair) and `graph_matrix` (matrices, in
//! row blocks on the pool with the GIL released, Ctrl-C and progress between blocks).

use numpy::ndarray::Array1;
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::run::{check_n_threads, compute, new_array};
use crate::align::Stop;
use crate::calling_thread::run_here;
use crate::error::Error;
use crate::graph::{self, Cell, GraphArch, GraphCosts, MatrixJob, Method, Values, EXACT_MAX_NODES};
use crate::matrix::Element;
use crate::threads;

// The Python signatures below spell the default exact limit out (PyO3 renders no constants).
const _: () = assert!(graph::DEFAULT_EXACT_LIMIT == 12);

/// Pairs per block of a matrix (Ctrl-C and progress between blocks).
const BLOCK_PAIRS: usize = 1 << 18;
/// Up to this many pairs a matrix is computed on the calling thread, without a pool.
const HERE_PAIRS: usize = 4096;
/// Work units (in DP-cell terms of [`compute`]) counted per pair, so that long blocks are watched.
const CELLS_PER_PAIR: u128 = 256;

/// Edit costs over label ids (immutable).
#[pyclass(frozen, name = "GraphCostTable", module = "pyevonas._core")]
pub(crate) struct PyGraphCostTable {
    inner: GraphCosts,
}

fn square(a: &PyReadonlyArray2<'_, f64>, what: &str) -> PyResult<(usize, Vec<f64>)> {
    let s = a.shape();
    if s[0] != s[1] {
        return Err(PyValueError::new_err(format!(
            "{what} must be square, got {}x{}",
            s[0], s[1]
        )));
    }
    Ok((s[0], a.as_array().iter().copied().collect()))
}

fn vector(a: &PyReadonlyArray1<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

#[pymethods]
impl PyGraphCostTable {
    #[new]
    fn new(
        node_sub: PyReadonlyArray2<'_, f64>,
        node_del: PyReadonlyArray1<'_, f64>,
        node_ins: PyReadonlyArray1<'_, f64>,
        edge_sub: PyReadonlyArray2<'_, f64>,
        edge_del: PyReadonlyArray1<'_, f64>,
        edge_ins: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Self> {
        let (nl, ns) = square(&node_sub, "node substitution costs")?;
        let (el, es) = square(&edge_sub, "edge substitution costs")?;
        let inner = GraphCosts::new(
            nl,
            ns,
            vector(&node_del),
            vector(&node_ins),
            el,
            es,
            vector(&edge_del),
            vector(&edge_ins),
        )?;
        Ok(PyGraphCostTable { inner })
    }

    /// True when every distance is symmetric under these costs.
    #[getter]
    fn symmetric(&self) -> bool {
        self.inner.symmetric()
    }
}

/// Architectures of cells, as flat arrays (checked once, reused by every call).
#[pyclass(frozen, name = "GraphBatch", module = "pyevonas._core")]
pub(crate) struct PyGraphBatch {
    archs: Vec<GraphArch>,
}

fn offsets(a: &PyReadonlyArray1<'_, i64>, what: &str, end: usize) -> PyResult<Vec<usize>> {
    let v: Vec<usize> = a
        .as_array()
        .iter()
        .map(|&o| usize::try_from(o).map_err(|_| Error::Offsets(format!("{what}: negative offset {o}"))))
        .collect::<Result<_, _>>()?;
    if v.first() != Some(&0) || v.last() != Some(&end) || v.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::Offsets(format!("{what} must rise from 0 to {end}")).into());
    }
    Ok(v)
}

#[pymethods]
impl PyGraphBatch {
    /// `arch_cells[a]..arch_cells[a + 1]`: the cells of architecture `a`;
    /// `cell_nodes[c]..` its node labels in `labels`, `cell_edges[c]..` its rows of `edges`
    /// (source, target, label; node numbers local to the cell); `pins[c]`: (inputs, outputs);
    /// `keys[a]`: a key of architecture `a`'s labelled content that holds across calls (see
    /// `GraphArch::key`; without keys, one is made from the label ids of this batch).
    #[new]
    #[pyo3(signature = (arch_cells, cell_nodes, labels, cell_edges, edges, pins, keys=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        arch_cells: PyReadonlyArray1<'_, i64>,
        cell_nodes: PyReadonlyArray1<'_, i64>,
        labels: PyReadonlyArray1<'_, u32>,
        cell_edges: PyReadonlyArray1<'_, i64>,
        edges: PyReadonlyArray2<'_, u32>,
        pins: PyReadonlyArray2<'_, i64>,
        keys: Option<PyReadonlyArray1<'_, u64>>,
    ) -> PyResult<Self> {
        let n_cells = cell_nodes.len().saturating_sub(1);
        let ac = offsets(&arch_cells, "arch_cells", n_cells)?;
        let cn = offsets(&cell_nodes, "cell_nodes", labels.len())?;
        let ce = offsets(&cell_edges, "cell_edges", edges.shape()[0])?;
        if edges.shape()[1] != 3 || pins.shape() != [n_cells, 2] || ce.len() != n_cells + 1 {
            return Err(PyValueError::new_err("edges must be (E, 3) and pins (cells, 2)"));
        }
        let labels = labels.as_array();
        let edges = edges.as_array();
        let pins = pins.as_array();
        let mut cells = Vec::with_capacity(n_cells);
        for c in 0..n_cells {
            let l: Vec<u32> = labels.slice(numpy::ndarray::s![cn[c]..cn[c + 1]]).to_vec();
            let e: Vec<(u32, u32, u32)> = (ce[c]..ce[c + 1])
                .map(|k| (edges[[k, 0]], edges[[k, 1]], edges[[k, 2]]))
                .collect();
            let (pi, po) = (usize::try_from(pins[[c, 0]]), usize::try_from(pins[[c, 1]]));
            let (Ok(pi), Ok(po)) = (pi, po) else {
                return Err(PyValueError::new_err(format!("cell {c}: negative pin count")));
            };
            cells.push(Cell::new(l, &e, pi, po).map_err(|e| PyValueError::new_err(format!("cell {c}: {e}")))?);
        }
        let mut it = cells.into_iter();
        let mut archs: Vec<GraphArch> = ac
            .windows(2)
            .map(|w| GraphArch::new(it.by_ref().take(w[1] - w[0]).collect()))
            .collect();
        if let Some(keys) = keys {
            let keys = keys.as_array();
            if keys.len() != archs.len() {
                return Err(PyValueError::new_err(format!(
                    "{} keys for {} architectures",
                    keys.len(),
                    archs.len()
                )));
            }
            for (a, &k) in archs.iter_mut().zip(keys.iter()) {
                a.key = k;
            }
        }
        Ok(PyGraphBatch { archs })
    }

    fn __len__(&self) -> usize {
        self.archs.len()
    }
}

fn method_of(method: &str, exact_limit: usize) -> PyResult<Method> {
    if exact_limit > EXACT_MAX_NODES {
        return Err(PyValueError::new_err(format!(
            "exact_limit must be at most {EXACT_MAX_NODES} nodes, got {exact_limit}"
        )));
    }
    match method {
        "auto" => Ok(Method::Auto { limit: exact_limit }),
        "exact" => Ok(Method::Exact),
        "bounded" => Ok(Method::Bounded),
        other => Err(PyValueError::new_err(format!(
            "method must be 'auto', 'exact' or 'bounded', got {other:?}"
        ))),
    }
}

fn get(batch: &PyGraphBatch, i: usize) -> PyResult<&GraphArch> {
    batch.archs.get(i).ok_or_else(|| {
        Error::Index {
            index: i,
            len: batch.archs.len(),
        }
        .into()
    })
}

/// The edit distance of `a[i]` and `b[j]`: (distance, dmax, exact).
#[pyfunction]
#[pyo3(signature = (costs, a, i, b, j, method="auto", exact_limit=12))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn graph_distance(
    py: Python<'_>,
    costs: &PyGraphCostTable,
    a: &PyGraphBatch,
    i: usize,
    b: &PyGraphBatch,
    j: usize,
    method: &str,
    exact_limit: usize,
) -> PyResult<(f64, f64, bool)> {
    let method = method_of(method, exact_limit)?;
    let (x, y) = (get(a, i)?, get(b, j)?);
    let c = &costs.inner;
    x.check_labels(c)?;
    y.check_labels(c)?;
    let d = if x.max_nodes().max(y.max_nodes()) <= graph::DEFAULT_EXACT_LIMIT || method == Method::Bounded {
        graph::distance(c, x, y, method, &Stop::never())?
    } else {
        // A large exact search can be long: watched for Ctrl-C.
        let pool = threads::pool(Some(1))?;
        compute(py, &pool, u128::MAX, |stop| graph::distance(c, x, y, method, stop))?
    };
    Ok((d.distance, d.dmax, d.exact))
}

fn run_matrix<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    job: &MatrixJob<'_>,
    n_threads: Option<usize>,
    progress: Option<&Bound<'py, PyAny>>,
    shape: (usize, usize),
    condensed: bool,
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let mut out: Vec<T> = if condensed {
        vec![T::default(); job.output_len()]
    } else {
        new_array::<T>(shape.0, shape.1)?.into_raw_vec_and_offset().0
    };
    let total: usize = (0..job.rows()).map(|i| job.row_pairs(i)).sum();
    let mut approx = 0;
    if total <= HERE_PAIRS {
        check_n_threads(n_threads)?;
        approx += run_here(|| job.run(0..job.rows(), &mut out, &Stop::never()))??;
        if let Some(cb) = progress {
            cb.call1((total, total))?;
        }
    } else {
        let pool = threads::pool(n_threads)?;
        let mut done = 0;
        for rows in job.batches(BLOCK_PAIRS) {
            let pairs: usize = rows.clone().map(|i| job.row_pairs(i)).sum();
            approx += compute(py, &pool, pairs as u128 * CELLS_PER_PAIR, |stop| {
                job.run(rows, &mut out, stop)
            })?;
            done += pairs;
            if let Some(cb) = progress {
                cb.call1((done, total))?;
            }
        }
    }
    job.finish(&mut out);
    let array = if condensed {
        Array1::from(out).into_pyarray(py).into_any()
    } else {
        numpy::ndarray::Array2::from_shape_vec(shape, out)
            .map_err(|e| PyValueError::new_err(e.to_string()))?
            .into_pyarray(py)
            .into_any()
    };
    Ok((array, approx))
}

/// The matrix of `rows` against `cols` (all against all when None): similarities or
/// distances, full or condensed, float64 or float32. Returns (array, number of pairs whose
/// value comes from the bounded method).
#[pyfunction]
#[pyo3(signature = (costs, rows, cols=None, *, values="similarity", method="auto", exact_limit=12, float32=false, condensed=false, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn graph_matrix<'py>(
    py: Python<'py>,
    costs: &PyGraphCostTable,
    rows: &PyGraphBatch,
    cols: Option<&PyGraphBatch>,
    values: &str,
    method: &str,
    exact_limit: usize,
    float32: bool,
    condensed: bool,
    n_threads: Option<usize>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let method = method_of(method, exact_limit)?;
    let values = match values {
        "similarity" => Values::Similarity,
        "distance" => Values::Distance,
        other => {
            return Err(PyValueError::new_err(format!(
                "values must be 'similarity' or 'distance', got {other:?}"
            )))
        }
    };
    let job = MatrixJob::new(
        &costs.inner,
        &rows.archs,
        cols.map(|c| c.archs.as_slice()),
        condensed,
        values,
        method,
    )?;
    let shape = (rows.archs.len(), cols.map_or(rows.archs.len(), |c| c.archs.len()));
    if float32 {
        run_matrix::<f32>(py, &job, n_threads, progress, shape, condensed)
    } else {
        run_matrix::<f64>(py, &job, n_threads, progress, shape, condensed)
    }
}
