//! Gradient-boosted decision trees for log loss (second-order, XGBoost-style
//! gain with an L2 penalty on leaf values), grown level by level with exact
//! split search over presorted feature values.
//!
//! Why not a library: the trees we want are shallow (depth 2) on ~50
//! features and ~6,000 rows, which an exact greedy search handles in a
//! fraction of a second; writing it here keeps training single-threaded and
//! bit-for-bit reproducible, and the model file in our own format.
//!
//! Explanations are per-tree path contributions (Saabas): every node holds
//! the value it would predict as a leaf, and each split on the path credits
//! its feature with the change in value. For every tree
//! `leaf = root + Σ path changes`, so `baseline + Σ contributions` is the
//! logit exactly.

use serde::{Deserialize, Serialize};

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoostParams {
    pub trees: usize,
    pub max_depth: usize,
    pub learning_rate: f64,
    /// L2 penalty on leaf values.
    pub l2: f64,
    /// Smallest sum of Hessians (p(1−p)) allowed in a child.
    pub min_child_weight: f64,
}

/// A tree node; `value` is already scaled by the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub value: f64,
    /// `None` for a leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
}

/// A split: `x[feature] < threshold` goes left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub feature: usize,
    pub threshold: f64,
    pub left: usize,
    pub right: usize,
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A fitted ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Boosted {
    pub params: BoostParams,
    /// Starting log-odds: the training churn rate's.
    pub base_score: f64,
    pub trees: Vec<Tree>,
}

impl Tree {
    fn leaf(&self, x: &[f64]) -> f64 {
        let mut node = &self.nodes[0];
        while let Some(s) = node.split {
            node = &self.nodes[if x[s.feature] < s.threshold {
                s.left
            } else {
                s.right
            }];
        }
        node.value
    }
}

impl Boosted {
    /// The log-odds of churn.
    pub fn logit(&self, x: &[f64]) -> f64 {
        self.base_score + self.trees.iter().map(|t| t.leaf(x)).sum::<f64>()
    }

    /// The log-odds before any split: base score plus every root's value.
    pub fn baseline(&self) -> f64 {
        self.base_score + self.trees.iter().map(|t| t.nodes[0].value).sum::<f64>()
    }

    /// Adds `weight ×` each feature's path contribution to `contrib` and
    /// returns `weight × baseline`; together they are `weight × logit(x)`.
    pub fn explain_into(&self, x: &[f64], weight: f64, contrib: &mut [f64]) -> f64 {
        for tree in &self.trees {
            let mut node = &tree.nodes[0];
            while let Some(s) = node.split {
                let child = &tree.nodes[if x[s.feature] < s.threshold {
                    s.left
                } else {
                    s.right
                }];
                contrib[s.feature] += weight * (child.value - node.value);
                node = child;
            }
        }
        weight * self.baseline()
    }
}

/// Fits on rows `x` and labels `y`.
pub fn fit(x: &[Vec<f64>], y: &[bool], params: BoostParams) -> Boosted {
    let n = x.len();
    let d = x.first().map_or(0, Vec::len);
    let columns: Vec<Vec<f64>> = (0..d).map(|j| x.iter().map(|r| r[j]).collect()).collect();
    let sorted: Vec<Vec<u32>> = columns
        .iter()
        .map(|col| {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.sort_by(|&a, &b| col[a as usize].total_cmp(&col[b as usize]));
            order
        })
        .collect();
    let labels: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v))).collect();
    let rate = (labels.iter().sum::<f64>() / n.max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
    let base_score = (rate / (1.0 - rate)).ln();

    let mut score = vec![base_score; n];
    let mut grad = vec![0.0; n];
    let mut hess = vec![0.0; n];
    let mut node_of = vec![0usize; n];
    let mut trees = Vec::with_capacity(params.trees);
    for _ in 0..params.trees {
        for i in 0..n {
            let p = crate::logistic::sigmoid(score[i]);
            grad[i] = p - labels[i];
            hess[i] = p * (1.0 - p);
        }
        let tree = grow(&columns, &sorted, &grad, &hess, &mut node_of, params);
        for i in 0..n {
            score[i] += tree.nodes[node_of[i]].value;
        }
        trees.push(tree);
    }
    Boosted {
        params,
        base_score,
        trees,
    }
}

/// Sums of gradients and Hessians.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
}

impl Sums {
    fn score(self, l2: f64) -> f64 {
        self.g * self.g / (self.h + l2)
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    gain: f64,
    feature: usize,
    threshold: f64,
}

/// Grows one tree; on return `node_of[i]` is row i's leaf.
fn grow(
    columns: &[Vec<f64>],
    sorted: &[Vec<u32>],
    grad: &[f64],
    hess: &[f64],
    node_of: &mut [usize],
    params: BoostParams,
) -> Tree {
    let leaf_value = |s: Sums| -params.learning_rate * s.g / (s.h + params.l2);
    node_of.fill(0);
    let mut totals = vec![Sums::default()];
    for (g, h) in grad.iter().zip(hess) {
        totals[0].g += g;
        totals[0].h += h;
    }
    let mut nodes = vec![Node {
        value: leaf_value(totals[0]),
        split: None,
    }];
    let mut frontier: Vec<usize> = vec![0];
    for _ in 0..params.max_depth {
        // slot[node] = position in the frontier, or usize::MAX.
        let mut slot = vec![usize::MAX; nodes.len()];
        for (k, &node) in frontier.iter().enumerate() {
            slot[node] = k;
        }
        let mut best: Vec<Option<Candidate>> = vec![None; frontier.len()];
        let mut left = vec![Sums::default(); frontier.len()];
        let mut last = vec![f64::NAN; frontier.len()];
        for (feature, (column, order)) in columns.iter().zip(sorted).enumerate() {
            left.fill(Sums::default());
            last.fill(f64::NAN);
            for &i in order {
                let i = i as usize;
                let k = slot[node_of[i]];
                if k == usize::MAX {
                    continue;
                }
                let v = column[i];
                if v > last[k] {
                    // A threshold between the previous value and this one.
                    let total = totals[frontier[k]];
                    let l = left[k];
                    let r = Sums {
                        g: total.g - l.g,
                        h: total.h - l.h,
                    };
                    if l.h >= params.min_child_weight && r.h >= params.min_child_weight {
                        let gain = l.score(params.l2) + r.score(params.l2) - total.score(params.l2);
                        if gain > best[k].map_or(1e-12, |c| c.gain) {
                            best[k] = Some(Candidate {
                                gain,
                                feature,
                                threshold: last[k] + (v - last[k]) / 2.0,
                            });
                        }
                    }
                }
                left[k].g += grad[i];
                left[k].h += hess[i];
                last[k] = v;
            }
        }
        let mut next = Vec::new();
        let mut children = vec![(0, 0); frontier.len()];
        for (k, &node) in frontier.iter().enumerate() {
            let Some(c) = best[k] else { continue };
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes[node].split = Some(Split {
                feature: c.feature,
                threshold: c.threshold,
                left: l,
                right: r,
            });
            children[k] = (l, r);
            for _ in 0..2 {
                nodes.push(Node {
                    value: 0.0,
                    split: None,
                });
                totals.push(Sums::default());
            }
            next.extend([l, r]);
        }
        if next.is_empty() {
            break;
        }
        for i in 0..node_of.len() {
            let k = slot[node_of[i]];
            if k == usize::MAX {
                continue;
            }
            let Some(s) = nodes[node_of[i]].split else {
                continue;
            };
            let child = if columns[s.feature][i] < s.threshold {
                children[k].0
            } else {
                children[k].1
            };
            node_of[i] = child;
            totals[child].g += grad[i];
            totals[child].h += hess[i];
        }
        for &node in &next {
            nodes[node].value = leaf_value(totals[node]);
        }
        frontier = next;
    }
    Tree { nodes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BoostParams {
        BoostParams {
            trees: 30,
            max_depth: 2,
            learning_rate: 0.3,
            l2: 1.0,
            min_child_weight: 1.0,
        }
    }

    #[test]
    fn learns_an_interaction() {
        // y = x0 XOR x1: no single split helps, depth 2 does.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..400u32 {
            let a = f64::from(i % 2);
            let b = f64::from((i / 2) % 2);
            let noise = f64::from(i % 7) / 7.0;
            x.push(vec![a, b, noise]);
            y.push((a > 0.5) != (b > 0.5));
        }
        // Break the tie at the root so the first split has some gain.
        y[0] = !y[0];
        let model = fit(&x, &y, params());
        assert!(model.logit(&[1.0, 0.0, 0.0]) > 1.0);
        assert!(model.logit(&[1.0, 1.0, 0.0]) < -1.0);
    }

    #[test]
    fn contributions_add_up_to_the_logit() {
        let x: Vec<Vec<f64>> = (0..100)
            .map(|i| vec![f64::from(i % 10), f64::from(i % 3)])
            .collect();
        let y: Vec<bool> = (0..100).map(|i| i % 10 > 4 || i % 3 == 0).collect();
        let model = fit(&x, &y, params());
        for row in &x {
            let mut contrib = vec![0.0; 2];
            let base = model.explain_into(row, 1.0, &mut contrib);
            let total = base + contrib.iter().sum::<f64>();
            assert!((total - model.logit(row)).abs() < 1e-9);
        }
    }
}
