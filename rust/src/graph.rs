//! Graph edit distance (GED) of cell-structured architectures: exact by depth-first branch and
//! bound, or bounded by an assignment (an upper bound, flagged as such), and the similarity
//! that normalises it into [0, 1].
//!
//! A [`Cell`] is a directed graph with labelled nodes and labelled edges (label ids into a
//! [`GraphCosts`] table). Its first `n_in` nodes are its designated inputs and its last `n_out`
//! nodes its designated outputs, in order: the `k`-th input of one cell is *pinned* to the
//! `k`-th input of the other (likewise outputs) for `k` below both counts; the other nodes map
//! freely. A [`GraphArch`] is one cell (NAS-Bench-101/201, a generic DAG) or several compared
//! position by position (DARTS: normal and reduction cell); its distance is the sum of its
//! cells' distances.
//!
//! An edit path maps every node of G to a node of H or to deletion, and inserts the rest of H.
//! Its cost is the sum of node substitutions, deletions and insertions, and of edge
//! substitutions (an edge of G whose end points map onto an edge of H), deletions and
//! insertions. GED is the least cost over all edit paths.
//!
//! **Normalisation.** `dmax(G, H)` is the larger of the cost of deleting all of G and inserting
//! all of H (nodes and edges), and the cost of the *trivial* path (pinned nodes mapped to their
//! partners, every other node of G deleted and of H inserted). The trivial path is an edit path,
//! so `GED <= dmax`, and `sim = 1 - GED / dmax` lies in [0, 1] (1 when `dmax` is 0). Under
//! costs where a substitution never costs more than a deletion and an insertion, `dmax` is
//! simply everything deleted and inserted. With positive costs for every real edit, `sim = 1`
//! exactly when G and H are isomorphic as labelled graphs with their pins; `sim` is symmetric
//! when the costs are.
//!
//! **Exact search.** Nodes of G are taken in a fixed order (pinned first, then by connection
//! to the nodes already taken); each is mapped to a free node of H or deleted, cheapest first.
//! A branch is cut when its cost plus a lower bound on what remains reaches the best complete
//! path found: the bound adds, for nodes and for edges separately, the larger of two one-sided
//! bounds (each remaining element of one graph pays at least its cheapest possible operation,
//! plus the surplus that must be deleted or inserted). The first bound to beat is the trivial
//! path, or for larger cells the assignment bound below.
//!
//! **Bounded method.** The bipartite approximation (Riesen and Bunke): a square assignment of
//! free nodes (substitute, delete, insert) whose costs add the node cost to an estimate of
//! its incident edges, solved by the Hungarian method (`pathfinding::kuhn_munkres_min`);
//! the node map it gives is improved by local moves (exchanges of images, moves to unused
//! nodes or to deletion) and costed exactly. The result is the cost of a real edit path,
//! so an upper bound on GED (and a lower bound on the similarity).

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

use crate::align::Stop;
use crate::error::{Error, Result};

/// "No edge" in an adjacency matrix.
pub const NO_EDGE: u32 = u32::MAX;
/// A node of G mapped to deletion.
const DELETED: u32 = u32::MAX;
/// Most nodes a cell may have for the exact search (the search's arrays live on the stack).
pub const EXACT_MAX_NODES: usize = 32;
/// Cells up to this many nodes get the exact distance by default (`Method::Auto`).
pub const DEFAULT_EXACT_LIMIT: usize = 12;
/// From this many free nodes on, the exact search starts from the assignment bound.
const ASSIGNMENT_FIRST: usize = 6;
/// Passes of local moves that improve the assignment's node map.
const IMPROVE_PASSES: usize = 4;
/// Search nodes between two looks at the stop flag.
const STOP_EVERY_NODES: u64 = 1 << 16;
/// Most the costs are scaled by for the integer Hungarian method.
const COST_SCALE: f64 = 1.0e6;

/// Edit costs over label ids: nodes (`nl` labels) and edges (`el` labels).
#[derive(Debug, Clone)]
pub struct GraphCosts {
    nl: usize,
    el: usize,
    node_sub: Vec<f64>,
    node_del: Vec<f64>,
    node_ins: Vec<f64>,
    edge_sub: Vec<f64>,
    edge_del: Vec<f64>,
    edge_ins: Vec<f64>,
    /// Per edge label of G: the least it can cost (deleted, or substituted by any label).
    edge_least_g: Vec<f64>,
    /// Per edge label of H: the least it can cost (inserted, or substituting any label).
    edge_least_h: Vec<f64>,
    /// Least substitution cost between two different edge labels (for the assignment's estimate).
    edge_sub_other: f64,
    symmetric: bool,
}

fn check_costs(what: &str, v: &[f64], len: usize) -> Result<()> {
    if v.len() != len {
        return Err(Error::InvalidTable(format!(
            "{what} has {} values, expected {len}",
            v.len()
        )));
    }
    if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite() || **x < 0.0) {
        return Err(Error::InvalidTable(format!(
            "{what}[{i}] is {x}: edit costs must be finite and >= 0"
        )));
    }
    Ok(())
}

impl GraphCosts {
    /// A cost table: `node_sub` is `nl x nl` row-major (row: the label in G), `node_del` and
    /// `node_ins` have `nl` values; likewise the edge arrays over `el` labels.
    ///
    /// # Errors
    /// [`Error::InvalidTable`] when a shape is wrong, a cost negative or not finite, or a label
    /// costs anything to substitute by itself (which would make `sim(G, G) < 1`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nl: usize,
        node_sub: Vec<f64>,
        node_del: Vec<f64>,
        node_ins: Vec<f64>,
        el: usize,
        edge_sub: Vec<f64>,
        edge_del: Vec<f64>,
        edge_ins: Vec<f64>,
    ) -> Result<Self> {
        check_costs("node substitution costs", &node_sub, nl * nl)?;
        check_costs("node deletion costs", &node_del, nl)?;
        check_costs("node insertion costs", &node_ins, nl)?;
        check_costs("edge substitution costs", &edge_sub, el * el)?;
        check_costs("edge deletion costs", &edge_del, el)?;
        check_costs("edge insertion costs", &edge_ins, el)?;
        for (what, sub, n) in [("node", &node_sub, nl), ("edge", &edge_sub, el)] {
            if let Some(i) = (0..n).find(|&i| sub[i * n + i] != 0.0) {
                return Err(Error::InvalidTable(format!(
                    "{what} label {i} costs {} to substitute by itself (must be 0)",
                    sub[i * n + i]
                )));
            }
        }
        let edge_least_g = (0..el)
            .map(|a| (0..el).map(|b| edge_sub[a * el + b]).fold(edge_del[a], f64::min))
            .collect();
        let edge_least_h = (0..el)
            .map(|b| (0..el).map(|a| edge_sub[a * el + b]).fold(edge_ins[b], f64::min))
            .collect();
        let mut edge_sub_other = f64::INFINITY;
        for a in 0..el {
            for b in 0..el {
                if a != b {
                    edge_sub_other = edge_sub_other.min(edge_sub[a * el + b]);
                }
            }
        }
        let symmetric = (0..nl).all(|a| (0..nl).all(|b| node_sub[a * nl + b] == node_sub[b * nl + a]))
            && (0..el).all(|a| (0..el).all(|b| edge_sub[a * el + b] == edge_sub[b * el + a]))
            && node_del == node_ins
            && edge_del == edge_ins;
        Ok(GraphCosts {
            nl,
            el,
            node_sub,
            node_del,
            node_ins,
            edge_sub,
            edge_del,
            edge_ins,
            edge_least_g,
            edge_least_h,
            edge_sub_other,
            symmetric,
        })
    }

    /// Number of node labels.
    #[must_use]
    pub fn node_labels(&self) -> usize {
        self.nl
    }

    /// Number of edge labels.
    #[must_use]
    pub fn edge_labels(&self) -> usize {
        self.el
    }

    /// True when `d(G, H) == d(H, G)` for every pair: substitutions symmetric, insertion
    /// costs equal to deletion costs.
    #[must_use]
    pub fn symmetric(&self) -> bool {
        self.symmetric
    }

    #[inline]
    fn node_sub(&self, a: u32, b: u32) -> f64 {
        self.node_sub[a as usize * self.nl + b as usize]
    }

    #[inline]
    fn node_del(&self, a: u32) -> f64 {
        self.node_del[a as usize]
    }

    #[inline]
    fn node_ins(&self, b: u32) -> f64 {
        self.node_ins[b as usize]
    }

    /// Cost of one edge slot: G's edge label (or [`NO_EDGE`]) against H's.
    #[inline]
    fn edge(&self, g: u32, h: u32) -> f64 {
        match (g == NO_EDGE, h == NO_EDGE) {
            (true, true) => 0.0,
            (false, true) => self.edge_del[g as usize],
            (true, false) => self.edge_ins[h as usize],
            (false, false) => self.edge_sub[g as usize * self.el + h as usize],
        }
    }
}

/// One cell: labelled nodes (inputs first, outputs last) and labelled directed edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    labels: Vec<u32>,
    /// `adj[i * n + j]`: the label of edge i -> j, or [`NO_EDGE`].
    adj: Vec<u32>,
    edges: Vec<(u32, u32, u32)>,
    n_in: usize,
    n_out: usize,
}

impl Cell {
    /// A cell of `labels.len()` nodes and `edges` (source, target, label); its first `n_in`
    /// nodes are the pinned inputs and its last `n_out` the pinned outputs.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an edge whose end is not a node, a self loop, two edges
    /// between the same nodes in the same direction, or more pins than nodes.
    pub fn new(labels: Vec<u32>, edges: &[(u32, u32, u32)], n_in: usize, n_out: usize) -> Result<Self> {
        let n = labels.len();
        if n_in + n_out > n {
            return Err(Error::Unsupported(format!(
                "a cell of {n} nodes cannot have {n_in} inputs and {n_out} outputs"
            )));
        }
        let mut adj = vec![NO_EDGE; n * n];
        for &(s, t, l) in edges {
            let (su, tu) = (s as usize, t as usize);
            if su >= n || tu >= n {
                return Err(Error::Unsupported(format!("edge {s} -> {t}: the cell has {n} nodes")));
            }
            if s == t {
                return Err(Error::Unsupported(format!("edge {s} -> {t} is a self loop")));
            }
            if l == NO_EDGE {
                return Err(Error::Unsupported(format!("edge {s} -> {t} has no label id")));
            }
            if adj[su * n + tu] != NO_EDGE {
                return Err(Error::Unsupported(format!("edge {s} -> {t} is given twice")));
            }
            adj[su * n + tu] = l;
        }
        Ok(Cell {
            labels,
            adj,
            edges: edges.to_vec(),
            n_in,
            n_out,
        })
    }

    /// The empty cell (what a missing cell is compared with).
    #[must_use]
    pub fn empty() -> Self {
        Cell {
            labels: Vec::new(),
            adj: Vec::new(),
            edges: Vec::new(),
            n_in: 0,
            n_out: 0,
        }
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True for the cell without nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    #[inline]
    fn edge(&self, a: u32, b: u32) -> u32 {
        if a == DELETED || b == DELETED {
            NO_EDGE
        } else {
            self.adj[a as usize * self.labels.len() + b as usize]
        }
    }

    fn check_labels(&self, c: &GraphCosts) -> Result<()> {
        if let Some(&l) = self.labels.iter().find(|&&l| l as usize >= c.nl) {
            return Err(Error::Unsupported(format!(
                "node label id {l} is out of range (the costs have {} node labels)",
                c.nl
            )));
        }
        if let Some(&(s, t, l)) = self.edges.iter().find(|e| e.2 as usize >= c.el) {
            return Err(Error::Unsupported(format!(
                "edge {s} -> {t}: label id {l} is out of range (the costs have {} edge labels)",
                c.el
            )));
        }
        Ok(())
    }
}

/// An architecture of one or more cells, compared position by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphArch {
    /// The cells, in order.
    pub cells: Vec<Cell>,
    /// A key of the architecture's content that does not depend on label ids (the caller's
    /// hash of its labelled graph). Under symmetric costs a pair is always computed with the
    /// smaller key first, so that d(G, H) and d(H, G) are the same double in every call,
    /// whatever order the search would add the same costs in otherwise.
    pub key: u64,
}

impl GraphArch {
    /// An architecture keyed by its content over the label ids it has (consistent within one
    /// cost table's ids; the binding takes the caller's keys, which hold across calls).
    #[must_use]
    pub fn new(cells: Vec<Cell>) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        for cell in &cells {
            (&cell.labels, &cell.edges, cell.n_in, cell.n_out).hash(&mut h);
        }
        GraphArch { key: h.finish(), cells }
    }

    /// Check every label against `c`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the first label id outside the cost table.
    pub fn check_labels(&self, c: &GraphCosts) -> Result<()> {
        self.cells.iter().try_for_each(|cell| cell.check_labels(c))
    }

    /// The most nodes of any of its cells.
    #[must_use]
    pub fn max_nodes(&self) -> usize {
        self.cells.iter().map(Cell::len).max().unwrap_or(0)
    }
}

/// How a distance is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Exact for cells up to `limit` nodes (both), bounded above it.
    Auto { limit: usize },
    /// Exact, whatever the size (up to [`EXACT_MAX_NODES`]).
    Exact,
    /// The assignment upper bound, always.
    Bounded,
}

/// A distance with its normaliser, and whether it is exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Distance {
    /// The edit distance (exact), or the cost of the edit path found (an upper bound).
    pub distance: f64,
    /// The normaliser: the larger of everything deleted and inserted, and the trivial path.
    pub dmax: f64,
    /// False when `distance` is only an upper bound.
    pub exact: bool,
}

impl Distance {
    /// `1 - distance / dmax`, in [0, 1]; 1 when `dmax` is 0.
    #[must_use]
    pub fn similarity(&self) -> f64 {
        if self.dmax <= 0.0 {
            1.0
        } else {
            (1.0 - self.distance / self.dmax).clamp(0.0, 1.0)
        }
    }
}

/// The pinned pairs and the free nodes of two cells.
struct Pins {
    /// (node of G, node of H), pinned to each other.
    pairs: Vec<(u32, u32)>,
    /// Pinned nodes of G without a partner in H (more inputs or outputs): always deleted.
    unpaired_g: Vec<u32>,
    /// Pinned nodes of H without a partner in G: always inserted.
    unpaired_h: Vec<u32>,
    free_g: Vec<u32>,
    free_h: Vec<u32>,
}

impl Pins {
    fn new(g: &Cell, h: &Cell) -> Self {
        let (n, m) = (g.len(), h.len());
        let mut pairs = Vec::new();
        for k in 0..g.n_in.min(h.n_in) {
            pairs.push((k as u32, k as u32));
        }
        for k in 0..g.n_out.min(h.n_out) {
            pairs.push(((n - g.n_out + k) as u32, (m - h.n_out + k) as u32));
        }
        let pinned = |cell: &Cell, u: usize| u < cell.n_in || u >= cell.len() - cell.n_out;
        let unpaired_g = (0..n as u32)
            .filter(|&u| pinned(g, u as usize) && !pairs.iter().any(|p| p.0 == u))
            .collect();
        let unpaired_h = (0..m as u32)
            .filter(|&v| pinned(h, v as usize) && !pairs.iter().any(|p| p.1 == v))
            .collect();
        let free_g = (0..n as u32).filter(|&u| !pinned(g, u as usize)).collect();
        let free_h = (0..m as u32).filter(|&v| !pinned(h, v as usize)).collect();
        Pins {
            pairs,
            unpaired_g,
            unpaired_h,
            free_g,
            free_h,
        }
    }
}

/// The exact cost of the edit path that maps node `u` of G to `map[u]` (a node of H or
/// deletion) and inserts the nodes of H that nothing maps to.
fn path_cost(c: &GraphCosts, g: &Cell, h: &Cell, map: &[u32]) -> f64 {
    let mut inverse = vec![DELETED; h.len()];
    let mut cost = 0.0;
    for (u, &v) in map.iter().enumerate() {
        if v == DELETED {
            cost += c.node_del(g.labels[u]);
        } else {
            cost += c.node_sub(g.labels[u], h.labels[v as usize]);
            inverse[v as usize] = u as u32;
        }
    }
    for (v, &u) in inverse.iter().enumerate() {
        if u == DELETED {
            cost += c.node_ins(h.labels[v]);
        }
    }
    for &(s, t, l) in &g.edges {
        cost += c.edge(l, h.edge(map[s as usize], map[t as usize]));
    }
    for &(x, y, l) in &h.edges {
        if g.edge(inverse[x as usize], inverse[y as usize]) == NO_EDGE {
            cost += c.edge_ins[l as usize];
        }
    }
    cost
}

/// The cost of deleting every node and edge of G and inserting every node and edge of H.
fn everything(c: &GraphCosts, g: &Cell, h: &Cell) -> f64 {
    let nodes: f64 =
        g.labels.iter().map(|&l| c.node_del(l)).sum::<f64>() + h.labels.iter().map(|&l| c.node_ins(l)).sum::<f64>();
    let edges: f64 = g.edges.iter().map(|e| c.edge_del[e.2 as usize]).sum::<f64>()
        + h.edges.iter().map(|e| c.edge_ins[e.2 as usize]).sum::<f64>();
    nodes + edges
}

/// The trivial path: pinned pairs mapped, everything else deleted and inserted.
fn trivial_map(g: &Cell, pins: &Pins) -> Vec<u32> {
    let mut map = vec![DELETED; g.len()];
    for &(u, v) in &pins.pairs {
        map[u as usize] = v;
    }
    map
}

/// The edit distance of two cells.
///
/// # Errors
/// [`Error::Unsupported`] when the exact method is asked for a cell above
/// [`EXACT_MAX_NODES`]; [`Error::Interrupted`] when `stop` is requested.
pub fn cell_distance(c: &GraphCosts, g: &Cell, h: &Cell, method: Method, stop: &Stop) -> Result<Distance> {
    let pins = Pins::new(g, h);
    let trivial = trivial_map(g, &pins);
    let dmax = path_cost(c, g, h, &trivial).max(everything(c, g, h));
    if g == h {
        return Ok(Distance {
            distance: 0.0,
            dmax,
            exact: true,
        });
    }
    let largest = g.len().max(h.len());
    let exact = match method {
        Method::Exact => true,
        Method::Bounded => false,
        Method::Auto { limit } => largest <= limit,
    };
    if exact && largest > EXACT_MAX_NODES {
        return Err(Error::Unsupported(format!(
            "the exact graph edit distance is limited to cells of {EXACT_MAX_NODES} nodes; this pair has a cell of \
             {largest} (use the bounded method)"
        )));
    }
    let free = pins.free_g.len().max(pins.free_h.len());
    let mut best = dmax;
    if !exact || free >= ASSIGNMENT_FIRST {
        let mut map = assignment_map(c, g, h, &pins);
        best = best.min(improve(c, g, h, &pins, &mut map));
        if !exact && c.symmetric() {
            // The bound depends on which cell is first; under symmetric costs a path reversed
            // costs the same, so the better of both orders is a bound too.
            let back = Pins::new(h, g);
            let mut map = assignment_map(c, h, g, &back);
            best = best.min(improve(c, h, g, &back, &mut map));
        }
    }
    if exact {
        best = Search::new(c, g, h, &pins, best, stop).run()?;
    }
    Ok(Distance {
        distance: best,
        dmax,
        // A bound of 0 is the distance (none is lower).
        exact: exact || best == 0.0,
    })
}

/// The distance of two architectures: the sum over their cells (a missing cell is empty).
///
/// # Errors
/// As [`cell_distance`].
pub fn distance(c: &GraphCosts, a: &GraphArch, b: &GraphArch, method: Method, stop: &Stop) -> Result<Distance> {
    let (a, b) = if c.symmetric() && b.key < a.key { (b, a) } else { (a, b) };
    let empty = Cell::empty();
    let mut total = Distance {
        distance: 0.0,
        dmax: 0.0,
        exact: true,
    };
    for k in 0..a.cells.len().max(b.cells.len()) {
        let g = a.cells.get(k).unwrap_or(&empty);
        let h = b.cells.get(k).unwrap_or(&empty);
        let d = cell_distance(c, g, h, method, stop)?;
        total.distance += d.distance;
        total.dmax += d.dmax;
        total.exact &= d.exact;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------
// The assignment bound.

/// Estimated cost of matching the edge labels `a` (of G) with `b` (of H): equal labels for
/// free, other pairs at the least substitution, the surplus deleted or inserted.
fn edge_estimate(c: &GraphCosts, a: &[u32], b: &[u32]) -> f64 {
    let mut rest_b: Vec<u32> = b.to_vec();
    let mut unmatched_a = Vec::new();
    for &l in a {
        if let Some(k) = rest_b.iter().position(|&x| x == l) {
            rest_b.swap_remove(k);
        } else {
            unmatched_a.push(l);
        }
    }
    let pairs = unmatched_a.len().min(rest_b.len());
    let mut cost = 0.0;
    // The cheapest way for each unmatched pair: a substitution, or a deletion and an insertion.
    for k in 0..pairs {
        let (x, y) = (unmatched_a[k], rest_b[k]);
        cost += c.edge_sub_other.min(c.edge_del[x as usize] + c.edge_ins[y as usize]);
    }
    cost += unmatched_a[pairs..]
        .iter()
        .map(|&l| c.edge_del[l as usize])
        .sum::<f64>();
    cost += rest_b[pairs..].iter().map(|&l| c.edge_ins[l as usize]).sum::<f64>();
    cost
}

/// Labels of the edges out of and into each node.
fn incident(cell: &Cell) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let mut out = vec![Vec::new(); cell.len()];
    let mut inn = vec![Vec::new(); cell.len()];
    for &(s, t, l) in &cell.edges {
        out[s as usize].push(l);
        inn[t as usize].push(l);
    }
    (out, inn)
}

/// Improve a node map by local moves (two free nodes of G exchange images; a free node of G
/// moves to an unused free node of H or to deletion) while one lowers the path's cost, for at
/// most [`IMPROVE_PASSES`] passes over the moves. Returns the final cost.
fn improve(c: &GraphCosts, g: &Cell, h: &Cell, pins: &Pins, map: &mut [u32]) -> f64 {
    let mut cost = path_cost(c, g, h, map);
    let try_map = |map: &mut [u32], cost: &mut f64| {
        let x = path_cost(c, g, h, map);
        if x < *cost {
            *cost = x;
            true
        } else {
            false
        }
    };
    for _ in 0..IMPROVE_PASSES {
        let mut better = false;
        for (k, &u) in pins.free_g.iter().enumerate() {
            for &w in &pins.free_g[k + 1..] {
                if map[u as usize] == map[w as usize] {
                    continue;
                }
                map.swap(u as usize, w as usize);
                if try_map(map, &mut cost) {
                    better = true;
                } else {
                    map.swap(u as usize, w as usize);
                }
            }
            for v in pins.free_h.iter().copied().chain(std::iter::once(DELETED)) {
                if v != DELETED && map.contains(&v) {
                    continue;
                }
                let old = map[u as usize];
                map[u as usize] = v;
                if try_map(map, &mut cost) {
                    better = true;
                } else {
                    map[u as usize] = old;
                }
            }
        }
        if !better {
            break;
        }
    }
    cost
}

/// Costs as integers for the Hungarian method: scaled so that the largest is at most 2^40
/// (and by at most 10^6), with every NaN (forbidden) above the sum of all the others, so that
/// no complete assignment of allowed pairs costs as much and no sum overflows.
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
fn integer_weights(w: &[f64]) -> Vec<i64> {
    let largest = w.iter().filter(|x| !x.is_nan()).fold(0.0f64, |a, &x| a.max(x));
    let scale = if largest > 0.0 {
        (2f64.powi(40) / largest).min(COST_SCALE)
    } else {
        COST_SCALE
    };
    let mut out: Vec<i64> = w
        .iter()
        .map(|&x| if x.is_nan() { -1 } else { (x * scale).round() as i64 })
        .collect();
    let allowed = out.iter().filter(|&&x| x > 0).fold(0i64, |a, &x| a.saturating_add(x));
    for x in &mut out {
        if *x < 0 {
            *x = allowed.saturating_add(1).min(i64::MAX / 4);
        }
    }
    out
}

/// The node map of the bipartite approximation (pinned pairs kept).
fn assignment_map(c: &GraphCosts, g: &Cell, h: &Cell, pins: &Pins) -> Vec<u32> {
    let mut map = trivial_map(g, pins);
    let (fg, fh) = (&pins.free_g, &pins.free_h);
    let (n, m) = (fg.len(), fh.len());
    if n == 0 || m == 0 {
        return map;
    }
    let (g_out, g_in) = incident(g);
    let (h_out, h_in) = incident(h);
    let size = n + m;
    // f64 estimates first (NaN: not an edit operation), then integers for the Hungarian method.
    let forbidden = f64::NAN;
    let mut w = vec![0.0f64; size * size];
    for (i, &u) in fg.iter().enumerate() {
        let (uo, ui) = (&g_out[u as usize], &g_in[u as usize]);
        for (j, &v) in fh.iter().enumerate() {
            let (vo, vi) = (&h_out[v as usize], &h_in[v as usize]);
            let est = c.node_sub(g.labels[u as usize], h.labels[v as usize])
                + 0.5 * (edge_estimate(c, uo, vo) + edge_estimate(c, ui, vi));
            w[i * size + j] = est;
        }
        let del = c.node_del(g.labels[u as usize]) + 0.5 * (edge_estimate(c, uo, &[]) + edge_estimate(c, ui, &[]));
        for k in 0..n {
            w[i * size + m + k] = if k == i { del } else { forbidden };
        }
    }
    for (j, &v) in fh.iter().enumerate() {
        let (vo, vi) = (&h_out[v as usize], &h_in[v as usize]);
        let ins = c.node_ins(h.labels[v as usize]) + 0.5 * (edge_estimate(c, &[], vo) + edge_estimate(c, &[], vi));
        for k in 0..m {
            w[(n + k) * size + j] = if k == j { ins } else { forbidden };
        }
    }
    let weights = Matrix::from_vec(size, size, integer_weights(&w)).expect("a square weight matrix");
    let (_, assigned) = kuhn_munkres_min(&weights);
    for (i, &u) in fg.iter().enumerate() {
        let j = assigned[i];
        map[u as usize] = if j < m { fh[j] } else { DELETED };
    }
    map
}

// ---------------------------------------------------------------------------------------
// The exact search.

/// Depth-first branch and bound over node maps (see the module docs).
struct Search<'a> {
    c: &'a GraphCosts,
    g: &'a Cell,
    h: &'a Cell,
    /// Nodes of G in the order they are mapped (pinned first).
    order: Vec<u32>,
    /// For each depth: the pinned node's image (its partner, or [`DELETED`] for a pin without
    /// one), or None for a free node.
    forced: Vec<Option<u32>>,
    /// Pinned nodes of H without a partner: inserted whatever the map.
    unpaired_h: &'a [u32],
    /// The image of `order[d]` (while the search is at a depth beyond `d`).
    image: [u32; EXACT_MAX_NODES],
    /// Nodes of H taken by an image.
    used: [bool; EXACT_MAX_NODES],
    free_h: &'a [u32],
    /// Per depth: G's edges with both ends at this depth or later (count, least-cost sum,
    /// least surplus cost over them, least deletion cost over them).
    g_inner: Vec<(usize, f64, f64, f64)>,
    /// Per depth `d`, node `u` of G and node `v` of H (or `m` for deletion): the cost of
    /// mapping `u` to `v` given the nodes mapped before depth `d` ([`Search::cross`]), kept
    /// level by level so that each level adds only the slots of the node mapped last.
    cross: Vec<f64>,
    /// Per depth and node `v` of H: the cost of inserting `v` given the nodes mapped before.
    insert: Vec<f64>,
    best: f64,
    visited: u64,
    stop: &'a Stop,
}

impl<'a> Search<'a> {
    fn new(c: &'a GraphCosts, g: &'a Cell, h: &'a Cell, pins: &'a Pins, best: f64, stop: &'a Stop) -> Self {
        let n = g.len();
        // Pinned nodes first: mapped to their partner, or deleted when they have none.
        let mut order: Vec<u32> = pins
            .pairs
            .iter()
            .map(|p| p.0)
            .chain(pins.unpaired_g.iter().copied())
            .collect();
        let mut forced: Vec<Option<u32>> = pins
            .pairs
            .iter()
            .map(|p| Some(p.1))
            .chain(pins.unpaired_g.iter().map(|_| Some(DELETED)))
            .collect();
        // Free nodes: the one with most edges to the nodes already ordered next (ties: degree).
        let mut rest = pins.free_g.clone();
        let degree = |u: u32| {
            (0..n as u32)
                .filter(|&w| g.edge(u, w) != NO_EDGE || g.edge(w, u) != NO_EDGE)
                .count()
        };
        while !rest.is_empty() {
            let (k, _) = rest
                .iter()
                .enumerate()
                .max_by_key(|(_, &u)| {
                    let links = order
                        .iter()
                        .filter(|&&w| g.edge(u, w) != NO_EDGE || g.edge(w, u) != NO_EDGE)
                        .count();
                    (links, degree(u), std::cmp::Reverse(u))
                })
                .expect("rest is not empty");
            order.push(rest.swap_remove(k));
            forced.push(None);
        }
        let mut position = vec![0usize; n];
        for (d, &u) in order.iter().enumerate() {
            position[u as usize] = d;
        }
        let mut g_inner = vec![(0usize, 0.0, f64::INFINITY, f64::INFINITY); n + 1];
        for &(s, t, l) in &g.edges {
            let first = position[s as usize].min(position[t as usize]);
            let least = c.edge_least_g[l as usize];
            let del = c.edge_del[l as usize];
            for entry in &mut g_inner[..=first] {
                entry.0 += 1;
                entry.1 += least;
                entry.2 = entry.2.min(del - least);
                entry.3 = entry.3.min(del);
            }
        }
        let m = h.len();
        let mut cross = vec![0.0; (n + 1) * n * (m + 1)];
        let mut insert = vec![0.0; (n + 1) * m];
        for u in 0..n {
            let lu = g.labels[u];
            for v in 0..m {
                cross[u * (m + 1) + v] = c.node_sub(lu, h.labels[v]);
            }
            cross[u * (m + 1) + m] = c.node_del(lu);
        }
        for v in 0..m {
            insert[v] = c.node_ins(h.labels[v]);
        }
        Search {
            c,
            g,
            h,
            order,
            forced,
            cross,
            insert,
            image: [DELETED; EXACT_MAX_NODES],
            used: [false; EXACT_MAX_NODES],
            free_h: &pins.free_h,
            unpaired_h: &pins.unpaired_h,
            g_inner,
            best,
            visited: 0,
            stop,
        }
    }

    fn run(mut self) -> Result<f64> {
        self.dfs(0, 0.0)?;
        Ok(self.best)
    }

    /// The cost of mapping node `u` of G to `v` (a node of H or [`DELETED`]) given the nodes
    /// mapped before depth `d`: its node operation and the edge slots between it and them.
    #[inline]
    fn cross(&self, d: usize, u: u32, v: u32) -> f64 {
        let (n, m) = (self.g.len(), self.h.len());
        let column = if v == DELETED { m } else { v as usize };
        self.cross[(d * n + u as usize) * (m + 1) + column]
    }

    /// The cost of inserting node `v` of H given the nodes mapped before depth `d`: the node
    /// and its edges to their images.
    #[inline]
    fn insert_cross(&self, d: usize, v: u32) -> f64 {
        self.insert[d * self.h.len() + v as usize]
    }

    /// Level `d + 1` of the cross and insertion costs from level `d`, `order[d]` being mapped
    /// to `image[d]`: the nodes not mapped yet add their slots with it.
    fn advance(&mut self, d: usize) {
        let (c, g, h) = (self.c, self.g, self.h);
        let (n, m) = (g.len(), h.len());
        let (w, x) = (self.order[d], self.image[d]);
        let (done, rest) = self.cross.split_at_mut((d + 1) * n * (m + 1));
        let here = &done[d * n * (m + 1)..];
        for &u in &self.order[d + 1..] {
            let (gu_w, gw_u) = (g.edge(u, w), g.edge(w, u));
            let row = u as usize * (m + 1);
            for v in 0..m as u32 {
                let slot = c.edge(gu_w, h.edge(v, x)) + c.edge(gw_u, h.edge(x, v));
                rest[row + v as usize] = here[row + v as usize] + slot;
            }
            rest[row + m] = here[row + m] + c.edge(gu_w, NO_EDGE) + c.edge(gw_u, NO_EDGE);
        }
        let (done, rest) = self.insert.split_at_mut((d + 1) * m);
        let here = &done[d * m..];
        for v in 0..m as u32 {
            rest[v as usize] = here[v as usize] + c.edge(NO_EDGE, h.edge(v, x)) + c.edge(NO_EDGE, h.edge(x, v));
        }
    }

    /// What a complete map still costs: the free nodes of H not used, and H's edges at them.
    fn completion(&self) -> f64 {
        let (c, h) = (self.c, self.h);
        let mut cost = 0.0;
        for (v, &l) in h.labels.iter().enumerate() {
            if !self.used[v] {
                cost += c.node_ins(l);
            }
        }
        for &(x, y, l) in &h.edges {
            if !self.used[x as usize] || !self.used[y as usize] {
                cost += c.edge_ins[l as usize];
            }
        }
        cost
    }

    /// A lower bound on what the nodes from depth `d` on (all free) and the rest of H cost,
    /// and the costs of mapping `order[d]` to each free node of H or deleting it (`options`,
    /// returning how many).
    ///
    /// What remains splits into disjoint parts: each remaining node of G with its edge slots
    /// to the nodes already mapped (its *cross* cost, known once its image is chosen); each
    /// node of H left to insert with its edges to the images; and the *inner* edges, between
    /// two remaining nodes of G or two unused nodes of H, which can only meet each other.
    fn bound_and_options(&self, d: usize, options: &mut [(f64, u32); EXACT_MAX_NODES + 1]) -> (f64, usize) {
        let (c, h) = (self.c, self.h);
        let mut unused = [0u32; EXACT_MAX_NODES];
        let mut rh = 0;
        for &v in self.free_h {
            if !self.used[v as usize] {
                unused[rh] = v;
                rh += 1;
            }
        }
        let unused = &unused[..rh];
        let mut ins = [0.0f64; EXACT_MAX_NODES];
        let mut least_h = [0.0f64; EXACT_MAX_NODES];
        for (k, &v) in unused.iter().enumerate() {
            ins[k] = self.insert_cross(d, v);
            least_h[k] = ins[k];
        }
        let rg = self.order.len() - d;
        let (mut sum_g, mut surplus_g, mut least_del) = (0.0, f64::INFINITY, f64::INFINITY);
        let mut n_options = 0;
        for (i, &u) in self.order[d..].iter().enumerate() {
            let del = self.cross(d, u, DELETED);
            let mut least = del;
            for (k, &v) in unused.iter().enumerate() {
                let x = self.cross(d, u, v);
                least = least.min(x);
                least_h[k] = least_h[k].min(x);
                if i == 0 {
                    options[k] = (x, v);
                }
            }
            if i == 0 {
                options[rh] = (del, DELETED);
                n_options = rh + 1;
            }
            sum_g += least;
            surplus_g = surplus_g.min(del - least);
            least_del = least_del.min(del);
        }
        let (mut sum_h, mut surplus_h, mut least_ins) = (0.0, f64::INFINITY, f64::INFINITY);
        for k in 0..rh {
            sum_h += least_h[k];
            surplus_h = surplus_h.min(ins[k] - least_h[k]);
            least_ins = least_ins.min(ins[k]);
        }
        // Pins of H without a partner are inserted with their edges to the images, whatever
        // the rest of the map.
        let unpaired: f64 = self.unpaired_h.iter().map(|&v| self.insert_cross(d, v)).sum();
        let nodes = unpaired
            + one_sided(rg, rh, sum_g, surplus_g, least_ins).max(one_sided(rh, rg, sum_h, surplus_h, least_del));
        // Inner edges.
        let (eg, sum_eg, surplus_eg, least_edel) = self.g_inner[d];
        let (mut eh, mut sum_eh, mut surplus_eh, mut least_eins) = (0usize, 0.0, f64::INFINITY, f64::INFINITY);
        for &(x, y, l) in &h.edges {
            if !self.used[x as usize] && !self.used[y as usize] {
                eh += 1;
                let least = c.edge_least_h[l as usize];
                sum_eh += least;
                surplus_eh = surplus_eh.min(c.edge_ins[l as usize] - least);
                least_eins = least_eins.min(c.edge_ins[l as usize]);
            }
        }
        let edges =
            one_sided(eg, eh, sum_eg, surplus_eg, least_eins).max(one_sided(eh, eg, sum_eh, surplus_eh, least_edel));
        (nodes + edges, n_options)
    }

    fn dfs(&mut self, d: usize, cost: f64) -> Result<()> {
        self.visited += 1;
        if self.visited.is_multiple_of(STOP_EVERY_NODES) {
            self.stop.check()?;
        }
        if d == self.order.len() {
            let total = cost + self.completion();
            if total < self.best {
                self.best = total;
            }
            return Ok(());
        }
        if let Some(pinned) = self.forced[d] {
            let step = self.cross(d, self.order[d], pinned);
            self.image[d] = pinned;
            if pinned != DELETED {
                self.used[pinned as usize] = true;
            }
            self.advance(d);
            self.dfs(d + 1, cost + step)?;
            if pinned != DELETED {
                self.used[pinned as usize] = false;
            }
            return Ok(());
        }
        let mut options = [(0.0f64, DELETED); EXACT_MAX_NODES + 1];
        let (bound, k) = self.bound_and_options(d, &mut options);
        if cost + bound >= self.best {
            return Ok(());
        }
        let options = &mut options[..k];
        options.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for &(step, v) in options.iter() {
            if cost + step >= self.best {
                break;
            }
            self.image[d] = v;
            if v != DELETED {
                self.used[v as usize] = true;
            }
            self.advance(d);
            self.dfs(d + 1, cost + step)?;
            if v != DELETED {
                self.used[v as usize] = false;
            }
        }
        Ok(())
    }
}

/// One side's bound: `own` elements each paying at least their least cost (`sum`); when they
/// outnumber `other`, the surplus pays at least `surplus` more each; when `other` outnumbers
/// them, each of the other side's surplus is inserted (or deleted) at `least_other` at least.
#[inline]
#[allow(clippy::cast_precision_loss)]
fn one_sided(own: usize, other: usize, sum: f64, surplus: f64, least_other: f64) -> f64 {
    if own > other {
        sum + (own - other) as f64 * surplus
    } else if other > own {
        sum + (other - own) as f64 * least_other
    } else {
        sum
    }
}

// ---------------------------------------------------------------------------------------
// Matrices.

/// What a matrix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// `1 - distance / dmax`.
    Similarity,
    /// The edit distance.
    Distance,
}

/// A matrix of architectures against architectures, computed row block by row block.
///
/// All against all (`cols` is `None`) with symmetric costs computes each unordered pair once
/// (the upper triangle; the full matrix is mirrored by [`MatrixJob::finish`]); with directed
/// costs every ordered pair. The diagonal of all against all is 1 (0 for distances).
pub struct MatrixJob<'a> {
    c: &'a GraphCosts,
    rows: &'a [GraphArch],
    cols: &'a [GraphArch],
    same: bool,
    condensed: bool,
    values: Values,
    method: Method,
}

impl<'a> MatrixJob<'a> {
    /// A job of `rows` against `cols` (all against all when `None`).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a condensed matrix of directed costs or against other
    /// columns, or a label outside the cost table.
    pub fn new(
        c: &'a GraphCosts,
        rows: &'a [GraphArch],
        cols: Option<&'a [GraphArch]>,
        condensed: bool,
        values: Values,
        method: Method,
    ) -> Result<Self> {
        if condensed && cols.is_some() {
            return Err(Error::Unsupported(
                "a condensed matrix is one population's upper triangle (no other columns)".into(),
            ));
        }
        if condensed && !c.symmetric() {
            return Err(Error::Unsupported(
                "a condensed matrix needs symmetric costs (these edit costs are directed)".into(),
            ));
        }
        for a in rows.iter().chain(cols.unwrap_or(&[])) {
            a.check_labels(c)?;
        }
        Ok(MatrixJob {
            c,
            rows,
            cols: cols.unwrap_or(rows),
            same: cols.is_none(),
            condensed,
            values,
            method,
        })
    }

    fn upper_only(&self) -> bool {
        self.same && (self.condensed || self.c.symmetric())
    }

    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Length of the output buffer.
    #[must_use]
    pub fn output_len(&self) -> usize {
        let (n, m) = (self.rows.len(), self.cols.len());
        if self.condensed {
            n * n.saturating_sub(1) / 2
        } else {
            n * m
        }
    }

    /// Where row `i` starts in the output, and its length.
    fn row_span(&self, i: usize) -> (usize, usize) {
        let (n, m) = (self.rows.len(), self.cols.len());
        if self.condensed {
            (i * n - i * (i + 1) / 2, n - i - 1)
        } else {
            (i * m, m)
        }
    }

    /// Pairs computed in row `i`.
    #[must_use]
    pub fn row_pairs(&self, i: usize) -> usize {
        let m = self.cols.len();
        if self.upper_only() {
            m - i - 1
        } else if self.same {
            m - 1
        } else {
            m
        }
    }

    /// Row ranges of about `pairs` computed pairs each (at least one row).
    #[must_use]
    pub fn batches(&self, pairs: usize) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let (mut start, mut acc) = (0, 0);
        for i in 0..self.rows.len() {
            acc += self.row_pairs(i);
            if acc >= pairs {
                out.push(start..i + 1);
                start = i + 1;
                acc = 0;
            }
        }
        if start < self.rows.len() {
            out.push(start..self.rows.len());
        }
        out
    }

    fn value(&self, d: &Distance) -> f64 {
        match self.values {
            Values::Similarity => d.similarity(),
            Values::Distance => d.distance,
        }
    }

    /// Compute the rows `rows` into `out` (the whole output buffer), in parallel on the
    /// current rayon pool. Returns how many computed pairs are upper bounds, not exact.
    ///
    /// # Errors
    /// [`Error::Shape`] for an output of the wrong length; as [`cell_distance`].
    pub fn run<T: crate::matrix::Element>(
        &self,
        rows: std::ops::Range<usize>,
        out: &mut [T],
        stop: &Stop,
    ) -> Result<usize> {
        use rayon::prelude::*;
        if out.len() != self.output_len() {
            return Err(Error::Shape {
                what: "graph matrix output",
                len: out.len(),
                expected: self.output_len(),
            });
        }
        let mut slices = Vec::with_capacity(rows.len());
        let (first, _) = self.row_span(rows.start);
        let mut rest = &mut out[first..];
        for i in rows.clone() {
            let (_, len) = self.row_span(i);
            let (row, tail) = rest.split_at_mut(len);
            slices.push((i, row));
            rest = tail;
        }
        slices
            .into_par_iter()
            .map(|(i, row)| self.run_row(i, row, stop))
            .try_reduce(|| 0, |a, b| Ok(a + b))
    }

    fn run_row<T: crate::matrix::Element>(&self, i: usize, row: &mut [T], stop: &Stop) -> Result<usize> {
        stop.check()?;
        let a = &self.rows[i];
        let mut approx = 0;
        let (from, offset) = if self.condensed {
            (i + 1, i + 1)
        } else if self.upper_only() {
            (i + 1, 0)
        } else {
            (0, 0)
        };
        for j in from..self.cols.len() {
            if self.same && j == i {
                continue;
            }
            let d = distance(self.c, a, &self.cols[j], self.method, stop)?;
            approx += usize::from(!d.exact);
            row[j - offset] = T::from_f64(self.value(&d));
        }
        Ok(approx)
    }

    /// Fill what the rows left: the diagonal of all against all, and the lower triangle
    /// (mirrored) when only the upper one was computed.
    pub fn finish<T: crate::matrix::Element>(&self, out: &mut [T]) {
        if !self.same || self.condensed {
            return;
        }
        let n = self.rows.len();
        let diagonal = match self.values {
            Values::Similarity => T::from_f64(1.0),
            Values::Distance => T::from_f64(0.0),
        };
        for i in 0..n {
            out[i * n + i] = diagonal;
            if self.upper_only() {
                for j in 0..i {
                    out[i * n + j] = out[j * n + i];
                }
            }
        }
    }
}
