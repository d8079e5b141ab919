//! A graph's shape: no loops; each activity's parents, its depth, and the common
//! ancestors it may read.

use std::collections::{HashMap, HashSet};

use crate::guard::tick;
use crate::limits::MAX_GRAPH_DEPTH;

/// A transition, for the analysis of a graph's shape.
pub(super) struct Edge {
    pub(super) from: String,
    pub(super) to: String,
    /// The YAML path and line of its `to`.
    pub(super) path: String,
    pub(super) line: usize,
}

/// A graph's transitions as a DAG over the indices of its activities, with what the
/// engine's addressing needs per activity. Activity `x` runs at a depth (the number of
/// segments of its dimensional address, minus one) that depends on the path that reached
/// it; its ancestors are read by index from the trigger, so only the longest common prefix
/// of the ancestor lists of all its paths is addressable whatever path ran: that prefix is
/// its `chain`. It is computed in one topological pass, without enumerating paths: the
/// lists through parent `p` are `chain(p) + [p]` when a single path reaches `p` (`exact`),
/// and otherwise have the common prefix `chain(p)` (two different lists, or lists of
/// different lengths, differ before `p`, which is never its own ancestor).
///
/// A chain that ends in `y` is always `chain(y) + [y]`, so the chains form a tree (the
/// parent of `y` is the last activity of `chain(y)`, [`Shape::top`]): a chain is kept as
/// its last activity, a common prefix is a lowest common ancestor in that tree, and
/// whether `r` is in a chain is an interval test. Nothing here is quadratic in the size
/// of the graph (a chain of n activities has n²/2 ancestor entries written out; they are
/// only written by [`Shape::chain`], for the compiled app, after being counted).
pub(super) struct Shape {
    pub(super) trigger: usize,
    /// Distinct parents, in the manifest order of their first transition to it.
    pub(super) parents: Vec<Vec<usize>>,
    pub(super) children: Vec<Vec<usize>>,
    pub(super) reachable: Vec<bool>,
    /// The last activity of each chain (`root` for an empty chain).
    pub(super) top: Vec<usize>,
    /// Each activity's level in the tree: the length of `chain(x) + [x]`.
    pub(super) level: Vec<usize>,
    /// Entry and exit times of a walk of the tree (for `in_chain`).
    pub(super) enter: Vec<usize>,
    pub(super) exit: Vec<usize>,
    /// Two transitions that can enter the activity at the same depth: (parent, parent),
    /// the same parent twice when it has two transitions to it.
    pub(super) converging: Vec<Option<(usize, usize)>>,
}

/// A loop of transitions: the activities on it, and the transition that closes it.
pub(super) struct Loop<'e> {
    pub(super) loop_ids: Vec<usize>,
    pub(super) edge: &'e Edge,
}

pub(super) enum ShapeError<'e> {
    Loop(Loop<'e>),
    /// This activity is more than MAX_GRAPH_DEPTH transitions from a start.
    TooDeep(usize),
}

/// The depths an activity can run at, as a bit set.
type Depths = Vec<u64>;

impl Shape {
    /// `pos`: the index of each activity id; `edges` are between them; `t`: the trigger.
    pub(super) fn new<'e>(
        pos: &HashMap<&str, usize>,
        edges: &'e [Edge],
        t: usize,
    ) -> Result<Shape, ShapeError<'e>> {
        let n = pos.len();
        let root = n;
        let at = |id: &str| pos.get(id).copied().unwrap_or(0);
        let mut parents: Vec<Vec<usize>> = vec![vec![]; n];
        let mut children: Vec<Vec<usize>> = vec![vec![]; n];
        // every transition, duplicates included, per target
        let mut entries: Vec<Vec<usize>> = vec![vec![]; n];
        let mut seen = HashSet::new();
        for e in edges {
            let (f, to) = (at(&e.from), at(&e.to));
            entries[to].push(f);
            if seen.insert((f, to)) {
                parents[to].push(f);
                children[f].push(to);
            }
        }
        // topological order (Kahn); what is left is on or below a loop
        let mut indegree: Vec<usize> = parents.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut k = 0;
        while k < order.len() {
            tick();
            for &c in &children[order[k]] {
                indegree[c] -= 1;
                if indegree[c] == 0 {
                    order.push(c);
                }
            }
            k += 1;
        }
        if order.len() < n {
            return Err(ShapeError::Loop(Self::find_loop(
                &parents, &indegree, edges, &at,
            )));
        }
        let mut reachable = vec![false; n];
        reachable[t] = true;
        let mut stack = vec![t];
        while let Some(x) = stack.pop() {
            tick();
            for &c in &children[x] {
                if !reachable[c] {
                    reachable[c] = true;
                    stack.push(c);
                }
            }
        }
        // a parent that never runs does not lead here (unless nothing leads here)
        let counts = |x: usize, p: usize| !reachable[x] || reachable[p];

        // the longest path to each activity bounds the depths (and the bit sets)
        let mut longest = vec![0usize; n];
        for &x in &order {
            for &p in &parents[x] {
                if counts(x, p) {
                    longest[x] = longest[x].max(longest[p] + 1);
                }
            }
            if longest[x] > MAX_GRAPH_DEPTH {
                return Err(ShapeError::TooDeep(x));
            }
        }
        let words = longest.iter().max().copied().unwrap_or(0) / 64 + 1;

        // `lift[k][x]`: the tree ancestor 2^k levels above x (for common prefixes)
        let levels = (usize::BITS - (MAX_GRAPH_DEPTH + 1).leading_zeros()) as usize + 1;
        let mut lift = vec![vec![root; n + 1]; levels];
        let mut level = vec![0usize; n + 1];
        let mut top = vec![root; n];
        let mut exact = vec![true; n];
        let mut depths: Vec<Depths> = vec![vec![0; words]; n];
        let mut converging = vec![None; n];
        for &x in &order {
            tick();
            let ps: Vec<usize> = parents[x]
                .iter()
                .copied()
                .filter(|&p| counts(x, p))
                .collect();
            if ps.is_empty() {
                depths[x][0] = 1;
            }
            // the common prefix of the lists through each parent
            let mut common: Option<usize> = None;
            for &p in &ps {
                let through = if exact[p] { p } else { top[p] };
                common = Some(match common {
                    None => through,
                    Some(c) => Self::meet(&lift, &level, c, through),
                });
                // one deeper than the parent
                let from = depths[p].clone();
                let mut carry = 0;
                for (to, d) in depths[x].iter_mut().zip(from) {
                    *to |= (d << 1) | carry;
                    carry = d >> 63;
                }
            }
            top[x] = common.unwrap_or(root);
            // a start is reached one way (by starting there)
            exact[x] = ps.is_empty() || (ps.len() == 1 && exact[ps[0]]);
            level[x] = level[top[x]] + 1;
            lift[0][x] = top[x];
            for j in 1..levels {
                lift[j][x] = lift[j - 1][lift[j - 1][x]];
            }
            // two transitions that can enter x at one depth (in a job: x runs)
            if !reachable[x] {
                continue;
            }
            let mut union: Depths = vec![0; words];
            let counted: Vec<usize> = entries[x]
                .iter()
                .copied()
                .filter(|&p| counts(x, p))
                .collect();
            'entries: for (j, &p) in counted.iter().enumerate() {
                for w in 0..words {
                    let both = depths[p][w] & union[w];
                    if both != 0 {
                        // the earlier transition that reaches the lowest shared depth
                        let bit = both & both.wrapping_neg();
                        let q = counted[..j]
                            .iter()
                            .copied()
                            .find(|&q| depths[q][w] & bit != 0)
                            .unwrap_or(p);
                        converging[x] = Some((q, p));
                        break 'entries;
                    }
                }
                for w in 0..words {
                    union[w] |= depths[p][w];
                }
            }
        }
        // entry and exit times of the chain tree, walked without recursion
        let mut kids: Vec<Vec<usize>> = vec![vec![]; n + 1];
        for x in 0..n {
            kids[top[x]].push(x);
        }
        let (mut enter, mut exit) = (vec![0; n + 1], vec![0; n + 1]);
        let mut clock = 0;
        let mut walk = vec![(root, 0usize)];
        while let Some((x, next)) = walk.pop() {
            if next == 0 {
                enter[x] = clock;
                clock += 1;
            }
            if let Some(&c) = kids[x].get(next) {
                walk.push((x, next + 1));
                walk.push((c, 0));
            } else {
                exit[x] = clock;
            }
        }
        Ok(Shape {
            trigger: t,
            parents,
            children,
            reachable,
            top,
            level,
            enter,
            exit,
            converging,
        })
    }

    /// The common prefix of the chains that end in `a` and in `b`: their lowest common
    /// ancestor in the tree (by binary lifting).
    pub(super) fn meet(lift: &[Vec<usize>], level: &[usize], mut a: usize, mut b: usize) -> usize {
        if level[a] < level[b] {
            std::mem::swap(&mut a, &mut b);
        }
        for j in (0..lift.len()).rev() {
            if level[a] >= level[b] + (1 << j) {
                a = lift[j][a];
            }
        }
        if a == b {
            return a;
        }
        for j in (0..lift.len()).rev() {
            if lift[j][a] != lift[j][b] {
                a = lift[j][a];
                b = lift[j][b];
            }
        }
        lift[0][a]
    }

    /// Every activity left by Kahn's pass has a parent left: walking parents finds a
    /// loop.
    pub(super) fn find_loop<'e>(
        parents: &[Vec<usize>],
        indegree: &[usize],
        edges: &'e [Edge],
        at: &dyn Fn(&str) -> usize,
    ) -> Loop<'e> {
        let n = parents.len();
        let mut walk = vec![(0..n).find(|&i| indegree[i] > 0).unwrap_or(0)];
        let mut in_walk: Vec<Option<usize>> = vec![None; n];
        in_walk[walk[0]] = Some(0);
        let mut loop_ids = vec![];
        loop {
            tick();
            let cur = walk[walk.len() - 1];
            let Some(&p) = parents[cur].iter().find(|&&p| indegree[p] > 0) else {
                break;
            };
            if let Some(first) = in_walk[p] {
                // walk[first..] is the loop, backwards
                loop_ids = walk[first..].to_vec();
                loop_ids.reverse();
                break;
            }
            in_walk[p] = Some(walk.len());
            walk.push(p);
        }
        // the transition that closes it: the last of its transitions written
        let next: HashMap<usize, usize> = loop_ids
            .iter()
            .enumerate()
            .map(|(j, &a)| (a, loop_ids[(j + 1) % loop_ids.len()]))
            .collect();
        let edge = edges
            .iter()
            .rev()
            .find(|e| next.get(&at(&e.from)) == Some(&at(&e.to)))
            .unwrap_or(&edges[0]);
        let start = at(&edge.to);
        let s = loop_ids.iter().position(|&a| a == start).unwrap_or(0);
        loop_ids.rotate_left(s);
        Loop { loop_ids, edge }
    }

    /// How many ancestors activity `x` lists.
    pub(super) fn chain_len(&self, x: usize) -> usize {
        self.level[x] - 1
    }

    /// The common ancestors of `x`, from the trigger down.
    pub(super) fn chain(&self, x: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.chain_len(x));
        let mut y = self.top[x];
        while y != self.top.len() {
            out.push(y);
            y = self.top[y];
        }
        out.reverse();
        out
    }

    /// Whether `r` is a common ancestor of `x` (in its chain).
    pub(super) fn in_chain(&self, r: usize, x: usize) -> bool {
        let y = self.top[x];
        r != x && self.enter[r] <= self.enter[y] && self.exit[y] <= self.exit[r]
    }

    /// Whether activity `to` can be reached from `from` by transitions.
    pub(super) fn reaches(&self, from: usize, to: usize) -> bool {
        let mut seen = vec![false; self.children.len()];
        let mut stack = vec![from];
        while let Some(x) = stack.pop() {
            tick();
            for &c in &self.children[x] {
                if c == to {
                    return true;
                }
                if !seen[c] {
                    seen[c] = true;
                    stack.push(c);
                }
            }
        }
        false
    }
}
