//! All PyO3 glue: the `pyevonas._core` module, its classes, and the error mapping.
//!
//! Order of every heavy call (as in tokenizers): extract with the GIL held, compute with the
//! GIL released on pyevonas's own rayon pool, then hand the owned result to numpy without a
//! copy. Large matrices run in row blocks with a signal check between blocks, so Ctrl-C works.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::{PyIndexError, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString};
use rayon::ThreadPool;

use crate::align::{Aligner, Gaps, Op, Stop};
use crate::error::Error;
use crate::genes::GeneCache;
use crate::matrix::{self, Element};
use crate::mem;
use crate::score::{LowerBound, ScoreTable, Term};
use crate::seq::Population;
use crate::text::{eq_bytes, NameIndex};
use crate::threads;

/// `Population.align`'s answer: (pairs [(i or -1, j or -1)], column scores, raw score, similarity).
type TracedAlignment = (Vec<(i64, i64)>, Vec<f64>, f64, f64);
/// One way an `Encoder` layer name becomes a gene: (type code, `when` conditions, counted params).
type LayerChoiceSpec = (u32, Vec<(String, Py<PyAny>)>, Vec<(String, usize)>);
/// `Encoder.encode`'s answer: (codes, params, offsets) as numpy arrays.
type Encoded<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

pyo3::import_exception!(pyevonas.errors, SchemaError);
pyo3::import_exception!(pyevonas.errors, EncodingError);

fn to_py(e: Error) -> PyErr {
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

/// Cells per detached block: long enough to amortise the GIL round trip, short enough
/// (well under a second) that Ctrl-C is noticed promptly.
const BLOCK_CELLS: usize = 1 << 22;

/// Batches of groups, each about `BLOCK_CELLS` alignments (at least one group).
fn group_batches(n_groups: usize, total_cells: usize) -> Vec<Range<usize>> {
    let n_batches = (total_cells / BLOCK_CELLS).clamp(1, n_groups.max(1));
    let per = n_groups.div_ceil(n_batches).max(1);
    (0..n_groups).step_by(per).map(|s| s..(s + per).min(n_groups)).collect()
}

/// DP cells above which a computation runs beside a thread that watches for Ctrl-C (below,
/// it is over within milliseconds and the check after it is enough).
const WATCH_CELLS: u128 = 1 << 24;

/// How often a watched computation looks at Python's signals.
const WATCH_EVERY: Duration = Duration::from_millis(50);

/// Run `work` on `pool` with the GIL released. When it is long (`cells` DP cells or more), the
/// calling thread watches for Ctrl-C meanwhile and on a signal asks `work` to stop (through
/// the [`Stop`] it gets), then raises the signal's exception once `work` has returned.
fn compute<R, F>(py: Python<'_>, pool: &ThreadPool, cells: u128, work: F) -> PyResult<R>
where
    R: Send,
    F: FnOnce(&Stop) -> crate::Result<R> + Send,
{
    if cells < WATCH_CELLS {
        let out = py.detach(|| pool.install(|| work(&Stop::never())));
        py.check_signals()?;
        return out.map_err(to_py);
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
    out.map_err(to_py)
}

/// The block loop of every long call: run `step` over batches of groups on `pool` with the
/// GIL released (watched for Ctrl-C as in [`compute`] when a batch is long); between batches
/// check for Ctrl-C and call `progress(done, total)` (whose exceptions propagate).
/// `group_cells` estimates the DP cells of one group.
fn run_blocks<'py, F>(
    py: Python<'py>,
    pool: &ThreadPool,
    n_groups: usize,
    total_cells: usize,
    group_cells: u128,
    progress: Option<&Bound<'py, PyAny>>,
    mut step: F,
) -> PyResult<()>
where
    F: FnMut(Range<usize>, &Stop) -> crate::Result<()> + Send,
{
    for batch in group_batches(n_groups, total_cells) {
        let done = batch.end;
        let cells = group_cells.saturating_mul(batch.len() as u128);
        compute(py, pool, cells, |stop| step(batch, stop))?;
        if let Some(cb) = progress {
            cb.call1((done, n_groups))?;
        }
    }
    Ok(())
}

/// A `rows x cols` array, allocated fallibly (MemoryError naming the size).
fn new_array<T: mem::Zeroed + numpy::Element>(rows: usize, cols: usize) -> PyResult<Array2<T>> {
    let what = || format!("a {rows} x {cols} {} array", std::any::type_name::<T>());
    let v = mem::zeroed(rows as u128 * cols as u128, &what).map_err(to_py)?;
    Array2::from_shape_vec((rows, cols), v).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// DP cells of aligning every sequence of `rows` against every one of `cols`.
fn dp_cells(pop: &Population, rows: &Range<usize>, cols: &Range<usize>) -> u128 {
    let total = |r: &Range<usize>| r.clone().map(|i| pop.seq(i).len() as u128).sum::<u128>();
    total(rows) * total(cols)
}

/// The compiled schema (immutable) with the growing dictionary of the genes it has met.
#[pyclass(frozen, name = "ScoreTable", module = "pyevonas._core")]
struct PyScoreTable {
    inner: Arc<ScoreTable>,
    genes: Arc<GeneCache>,
}

#[pymethods]
impl PyScoreTable {
    #[new]
    #[pyo3(signature = (base, term_param, term_weight, term_norm, n_params, gap_open, gap_extend, lower_bound))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        base: PyReadonlyArray2<'_, f64>,
        term_param: PyReadonlyArray3<'_, i64>,
        term_weight: PyReadonlyArray3<'_, f64>,
        term_norm: PyReadonlyArray3<'_, f64>,
        n_params: usize,
        gap_open: f64,
        gap_extend: f64,
        lower_bound: &str,
    ) -> PyResult<Self> {
        let shape = base.shape();
        let t = shape[0];
        if shape[1] != t {
            return Err(SchemaError::new_err(
                "base scores must be a square (types x types) array",
            ));
        }
        let tp = term_param.as_array();
        let tw = term_weight.as_array();
        let tn = term_norm.as_array();
        if tp.shape() != tw.shape() || tp.shape() != tn.shape() || tp.shape()[0] != t || tp.shape()[1] != t {
            return Err(SchemaError::new_err(
                "term arrays must all have shape (types, types, max_terms)",
            ));
        }
        let k = tp.shape()[2];
        let mut rules = Vec::with_capacity(t * t);
        for x in 0..t {
            for y in 0..t {
                let mut terms = Vec::new();
                for c in 0..k {
                    let p = tp[[x, y, c]];
                    if p < 0 {
                        break;
                    }
                    terms.push(Term {
                        param: usize::try_from(p).unwrap_or(usize::MAX),
                        weight: tw[[x, y, c]],
                        norm: tn[[x, y, c]],
                    });
                }
                rules.push(terms);
            }
        }
        let lb = match lower_bound {
            "paper" => LowerBound::Paper,
            "all_gaps" => LowerBound::AllGaps,
            other => {
                return Err(SchemaError::new_err(format!(
                    "unknown lower bound {other:?} (expected 'paper' or 'all_gaps')"
                )))
            }
        };
        let base: Vec<f64> = base.as_array().iter().copied().collect();
        let table = ScoreTable::new(
            t,
            n_params,
            base,
            rules,
            Gaps {
                open: gap_open,
                extend: gap_extend,
            },
            lb,
        )
        .map_err(to_py)?;
        Ok(PyScoreTable {
            genes: Arc::new(GeneCache::new(&table)),
            inner: Arc::new(table),
        })
    }

    #[getter]
    fn n_types(&self) -> usize {
        self.inner.n_types()
    }
    #[getter]
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }
    #[getter]
    fn symmetric(&self) -> bool {
        self.inner.is_symmetric()
    }
    #[getter]
    fn gap_open(&self) -> f64 {
        self.inner.gaps().open
    }
    #[getter]
    fn gap_extend(&self) -> f64 {
        self.inner.gaps().extend
    }

    /// Match score of gene (ta, pa) against (tb, pb) as the alignment uses it.
    fn substitution(&self, ta: usize, pa: Vec<f64>, tb: usize, pb: Vec<f64>) -> PyResult<f64> {
        let t = &self.inner;
        if ta >= t.n_types() || tb >= t.n_types() || pa.len() != t.n_params() || pb.len() != t.n_params() {
            return Err(PyValueError::new_err("gene type or parameter row out of range"));
        }
        Ok(t.substitution(ta, &pa, tb, &pb))
    }
}

#[pyclass(frozen, name = "Population", module = "pyevonas._core")]
struct PyPopulation {
    pop: Arc<Population>,
    table: Arc<ScoreTable>,
}

impl PyPopulation {
    fn split_ranges(&self, split: Option<usize>) -> PyResult<(Range<usize>, Range<usize>)> {
        let n = self.pop.len();
        match split {
            None => Ok((0..n, 0..n)),
            Some(s) if s <= n => Ok((0..s, s..n)),
            Some(s) => Err(PyIndexError::new_err(format!(
                "split {s} is beyond the population ({n})"
            ))),
        }
    }

    fn matrix_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        split: Option<usize>,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = self.split_ranges(split)?;
        let pool = threads::pool(n_threads).map_err(to_py)?;
        let mut out = new_array::<T>(rows.len(), cols.len())?;
        let (pop, table) = (&*self.pop, &*self.table);
        let plan = matrix::Plan::new(pop, rows.clone());
        let group_cells = dp_cells(pop, &rows, &cols) / plan.n_groups().max(1) as u128;
        {
            let slice = out.as_slice_mut().expect("a fresh array is contiguous");
            let pairs = rows.len() * cols.len();
            let few = crate::small::takes_few_rows(pop, table, &rows, &cols);
            run_blocks(
                py,
                &pool,
                plan.n_groups(),
                pairs,
                group_cells,
                progress,
                |batch, stop| {
                    if few {
                        crate::small::fill_few(pop, table, rows.clone(), cols.clone(), &mut *slice, stop)
                    } else {
                        matrix::fill_matrix(pop, table, &plan, batch, rows.clone(), cols.clone(), &mut *slice, stop)
                    }
                },
            )?;
            if split.is_none() && table.is_symmetric() {
                let n = rows.len();
                py.detach(|| pool.install(|| matrix::mirror_missing(&plan, n, slice)));
            }
        }
        Ok(out.into_pyarray(py).into_any())
    }

    fn condensed_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.table.is_symmetric() {
            return Err(PyValueError::new_err(
                "a condensed (upper-triangle) matrix needs a symmetric scoring schema; this one is directed",
            ));
        }
        let n = self.pop.len();
        let pool = threads::pool(n_threads).map_err(to_py)?;
        let len = n as u128 * n.saturating_sub(1) as u128 / 2;
        let what = || {
            format!(
                "a condensed matrix of {n} architectures ({len} {})",
                std::any::type_name::<T>()
            )
        };
        let mut out = Array1::from(mem::zeroed::<T>(len, &what).map_err(to_py)?);
        let (pop, table) = (&*self.pop, &*self.table);
        let plan = matrix::Plan::new(pop, 0..n);
        let group_cells = dp_cells(pop, &(0..n), &(0..n)) / plan.n_groups().max(1) as u128;
        {
            let slice = out.as_slice_mut().expect("a fresh array is contiguous");
            run_blocks(
                py,
                &pool,
                plan.n_groups(),
                n * n / 2,
                group_cells,
                progress,
                |batch, stop| matrix::fill_condensed(pop, table, &plan, batch, &mut *slice, stop),
            )?;
        }
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
        let codes: Vec<u32> = codes.as_array().iter().copied().collect();
        let pshape = params.shape().to_vec();
        if pshape[1] != table.n_params() || pshape[0] != codes.len() {
            return Err(to_py(Error::ParamShape {
                rows: pshape[0],
                cols: pshape[1],
                expected_rows: codes.len(),
                expected_cols: table.n_params(),
            }));
        }
        let params: Vec<f64> = params.as_array().iter().copied().collect();
        let mut offs = Vec::with_capacity(offsets.len());
        for &o in offsets.as_array() {
            offs.push(usize::try_from(o).map_err(|_| to_py(Error::Offsets(format!("negative offset {o}"))))?);
        }
        let pool = threads::pool(None).map_err(to_py)?;
        let t = &*table;
        // The self-alignments are the long part: sum of the squared lengths.
        let cells = offs
            .windows(2)
            .map(|w| (w[1].saturating_sub(w[0]) as u128).pow(2))
            .sum();
        let pop = compute(py, &pool, cells, |stop| {
            Population::with_cache(t, &genes, &codes, &params, &offs, stop)
        })?;
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
        let (rows, cols) = self.split_ranges(split)?;
        let pool = threads::pool(n_threads).map_err(to_py)?;
        let mut out = new_array::<f64>(rows.len(), cols.len())?;
        {
            let slice = out.as_slice_mut().expect("a fresh array is contiguous");
            let (pop, table) = (&*self.pop, &*self.table);
            let cells = dp_cells(pop, &rows, &cols);
            compute(py, &pool, cells, |stop| {
                matrix::fill_scores(pop, table, rows, cols, slice, stop)
            })?;
        }
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
        let (rows, cols) = self.split_ranges(split)?;
        let exclude_self = split.is_none();
        let candidates = if exclude_self {
            cols.len().saturating_sub(1)
        } else {
            cols.len()
        };
        let k = k.min(candidates);
        let pool = threads::pool(n_threads).map_err(to_py)?;
        let mut idx = new_array::<i64>(rows.len(), k)?;
        let mut sim = new_array::<f64>(rows.len(), k)?;
        let (pop, table) = (&*self.pop, &*self.table);
        let plan = matrix::Plan::new(pop, rows.clone());
        let group_cells = dp_cells(pop, &rows, &cols) / plan.n_groups().max(1) as u128;
        {
            let is = idx.as_slice_mut().expect("contiguous");
            let ss = sim.as_slice_mut().expect("contiguous");
            let pairs = rows.len() * cols.len();
            // (A few rows against other columns: never with exclude_self, rows and columns
            // being the same there.)
            let few = !exclude_self && crate::small::takes_few_rows(pop, table, &rows, &cols);
            run_blocks(
                py,
                &pool,
                plan.n_groups(),
                pairs,
                group_cells,
                progress,
                |batch, stop| {
                    let (rows, cols) = (rows.clone(), cols.clone());
                    if few {
                        return crate::small::nearest_few(pop, table, rows, cols, k, &mut *is, &mut *ss, stop);
                    }
                    matrix::fill_nearest(
                        pop,
                        table,
                        &plan,
                        batch,
                        rows,
                        cols,
                        k,
                        exclude_self,
                        &mut *is,
                        &mut *ss,
                        stop,
                    )
                },
            )?;
        }
        Ok((idx.into_pyarray(py).into_any(), sim.into_pyarray(py).into_any()))
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
        let pool = threads::pool(None).map_err(to_py)?;
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

/// One way to encode a layer name: its type code, the conditions on other keys, and the
/// parameters that count with their columns. Keys are slots of the encoder's [`Keys`].
struct LayerChoice {
    code: u32,
    when: Vec<(usize, Py<PyAny>)>,
    params: Vec<(usize, usize)>,
}

/// Layer names and the gene types each can be (see [`NameIndex`]).
struct LayerMap {
    index: NameIndex,
    entries: Vec<(String, Vec<LayerChoice>)>,
}

impl LayerMap {
    fn new(entries: Vec<(String, Vec<LayerChoice>)>) -> Self {
        let index = NameIndex::new(entries.iter().map(|(name, _)| name.as_bytes().into()));
        LayerMap { index, entries }
    }

    fn get(&self, name: &[u8]) -> Option<&[LayerChoice]> {
        Some(&self.entries[self.index.get(name)?].1)
    }
}

/// Layer dicts between two looks at a dict's own key objects.
const RELEARN_EVERY: u32 = 32;

/// The key objects the encoder looks layer values up with: one per key it reads (`layer`,
/// every `when` key, every counted parameter), by slot.
///
/// A dict finds a key fastest when it is given the very object it stores (an address
/// comparison; an equal string at another address costs a hash check and a string compare).
/// Chromosomes loaded from JSON share their key objects (the decoder keeps one string per
/// distinct key), and dicts written in Python source share interned ones, so every
/// `RELEARN_EVERY`-th dict the encoder reads its items and from then on looks up with the key
/// objects found there. Any key object equal to the name finds the same value, so this only
/// changes the speed of a lookup, never its answer.
struct Keys {
    objects: Vec<Py<PyString>>,
    by_name: rustc_hash::FxHashMap<String, usize>,
    countdown: u32,
}

impl Keys {
    /// Every `RELEARN_EVERY`-th dict: take the dict's own key objects for the keys it has.
    fn learn(&mut self, layer: &Bound<'_, PyDict>) {
        if self.countdown > 0 {
            self.countdown -= 1;
            return;
        }
        self.countdown = RELEARN_EVERY - 1;
        for key in layer.keys() {
            let Ok(k) = key.cast_exact::<PyString>() else { continue };
            let Some(&slot) = k.to_str().ok().and_then(|name| self.by_name.get(name)) else {
                continue;
            };
            self.objects[slot] = k.clone().unbind();
        }
    }
}

/// The fast encoder of plain chromosomes (lists of dicts): what `encode.py`'s validating path
/// does, without building Gene objects. Anything unusual makes it give up (returns None) and
/// the Python path takes over, so errors are always the validating path's precise messages.
#[pyclass(frozen, name = "Encoder", module = "pyevonas._core")]
struct PyEncoder {
    ignore: Vec<String>,
    layers: LayerMap,
    n_params: usize,
    /// Touched only with the GIL held (so never contended); a lock because the class is frozen.
    keys: std::sync::Mutex<Keys>,
    /// The first table `covers` answered for, with the answer (held: its address stays its
    /// own). An encoder serves one table; another is answered afresh each time.
    covered: std::sync::OnceLock<(Arc<ScoreTable>, bool)>,
}

/// Slot of the `layer` key.
const LAYER_SLOT: usize = 0;

#[pymethods]
impl PyEncoder {
    #[new]
    fn new(
        py: Python<'_>,
        ignore: Vec<String>,
        layers: Vec<(String, Vec<LayerChoiceSpec>)>,
        n_params: usize,
    ) -> PyResult<Self> {
        for (name, choices) in &layers {
            for (_, _, params) in choices {
                if let Some((p, col)) = params.iter().find(|(_, col)| *col >= n_params) {
                    return Err(PyValueError::new_err(format!(
                        "layer {name:?}: parameter {p:?} has column {col}, but there are {n_params} columns"
                    )));
                }
            }
        }
        let mut names = vec!["layer".to_owned()];
        let mut by_name = rustc_hash::FxHashMap::default();
        by_name.insert("layer".to_owned(), LAYER_SLOT);
        let mut slot = |k: String| {
            let n = by_name.len();
            *by_name.entry(k.clone()).or_insert_with(|| {
                names.push(k);
                n
            })
        };
        let layers = layers
            .into_iter()
            .map(|(name, choices)| {
                let choices = choices
                    .into_iter()
                    .map(|(code, when, params)| LayerChoice {
                        code,
                        when: when.into_iter().map(|(k, v)| (slot(k), v)).collect(),
                        params: params.into_iter().map(|(k, c)| (slot(k), c)).collect(),
                    })
                    .collect();
                (name, choices)
            })
            .collect::<Vec<_>>();
        let layers = LayerMap::new(layers);
        let objects = names.iter().map(|k| PyString::intern(py, k).unbind()).collect();
        Ok(PyEncoder {
            ignore,
            layers,
            n_params,
            keys: std::sync::Mutex::new(Keys {
                objects,
                by_name,
                countdown: 0,
            }),
            covered: std::sync::OnceLock::new(),
        })
    }

    /// (codes, params, offsets) for a list of chromosomes, or None if any needs the slow path.
    fn encode<'py>(&self, py: Python<'py>, archs: &Bound<'py, PyAny>) -> PyResult<Option<Encoded<'py>>> {
        let Some(parts) = self.encode_parts(archs)? else {
            return Ok(None);
        };
        parts.into_arrays(py, self.n_params).map(Some)
    }
}

/// Plain chromosomes encoded: codes, parameter rows (`n_params` per gene) and offsets.
struct Parts {
    codes: Vec<u32>,
    params: Vec<f64>,
    offsets: Vec<usize>,
}

impl Parts {
    /// As the (codes uint32, params float64 2-D, offsets int64) arrays Python gets.
    fn into_arrays(self, py: Python<'_>, n_params: usize) -> PyResult<Encoded<'_>> {
        let n = self.codes.len();
        let params =
            Array2::from_shape_vec((n, n_params), self.params).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let offsets: Vec<i64> = self.offsets.iter().map(|&o| o as i64).collect();
        Ok((
            Array1::from(self.codes).into_pyarray(py).into_any(),
            params.into_pyarray(py).into_any(),
            Array1::from(offsets).into_pyarray(py).into_any(),
        ))
    }
}

impl PyEncoder {
    /// A list of plain chromosomes encoded, or None if any needs the slow path.
    fn encode_parts(&self, archs: &Bound<'_, PyAny>) -> PyResult<Option<Parts>> {
        let Ok(archs) = archs.cast::<PyList>() else {
            return Ok(None);
        };
        let mut codes: Vec<u32> = Vec::new();
        let mut params: Vec<f64> = Vec::new();
        let mut offsets: Vec<usize> = Vec::with_capacity(archs.len() + 1);
        offsets.push(0);
        let mut keys = self.keys();
        for arch in archs.iter() {
            if !self.encode_one(&mut keys, &arch, &mut codes, &mut params)? {
                return Ok(None);
            }
            offsets.push(codes.len());
        }
        Ok(Some(Parts { codes, params, offsets }))
    }

    /// The key objects, for one call (the GIL is held, so the lock is never contended).
    fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when every sequence this encoder produces passes [`crate::pair::check`] under
    /// `table`: the same number of columns, known type codes, and every column a rule of a
    /// gene's type reads among the columns the encoder fills (with finite values) for it.
    /// Then the per-call path need not check its input again. Remembered per table.
    fn covers(&self, table: &Arc<ScoreTable>) -> bool {
        let (t, answer) = self.covered.get_or_init(|| (table.clone(), self.covers_afresh(table)));
        if Arc::ptr_eq(t, table) {
            *answer
        } else {
            self.covers_afresh(table)
        }
    }

    fn covers_afresh(&self, table: &ScoreTable) -> bool {
        let used = table.used_params_by_type();
        self.n_params == table.n_params()
            && self.layers.entries.iter().flat_map(|(_, choices)| choices).all(|ch| {
                used.get(ch.code as usize)
                    .is_some_and(|cols| cols.iter().all(|c| ch.params.iter().any(|&(_, col)| col == *c)))
            })
    }

    /// Append one plain chromosome's genes to `codes` and `params`; false (leaving the
    /// buffers in an unspecified state) when it needs the validating Python path.
    fn encode_one(
        &self,
        keys: &mut Keys,
        arch: &Bound<'_, PyAny>,
        codes: &mut Vec<u32>,
        params: &mut Vec<f64>,
    ) -> PyResult<bool> {
        let Ok(arch) = arch.cast::<PyList>() else {
            return Ok(false);
        };
        let py = arch.py();
        let before = codes.len();
        for layer in arch.iter() {
            // The exact type first: a pointer comparison, where the subclass check is a call
            // into the interpreter under the stable ABI.
            let Ok(layer) = layer.cast_exact::<PyDict>().or_else(|_| layer.cast::<PyDict>()) else {
                return Ok(false);
            };
            keys.learn(layer);
            let key = |slot: usize| keys.objects[slot].bind(py);
            let Some(name) = value(layer, key(LAYER_SLOT))? else {
                return Ok(false);
            };
            let Ok(name) = name.cast_exact::<PyString>().or_else(|_| name.cast::<PyString>()) else {
                return Ok(false);
            };
            let Ok(name) = name.to_str() else {
                return Ok(false);
            };
            // A schema never lists a gene's layer among the ignored ones, so the (common) gene
            // lookup goes first.
            let Some(choices) = self.layers.get(name.as_bytes()) else {
                if self.ignore.iter().any(|x| x == name) {
                    continue;
                }
                return Ok(false);
            };
            let mut chosen = None;
            'choice: for ch in choices {
                for (slot, want) in &ch.when {
                    let Some(x) = value(layer, key(*slot))? else {
                        continue 'choice;
                    };
                    match same(x, want.bind(py))? {
                        Some(true) => {}
                        Some(false) => continue 'choice,
                        None => return Ok(false),
                    }
                }
                chosen = Some(ch);
                break;
            }
            let Some(ch) = chosen else { return Ok(false) };
            let row = params.len();
            params.resize(row + self.n_params, f64::NAN);
            for &(slot, col) in &ch.params {
                let Some(v) = value(layer, key(slot))? else {
                    return Ok(false);
                };
                // Exactly int or float (not bool, not str), and finite.
                let x = if let Ok(f) = v.cast_exact::<PyFloat>() {
                    f.value()
                } else if v.is_exact_instance_of::<PyInt>() {
                    // Through i64 (`as f64` rounds to nearest, as int.__float__ does) rather
                    // than float(): that would make a float object per value.
                    match v.extract::<i64>() {
                        Ok(i) => i as f64,
                        Err(_) => match v.extract::<f64>() {
                            Ok(x) => x,
                            Err(_) => return Ok(false),
                        },
                    }
                } else {
                    return Ok(false);
                };
                if !x.is_finite() {
                    return Ok(false);
                }
                params[row + col] = x;
            }
            codes.push(ch.code);
        }
        Ok(codes.len() > before)
    }
}

/// `layer[key]` without a reference of its own (None when absent).
///
/// Taking and dropping a reference per value read costs two calls into the interpreter under
/// the stable ABI, a tenth of the encoder's time. The dict holds the value for as long as no
/// Python code runs that could change the dict; the encoder runs none (casts, `str` and number
/// reads, `==` of built-in scalars; see `same`).
fn value<'a, 'py>(
    layer: &'a Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Borrowed<'a, 'py, PyAny>>> {
    let py = layer.py();
    // SAFETY: both pointers are live objects (held by the caller); the result is a borrowed
    // reference or null.
    let ptr = unsafe { pyo3::ffi::PyDict_GetItemWithError(layer.as_ptr(), key.as_ptr()) };
    if ptr.is_null() {
        return PyErr::take(py).map_or(Ok(None), Err);
    }
    // SAFETY: non-null, owned by `layer` (which outlives 'a), used as argued above.
    Ok(Some(unsafe { Borrowed::from_ptr(py, ptr) }))
}

/// A `when` condition's test, `bool(x == want)` as the validating path has it, for values of the
/// built-in scalar types (`str`, `int`, `float`, `bool`, `None`: two exact strings compared
/// here, the others by the interpreter, which runs no Python code for them); None for any other
/// value, which the validating path then compares. The fast encoder never runs Python code:
/// it holds its key objects' lock, and a borrowed value, throughout.
fn same(x: Borrowed<'_, '_, PyAny>, want: &Bound<'_, PyAny>) -> PyResult<Option<bool>> {
    if let (Ok(a), Ok(b)) = (x.cast_exact::<PyString>(), want.cast_exact::<PyString>()) {
        if let (Ok(a), Ok(b)) = (a.to_str(), b.to_str()) {
            return Ok(Some(eq_bytes(a.as_bytes(), b.as_bytes())));
        }
    }
    let scalar = |o: &Bound<'_, PyAny>| {
        o.is_none()
            || o.is_exact_instance_of::<PyString>()
            || o.is_exact_instance_of::<PyInt>()
            || o.is_exact_instance_of::<PyFloat>()
            || o.is_exact_instance_of::<pyo3::types::PyBool>()
    };
    if scalar(&x) && scalar(want) {
        return x.eq(want).map(Some);
    }
    Ok(None)
}

/// Threads the default pool uses (`PYEVONAS_NUM_THREADS` or the machine's parallelism);
/// ValueError naming the variable when its value is not a usable thread count.
#[pyfunction]
fn default_threads() -> PyResult<usize> {
    threads::default_threads().map_err(to_py)
}

/// Most threads one call may use (`n_threads` or `PYEVONAS_NUM_THREADS` above it are refused).
#[pyfunction]
fn max_threads() -> usize {
    threads::max_threads()
}

// --- Library use: one pair, small work on the calling thread, an archive -------------------
// (pair.rs, local.rs and archive.rs hold the pure-Rust side of these.)

/// DP cells (genes of the rows times genes of the columns) up to which a computation runs on
/// the calling thread with the GIL held: about a tenth of a millisecond of work, less than
/// waking a pool and releasing the GIL cost.
const SMALL_CELLS: u64 = 1 << 18;

/// Genes up to which a population is built on the calling thread.
const SMALL_GENES: usize = 4096;

/// Refuse a thread count (argument or `PYEVONAS_NUM_THREADS`) that a pool would refuse, also
/// where the work is small enough to need no pool: the same call fails the same way at any size.
fn check_n_threads(n_threads: Option<usize>) -> PyResult<()> {
    match n_threads {
        Some(n) => threads::check_threads(n, "n_threads").map(drop).map_err(to_py),
        None => threads::default_threads().map(drop).map_err(to_py),
    }
}

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
        let shape = p.shape();
        if shape[0] != c.len() || shape[1] != table.n_params() {
            return Err(to_py(Error::ParamShape {
                rows: shape[0],
                cols: shape[1],
                expected_rows: c.len(),
                expected_cols: table.n_params(),
            }));
        }
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

/// DP cells of a pair with its two self-alignments.
fn pair_cells(((ca, _), (cb, _)): &Sides) -> u64 {
    let (m, n) = (ca.len() as u64, cb.len() as u64);
    m * m + n * n + m * n
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
    let pool = threads::pool(None).map_err(to_py)?;
    let cells = (m as u128).pow(2) + (n as u128).pow(2);
    let pop = compute(py, &pool, cells, |stop| {
        Population::with_cache(t, genes, &codes, &params, &offsets, stop)
    })?;
    compute(py, &pool, 2 * m as u128 * n as u128, |stop| work(&pop, stop))
}

/// Flat (i, j) per column, -1 on the side of a gap: small ints, no tuple per column.
fn flat_pairs(ops: &[Op]) -> Vec<i64> {
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
/// `SMALL_CELLS` DP cells runs on the calling thread (no population, no pool); a longer one
/// on the population path.
#[pyfunction]
fn pair_similarity(
    py: Python<'_>,
    table: &Bound<'_, PyScoreTable>,
    encoder: &Bound<'_, PyEncoder>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<Option<f64>> {
    pair_similarity_of(py, table.get(), encoder.get(), a, b)
}

fn pair_similarity_of(
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
        if pair_cells(sides) > SMALL_CELLS {
            let sim = pair_on_pool(py, table, std::mem::take(sides), |pop, stop| {
                let s = pop.similarity(t, 0, 1, &mut Aligner::with_stop(stop.clone()));
                stop.check().map(|()| s)
            })?;
            return Ok(Some(sim));
        }
        let (sa, sb) = pair_seqs(sides);
        PAIR.with(|s| {
            let mut s = s.borrow_mut();
            if checked {
                Ok(s.similarity_of_checked(t, sa, sb))
            } else {
                s.similarity(t, sa, sb)
            }
        })
        .map(Some)
        .map_err(to_py)
    })
}

// --- `pyevonas.similarity` itself ----------------------------------------------------------
// The per-call entry point is this function, not a Python one: a Python function's frame and
// its lookups cost a tenth of a whole similarity. It finds the schema's compiled pair path
// (its "kit") without Python for a built-in name and for the last few other schema objects
// it met (a Scoring, by identity: a Scoring is frozen), computes the pair when both are plain
// chromosomes, and hands everything else to the Python implementation (text notation, odd
// values, paths, dicts, errors), which pyevonas.metric.api installs at import.

/// A compiled schema's table and fast encoder, as `similarity` finds them.
#[pyclass(frozen, name = "PairKit", module = "pyevonas._core")]
struct PyPairKit {
    table: Py<PyScoreTable>,
    encoder: Py<PyEncoder>,
}

#[pymethods]
impl PyPairKit {
    #[new]
    fn new(table: Py<PyScoreTable>, encoder: Py<PyEncoder>) -> Self {
        PyPairKit { table, encoder }
    }
}

/// Schema objects `similarity` remembers by identity (each held, so its address stays its own).
const RECENT_SCHEMAS: usize = 8;

/// What `similarity` was given by `install_similarity`.
struct Front {
    /// Built-in name -> PairKit, filled by Python as each name is compiled.
    named: Py<PyDict>,
    /// The Python implementation: `slow(a, b, schema)`.
    slow: Py<PyAny>,
    /// The key `"default"`.
    default: Py<PyString>,
    /// Other schema objects met lately (most recent last), with their kits.
    recent: std::sync::Mutex<Vec<(Py<PyAny>, Py<PyPairKit>)>>,
    /// Schema files compiled lately, by identity and version (most recent last).
    files: std::sync::Mutex<Vec<(FileKey, Py<PyPairKit>)>>,
}

/// A file's identity and version, as Python's `os.stat` gives them: (device, inode,
/// modification time in ns, size). A new or edited file has another key.
type FileKey = (u64, u64, i128, u64);

/// Schema files `similarity` remembers.
const RECENT_FILES: usize = 32;

/// The key of the file at `path` now (None when it cannot be read).
fn file_key(path: &std::path::Path) -> Option<FileKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let mtime_ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        Some((m.dev(), m.ino(), mtime_ns, m.size()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The kit of a schema file `similarity` met before, if the file is still that version: one
/// `stat` (what Python pays for it too, without building a stat result object).
fn file_kit<'py>(front: &Front, schema: &Bound<'py, PyAny>) -> Option<Bound<'py, PyPairKit>> {
    let lock = || front.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if lock().is_empty() {
        return None;
    }
    // The path first, without the lock: `__fspath__` is Python code, during which another
    // thread may take the GIL and come here.
    let path: std::path::PathBuf = if let Ok(s) = schema.cast_exact::<PyString>() {
        s.to_str().ok()?.into()
    } else if schema.get_type().hasattr("__fspath__").unwrap_or(false) {
        schema.extract().ok()?
    } else {
        return None;
    };
    let key = file_key(&path)?;
    lock()
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, kit)| kit.bind(schema.py()).clone())
}

/// Remember the kit compiled from the schema file whose `os.stat` gave `key` (device, inode,
/// modification time in ns, size).
#[pyfunction]
fn remember_file(key: FileKey, kit: Py<PyPairKit>) {
    let Some(front) = FRONT.get() else { return };
    let mut files = front.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if files.iter().any(|(k, _)| *k == key) {
        return;
    }
    let oldest = (files.len() >= RECENT_FILES).then(|| files.remove(0));
    files.push((key, kit));
    drop(files);
    drop(oldest); // outside the lock: dropping a reference may run Python code
}

static FRONT: std::sync::OnceLock<Front> = std::sync::OnceLock::new();

/// Install `similarity`'s Python side: the dict of built-in names' kits (kept and read as it
/// fills) and the Python implementation for everything else. The first install stays (a
/// module reloaded, as an autoreloading notebook does, installs again: the first module's
/// dict and function still give the same results).
#[pyfunction]
fn install_similarity(py: Python<'_>, named: Py<PyDict>, slow: Py<PyAny>) {
    let front = Front {
        named,
        slow,
        default: PyString::intern(py, "default").unbind(),
        recent: std::sync::Mutex::new(Vec::new()),
        files: std::sync::Mutex::new(Vec::new()),
    };
    // Already installed: keep the first (dropping `front` here only drops references).
    let _ = FRONT.set(front);
}

/// Remember `schema` (a Scoring) with its kit, for `similarity` to find by identity.
#[pyfunction]
fn remember_schema(py: Python<'_>, schema: Py<PyAny>, kit: Py<PyPairKit>) {
    let Some(front) = FRONT.get() else { return };
    let mut recent = front.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if recent.iter().any(|(s, _)| s.is(&schema)) {
        return;
    }
    let oldest = (recent.len() >= RECENT_SCHEMAS).then(|| recent.remove(0));
    recent.push((schema.clone_ref(py), kit));
    drop(recent);
    drop(oldest); // outside the lock: dropping a reference may run Python code
}

/// `similarity`'s schema argument: left out (the default schema), or given (anything, `None`
/// included: the Python implementation refuses what is not a schema, as everywhere else).
enum SchemaArg<'py> {
    Default,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for SchemaArg<'py> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(SchemaArg::Given(obj.to_owned()))
    }
}

/// Similarity of two architectures, in [0, 1] (1 for identical sequences).
///
/// Args:
///     a: the first architecture (sequence A): a chromosome (list of layer dicts) or text notation.
///     b: the second architecture (sequence B).
///     schema: ``"default"``, ``"paper"``, a path to a scoring-schema file, or a Scoring.
///
/// Example:
///     >>> similarity("C(32,3,1) B L g F(64)", "C(64,3,1) B g F(64)")  # doctest: +ELLIPSIS
///     0.8...
#[pyfunction]
#[pyo3(signature = (a, b, schema = SchemaArg::Default), text_signature = "(a, b, schema='default')")]
fn similarity<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    schema: SchemaArg<'py>,
) -> PyResult<f64> {
    let front = FRONT
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("pyevonas.metric.api was not imported"))?;
    let schema = match schema {
        SchemaArg::Default => None,
        SchemaArg::Given(s) => Some(s),
    };
    let schema = schema.as_ref();
    let kit: Option<Bound<'_, PyPairKit>> = match schema {
        None => front
            .named
            .bind(py)
            .get_item(front.default.bind(py))?
            .and_then(|k| k.cast_into().ok()),
        Some(s) if s.is_exact_instance_of::<PyString>() => {
            match front.named.bind(py).get_item(s)?.and_then(|k| k.cast_into().ok()) {
                Some(kit) => Some(kit),
                None => file_kit(front, s),
            }
        }
        Some(s) => {
            let known = front
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(x, _)| x.is(s))
                .map(|(_, k)| k.bind(py).clone());
            known.or_else(|| file_kit(front, s))
        }
    };
    if let Some(kit) = kit {
        let kit = kit.get();
        if let Some(sim) = pair_similarity_of(py, kit.table.get(), kit.encoder.get(), a, b)? {
            return Ok(sim);
        }
    }
    let schema = schema.map_or_else(|| front.default.bind(py).clone().into_any(), Clone::clone);
    front.slow.bind(py).call1((a, b, schema))?.extract()
}

/// Traced alignment of `a` (as A) against `b` (as B): (pairs flattened, `[i0, j0, i1, j1, ...]`
/// with -1 on the side of a gap, column scores, raw score, similarity); None when a chromosome
/// needs the validating Python path. Small pairs on the calling thread, as `pair_similarity`.
#[pyfunction]
fn pair_align(
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
        if pair_cells(sides) > SMALL_CELLS {
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
        let (al, sim) = PAIR.with(|s| s.borrow_mut().align(t, sa, sb)).map_err(to_py)?;
        Ok(Some((flat_pairs(&al.ops), al.column_scores, al.score, sim)))
    })
}

/// Encoded arrays as owned vectors, checked as `Population(...)` checks them.
fn encoded_parts(
    table: &ScoreTable,
    codes: &PyReadonlyArray1<'_, u32>,
    params: &PyReadonlyArray2<'_, f64>,
    offsets: &PyReadonlyArray1<'_, i64>,
) -> PyResult<(Vec<u32>, Vec<f64>, Vec<usize>)> {
    let codes: Vec<u32> = codes.as_array().iter().copied().collect();
    let pshape = params.shape();
    if pshape[1] != table.n_params() || pshape[0] != codes.len() {
        return Err(to_py(Error::ParamShape {
            rows: pshape[0],
            cols: pshape[1],
            expected_rows: codes.len(),
            expected_cols: table.n_params(),
        }));
    }
    let params: Vec<f64> = params.as_array().iter().copied().collect();
    let offsets = offsets
        .as_array()
        .iter()
        .map(|&o| usize::try_from(o).map_err(|_| to_py(Error::Offsets(format!("negative offset {o}")))))
        .collect::<PyResult<Vec<usize>>>()?;
    Ok((codes, params, offsets))
}

/// A population of encoded arrays over the table's gene cache: small ones on the calling
/// thread, others on the pool (as `Population(...)` builds them).
fn build_population(
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

/// `build_population` of encoded vectors.
fn population_of(
    py: Python<'_>,
    t: &ScoreTable,
    genes: &GeneCache,
    c: &[u32],
    p: &[f64],
    o: &[usize],
) -> PyResult<Population> {
    if c.len() <= SMALL_GENES {
        check_n_threads(None)?;
        crate::local::run_here(|| Population::with_cache(t, genes, c, p, o, &Stop::never()))
            .map_err(to_py)?
            .map_err(to_py)
    } else {
        let pool = threads::pool(None).map_err(to_py)?;
        let cells = o.windows(2).map(|w| ((w[1] - w[0]) as u128).pow(2)).sum();
        compute(py, &pool, cells, |stop| Population::with_cache(t, genes, c, p, o, stop))
    }
}

/// Genes of sequences `range` of `pop`.
fn genes_of(pop: &Population, range: Range<usize>) -> u64 {
    range.map(|i| pop.seq(i).len() as u64).sum()
}

/// Run `step` over `n_groups` groups: small work (`cells` DP cells at most `SMALL_CELLS`) at
/// once on the calling thread with the GIL held; larger work through [`run_blocks`] (the pool
/// for `n_threads`, the GIL released, Ctrl-C and progress between batches).
#[allow(clippy::too_many_arguments)]
fn run_sized<'py, F>(
    py: Python<'py>,
    n_threads: Option<usize>,
    n_groups: usize,
    total_pairs: usize,
    cells: u64,
    progress: Option<&Bound<'py, PyAny>>,
    mut step: F,
) -> PyResult<()>
where
    F: FnMut(Range<usize>, &Stop) -> crate::Result<()> + Send,
{
    if cells <= SMALL_CELLS {
        check_n_threads(n_threads)?;
        crate::local::run_here(|| step(0..n_groups, &Stop::never()))
            .map_err(to_py)?
            .map_err(to_py)?;
        if let Some(cb) = progress {
            cb.call1((n_groups, n_groups))?;
        }
        return Ok(());
    }
    let pool = threads::pool(n_threads).map_err(to_py)?;
    let group_cells = u128::from(cells) / n_groups.max(1) as u128;
    run_blocks(py, &pool, n_groups, total_pairs, group_cells, progress, step)
}

fn matrix_here_typed<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    pop: &Population,
    table: &ScoreTable,
    split: Option<usize>,
    condensed: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let n = pop.len();
    if condensed {
        if !table.is_symmetric() {
            return Err(PyValueError::new_err(
                "a condensed (upper-triangle) matrix needs a symmetric scoring schema; this one is directed",
            ));
        }
        let mut full = vec![0.0f64; n * n];
        crate::small::fill_small(pop, table, 0..n, 0..n, &mut full).map_err(to_py)?;
        let upper = (0..n).flat_map(|i| full[i * n + i + 1..(i + 1) * n].iter().map(|&v| T::from_f64(v)));
        return Ok(Array1::from_iter(upper).into_pyarray(py).into_any());
    }
    let (rows, cols) = match split {
        None => (0..n, 0..n),
        Some(s) if s <= n => (0..s, s..n),
        Some(s) => {
            return Err(PyIndexError::new_err(format!(
                "split {s} is beyond the population ({n})"
            )))
        }
    };
    let mut out = new_array::<T>(rows.len(), cols.len())?;
    let slice = out.as_slice_mut().expect("a fresh array is contiguous");
    crate::small::fill_small(pop, table, rows, cols, slice).map_err(to_py)?;
    Ok(out.into_pyarray(py).into_any())
}

/// `Population(table, codes, params, offsets).matrix(split, float32)` (or `.condensed`),
/// computed entirely on the calling thread with the GIL held: for small work, where a pool
/// costs more than the alignments. Same values, bit for bit. `n_threads` is only checked (a
/// count the pool would refuse is refused here too).
#[pyfunction]
#[pyo3(signature = (table, codes, params, offsets, split=None, float32=false, condensed=false, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn matrix_here<'py>(
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
    let t = &*table.get().inner;
    let (c, p, o) = encoded_parts(t, &codes, &params, &offsets)?;
    small_matrix(py, table.get(), &c, &p, &o, split, float32, condensed, n_threads)
}

/// `matrix_here` of encoded vectors.
#[allow(clippy::too_many_arguments)]
fn small_matrix<'py>(
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
    let t = &*table.inner;
    let genes = &*table.genes;
    let pop = crate::local::run_here(|| {
        let mut pop = Population::with_cache_unscored(t, genes, c, p, o)?;
        // A symmetric square matrix on the lane path aligns every sequence with itself anyway.
        let diagonal_aligned =
            split.is_none() && t.is_symmetric() && t.gaps().is_linear() && pop.dense_table().is_some();
        if !diagonal_aligned {
            pop.score_selves(t, &Stop::never())?;
        }
        Ok::<_, Error>(pop)
    })
    .map_err(to_py)?
    .map_err(to_py)?;
    if float32 {
        matrix_here_typed::<f32>(py, &pop, t, split, condensed)
    } else {
        matrix_here_typed::<f64>(py, &pop, t, split, condensed)
    }
}

/// `similarity_matrix` of a list of plain chromosomes (`split`: where the columns' `others`
/// start) in one call: encoded here, and when the work is small (`SMALL_CELLS`) computed here
/// too, as `matrix_here` does. Returns the matrix; or, for larger work, the encoded
/// (codes, params, offsets) arrays for the pool path; or None when a chromosome needs the
/// validating Python path.
#[pyfunction]
#[pyo3(signature = (table, encoder, archs, split=None, float32=false, condensed=false, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn plain_matrix<'py>(
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
    if rows * cols <= SMALL_CELLS {
        let (c, p, o) = (&parts.codes, &parts.params, &parts.offsets);
        return small_matrix(py, table.get(), c, p, o, split, float32, condensed, n_threads).map(Some);
    }
    let (c, p, o) = parts.into_arrays(py, encoder.get().n_params)?;
    Ok(Some(pyo3::types::PyTuple::new(py, [c, p, o])?.into_any()))
}

/// An archive of encoded members that grows by appending (see archive.rs): queries are rows,
/// members columns, and every value is the cell `similarity_matrix` computes.
#[pyclass(frozen, name = "Archive", module = "pyevonas._core")]
struct PyArchive {
    table: Arc<ScoreTable>,
    genes: Arc<GeneCache>,
    inner: std::sync::RwLock<Arc<crate::archive::Archive>>,
}

impl PyArchive {
    fn snapshot(&self) -> Arc<crate::archive::Archive> {
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

    /// The members with `queries` appended, and the DP cells of all queries against all members.
    fn joined(
        &self,
        py: Python<'_>,
        codes: &PyReadonlyArray1<'_, u32>,
        params: &PyReadonlyArray2<'_, f64>,
        offsets: &PyReadonlyArray1<'_, i64>,
    ) -> PyResult<(crate::archive::Joined, u64)> {
        let t = &*self.table;
        let queries = build_population(py, t, &self.genes, codes, params, offsets)?;
        let ar = self.snapshot();
        let joined = ar.join(t, &queries);
        let cells = genes_of(&joined.pop, joined.queries.clone()) * ar.n_genes() as u64;
        Ok((joined, cells))
    }

    fn matrix_typed<'py, T: Element + numpy::Element>(
        &self,
        py: Python<'py>,
        (joined, cells): (crate::archive::Joined, u64),
        n_threads: Option<usize>,
        progress: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rows, cols) = (joined.queries.clone(), joined.members.clone());
        let mut out = new_array::<T>(rows.len(), cols.len())?;
        let (pop, table) = (&joined.pop, &*self.table);
        let plan = matrix::Plan::new(pop, rows.clone());
        let slice = out.as_slice_mut().expect("a fresh array is contiguous");
        let total = rows.len() * cols.len();
        if cells <= SMALL_CELLS {
            check_n_threads(n_threads)?;
            crate::small::fill_small(pop, table, rows, cols, slice).map_err(to_py)?;
            if let Some(cb) = progress {
                cb.call1((plan.n_groups(), plan.n_groups()))?;
            }
            return Ok(out.into_pyarray(py).into_any());
        }
        let few = crate::small::takes_few_rows(pop, table, &rows, &cols);
        run_sized(py, n_threads, plan.n_groups(), total, cells, progress, |batch, stop| {
            if few {
                crate::small::fill_few(pop, table, rows.clone(), cols.clone(), &mut *slice, stop)
            } else {
                matrix::fill_matrix(pop, table, &plan, batch, rows.clone(), cols.clone(), &mut *slice, stop)
            }
        })?;
        Ok(out.into_pyarray(py).into_any())
    }
}

#[pymethods]
impl PyArchive {
    #[new]
    fn new(table: &Bound<'_, PyScoreTable>) -> Self {
        let (table, genes) = (table.get().inner.clone(), table.get().genes.clone());
        let inner = Arc::new(crate::archive::Archive::new(&table));
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
        let t = &*self.table;
        let new = build_population(py, t, &self.genes, &codes, &params, &offsets)?;
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
        let new = population_of(
            py,
            &self.table,
            &self.genes,
            &parts.codes,
            &parts.params,
            &parts.offsets,
        )?;
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
            self.matrix_typed::<f32>(py, joined, n_threads, progress)
        } else {
            self.matrix_typed::<f64>(py, joined, n_threads, progress)
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
        let (joined, cells) = self.joined(py, &codes, &params, &offsets)?;
        let (rows, cols) = (joined.queries.clone(), joined.members.clone());
        let k = k.min(cols.len());
        let mut idx = new_array::<i64>(rows.len(), k)?;
        let mut sim = new_array::<f64>(rows.len(), k)?;
        let (pop, table) = (&joined.pop, &*self.table);
        let plan = matrix::Plan::new(pop, rows.clone());
        {
            let is = idx.as_slice_mut().expect("contiguous");
            let ss = sim.as_slice_mut().expect("contiguous");
            let total = rows.len() * cols.len();
            let few = crate::small::takes_few_rows(pop, table, &rows, &cols);
            run_sized(py, n_threads, plan.n_groups(), total, cells, progress, |batch, stop| {
                let (rows, cols) = (rows.clone(), cols.clone());
                if few {
                    crate::small::nearest_few(pop, table, rows, cols, k, &mut *is, &mut *ss, stop)
                } else {
                    matrix::fill_nearest(pop, table, &plan, batch, rows, cols, k, false, &mut *is, &mut *ss, stop)
                }
            })?;
        }
        Ok((idx.into_pyarray(py).into_any(), sim.into_pyarray(py).into_any()))
    }
}

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyScoreTable>()?;
    m.add_class::<PyPopulation>()?;
    m.add_class::<PyEncoder>()?;
    m.add_function(wrap_pyfunction!(default_threads, m)?)?;
    m.add_function(wrap_pyfunction!(max_threads, m)?)?;
    m.add_class::<PyArchive>()?;
    m.add_function(wrap_pyfunction!(pair_similarity, m)?)?;
    m.add_class::<PyPairKit>()?;
    m.add_function(wrap_pyfunction!(install_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(remember_schema, m)?)?;
    m.add_function(wrap_pyfunction!(remember_file, m)?)?;
    m.add_function(wrap_pyfunction!(similarity, m)?)?;
    m.add_function(wrap_pyfunction!(pair_align, m)?)?;
    m.add_function(wrap_pyfunction!(matrix_here, m)?)?;
    m.add_function(wrap_pyfunction!(plain_matrix, m)?)?;
    m.add("SMALL_CELLS", SMALL_CELLS)?;
    threads::install_fork_guard();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
