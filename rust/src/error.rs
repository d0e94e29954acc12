//! The one error type of the core. No pyo3 here; `py/mod.rs` maps each variant to a Python class (one `From<Error> for PyErr`).

/// Everything that can go wrong with user input. The core never panics on input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The compiled score table is inconsistent (bad shape, non-finite or out-of-range value).
    #[error("invalid score table: {0}")]
    InvalidTable(String),
    /// A gene's type code is not in the table.
    #[error("sequence {seq}, gene {index}: type code {code} is out of range (the table has {n_types} gene types)")]
    UnknownType {
        seq: usize,
        index: usize,
        code: u32,
        n_types: usize,
    },
    /// Parameter rows do not match the genes.
    #[error("parameter array has shape ({rows}, {cols}), expected ({expected_rows}, {expected_cols})")]
    ParamShape {
        rows: usize,
        cols: usize,
        expected_rows: usize,
        expected_cols: usize,
    },
    /// Sequence offsets are not a non-decreasing list from 0 to the number of genes.
    #[error("invalid sequence offsets: {0}")]
    Offsets(String),
    /// A parameter that a rule uses is NaN or infinite.
    #[error("sequence {seq}, gene {index}: parameter {param} is not finite ({value})")]
    NonFinite {
        seq: usize,
        index: usize,
        param: usize,
        value: f64,
    },
    /// An architecture without genes has no similarity.
    #[error("sequence {seq} is empty: an architecture needs at least one gene")]
    EmptySequence { seq: usize },
    /// A buffer whose length does not fit the computation (e.g. an output matrix of the wrong size).
    #[error("{what} has length {len}, expected {expected}")]
    Shape {
        what: &'static str,
        len: usize,
        expected: usize,
    },
    /// An index outside the population.
    #[error("index {index} is out of range for a population of {len}")]
    Index { index: usize, len: usize },
    /// A thread count out of range (argument or `PYEVONAS_NUM_THREADS`).
    #[error("{0}")]
    Threads(String),
    /// The operating system would not start the threads of a pool.
    #[error("{0}")]
    ThreadPool(String),
    /// A buffer that cannot be allocated (named, with its size).
    #[error("cannot allocate {} for {what}: {detail}", crate::mem::human(*.bytes))]
    Memory { what: String, bytes: u128, detail: String },
    /// The computation was stopped (Ctrl-C) before it finished.
    #[error("interrupted")]
    Interrupted,
    /// A request that does not fit the table (e.g. a condensed matrix for a directed schema).
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;
