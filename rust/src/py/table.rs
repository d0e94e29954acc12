//! `ScoreTable`: a compiled scoring schema (immutable) with the growing dictionary of the
//! genes it has met.

use std::sync::Arc;

use numpy::{PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::SchemaError;
use crate::align::Gaps;
use crate::genes::GeneCache;
use crate::score::{LowerBound, ScoreTable, Term};

/// The compiled schema (immutable) with the growing dictionary of the genes it has met.
#[pyclass(frozen, name = "ScoreTable", module = "pyevonas._core")]
pub(crate) struct PyScoreTable {
    pub(crate) inner: Arc<ScoreTable>,
    pub(crate) genes: Arc<GeneCache>,
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
        )?;
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
