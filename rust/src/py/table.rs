//! `ScoreTable`: a compiled scoring schema (immutable) with the growing dictionary of the
//! genes it has met.

use std::sync::Arc;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::SchemaError;
use crate::align::{Aligner, Gaps};
use crate::genes::GeneCache;
use crate::score::{LowerBound, ScoreTable, Term};

/// `align_dense`'s answer: (pairs flattened, column scores) when traced, and the raw score.
type DenseAlignment = (Option<Vec<i64>>, Option<Vec<f64>>, f64);

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

    /// Match scores of every gene of A (rows) against every gene of B (columns), as the
    /// alignment uses them: an `m x n` array (the hybrid chains' substitution matrix, before
    /// their cell genes' scores are put in).
    fn substitutions<'py>(
        &self,
        py: Python<'py>,
        codes_a: PyReadonlyArray1<'py, u32>,
        params_a: PyReadonlyArray2<'py, f64>,
        codes_b: PyReadonlyArray1<'py, u32>,
        params_b: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let t = &self.inner;
        let (ca, cb) = (codes_a.as_array(), codes_b.as_array());
        let (pa, pb) = (params_a.as_array(), params_b.as_array());
        let k = t.n_params();
        if pa.shape() != [ca.len(), k] || pb.shape() != [cb.len(), k] {
            return Err(PyValueError::new_err("parameter rows must be (genes, n_params)"));
        }
        if let Some(&c) = ca.iter().chain(cb.iter()).find(|&&c| c as usize >= t.n_types()) {
            return Err(PyValueError::new_err(format!("gene type {c} is out of range")));
        }
        let rows_a: Vec<Vec<f64>> = pa.rows().into_iter().map(|r| r.to_vec()).collect();
        let rows_b: Vec<Vec<f64>> = pb.rows().into_iter().map(|r| r.to_vec()).collect();
        let mut out = Array2::<f64>::zeros((ca.len(), cb.len()));
        for (i, &x) in ca.iter().enumerate() {
            for (j, &y) in cb.iter().enumerate() {
                out[[i, j]] = t.substitution(x as usize, &rows_a[i], y as usize, &rows_b[j]);
            }
        }
        Ok(out.into_pyarray(py))
    }

    /// Similarity from a raw score, the sequences' lengths and their self scores (the
    /// schema's normalisation, clamped below at 0).
    fn normalise(&self, score: f64, len_a: usize, len_b: usize, self_a: f64, self_b: f64) -> f64 {
        self.inner.normalise(score, len_a, len_b, self_a, self_b)
    }

    /// Global alignment (the schema's gaps) of two sequences given their substitution matrix
    /// `sub` (`m x n`): with `traced`, (pairs flattened with -1 for gaps, column scores, score),
    /// else (None, None, score). Runs on the calling thread.
    fn align_dense(&self, sub: PyReadonlyArray2<'_, f64>, traced: bool) -> PyResult<DenseAlignment> {
        let s = sub.as_array();
        let (m, n) = (s.shape()[0], s.shape()[1]);
        if m == 0 || n == 0 {
            return Err(PyValueError::new_err("an alignment needs two non-empty sequences"));
        }
        if let Some(x) = s.iter().find(|x| !x.is_finite()) {
            return Err(PyValueError::new_err(format!("substitution score {x} is not finite")));
        }
        let score_of = |i: usize, j: usize| s[[i, j]];
        let mut aligner = Aligner::default();
        if traced {
            let al = aligner.align(m, n, score_of, self.inner.gaps())?;
            return Ok((Some(super::pair::flat_pairs(&al.ops)), Some(al.column_scores), al.score));
        }
        Ok((None, None, aligner.score(m, n, score_of, self.inner.gaps())))
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
