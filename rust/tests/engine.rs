//! The compute dispatcher (`engine`): every tier against the scalar aligner on random
//! populations, the dispatcher's choice at each threshold, and batches that compute every
//! cell exactly once. No Python needed.

use std::ops::Range;

use _core::align::{Aligner, Gaps, Stop};
use _core::engine::{
    self, build_place, lane_kernel_pays, needs_self_scores, pair_place, Job, Kind, Limits, Place, Target, Tier,
};
use _core::genes::GeneCache;
use _core::matrix::condensed_offset;
use _core::score::{LowerBound, ScoreTable, Term};
use _core::seq::Population;
use _core::{threads, Error};
use common::{encoded, population};
use proptest::prelude::*;

mod common;

/// A table over `t` types with one parameter column: symmetric (a symmetric base and the same
/// rule both ways) or directed; linear or affine gaps.
fn table(t: usize, symmetric: bool, affine: bool) -> ScoreTable {
    let base: Vec<f64> = (0..t * t)
        .map(|k| {
            let (x, y) = (k / t, k % t);
            if x == y {
                2.0 + x as f64 * 0.5
            } else if symmetric || x < y {
                -0.25 * (x + y) as f64
            } else {
                -0.5 * (x + y) as f64 + 0.25
            }
        })
        .collect();
    let terms = (0..t * t)
        .map(|k| {
            let weight = if symmetric { 0.5 } else { 0.25 + (k % 3) as f64 * 0.25 };
            vec![Term {
                param: 0,
                weight,
                norm: 4.0,
            }]
        })
        .collect();
    let gaps = if affine {
        Gaps {
            open: -1.0,
            extend: -0.25,
        }
    } else {
        Gaps {
            open: -0.5,
            extend: -0.5,
        }
    };
    ScoreTable::new(t, 1, base, terms, gaps, LowerBound::AllGaps).unwrap()
}

/// `n` random sequences of 1 to `max_len` genes over 4 types (a fixed seed).
fn random_seqs(n: usize, max_len: u64, seed: u64) -> Vec<Vec<(u32, f64)>> {
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    (0..n)
        .map(|_| {
            (0..1 + next() % max_len)
                .map(|_| ((next() % 4) as u32, (next() % 5) as f64))
                .collect()
        })
        .collect()
}

fn seqs_strategy(max_seqs: usize) -> impl Strategy<Value = Vec<Vec<(u32, f64)>>> {
    prop::collection::vec(
        prop::collection::vec((0..4u32, 0u32..5).prop_map(|(c, p)| (c, f64::from(p))), 1..12),
        3..max_seqs,
    )
}

/// Limits that put any input on the pool tiers, in batches of `batch_pairs` alignments.
fn on_pool(batch_pairs: usize) -> Limits {
    Limits {
        here_cells: 0,
        batch_pairs,
    }
}

/// Limits that put any input on the calling thread.
fn here() -> Limits {
    Limits {
        here_cells: u64::MAX,
        ..Limits::default()
    }
}

fn run_matrix(job: Job<'_>, len: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; len];
    threads::pool(Some(2))
        .unwrap()
        .install(|| job.run_all(&mut Target::Matrix(&mut out[..]), &Stop::never()))
        .unwrap();
    out
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The reference k nearest of each row (scalar similarities sorted, ties by lower index).
fn reference_nearest(
    pop: &Population,
    table: &ScoreTable,
    rows: Range<usize>,
    cols: Range<usize>,
    k: usize,
    exclude_self: bool,
) -> (Vec<i64>, Vec<f64>) {
    let want = engine::reference_matrix(pop, table, rows.clone(), cols.clone());
    let w = cols.len();
    let (mut idx, mut sim) = (Vec::new(), Vec::new());
    for (r, i) in rows.enumerate() {
        let mut row: Vec<(f64, usize)> = cols
            .clone()
            .filter(|&j| !(exclude_self && i == j))
            .map(|j| (want[r * w + j - cols.start], j))
            .collect();
        row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for c in 0..k {
            let (j, s) = row
                .get(c)
                .map_or((-1, f64::NAN), |&(s, j)| ((j - cols.start) as i64, s));
            idx.push(j);
            sim.push(s);
        }
    }
    (idx, sim)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_tier_gives_the_scalar_matrix(
        seqs in seqs_strategy(40),
        symmetric in any::<bool>(),
        affine in any::<bool>(),
        split in 0usize..3,
    ) {
        let t = table(4, symmetric, affine);
        let pop = population(&t, &seqs);
        let n = pop.len();
        // All against all, or a few rows against the other columns.
        let (rows, cols) = match split {
            0 => (0..n, 0..n),
            1 => (0..2, 2..n),
            _ => (0..n / 2, n / 2..n),
        };
        let want = engine::reference_matrix(&pop, &t, rows.clone(), cols.clone());
        for limits in [here(), on_pool(7), on_pool(1 << 22)] {
            let job = Job::with_limits(&pop, &t, rows.clone(), cols.clone(), Kind::Matrix, limits).unwrap();
            let tier = job.tier();
            let got = run_matrix(job, rows.len() * cols.len());
            prop_assert!(same_bits(&got, &want), "tier {:?} limits {:?}", tier, limits);
        }
    }

    #[test]
    fn every_tier_gives_the_scalar_nearest(
        seqs in seqs_strategy(40),
        symmetric in any::<bool>(),
        k in 0usize..6,
        split in any::<bool>(),
    ) {
        let t = table(4, symmetric, false);
        let pop = population(&t, &seqs);
        let n = pop.len();
        let (rows, cols, exclude_self) = if split { (0..3, 3..n, false) } else { (0..n, 0..n, true) };
        let k = k.min(cols.len() - usize::from(exclude_self));
        let (want_idx, want_sim) = reference_nearest(&pop, &t, rows.clone(), cols.clone(), k, exclude_self);
        for limits in [here(), on_pool(5), on_pool(1 << 22)] {
            let kind = Kind::Nearest { k, exclude_self };
            let job = Job::with_limits(&pop, &t, rows.clone(), cols.clone(), kind, limits).unwrap();
            let tier = job.tier();
            let (mut idx, mut sim) = (vec![7i64; rows.len() * k], vec![7.0f64; rows.len() * k]);
            threads::pool(Some(2)).unwrap()
                .install(|| job.run_all::<f64>(&mut Target::Nearest(&mut idx, &mut sim), &Stop::never()))
                .unwrap();
            prop_assert_eq!(&idx, &want_idx, "tier {:?}", tier);
            prop_assert!(same_bits(&sim, &want_sim), "tier {:?}", tier);
        }
    }

    #[test]
    fn every_tier_gives_the_scalar_condensed_matrix(seqs in seqs_strategy(40), affine in any::<bool>()) {
        let t = table(4, true, affine);
        let pop = population(&t, &seqs);
        let n = pop.len();
        let want = engine::reference_matrix(&pop, &t, 0..n, 0..n);
        for limits in [here(), on_pool(3), on_pool(1 << 22)] {
            let job = Job::with_limits(&pop, &t, 0..n, 0..n, Kind::Condensed, limits).unwrap();
            let mut out = vec![f64::NAN; condensed_offset(n, n)];
            job.run_all(&mut Target::Condensed(&mut out[..]), &Stop::never()).unwrap();
            for i in 0..n {
                for j in i + 1..n {
                    prop_assert_eq!(out[condensed_offset(n, i) + j - i - 1].to_bits(), want[i * n + j].to_bits());
                }
            }
        }
    }

    #[test]
    fn raw_scores_are_the_scalar_aligner_s(seqs in seqs_strategy(30), affine in any::<bool>()) {
        let t = table(4, false, affine);
        let pop = population(&t, &seqs);
        let n = pop.len();
        let mut al = Aligner::default();
        let want: Vec<f64> = (0..n).flat_map(|i| (0..n).map(move |j| (i, j))).map(|(i, j)| pop.score(&t, i, j, &mut al)).collect();
        for limits in [here(), on_pool(4)] {
            let job = Job::with_limits(&pop, &t, 0..n, 0..n, Kind::Scores, limits).unwrap();
            prop_assert_eq!(job.tier(), Tier::Scalar);
            let mut out = vec![f64::NAN; n * n];
            job.run_all::<f64>(&mut Target::Scores(&mut out), &Stop::never()).unwrap();
            prop_assert!(same_bits(&out, &want));
        }
    }

    #[test]
    fn matrices_are_in_zero_to_one_with_an_exact_unit_diagonal(seqs in seqs_strategy(40), symmetric in any::<bool>()) {
        let t = table(4, symmetric, false);
        let pop = population(&t, &seqs);
        let n = pop.len();
        for limits in [here(), on_pool(6)] {
            let job = Job::with_limits(&pop, &t, 0..n, 0..n, Kind::Matrix, limits).unwrap();
            let got = run_matrix(job, n * n);
            for i in 0..n {
                prop_assert_eq!(got[i * n + i], 1.0);
            }
            prop_assert!(got.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

/// Run every batch of `job` (rows x cols matrix) into its own NaN-filled buffer and count, per
/// cell, how many batches wrote it.
fn writes_per_cell(mut job: Job<'_>, len: usize) -> Vec<usize> {
    let mut count = vec![0usize; len];
    let pool = threads::pool(Some(2)).unwrap();
    for b in 0..job.batches().len() {
        let mut out = vec![f64::NAN; len];
        pool.install(|| job.run(b, &mut Target::Matrix(&mut out[..]), &Stop::never()))
            .unwrap();
        for (c, v) in count.iter_mut().zip(&out) {
            *c += usize::from(!v.is_nan());
        }
    }
    count
}

#[test]
fn few_row_batches_compute_each_cell_once() {
    // The bug this guards: the few-rows kernel ran over all columns in every batch, so a query
    // of 256 rows against a large archive (several batches) was computed once per batch.
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(400, 10, 3));
    let (rows, cols) = (0..40, 40..400);
    let job = Job::with_limits(&pop, &t, rows.clone(), cols.clone(), Kind::Matrix, on_pool(2_000)).unwrap();
    assert_eq!(job.tier(), Tier::FewRows);
    assert!(job.batches().len() >= 5, "{} batches", job.batches().len());
    let count = writes_per_cell(job, rows.len() * cols.len());
    assert!(
        count.iter().all(|&c| c == 1),
        "cells written {:?} times",
        count.iter().max()
    );
}

#[test]
fn lane_and_scalar_batches_compute_each_cell_once() {
    let pop_seqs = random_seqs(200, 9, 11);
    for affine in [false, true] {
        let t = table(4, false, affine);
        let pop = population(&t, &pop_seqs);
        let n = pop.len();
        let job = Job::with_limits(&pop, &t, 0..n, 0..n, Kind::Matrix, on_pool(4_000)).unwrap();
        assert_eq!(job.tier(), if affine { Tier::Scalar } else { Tier::Lanes });
        assert!(job.batches().len() >= 5);
        let count = writes_per_cell(job, n * n);
        assert!(count.iter().all(|&c| c == 1), "affine {affine}");
    }
}

#[test]
fn score_batches_compute_each_cell_once() {
    let t = table(4, false, true);
    let pop = population(&t, &random_seqs(60, 8, 5));
    let n = pop.len();
    let mut job = Job::with_limits(&pop, &t, 0..n, 0..n, Kind::Scores, on_pool(300)).unwrap();
    assert!(job.batches().len() >= 5);
    let mut count = vec![0usize; n * n];
    for b in 0..job.batches().len() {
        let mut out = vec![f64::NAN; n * n];
        job.run::<f64>(b, &mut Target::Scores(&mut out), &Stop::never())
            .unwrap();
        for (c, v) in count.iter_mut().zip(&out) {
            *c += usize::from(!v.is_nan());
        }
    }
    assert!(count.iter().all(|&c| c == 1));
}

#[test]
fn few_row_nearest_merges_batches_into_one_pass() {
    let t = table(4, true, false);
    let mut seqs = random_seqs(500, 10, 9);
    for d in 0..30 {
        seqs[100 + d * 10] = seqs[d % 5].clone(); // ties across batches
    }
    let pop = population(&t, &seqs);
    let (rows, cols, k) = (0..5, 5..500, 9);
    let want = reference_nearest(&pop, &t, rows.clone(), cols.clone(), k, false);
    for batch_pairs in [100, 700, 1 << 22] {
        let kind = Kind::Nearest { k, exclude_self: false };
        let job = Job::with_limits(&pop, &t, rows.clone(), cols.clone(), kind, on_pool(batch_pairs)).unwrap();
        assert_eq!(job.tier(), Tier::FewRows);
        let (mut idx, mut sim) = (vec![0i64; 5 * k], vec![0.0f64; 5 * k]);
        job.run_all::<f64>(&mut Target::Nearest(&mut idx, &mut sim), &Stop::never())
            .unwrap();
        assert_eq!(idx, want.0, "batch_pairs {batch_pairs}");
        assert!(same_bits(&sim, &want.1));
    }
}

#[test]
fn batches_partition_the_units_in_order() {
    let t = table(4, false, false);
    let pop = population(&t, &random_seqs(300, 6, 1));
    let n = pop.len();
    for (rows, cols) in [(0..300, 0..300), (0..3, 3..300), (0..100, 100..300)] {
        for batch_pairs in [1, 50, 999, 1 << 22] {
            for kind in [Kind::Matrix, Kind::Scores] {
                let job = Job::with_limits(&pop, &t, rows.clone(), cols.clone(), kind, on_pool(batch_pairs)).unwrap();
                let b = job.batches();
                assert_eq!(b[0].start, 0);
                assert_eq!(b[b.len() - 1].end, job.units());
                assert!(b.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
                // About `batch_pairs` alignments each, never more batches than units.
                let pairs = rows.len() * cols.len();
                assert!(b.len() <= job.units().max(1));
                assert!(b.len() <= (pairs / batch_pairs).max(1));
                let cells: u128 = (0..b.len()).map(|i| job.batch_cells(i)).sum();
                assert!(cells <= job.cells() && cells + b.len() as u128 >= job.cells());
            }
        }
    }
    let _ = n;
}

#[test]
fn calling_thread_up_to_here_cells_then_the_pool() {
    let t = table(4, true, false);
    // 32 sequences of 16 genes: 512 x 512 = HERE_CELLS exactly.
    let seqs: Vec<Vec<(u32, f64)>> = (0..32)
        .map(|i| (0..16).map(|g| (((i + g) % 4) as u32, 1.0)).collect())
        .collect();
    let pop = population(&t, &seqs);
    assert_eq!(
        engine::dp_cells(&pop, &(0..32), &(0..32)),
        u128::from(engine::HERE_CELLS)
    );
    let job = Job::new(&pop, &t, 0..32, 0..32, Kind::Matrix).unwrap();
    assert_eq!(
        (job.place(), job.tier(), job.batches().len()),
        (Place::Here, Tier::Small, 1)
    );
    let mut more = seqs.clone();
    more[0].push((1, 1.0));
    let pop = population(&t, &more);
    let job = Job::new(&pop, &t, 0..32, 0..32, Kind::Matrix).unwrap();
    assert_eq!((job.place(), job.tier()), (Place::Pool, Tier::Lanes));
}

#[test]
fn few_rows_from_two_to_few_rows_against_other_columns() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(engine::FEW_ROWS + 20, 4, 2));
    let n = pop.len();
    let tier = |rows: Range<usize>, cols: Range<usize>, kind: Kind| {
        Job::with_limits(&pop, &t, rows, cols, kind, on_pool(1 << 22))
            .unwrap()
            .tier()
    };
    let few = engine::FEW_ROWS;
    assert_eq!(
        tier(0..1, 1..n, Kind::Matrix),
        Tier::Lanes,
        "one row: the lane kernel's scalar lanes"
    );
    assert_eq!(tier(0..2, 2..n, Kind::Matrix), Tier::FewRows);
    assert_eq!(tier(0..few, few..n, Kind::Matrix), Tier::FewRows);
    assert_eq!(tier(0..few + 1, few + 1..n, Kind::Matrix), Tier::Lanes);
    // Columns after or before the rows; overlapping ranges never.
    assert_eq!(tier(n - 3..n, 0..n - 3, Kind::Matrix), Tier::FewRows);
    assert_eq!(tier(0..3, 2..n, Kind::Matrix), Tier::Lanes);
    let nearest = |exclude_self| Kind::Nearest { k: 3, exclude_self };
    assert_eq!(tier(0..3, 3..n, nearest(false)), Tier::FewRows);
    assert_eq!(tier(0..n, 0..n, nearest(true)), Tier::Lanes);
    assert_eq!(tier(0..n, 0..n, Kind::Condensed), Tier::Lanes);
}

#[test]
fn affine_gaps_and_raw_scores_take_the_scalar_aligner() {
    let pop_seqs = random_seqs(40, 6, 4);
    let affine = table(4, true, true);
    let pop = population(&affine, &pop_seqs);
    for (rows, cols) in [(0..3, 3..40), (0..40, 0..40)] {
        let job = Job::with_limits(&pop, &affine, rows, cols, Kind::Matrix, on_pool(1 << 22)).unwrap();
        assert_eq!(job.tier(), Tier::Scalar);
    }
    let linear = table(4, true, false);
    let pop = population(&linear, &pop_seqs);
    for limits in [here(), on_pool(1 << 22)] {
        let job = Job::with_limits(&pop, &linear, 0..40, 0..40, Kind::Scores, limits).unwrap();
        assert_eq!(job.tier(), Tier::Scalar);
    }
    // On the calling thread every similarity kind takes the small kernel (affine gaps too:
    // it falls back to the scalar aligner inside).
    let job = Job::with_limits(&pop, &linear, 0..40, 0..40, Kind::Condensed, here()).unwrap();
    assert_eq!(job.tier(), Tier::Small);
}

#[test]
fn condensed_needs_a_symmetric_table_and_the_whole_population() {
    let directed = table(4, false, false);
    assert!(!directed.is_symmetric());
    let pop = population(&directed, &random_seqs(10, 5, 8));
    let err = Job::new(&pop, &directed, 0..10, 0..10, Kind::Condensed).err().unwrap();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("symmetric")),
        "{err}"
    );
    let sym = table(4, true, false);
    let pop = population(&sym, &random_seqs(10, 5, 8));
    let err = Job::new(&pop, &sym, 0..5, 5..10, Kind::Condensed).err().unwrap();
    assert!(matches!(err, Error::Unsupported(_)));
}

#[test]
fn ranges_outside_the_population_are_an_index_error() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(10, 5, 8));
    for (rows, cols) in [(0..11, 0..10), (0..10, 5..12)] {
        let err = Job::new(&pop, &t, rows, cols, Kind::Matrix).err().unwrap();
        assert!(matches!(err, Error::Index { len: 10, .. }), "{err}");
    }
    #[allow(clippy::reversed_empty_ranges)]
    let err = Job::new(&pop, &t, 5..3, 0..10, Kind::Matrix).err().unwrap();
    assert!(matches!(err, Error::Index { .. }));
}

#[test]
fn a_target_of_another_kind_or_length_is_refused() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(10, 5, 8));
    let mut job = Job::new(&pop, &t, 0..10, 0..10, Kind::Matrix).unwrap();
    let mut short = vec![0.0f64; 99];
    let err = job
        .run(0, &mut Target::Matrix(&mut short[..]), &Stop::never())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                len: 99,
                expected: 100,
                ..
            }
        ),
        "{err}"
    );
    let mut cond = vec![0.0f64; 45];
    let err = job
        .run(0, &mut Target::Condensed(&mut cond[..]), &Stop::never())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("condensed")),
        "{err}"
    );
    let mut full = vec![0.0f64; 100];
    let err = job
        .run(3, &mut Target::Matrix(&mut full[..]), &Stop::never())
        .unwrap_err();
    assert!(matches!(err, Error::Index { index: 3, len: 1 }), "{err}");
    let (mut idx, mut sim) = (vec![0i64; 20], vec![0.0f64; 19]);
    let mut job = Job::new(
        &pop,
        &t,
        0..10,
        0..10,
        Kind::Nearest {
            k: 2,
            exclude_self: true,
        },
    )
    .unwrap();
    let err = job
        .run::<f64>(0, &mut Target::Nearest(&mut idx, &mut sim), &Stop::never())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shape {
                what: "the similarity output",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_population_without_self_scores_only_for_the_symmetric_small_kernel() {
    let sym = table(4, true, false);
    let (c, p, o) = encoded(&random_seqs(12, 5, 6));
    let cache = GeneCache::new(&sym);
    let pop = Population::with_cache_unscored(&sym, &cache, &c, &p, &o).unwrap();
    assert!(!pop.is_scored());
    assert!(!needs_self_scores(&pop, &sym, &(0..12), &(0..12)));
    assert!(needs_self_scores(&pop, &sym, &(0..6), &(6..12)));
    let job = Job::new(&pop, &sym, 0..12, 0..12, Kind::Matrix).unwrap();
    let got = run_matrix(job, 144);
    let scored = Population::new(&sym, &c, &p, &o).unwrap();
    assert!(same_bits(&got, &engine::reference_matrix(&scored, &sym, 0..12, 0..12)));
    let err = Job::new(&pop, &sym, 0..6, 6..12, Kind::Matrix).err().unwrap();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("self scores")),
        "{err}"
    );
    let directed = table(4, false, false);
    let pop = Population::with_cache_unscored(&directed, &GeneCache::new(&directed), &c, &p, &o).unwrap();
    assert!(needs_self_scores(&pop, &directed, &(0..12), &(0..12)));
}

#[test]
fn pairs_and_population_builds_go_to_the_pool_past_their_thresholds() {
    // m^2 + n^2 + mn <= HERE_CELLS (2^18): 295 and 296 genes a side.
    assert_eq!(pair_place(295, 295), Place::Here);
    assert_eq!(pair_place(296, 296), Place::Pool);
    assert_eq!(pair_place(1, 511), Place::Here);
    assert_eq!(pair_place(1, 512), Place::Pool);
    assert_eq!(build_place(engine::HERE_GENES), Place::Here);
    assert_eq!(build_place(engine::HERE_GENES + 1), Place::Pool);
}

#[test]
fn a_lane_group_pays_for_its_profile_from_k_over_8_columns_and_half_a_group() {
    let k = 800;
    assert!(lane_kernel_pays(100, k, 32));
    assert!(!lane_kernel_pays(99, k, 32));
    assert!(lane_kernel_pays(100, k, 16));
    assert!(!lane_kernel_pays(100, k, 15));
    assert!(lane_kernel_pays(usize::MAX, k, 32), "no overflow");
}

#[test]
fn a_stopped_job_is_interrupted() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(100, 8, 10));
    for (rows, cols) in [(0..100, 0..100), (0..4, 4..100)] {
        let job = Job::with_limits(&pop, &t, rows.clone(), cols, Kind::Matrix, on_pool(1 << 22)).unwrap();
        let stop = Stop::new();
        stop.request();
        let mut out = vec![0.0f64; job.output_len().0];
        let err = job.run_all(&mut Target::Matrix(&mut out[..]), &stop).unwrap_err();
        assert_eq!(err, Error::Interrupted);
    }
}

#[test]
fn float32_output_is_the_rounded_float64() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(50, 8, 12));
    for limits in [here(), on_pool(100)] {
        let job = Job::with_limits(&pop, &t, 0..10, 10..50, Kind::Matrix, limits).unwrap();
        let want = run_matrix(job, 400);
        let job = Job::with_limits(&pop, &t, 0..10, 10..50, Kind::Matrix, limits).unwrap();
        let mut out = vec![0.0f32; 400];
        job.run_all(&mut Target::Matrix(&mut out[..]), &Stop::never()).unwrap();
        #[allow(clippy::cast_possible_truncation)]
        let rounded: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert_eq!(out, rounded);
    }
}

#[test]
fn the_outputs_of_a_job_have_the_lengths_it_names() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(10, 5, 8));
    let len = |rows: Range<usize>, cols: Range<usize>, kind| Job::new(&pop, &t, rows, cols, kind).unwrap().output_len();
    assert_eq!(len(0..10, 0..10, Kind::Matrix), (100, 0));
    assert_eq!(len(0..4, 4..10, Kind::Scores), (24, 0));
    assert_eq!(len(0..10, 0..10, Kind::Condensed), (45, 0));
    assert_eq!(
        len(
            0..4,
            4..10,
            Kind::Nearest {
                k: 3,
                exclude_self: false
            }
        ),
        (12, 12)
    );
}

#[test]
fn empty_rows_or_columns_are_empty_outputs() {
    let t = table(4, true, false);
    let pop = population(&t, &random_seqs(10, 5, 8));
    for limits in [here(), on_pool(10)] {
        for (rows, cols) in [(0..0, 0..10), (0..10, 10..10)] {
            let job = Job::with_limits(&pop, &t, rows, cols, Kind::Matrix, limits).unwrap();
            let mut out: Vec<f64> = Vec::new();
            job.run_all(&mut Target::Matrix(&mut out[..]), &Stop::never()).unwrap();
        }
    }
}
