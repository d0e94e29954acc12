//! pyevonas core: global sequence alignment of chain-structured neural architectures.
//!
//! An architecture is a sequence of genes (a type code plus a row of numeric parameters).
//! A [`score::ScoreTable`] compiled from a scoring schema gives the match score of any two
//! genes; [`align`] runs affine-gap Needleman-Wunsch (Gotoh) over two sequences; a
//! [`seq::Population`] holds encoded sequences over a [`genes::GeneSpace`] of distinct genes
//! (a [`genes::GeneCache`] keeps one growing per table); [`lanes`] aligns 32 rows at once;
//! [`matrix`] turns a population into similarity matrices in parallel with rayon.
//!
//! Module dependencies run one way: `align` <- `score` <- `genes` <- `seq` <- `lanes` <- `matrix`.
//!
//! Everything here is pure Rust; the PyO3 bindings live in `py.rs` behind the `python` feature.

pub mod align;
pub mod error;
pub mod genes;
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
// and an archive that grows.
pub mod archive;
pub mod local;
pub mod pair;
pub mod small;
pub mod text;
