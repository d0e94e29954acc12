//! `Encoder`: the fast encoder of plain chromosomes (lists of layer dicts) into gene codes and
//! parameter rows, without building Python objects.
//!
//! It must agree with the validating encoder in Python (`pyevonas/metric/encode.py`): it
//! handles exactly the plain cases and gives up (None) on anything else, so the Python path
//! gives every error message. `tests/test_encode.py` and `tests/test_library.py` compare the
//! two on the same chromosomes.

use numpy::ndarray::{Array1, Array2};
use numpy::IntoPyArray;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString};
use std::sync::Arc;

use crate::names::{eq_bytes, NameIndex};
use crate::score::ScoreTable;

/// One way an `Encoder` layer name becomes a gene: (type code, `when` conditions, counted params).
type LayerChoiceSpec = (u32, Vec<(String, Py<PyAny>)>, Vec<(String, usize)>);
/// `Encoder.encode`'s answer: (codes, params, offsets) as numpy arrays.
pub(crate) type Encoded<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>);

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
pub(crate) struct Keys {
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
pub(crate) struct PyEncoder {
    ignore: Vec<String>,
    layers: LayerMap,
    pub(crate) n_params: usize,
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
pub(crate) struct Parts {
    pub(crate) codes: Vec<u32>,
    pub(crate) params: Vec<f64>,
    pub(crate) offsets: Vec<usize>,
}

impl Parts {
    /// As the (codes uint32, params float64 2-D, offsets int64) arrays Python gets.
    pub(crate) fn into_arrays(self, py: Python<'_>, n_params: usize) -> PyResult<Encoded<'_>> {
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
    pub(crate) fn encode_parts(&self, archs: &Bound<'_, PyAny>) -> PyResult<Option<Parts>> {
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
    pub(crate) fn keys(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True when every sequence this encoder produces passes [`crate::pair::check`] under
    /// `table`: the same number of columns, known type codes, and every column a rule of a
    /// gene's type reads among the columns the encoder fills (with finite values) for it.
    /// Then the per-call path need not check its input again. Remembered per table.
    pub(crate) fn covers(&self, table: &Arc<ScoreTable>) -> bool {
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
    pub(crate) fn encode_one(
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
