//! `pyevonas.similarity` itself, and the state it dispatches on.
//!
//! The per-call entry point is this module's `similarity`, not a Python function: a Python
//! function's frame and its lookups cost a tenth of a whole similarity. It finds the schema's
//! compiled pair path (its "kit": table and fast encoder) without Python for a built-in name,
//! for the last few other schema objects it met (a Scoring, by identity: a Scoring is frozen)
//! and for the last few schema files (by identity and version), computes the pair when both
//! are plain chromosomes, and hands everything else to the Python implementation (text
//! notation, odd values, other paths, dicts, errors), which `pyevonas.metric.api` installs at
//! import.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::encoder::PyEncoder;
use super::pair::pair_similarity_of;
use super::table::PyScoreTable;

/// A compiled schema's table and fast encoder, as `similarity` finds them.
#[pyclass(frozen, name = "PairKit", module = "pyevonas._core")]
pub(crate) struct PyPairKit {
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

/// What `similarity` dispatches on, given by `install_similarity` (the known schemas' kits and
/// the Python implementation for everything else).
struct SimilarityState {
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
fn file_kit<'py>(state: &SimilarityState, schema: &Bound<'py, PyAny>) -> Option<Bound<'py, PyPairKit>> {
    let lock = || state.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
pub(crate) fn remember_file(key: FileKey, kit: Py<PyPairKit>) {
    let Some(state) = STATE.get() else { return };
    let mut files = state.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if files.iter().any(|(k, _)| *k == key) {
        return;
    }
    let oldest = (files.len() >= RECENT_FILES).then(|| files.remove(0));
    files.push((key, kit));
    drop(files);
    drop(oldest); // outside the lock: dropping a reference may run Python code
}

static STATE: std::sync::OnceLock<SimilarityState> = std::sync::OnceLock::new();

/// Install `similarity`'s Python side: the dict of built-in names' kits (kept and read as it
/// fills) and the Python implementation for everything else. The first install stays (a
/// module reloaded, as an autoreloading notebook does, installs again: the first module's
/// dict and function still give the same results).
#[pyfunction]
pub(crate) fn install_similarity(py: Python<'_>, named: Py<PyDict>, slow: Py<PyAny>) {
    let state = SimilarityState {
        named,
        slow,
        default: PyString::intern(py, "default").unbind(),
        recent: std::sync::Mutex::new(Vec::new()),
        files: std::sync::Mutex::new(Vec::new()),
    };
    // Already installed: keep the first (dropping `state` here only drops references).
    let _ = STATE.set(state);
}

/// Remember `schema` (a Scoring) with its kit, for `similarity` to find by identity.
#[pyfunction]
pub(crate) fn remember_schema(py: Python<'_>, schema: Py<PyAny>, kit: Py<PyPairKit>) {
    let Some(state) = STATE.get() else { return };
    let mut recent = state.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
pub(crate) enum SchemaArg<'py> {
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
pub(crate) fn similarity<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    schema: SchemaArg<'py>,
) -> PyResult<f64> {
    let state = STATE
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("pyevonas.metric.api was not imported"))?;
    let schema = match schema {
        SchemaArg::Default => None,
        SchemaArg::Given(s) => Some(s),
    };
    let schema = schema.as_ref();
    let kit: Option<Bound<'_, PyPairKit>> = match schema {
        None => state
            .named
            .bind(py)
            .get_item(state.default.bind(py))?
            .and_then(|k| k.cast_into().ok()),
        Some(s) if s.is_exact_instance_of::<PyString>() => {
            match state.named.bind(py).get_item(s)?.and_then(|k| k.cast_into().ok()) {
                Some(kit) => Some(kit),
                None => file_kit(state, s),
            }
        }
        Some(s) => {
            let known = state
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .find(|(x, _)| x.is(s))
                .map(|(_, k)| k.bind(py).clone());
            known.or_else(|| file_kit(state, s))
        }
    };
    if let Some(kit) = kit {
        let kit = kit.get();
        if let Some(sim) = pair_similarity_of(py, kit.table.get(), kit.encoder.get(), a, b)? {
            return Ok(sim);
        }
    }
    let schema = schema.map_or_else(|| state.default.bind(py).clone().into_any(), Clone::clone);
    state.slow.bind(py).call1((a, b, schema))?.extract()
}
