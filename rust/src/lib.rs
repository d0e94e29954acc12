//! pyevonas core: global sequence alignment of chain-structured neural architectures.
//!
//! An architecture is a sequence of genes (a type code plus a row of numeric parameters).
//! A [`score::ScoreTable`] compiled from a scoring schema gives the match score of any two
//! genes; [`align`] runs affine-gap Needleman-Wunsch (Gotoh) over two sequences; a
//! [`seq::Population`] holds encoded sequences over a [`genes::GeneSpace`] of distinct genes
//! (a [`genes::GeneCache`] keeps one growing per table); [`lanes`] aligns 32 rows at once;
//! [`matrix`] turns a population into similarity matrices in parallel with rayon; [`small`]
//! is the kernel for small matrices and a few rows; [`engine`] decides, for each request, which
//! of them runs, where, and in which batches.
//!
//! Module dependencies run one way: `align` <- `score` <- `genes` <- `seq` <- `lanes` <-
//! `matrix` / `small` <- `engine`.
//!
//! Everything here is pure Rust; the PyO3 bindings live in `py/` behind the `python` feature
//! and call [`engine`] for every matrix-shaped request.

pub mod align;
pub mod engine;
pub mod error;
pub mod genes;
pub mod graph;
pub mod lanes;
pub mod matrix;
pub mod mem;
pub mod score;
pub mod seq;
pub mod threads;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};

// The library-use layer: one pair without a population, small work on the calling thread,
// the layer-name index of the fast encoder, and an archive that grows.
pub mod archive;
pub mod calling_thread;
pub mod names;
pub mod pair;
pub mod small;
