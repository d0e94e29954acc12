//! Invariants of the core, checked with proptest (no Python needed).

use _core::align::{rescore, Aligner};
use _core::align::{Gaps, Stop};
use _core::engine::{self, Job, Kind, Limits, Target, Tier};
use _core::genes::GeneCache;
use _core::matrix::{self, condensed_offset};
use _core::score::{LowerBound, ScoreTable, Term};
use _core::seq::Population;
use _core::threads;
use _core::Error;
use common::population;
use proptest::prelude::*;

mod common;

/// A random directed table over `t` types with one parameter column.
fn table_strategy(t: usize) -> impl Strategy<Value = ScoreTable> {
    (
        prop::collection::vec(-3.0f64..3.0, t * t),
        prop::collection::vec(0.5f64..8.0, t),
        prop::collection::vec(0.0f64..2.0, t * t),
    )
        .prop_map(move |(mut base, selfs, weights)| {
            let mut terms = Vec::with_capacity(t * t);
            for x in 0..t {
                base[x * t + x] = selfs[x];
            }
            // No pair may score above either gene's self match (else sim > 1).
            for x in 0..t {
                for y in 0..t {
                    if x != y {
                        base[x * t + y] = base[x * t + y].min(selfs[x]).min(selfs[y]);
                    }
                }
            }
            for x in 0..t {
                for y in 0..t {
                    terms.push(vec![Term {
                        param: 0,
                        weight: weights[x * t + y],
                        norm: 10.0,
                    }]);
                }
            }
            ScoreTable::new(
                t,
                1,
                base,
                terms,
                Gaps {
                    open: -0.5,
                    extend: -0.5,
                },
                LowerBound::Paper,
            )
            .unwrap()
        })
}

fn seqs_strategy(t: u32, n: usize) -> impl Strategy<Value = Vec<Vec<(u32, f64)>>> {
    // Up to n sequences; more than 16 puts at least one full group on the lane kernel.
    prop::collection::vec(
        prop::collection::vec((0..t, 0u32..5).prop_map(|(c, p)| (c, f64::from(p))), 1..14),
        2..n,
    )
}

/// Textbook linear-gap Needleman-Wunsch over a full matrix.
fn linear_nw(m: usize, n: usize, sub: &dyn Fn(usize, usize) -> f64, g: f64) -> f64 {
    let mut h = vec![vec![0.0; n + 1]; m + 1];
    for i in 1..=m {
        h[i][0] = h[i - 1][0] + g;
    }
    for j in 1..=n {
        h[0][j] = h[0][j - 1] + g;
    }
    for i in 1..=m {
        for j in 1..=n {
            h[i][j] = (h[i - 1][j - 1] + sub(i - 1, j - 1))
                .max(h[i][j - 1] + g)
                .max(h[i - 1][j] + g);
        }
    }
    h[m][n]
}

/// Brute force: best score over every global alignment (small inputs only), affine gaps.
fn brute_force(m: usize, n: usize, sub: &dyn Fn(usize, usize) -> f64, gaps: Gaps) -> f64 {
    // state: 0 = last column a match (or start), 1 = gap in A, 2 = gap in B
    fn go(i: usize, j: usize, st: u8, m: usize, n: usize, sub: &dyn Fn(usize, usize) -> f64, g: Gaps) -> f64 {
        if i == m && j == n {
            return 0.0;
        }
        let mut best = f64::NEG_INFINITY;
        if i < m && j < n {
            best = best.max(sub(i, j) + go(i + 1, j + 1, 0, m, n, sub, g));
        }
        if j < n {
            let c = if st == 1 { g.extend } else { g.open };
            best = best.max(c + go(i, j + 1, 1, m, n, sub, g));
        }
        if i < m {
            let c = if st == 2 { g.extend } else { g.open };
            best = best.max(c + go(i + 1, j, 2, m, n, sub, g));
        }
        best
    }
    go(0, 0, 0, m, n, sub, gaps)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn affine_with_open_equal_extend_is_linear_nw_exactly(
        a in prop::collection::vec(0usize..6, 0..20),
        b in prop::collection::vec(0usize..6, 0..20),
        sub in prop::collection::vec(-3.0f64..3.0, 36),
        g in -2.0f64..0.0,
    ) {
        let s = |i: usize, j: usize| sub[a[i] * 6 + b[j]];
        let gaps = Gaps { open: g, extend: g };
        let dp = Aligner::default().score(a.len(), b.len(), s, gaps);
        prop_assert_eq!(dp.to_bits(), linear_nw(a.len(), b.len(), &s, g).to_bits());
        // The traceback path's matrices run the full affine recursion: same value again.
        let al = Aligner::default().align(a.len(), b.len(), s, gaps).unwrap();
        prop_assert_eq!(al.score.to_bits(), dp.to_bits());
    }

    #[test]
    fn affine_score_is_the_best_alignment(
        a in prop::collection::vec(0usize..4, 0..6),
        b in prop::collection::vec(0usize..4, 0..6),
        sub in prop::collection::vec(-3.0f64..3.0, 16),
        open in -3.0f64..0.0,
        frac in 0.0f64..=1.0,
    ) {
        let s = |i: usize, j: usize| sub[a[i] * 4 + b[j]];
        let gaps = Gaps { open, extend: open * frac };
        let dp = Aligner::default().score(a.len(), b.len(), s, gaps);
        let bf = brute_force(a.len(), b.len(), &s, gaps);
        prop_assert!((dp - bf).abs() < 1e-9, "dp {} brute force {}", dp, bf);
    }

    #[test]
    fn rescoring_the_traceback_gives_the_dp_score(
        a in prop::collection::vec(0usize..5, 0..25),
        b in prop::collection::vec(0usize..5, 0..25),
        sub in prop::collection::vec(-3.0f64..3.0, 25),
        open in -3.0f64..0.0,
        frac in 0.0f64..=1.0,
    ) {
        let s = |i: usize, j: usize| sub[a[i] * 5 + b[j]];
        let gaps = Gaps { open, extend: open * frac };
        let al = Aligner::default().align(a.len(), b.len(), s, gaps).unwrap();
        prop_assert_eq!(rescore(&al).to_bits(), al.score.to_bits());
        prop_assert_eq!(al.score.to_bits(), Aligner::default().score(a.len(), b.len(), s, gaps).to_bits());
        // Every gene of both sequences appears once, in order.
        let ia: Vec<usize> = al.ops.iter().filter_map(|op| match *op {
            _core::align::Op::Match { i, .. } | _core::align::Op::GapB { i } => Some(i), _ => None }).collect();
        prop_assert_eq!(ia, (0..a.len()).collect::<Vec<_>>());
    }

    #[test]
    fn checkpointed_traceback_is_the_whole_table_traceback(
        a in prop::collection::vec(0usize..4, 0..30),
        b in prop::collection::vec(0usize..4, 0..30),
        sub in prop::collection::vec(-3.0f64..3.0, 16),
        open in -3.0f64..0.0,
        frac in 0.0f64..=1.0,
        block in 1usize..12,
    ) {
        let s = |i: usize, j: usize| sub[a[i] * 4 + b[j]];
        let gaps = Gaps { open, extend: open * frac };
        let whole = Aligner::default().align(a.len(), b.len(), s, gaps).unwrap();
        let blocks = Aligner::default().align_in_blocks(a.len(), b.len(), s, gaps, block).unwrap();
        prop_assert_eq!(&blocks.ops, &whole.ops);
        prop_assert_eq!(blocks.score.to_bits(), whole.score.to_bits());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&blocks.column_scores), bits(&whole.column_scores));
    }

    #[test]
    fn parallel_lane_kernel_equals_serial_scalar_bit_for_bit(table in table_strategy(5), seqs in seqs_strategy(5, 80)) {
        let pop = population(&table, &seqs);
        let n = pop.len();
        let plan = matrix::Plan::new(&pop, 0..n);
        let mut one = vec![0.0f64; n * n];
        let mut two = vec![0.0f64; n * n];
        threads::pool(Some(1)).unwrap().install(|| matrix::fill_matrix(&pop, &table, &plan, 0..plan.n_groups(), 0..n, 0..n, &mut one, &Stop::never())).unwrap();
        threads::pool(Some(2)).unwrap().install(|| matrix::fill_matrix(&pop, &table, &plan, 0..plan.n_groups(), 0..n, 0..n, &mut two, &Stop::never())).unwrap();
        let mut al = Aligner::default();
        for i in 0..n {
            for j in 0..n {
                prop_assert_eq!(one[i * n + j].to_bits(), two[i * n + j].to_bits());
                // pop.similarity is the plain scalar aligner: the lanes reproduce it exactly.
                let direct = if i == j { 1.0 } else { pop.similarity(&table, i, j, &mut al) };
                prop_assert_eq!(one[i * n + j].to_bits(), direct.to_bits());
                prop_assert!((0.0..=1.0).contains(&one[i * n + j]));
            }
        }
        // Rows against other columns (a cross matrix), planned over a row subset.
        let q = n / 2;
        let plan_q = matrix::Plan::new(&pop, 0..q);
        let mut cross = vec![0.0f64; q * (n - q)];
        matrix::fill_matrix(&pop, &table, &plan_q, 0..plan_q.n_groups(), 0..q, q..n, &mut cross, &Stop::never()).unwrap();
        for i in 0..q {
            for j in q..n {
                prop_assert_eq!(cross[i * (n - q) + j - q].to_bits(), pop.similarity(&table, i, j, &mut al).to_bits());
            }
        }
    }

    #[test]
    fn symmetric_half_computation_and_condensed_are_exact(seqs in seqs_strategy(4, 80), affine in any::<bool>()) {
        let t = 4;
        let base: Vec<f64> = (0..t * t).map(|k| { let (x, y) = (k / t, k % t); if x == y { 3.0 } else { -0.25 * (x + y) as f64 } }).collect();
        let terms = (0..t * t).map(|_| vec![Term { param: 0, weight: 0.5, norm: 4.0 }]).collect();
        let gaps = if affine { Gaps { open: -1.0, extend: -0.25 } } else { Gaps { open: -0.5, extend: -0.5 } };
        let sym = ScoreTable::new(t, 1, base, terms, gaps, LowerBound::AllGaps).unwrap();
        prop_assert!(sym.is_symmetric());
        let pop = population(&sym, &seqs);
        let n = pop.len();
        let plan = matrix::Plan::new(&pop, 0..n);
        let mut full = vec![-7.0f64; n * n];
        matrix::fill_matrix(&pop, &sym, &plan, 0..plan.n_groups(), 0..n, 0..n, &mut full, &Stop::never()).unwrap();
        matrix::mirror_missing(&plan, n, &mut full);
        let mut cond = vec![0.0f64; condensed_offset(n, n)];
        matrix::fill_condensed(&pop, &sym, &plan, 0..plan.n_groups(), &mut cond, &Stop::never()).unwrap();
        let mut al = Aligner::default();
        for i in 0..n {
            for j in 0..n {
                // Each pair was aligned in one orientation only: both must equal the scalar value.
                let direct = if i == j { 1.0 } else { pop.similarity(&sym, i, j, &mut al) };
                prop_assert_eq!(full[i * n + j].to_bits(), direct.to_bits());
                if j > i {
                    prop_assert_eq!(full[i * n + j].to_bits(), cond[condensed_offset(n, i) + j - i - 1].to_bits());
                }
            }
        }
    }
}

#[test]
fn empty_and_malformed_input_is_an_error_not_a_panic() {
    let t = ScoreTable::new(
        1,
        1,
        vec![1.0],
        vec![vec![]],
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    assert_eq!(
        Population::new(&t, &[0, 0], &[1.0, 1.0], &[0, 2, 2]).unwrap_err(),
        Error::EmptySequence { seq: 1 }
    );
    assert!(matches!(Population::new(&t, &[], &[], &[0]), Ok(p) if p.is_empty()));
    assert!(matches!(Population::new(&t, &[0], &[1.0], &[]), Err(Error::Offsets(_))));
    assert!(matches!(
        Population::new(&t, &[0], &[1.0], &[0, 3]),
        Err(Error::Offsets(_))
    ));
    assert!(matches!(
        Population::new(&t, &[0, 0], &[1.0, 1.0], &[0, 2, 1, 2]),
        Err(Error::Offsets(_))
    ));
    assert!(matches!(
        Population::new(&t, &[3], &[1.0], &[0, 1]),
        Err(Error::UnknownType { code: 3, .. })
    ));
    assert!(matches!(
        Population::new(&t, &[0], &[1.0, 2.0], &[0, 1]),
        Err(Error::ParamShape { .. })
    ));
    let with_term = ScoreTable::new(
        1,
        1,
        vec![1.0],
        vec![vec![Term {
            param: 0,
            weight: 1.0,
            norm: 1.0,
        }]],
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    assert!(matches!(
        Population::new(&with_term, &[0], &[f64::NAN], &[0, 1]),
        Err(Error::NonFinite { .. })
    ));
    // A NaN in a column no rule reads is fine.
    assert!(Population::new(&t, &[0], &[f64::NAN], &[0, 1]).is_ok());
    let pop = Population::new(&t, &[0], &[1.0], &[0, 1]).unwrap();
    let plan = matrix::Plan::new(&pop, 0..1);
    let mut out = vec![0.0; 4];
    assert!(matrix::fill_matrix(&pop, &t, &plan, 0..1, 0..2, 0..2, &mut out, &Stop::never()).is_err());
    let wrong_length = matrix::fill_matrix(&pop, &t, &plan, 0..1, 0..1, 0..1, &mut out, &Stop::never()).unwrap_err();
    assert_eq!(
        wrong_length,
        Error::Shape {
            what: "the output matrix",
            len: 4,
            expected: 1
        }
    );
    assert_eq!(wrong_length.to_string(), "the output matrix has length 4, expected 1");
    let mut cond = vec![0.0; 3];
    assert!(matches!(
        matrix::fill_condensed(&pop, &t, &plan, 0..1, &mut cond, &Stop::never()),
        Err(Error::Shape { expected: 0, .. })
    ));
    assert!(matrix::fill_matrix(&pop, &t, &plan, 0..5, 0..1, 0..1, &mut out[..1], &Stop::never()).is_err());
}

#[test]
fn long_sequences_have_no_limit() {
    let t = ScoreTable::new(
        2,
        1,
        vec![2.0, -1.0, -1.0, 1.0],
        vec![vec![], vec![], vec![], vec![]],
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    let n = 500;
    let codes: Vec<u32> = (0..2 * n).map(|k| (k % 2) as u32).collect();
    let params = vec![0.0; 2 * n];
    let pop = Population::new(&t, &codes, &params, &[0, n, 2 * n]).unwrap();
    let mut al = Aligner::default();
    assert_eq!(pop.similarity(&t, 0, 1, &mut al), 1.0);
    assert_eq!(pop.self_scores()[0], 1.5 * n as f64);
}

#[test]
fn the_gene_cache_lives_beside_the_table_and_only_grows() {
    let t = ScoreTable::new(
        2,
        1,
        vec![2.0, -1.0, -1.0, 1.0],
        vec![
            vec![Term {
                param: 0,
                weight: 1.0,
                norm: 4.0,
            }],
            vec![],
            vec![],
            vec![],
        ],
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    let cache = GeneCache::new(&t);
    // Genes (0, 1.0), (1, -): two distinct; then (0, 2.0), (1, -): one new.
    let first = Population::with_cache(&t, &cache, &[0, 1], &[1.0, 0.0], &[0, 2], &Stop::never()).unwrap();
    let second = Population::with_cache(&t, &cache, &[0, 1], &[2.0, 0.0], &[0, 2], &Stop::never()).unwrap();
    assert_eq!(first.n_distinct_genes(), 2);
    assert_eq!(second.n_distinct_genes(), 3);
    // Without the cache a population knows only its own genes; the table itself is untouched
    // plain data, so both give the same scores.
    let alone = Population::new(&t, &[0, 1], &[2.0, 0.0], &[0, 2]).unwrap();
    assert_eq!(alone.n_distinct_genes(), 2);
    assert_eq!(alone.self_scores(), second.self_scores());
    let again = Population::with_cache(&t, &cache, &[0, 1], &[1.0, 0.0], &[0, 2], &Stop::never()).unwrap();
    assert_eq!(again.n_distinct_genes(), 3);
}

#[test]
fn thread_counts_are_capped_and_few_pools_are_kept() {
    let max = threads::max_threads();
    assert!(max >= threads::THREAD_CAP);
    assert!(matches!(threads::check_threads(0, "n_threads"), Err(Error::Threads(_))));
    let too_many = threads::check_threads(max + 1, "n_threads").unwrap_err();
    assert!(too_many.to_string().contains("n_threads must be between 1 and"));
    assert!(matches!(threads::pool(Some(1_000_000_000)), Err(Error::Threads(_))));
    for n in 1..=9 {
        let pool = threads::pool(Some(n)).unwrap();
        assert_eq!(pool.current_num_threads(), n);
    }
    let cached = threads::cached_pools();
    assert!(cached.len() <= threads::POOL_CACHE, "{cached:?}");
    assert_eq!(cached.last(), Some(&9));
}

#[test]
fn long_alignments_stop_when_asked() {
    let gaps = Gaps {
        open: -1.0,
        extend: -0.5,
    };
    let sub = |i: usize, j: usize| if (i + j).is_multiple_of(3) { 1.0 } else { -1.0 };
    let stop = Stop::new();
    let mut al = Aligner::with_stop(stop.clone());
    assert!(al.score(1000, 1000, sub, gaps).is_finite());
    stop.request();
    assert!(al.score(1000, 1000, sub, gaps).is_nan());
    assert_eq!(al.align(1000, 1000, sub, gaps).unwrap_err(), Error::Interrupted);
    assert_eq!(
        al.align_in_blocks(1000, 1000, sub, gaps, 30).unwrap_err(),
        Error::Interrupted
    );
    // Short alignments finish either way (the flag is read every STOP_EVERY rows).
    assert!(al.align(10, 10, sub, gaps).is_ok());

    let t = ScoreTable::new(
        1,
        1,
        vec![1.0],
        vec![vec![]],
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    let n = 600;
    let pop = Population::new(&t, &vec![0; 2 * n], &vec![0.0; 2 * n], &[0, n, 2 * n]).unwrap();
    let plan = matrix::Plan::new(&pop, 0..2);
    let mut out = vec![0.0; 4];
    let r = matrix::fill_matrix(&pop, &t, &plan, 0..1, 0..2, 0..2, &mut out, &stop);
    assert_eq!(r, Err(Error::Interrupted));
    let cache = GeneCache::new(&t);
    let r = Population::with_cache(&t, &cache, &vec![0; 2 * n], &vec![0.0; 2 * n], &[0, n, 2 * n], &stop);
    assert_eq!(r.unwrap_err(), Error::Interrupted);
}

#[test]
fn traceback_memory_grows_with_sqrt_of_the_rows_and_refuses_the_impossible() {
    let gaps = Gaps {
        open: -1.0,
        extend: -0.5,
    };
    let sub = |i: usize, j: usize| if i % 7 == j % 5 { 2.0 } else { -1.0 };
    // 3,000 x 3,000 would be a 216 MB whole table; checkpointed it is a few MB, same answer.
    let long = Aligner::default().align(3000, 3000, sub, gaps).unwrap();
    let dp = Aligner::default().score(3000, 3000, sub, gaps);
    assert_eq!(long.score.to_bits(), dp.to_bits());
    assert_eq!(rescore(&long).to_bits(), dp.to_bits());
    // A table no machine holds: refused before anything is allocated.
    let err = Aligner::default().align(1 << 40, 1 << 40, sub, gaps).unwrap_err();
    assert!(matches!(err, Error::Memory { .. }), "{err}");
    assert!(err.to_string().starts_with("cannot allocate "), "{err}");
    assert!(err.to_string().contains("traceback"), "{err}");
}

#[test]
fn huge_buffers_are_an_error_naming_the_size() {
    let what = || "a 100000 x 100000 f64 array".to_string();
    let err = _core::mem::filled(1u128 << 50, 0.0f64, &what).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot allocate 8.0 PiB for a 100000 x 100000 f64 array"),
        "{msg}"
    );
    let err = _core::mem::filled(u128::MAX, 0u8, &what).unwrap_err();
    assert!(
        err.to_string().contains("more than 16 EiB") || err.to_string().contains("address space"),
        "{err}"
    );
    assert_eq!(_core::mem::filled(3, 1.5f64, &what).unwrap(), vec![1.5; 3]);
}

#[test]
fn few_rows_against_many_columns_split_over_threads_exactly() {
    // One query group against ~1,500 columns: the columns are cut into blocks so that every
    // thread works; each cell and each row's k nearest (ties by lower index: duplicated
    // sequences tie) are those of the plain scalar pass, for 1 to 7 threads.
    let t = 4u32;
    let table = ScoreTable::new(
        t as usize,
        1,
        vec![
            2.0, -1.0, 0.5, -0.5, -1.0, 1.5, -0.5, 0.0, 0.5, -0.5, 1.0, -1.0, -0.5, 0.0, -1.0, 2.5,
        ],
        (0..16)
            .map(|_| {
                vec![Term {
                    param: 0,
                    weight: 0.5,
                    norm: 10.0,
                }]
            })
            .collect(),
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap();
    let mut x = 7u64;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x >> 33
    };
    let mut seqs: Vec<Vec<(u32, f64)>> = (0..1500)
        .map(|_| {
            (0..1 + next() % 12)
                .map(|_| ((next() % u64::from(t)) as u32, (next() % 4) as f64))
                .collect()
        })
        .collect();
    for d in 0..40 {
        seqs[100 + d * 30] = seqs[d].clone(); // ties
    }
    let pop = population(&table, &seqs);
    let n = pop.len();
    let mut al = Aligner::default();
    for q in [1usize, 2, 3, 5, 8, 15, 20] {
        let want: Vec<f64> = (0..q)
            .flat_map(|i| (q..n).map(move |j| (i, j)))
            .map(|(i, j)| pop.similarity(&table, i, j, &mut al))
            .collect();
        let k = 7;
        let mut want_nn: Vec<(i64, f64)> = Vec::new();
        for i in 0..q {
            let mut row: Vec<(f64, usize)> = (q..n).map(|j| (want[i * (n - q) + j - q], j)).collect();
            row.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            want_nn.extend(row[..k].iter().map(|&(s, j)| ((j - q) as i64, s)));
        }
        // The same indices and the same similarities, bit for bit, as the scalar pass.
        let same_nn = |idx: &[i64], sim: &[f64]| {
            idx.len() == want_nn.len()
                && idx
                    .iter()
                    .zip(sim)
                    .zip(&want_nn)
                    .all(|((&i, s), &(wi, ws))| i == wi && s.to_bits() == ws.to_bits())
        };
        for threads in [1, 2, 3, 7] {
            let plan = matrix::Plan::new(&pop, 0..q);
            let pool = threads::pool(Some(threads)).unwrap();
            let mut got = vec![0.0f64; q * (n - q)];
            pool.install(|| {
                matrix::fill_matrix(
                    &pop,
                    &table,
                    &plan,
                    0..plan.n_groups(),
                    0..q,
                    q..n,
                    &mut got,
                    &Stop::never(),
                )
            })
            .unwrap();
            assert!(
                got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "matrix q={q} threads={threads}"
            );
            let (mut idx, mut sim) = (vec![0i64; q * k], vec![0.0f64; q * k]);
            pool.install(|| {
                matrix::fill_nearest(
                    &pop,
                    &table,
                    &plan,
                    0..plan.n_groups(),
                    0..q,
                    q..n,
                    k,
                    false,
                    &mut idx,
                    &mut sim,
                    &Stop::never(),
                )
            })
            .unwrap();
            assert!(same_nn(&idx, &sim), "nearest q={q} threads={threads}");
            // The dispatcher's few-rows tier gives the same cells and neighbours.
            let pool_tier = Limits {
                here_cells: 0,
                ..Limits::default()
            };
            let job = Job::with_limits(&pop, &table, 0..q, q..n, Kind::Matrix, pool_tier).unwrap();
            if (2..=engine::FEW_ROWS).contains(&q) {
                assert_eq!(job.tier(), Tier::FewRows, "q={q}");
                let mut few = vec![0.0f64; q * (n - q)];
                pool.install(|| job.run_all(&mut Target::Matrix(&mut few[..]), &Stop::never()))
                    .unwrap();
                assert!(
                    few.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "fill_few q={q} threads={threads}"
                );
                let kind = Kind::Nearest { k, exclude_self: false };
                let job = Job::with_limits(&pop, &table, 0..q, q..n, kind, pool_tier).unwrap();
                assert_eq!(job.tier(), Tier::FewRows);
                let (mut idx, mut sim) = (vec![0i64; q * k], vec![0.0f64; q * k]);
                pool.install(|| job.run_all::<f64>(&mut Target::Nearest(&mut idx, &mut sim), &Stop::never()))
                    .unwrap();
                assert!(same_nn(&idx, &sim), "nearest_few q={q} threads={threads}");
            } else {
                assert_eq!(job.tier(), Tier::Lanes, "q={q} takes the lane kernel");
            }
        }
    }
}
