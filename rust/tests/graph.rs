//! Graph edit distance (`graph`): the exact search against a brute-force enumeration of every
//! edit path, the bounded method and the normaliser as upper bounds, the similarity's range,
//! identity and symmetry, isomorphism invariance, and the matrix job against pair calls.

use _core::align::Stop;
use _core::graph::{cell_distance, distance, Cell, GraphArch, GraphCosts, MatrixJob, Method, Values, NO_EDGE};
use proptest::prelude::*;

/// Unit costs: 0 for equal labels, 1 for every other edit.
fn unit(nl: usize, el: usize) -> GraphCosts {
    let square = |n: usize| {
        (0..n * n)
            .map(|k| if k / n == k % n { 0.0 } else { 1.0 })
            .collect::<Vec<_>>()
    };
    GraphCosts::new(
        nl,
        square(nl),
        vec![1.0; nl],
        vec![1.0; nl],
        el,
        square(el),
        vec![1.0; el],
        vec![1.0; el],
    )
    .unwrap()
}

/// Edges i -> j (i < j) of an `n`-node DAG where `mask` says so, with labels below `el`.
fn dag_edges(n: usize, mask: &[u32], el: u32) -> Vec<(u32, u32, u32)> {
    let mut edges = Vec::new();
    let mut k = 0;
    for i in 0..n {
        for j in i + 1..n {
            let m = mask[k % mask.len()];
            k += 1;
            if !m.is_multiple_of(3) {
                edges.push((i as u32, j as u32, m % el));
            }
        }
    }
    edges
}

/// A random DAG cell with `n_in` inputs and `n_out` outputs (as many as fit).
fn cell(labels: &[u32], mask: &[u32], el: u32, n_in: usize, n_out: usize) -> Cell {
    let n = labels.len();
    let n_in = n_in.min(n);
    Cell::new(labels.to_vec(), &dag_edges(n, mask, el), n_in, n_out.min(n - n_in)).unwrap()
}

/// The same cell's data, for the brute force: labels, adjacency, pins.
struct Plain {
    labels: Vec<u32>,
    adj: Vec<u32>,
    n_in: usize,
    n_out: usize,
}

fn plain(labels: &[u32], mask: &[u32], el: u32, n_in: usize, n_out: usize) -> Plain {
    let n = labels.len();
    let mut adj = vec![NO_EDGE; n * n];
    for (i, j, l) in dag_edges(n, mask, el) {
        adj[i as usize * n + j as usize] = l;
    }
    let n_in = n_in.min(n);
    Plain {
        labels: labels.to_vec(),
        adj,
        n_in,
        n_out: n_out.min(n - n_in),
    }
}

/// Every edit path (every injective partial map that keeps the pins), costed from scratch.
fn brute_force(c: &[Vec<f64>; 6], nl: usize, el: usize, g: &Plain, h: &Plain) -> f64 {
    let (n, m) = (g.labels.len(), h.labels.len());
    let mut pinned = vec![None; n];
    for k in 0..g.n_in.min(h.n_in) {
        pinned[k] = Some(k);
    }
    for k in 0..g.n_out.min(h.n_out) {
        pinned[n - g.n_out + k] = Some(m - h.n_out + k);
    }
    // Every pinned node of H is taken by its partner or inserted; a pinned node of G without
    // a partner is deleted (`Some(usize::MAX)`).
    let h_pinned: Vec<bool> = (0..m).map(|v| v < h.n_in || v >= m - h.n_out).collect();
    for u in 0..n {
        if (u < g.n_in || u >= n - g.n_out) && pinned[u].is_none() {
            pinned[u] = Some(usize::MAX);
        }
    }
    let edge = |gl: u32, hl: u32| match (gl == NO_EDGE, hl == NO_EDGE) {
        (true, true) => 0.0,
        (false, true) => c[4][gl as usize],
        (true, false) => c[5][hl as usize],
        (false, false) => c[3][gl as usize * el + hl as usize],
    };
    let mut best = f64::INFINITY;
    let mut map = vec![usize::MAX; n];
    fn go(
        u: usize,
        map: &mut Vec<usize>,
        used: &mut Vec<bool>,
        pinned: &[Option<usize>],
        h_pinned: &[bool],
        eval: &dyn Fn(&[usize]) -> f64,
        best: &mut f64,
    ) {
        if u == map.len() {
            *best = best.min(eval(map));
            return;
        }
        if let Some(v) = pinned[u] {
            map[u] = v;
            if v != usize::MAX {
                used[v] = true;
            }
            go(u + 1, map, used, pinned, h_pinned, eval, best);
            if v != usize::MAX {
                used[v] = false;
            }
            return;
        }
        map[u] = usize::MAX;
        go(u + 1, map, used, pinned, h_pinned, eval, best);
        for v in 0..used.len() {
            if !used[v] && !h_pinned[v] {
                used[v] = true;
                map[u] = v;
                go(u + 1, map, used, pinned, h_pinned, eval, best);
                used[v] = false;
            }
        }
    }
    let eval = |map: &[usize]| {
        let mut cost = 0.0;
        let mut inv = vec![usize::MAX; m];
        for (u, &v) in map.iter().enumerate() {
            if v == usize::MAX {
                cost += c[1][g.labels[u] as usize];
            } else {
                cost += c[0][g.labels[u] as usize * nl + h.labels[v] as usize];
                inv[v] = u;
            }
        }
        for v in 0..m {
            if inv[v] == usize::MAX {
                cost += c[2][h.labels[v] as usize];
            }
        }
        // Every ordered pair of G's nodes, and of H's nodes not both images.
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let hl = if map[a] == usize::MAX || map[b] == usize::MAX {
                    NO_EDGE
                } else {
                    h.adj[map[a] * m + map[b]]
                };
                cost += edge(g.adj[a * n + b], hl);
            }
        }
        for x in 0..m {
            for y in 0..m {
                if x != y && (inv[x] == usize::MAX || inv[y] == usize::MAX) {
                    cost += edge(NO_EDGE, h.adj[x * m + y]);
                }
            }
        }
        cost
    };
    let mut used = vec![false; m];
    go(0, &mut map, &mut used, &pinned, &h_pinned, &eval, &mut best);
    best
}

/// Random edit costs over `nl` node and `el` edge labels (zero diagonals, symmetric or
/// directed), and their arrays for the brute force. The values are on the core's cost grid
/// (multiples of 2^-36), which it rounds every cost to.
fn raw_costs(nl: usize, el: usize, raw: &[f64], symmetric: bool) -> (GraphCosts, [Vec<f64>; 6]) {
    let mut k = 0;
    let grid = (1u64 << 36) as f64;
    let mut next = || {
        k += 1;
        (raw[k % raw.len()] * grid).round() / grid
    };
    let mut square = |n: usize| {
        let mut m = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..n {
                if a < b || (!symmetric && a != b) {
                    m[a * n + b] = next();
                }
            }
        }
        if symmetric {
            for a in 0..n {
                for b in 0..a {
                    m[a * n + b] = m[b * n + a];
                }
            }
        }
        m
    };
    let ns = square(nl);
    let es = square(el);
    let nd: Vec<f64> = (0..nl).map(|_| next()).collect();
    let ni = if symmetric {
        nd.clone()
    } else {
        (0..nl).map(|_| next()).collect()
    };
    let ed: Vec<f64> = (0..el).map(|_| next()).collect();
    let ei = if symmetric {
        ed.clone()
    } else {
        (0..el).map(|_| next()).collect()
    };
    let c = GraphCosts::new(
        nl,
        ns.clone(),
        nd.clone(),
        ni.clone(),
        el,
        es.clone(),
        ed.clone(),
        ei.clone(),
    )
    .unwrap();
    (c, [ns, nd, ni, es, ed, ei])
}

fn arch(c: Cell) -> GraphArch {
    GraphArch::new(vec![c])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn exact_search_equals_brute_force(
        gl in prop::collection::vec(0u32..3, 1..7),
        hl in prop::collection::vec(0u32..3, 1..7),
        gm in prop::collection::vec(0u32..9, 1..21),
        hm in prop::collection::vec(0u32..9, 1..21),
        pins in (0usize..3, 0usize..2),
        raw in prop::collection::vec(0.0f64..3.0, 5..40),
        symmetric in any::<bool>(),
    ) {
        let (nl, el) = (3, 3);
        let (c, arrays) = raw_costs(nl, el, &raw, symmetric);
        let (g, h) = (cell(&gl, &gm, el as u32, pins.0, pins.1), cell(&hl, &hm, el as u32, pins.0, pins.1));
        let (pg, ph) = (plain(&gl, &gm, el as u32, pins.0, pins.1), plain(&hl, &hm, el as u32, pins.0, pins.1));
        let want = brute_force(&arrays, nl, el, &pg, &ph);
        let stop = Stop::never();
        let exact = cell_distance(&c, &g, &h, Method::Exact, &stop).unwrap();
        prop_assert!((exact.distance - want).abs() <= 1e-9 * (1.0 + want), "exact {} != brute force {}", exact.distance, want);
        prop_assert!(exact.exact);
        let bounded = cell_distance(&c, &g, &h, Method::Bounded, &stop).unwrap();
        prop_assert!(bounded.distance >= want - 1e-9 && bounded.distance <= bounded.dmax + 1e-9);
        prop_assert!(exact.dmax >= want - 1e-9);
        let s = exact.similarity();
        prop_assert!((0.0..=1.0).contains(&s));
        if symmetric {
            // Equal both ways: mathematically for the cells, bit for bit for architectures
            // (computed in the order of their keys), exact and bounded alike.
            let back = cell_distance(&c, &h, &g, Method::Exact, &stop).unwrap();
            prop_assert!((back.distance - exact.distance).abs() <= 1e-9 * (1.0 + want));
            let (ag, ah) = (arch(g.clone()), arch(h.clone()));
            for method in [Method::Exact, Method::Bounded] {
                let there = distance(&c, &ag, &ah, method, &stop).unwrap();
                let back = distance(&c, &ah, &ag, method, &stop).unwrap();
                prop_assert_eq!(there.distance.to_bits(), back.distance.to_bits());
                prop_assert_eq!(there.dmax.to_bits(), back.dmax.to_bits());
            }
        }
    }

    #[test]
    fn renumbering_inner_nodes_keeps_distance_zero(
        gl in prop::collection::vec(0u32..3, 3..9),
        gm in prop::collection::vec(0u32..9, 1..30),
        seed in any::<u64>(),
    ) {
        let el = 3u32;
        let g = cell(&gl, &gm, el, 1, 1);
        let n = gl.len();
        // A random permutation of the inner nodes 1..n-1.
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for k in (2..n - 1).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let r = 1 + (s >> 33) as usize % k;
            perm.swap(k, r);
        }
        let pg = plain(&gl, &gm, el, 1, 1);
        let mut labels = vec![0; n];
        for u in 0..n {
            labels[perm[u]] = gl[u];
        }
        let mut edges = Vec::new();
        for a in 0..n {
            for b in 0..n {
                let l = pg.adj[a * n + b];
                if l != NO_EDGE {
                    edges.push((perm[a] as u32, perm[b] as u32, l));
                }
            }
        }
        let h = Cell::new(labels, &edges, 1, 1).unwrap();
        let c = unit(3, 3);
        let d = cell_distance(&c, &g, &h, Method::Exact, &Stop::never()).unwrap();
        prop_assert_eq!(d.distance, 0.0);
        prop_assert_eq!(d.similarity(), 1.0);
    }
}

#[test]
fn matrix_job_equals_pair_calls_in_every_layout() {
    let c = unit(3, 2);
    let archs: Vec<GraphArch> = (0..9u32)
        .map(|k| {
            let labels: Vec<u32> = (0..3 + k % 4).map(|i| (i * 7 + k) % 3).collect();
            let mask: Vec<u32> = (0..12).map(|i| (i * 5 + k * 3) % 7).collect();
            arch(cell(&labels, &mask, 2, 1, 1))
        })
        .collect();
    let stop = Stop::never();
    let n = archs.len();
    let pair = |i: usize, j: usize| {
        distance(&c, &archs[i], &archs[j], Method::Exact, &stop)
            .unwrap()
            .similarity()
    };
    for condensed in [false, true] {
        let job = MatrixJob::new(&c, &archs, None, condensed, Values::Similarity, Method::Exact).unwrap();
        let mut out = vec![f64::NAN; job.output_len()];
        for rows in job.batches(5) {
            job.run(rows, &mut out, &stop).unwrap();
        }
        job.finish(&mut out);
        let mut k = 0;
        for i in 0..n {
            for j in 0..n {
                if condensed {
                    if j > i {
                        assert_eq!(out[k].to_bits(), pair(i, j).to_bits());
                        k += 1;
                    }
                } else {
                    let want = if i == j { 1.0 } else { pair(i, j) };
                    assert_eq!(out[i * n + j].to_bits(), want.to_bits(), "({i}, {j})");
                }
            }
        }
    }
    let (rows, cols) = archs.split_at(4);
    let job = MatrixJob::new(&c, rows, Some(cols), false, Values::Distance, Method::Exact).unwrap();
    let mut out = vec![0.0f32; job.output_len()];
    assert_eq!(job.run(0..4, &mut out, &stop).unwrap(), 0);
    for i in 0..4 {
        for j in 0..cols.len() {
            let d = distance(&c, &rows[i], &cols[j], Method::Exact, &stop).unwrap().distance;
            assert_eq!(out[i * cols.len() + j], d as f32);
        }
    }
}

#[test]
fn bounded_pairs_are_counted_and_exact_is_refused_above_its_limit() {
    let c = unit(2, 1);
    let big = |k: u32| {
        let labels: Vec<u32> = (0..40).map(|i| (i + k) % 2).collect();
        let edges: Vec<(u32, u32, u32)> = (0..39).map(|i| (i, i + 1, 0)).collect();
        arch(Cell::new(labels, &edges, 1, 1).unwrap())
    };
    let archs = vec![big(0), big(1)];
    let stop = Stop::never();
    let job = MatrixJob::new(&c, &archs, None, false, Values::Similarity, Method::Auto { limit: 12 }).unwrap();
    let mut out = vec![0.0; 4];
    assert_eq!(job.run(0..2, &mut out, &stop).unwrap(), 1);
    let err = distance(&c, &archs[0], &archs[1], Method::Exact, &stop).unwrap_err();
    assert!(err.to_string().contains("limited to cells of 32 nodes"), "{err}");
}

#[test]
fn bad_cells_and_costs_are_refused() {
    assert!(Cell::new(vec![0, 0], &[(0, 2, 0)], 1, 1)
        .unwrap_err()
        .to_string()
        .contains("the cell has 2 nodes"));
    assert!(Cell::new(vec![0, 0], &[(1, 1, 0)], 0, 0)
        .unwrap_err()
        .to_string()
        .contains("self loop"));
    assert!(Cell::new(vec![0, 0], &[(0, 1, 0), (0, 1, 0)], 0, 0)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    assert!(Cell::new(vec![0], &[], 1, 1).is_err());
    let err = GraphCosts::new(1, vec![0.5], vec![1.0], vec![1.0], 1, vec![0.0], vec![1.0], vec![1.0]).unwrap_err();
    assert!(err.to_string().contains("substitute by itself"), "{err}");
    let err = GraphCosts::new(1, vec![0.0], vec![-1.0], vec![1.0], 1, vec![0.0], vec![1.0], vec![1.0]).unwrap_err();
    assert!(err.to_string().contains(">= 0"), "{err}");
    let c = unit(1, 1);
    let a = arch(Cell::new(vec![3], &[], 0, 0).unwrap());
    assert!(MatrixJob::new(
        &c,
        std::slice::from_ref(&a),
        None,
        false,
        Values::Similarity,
        Method::Exact
    )
    .is_err());
}

#[test]
fn missing_cells_count_as_empty() {
    let c = unit(2, 1);
    let one = GraphArch::new(vec![Cell::new(vec![0, 1], &[(0, 1, 0)], 1, 1).unwrap()]);
    let two = GraphArch::new(vec![one.cells[0].clone(), one.cells[0].clone()]);
    let d = distance(&c, &one, &two, Method::Exact, &Stop::never()).unwrap();
    // The second cell inserted: two nodes and an edge; the normaliser: both cells of `two`
    // and the cell of `one` deleted or inserted whole.
    assert_eq!(d.distance, 3.0);
    assert_eq!(d.dmax, 9.0);
    assert_eq!(d.similarity(), 1.0 - 3.0 / 9.0);
}

#[test]
fn a_pin_without_a_partner_is_deleted_or_inserted_never_matched() {
    // g: input "a" and a free "b"; h: no pins; k: input "b" and a free "a" (unit costs).
    let c = unit(2, 1);
    let g = arch(Cell::new(vec![0, 1], &[], 1, 0).unwrap());
    let h = arch(Cell::new(vec![0, 1], &[], 0, 0).unwrap());
    let k = arch(Cell::new(vec![1, 0], &[], 1, 0).unwrap());
    let stop = Stop::never();
    let d = |x: &GraphArch, y: &GraphArch| distance(&c, x, y, Method::Exact, &stop).unwrap().distance;
    assert_eq!(d(&g, &k), 2.0); // the pinned inputs substitute a -> b, the free b -> a
    assert_eq!(d(&g, &h), 2.0); // g's input has no partner: deleted, and h's "a" inserted
    assert!(d(&g, &k) <= d(&g, &h) + d(&h, &k));
    // An input never matches an output: one edge from a pinned input, one from a pinned output.
    let up = arch(Cell::new(vec![0, 1], &[(0, 1, 0)], 1, 0).unwrap());
    let down = arch(Cell::new(vec![1, 0], &[(1, 0, 0)], 0, 1).unwrap());
    assert!(distance(&c, &up, &down, Method::Exact, &stop).unwrap().similarity() < 1.0);
    assert_eq!(d(&up, &down), d(&down, &up));
}

#[test]
fn bounded_is_symmetric_under_symmetric_costs() {
    let c = unit(2, 1);
    let a = arch(Cell::new(vec![0, 1, 0], &[(1, 2, 0), (2, 0, 0)], 0, 0).unwrap());
    let b = arch(Cell::new(vec![1, 0], &[(0, 1, 0)], 0, 0).unwrap());
    let stop = Stop::never();
    let ab = distance(&c, &a, &b, Method::Bounded, &stop).unwrap().distance;
    let ba = distance(&c, &b, &a, Method::Bounded, &stop).unwrap().distance;
    assert_eq!(ab, ba);
    assert_eq!(ab, distance(&c, &a, &b, Method::Exact, &stop).unwrap().distance);
}
