//! Criterion benchmarks of the kernel: one pair at L = 10/20/45, and an all-vs-all matrix.

use std::hint::black_box;

use _core::align::Aligner;
use _core::align::{Gaps, Stop};
use _core::matrix;
use _core::score::{LowerBound, ScoreTable, Term};
use _core::seq::Population;
use _core::threads;
use criterion::{criterion_group, criterion_main, Criterion};

/// A table shaped like the paper's: 16 types, 4 parameter columns, 1-3 terms per rule.
fn table() -> ScoreTable {
    let t = 16;
    let mut base = vec![-1.0; t * t];
    let mut terms = vec![Vec::new(); t * t];
    for x in 0..t {
        base[x * t + x] = 1.0 + (x % 7) as f64;
        terms[x * t + x] = (0..(x % 4))
            .map(|p| Term {
                param: p,
                weight: 0.6,
                norm: 112.0,
            })
            .collect();
    }
    ScoreTable::new(
        t,
        4,
        base,
        terms,
        Gaps {
            open: -0.5,
            extend: -0.5,
        },
        LowerBound::Paper,
    )
    .unwrap()
}

/// Deterministic pseudo-random population (xorshift), lengths in `lens`.
fn population(table: &ScoreTable, n: usize, lens: (usize, usize)) -> Population {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut codes, mut params, mut offsets) = (Vec::new(), Vec::new(), vec![0]);
    for _ in 0..n {
        let len = lens.0 + (next() as usize) % (lens.1 - lens.0 + 1);
        for _ in 0..len {
            codes.push((next() % 16) as u32);
            for _ in 0..4 {
                params.push((16 * (1 + next() % 8)) as f64);
            }
        }
        offsets.push(codes.len());
    }
    Population::new(table, &codes, &params, &offsets).unwrap()
}

fn bench(c: &mut Criterion) {
    let t = table();
    for len in [10usize, 20, 45] {
        let pop = population(&t, 2, (len, len));
        let mut al = Aligner::with_capacity(len);
        c.bench_function(&format!("pair_L{len}"), |b| {
            b.iter(|| black_box(pop.score(&t, 0, 1, &mut al)))
        });
    }
    let n = 400;
    let pop = population(&t, n, (5, 45));
    let mut out = vec![0.0f64; n * n];
    let plan = matrix::Plan::new(&pop, 0..n);
    for n_threads in [1usize, 2] {
        c.bench_function(&format!("matrix_400_lanes_{n_threads}threads"), |b| {
            b.iter(|| {
                threads::pool(Some(n_threads))
                    .unwrap()
                    .install(|| {
                        matrix::fill_matrix(
                            &pop,
                            &t,
                            &plan,
                            0..plan.n_groups(),
                            0..n,
                            0..n,
                            &mut out,
                            &Stop::never(),
                        )?;
                        matrix::mirror_missing(&plan, n, &mut out);
                        Ok::<(), _core::Error>(())
                    })
                    .unwrap();
            });
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
