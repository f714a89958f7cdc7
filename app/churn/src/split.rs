//! Deduplication and the seeded, stratified train/test split.
//!
//! The split is by customer: each customer id is hashed with the seed, and
//! within each class (churned or not) the customers with the smallest hashes
//! form the test part. So the split
//! - keeps the churn rate of both parts equal to the file's (stratified),
//! - does not depend on row order, and is the same on every machine,
//! - puts a customer wholly on one side (ids are deduplicated first).
//!
//! Cross-validation folds inside the training part are drawn the same way
//! with a different salt, so tuning never looks at the test part.

use std::collections::HashSet;

use crate::schema::CustomerRow;

/// Keeps the first row of each customer id; returns the rows kept and how
/// many duplicates were dropped.
pub fn dedup_by_customer(rows: Vec<CustomerRow>) -> (Vec<CustomerRow>, usize) {
    let before = rows.len();
    let mut seen = HashSet::with_capacity(rows.len());
    let kept: Vec<CustomerRow> = rows
        .into_iter()
        .filter(|r| seen.insert(r.customer_id.clone()))
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// SplitMix64's finaliser: a fixed, well-mixed 64-bit permutation.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded hash of a customer id (FNV-1a, then mixed with the seed).
pub fn customer_key(customer_id: &str, seed: u64, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in customer_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h ^ mix(seed ^ mix(salt)))
}

/// Orders the indices of each class by seeded customer key.
fn ranked_by_class(ids: &[&str], labels: &[bool], seed: u64, salt: u64) -> [Vec<usize>; 2] {
    let mut classes: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    for (i, &label) in labels.iter().enumerate() {
        classes[usize::from(label)].push(i);
    }
    for class in &mut classes {
        class.sort_by_key(|&i| (customer_key(ids[i], seed, salt), i));
    }
    classes
}

/// Indices of the training and test parts, each in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Splits `ids` (unique) with labels into train and test parts; the test
/// part holds `round(test_fraction × n)` customers of each class.
pub fn stratified_split(ids: &[&str], labels: &[bool], seed: u64, test_fraction: f64) -> Split {
    assert_eq!(ids.len(), labels.len());
    let mut train = Vec::new();
    let mut test = Vec::new();
    for class in ranked_by_class(ids, labels, seed, 0) {
        let n_test = (class.len() as f64 * test_fraction).round() as usize;
        test.extend_from_slice(&class[..n_test]);
        train.extend_from_slice(&class[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Split { train, test }
}

/// Stratified `k`-fold assignment: `fold[i]` in `0..k` for each index.
pub fn stratified_folds(ids: &[&str], labels: &[bool], seed: u64, k: usize) -> Vec<usize> {
    let mut fold = vec![0; ids.len()];
    for class in ranked_by_class(ids, labels, seed, 1) {
        for (rank, &i) in class.iter().enumerate() {
            fold[i] = rank % k;
        }
    }
    fold
}
