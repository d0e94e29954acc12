//! pyevonas core: global sequence alignment of chain-structured neural architectures.
//!
//! An architecture is a sequence of genes (a type code plus a row of numeric parameters).
//! A [`score::ScoreTable`] compiled from a scoring schema gives the match score of any two
//! genes; [`align`] runs affine-gap Needleman-Wunsch (Gotoh) over two sequences; [`matrix`]
//! turns a [`seq::Population`] into similarity matrices in parallel with rayon.
//!
//! Everything here is pure Rust; the PyO3 bindings live in `py.rs` behind the `python` feature.

pub mod align;
pub mod error;
pub mod matrix;
pub mod score;
pub mod seq;
pub mod simd;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
