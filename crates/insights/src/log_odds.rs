//! The weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi and Quinn,
//! "Fightin' Words", Political Analysis 16(4), 2008, section 3.5).
//!
//! For a term w counted `y_f` times among the `n_f` term occurrences of the focus set (say, the
//! negative posts of the last hour) and `y_b` times among the `n_b` of the baseline (the hour
//! before), with a prior of `a_w` pseudo-counts for w out of `a_0` in all:
//!
//! ```text
//! delta_w = ln((y_f + a_w) / (n_f + a_0 - y_f - a_w)) - ln((y_b + a_w) / (n_b + a_0 - y_b - a_w))
//! var_w   ~ 1 / (y_f + a_w) + 1 / (y_b + a_w)
//! z_w     = delta_w / sqrt(var_w)
//! ```
//!
//! The prior is informative: `a_w` is w's share of both sets together times `a_0`, so a term
//! starts from "as common here as anywhere" and only counts can move it. Ranking by `z` rather
//! than by `delta` is what keeps a term seen twice in the focus and never in the baseline from
//! outranking one seen two hundred times against twenty: its log-odds may be larger, but so is
//! its variance.

/// How often one term occurs in the focus set and in the baseline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub focus: u64,
    pub baseline: u64,
}

/// A term with its counts and its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<T> {
    pub term: T,
    pub counts: Counts,
    /// The log-odds ratio, smoothed by the prior: above 0 when the term is more common in the
    /// focus set.
    pub delta: f64,
    /// `delta` over its standard error: the ranking statistic.
    pub z: f64,
}

/// The prior's strength `a_0` as a multiple of the term occurrences of both sets together;
/// 1.0 lets the pooled counts weigh as much as the data.
pub const DEFAULT_PRIOR_SCALE: f64 = 1.0;

/// Scores every term, highest `z` first (ties by term). `prior_scale` sets `a_0` (see
/// [`DEFAULT_PRIOR_SCALE`]); terms counted nowhere are left out.
pub fn rank<T: Clone + Ord>(terms: &[(T, Counts)], prior_scale: f64) -> Vec<Scored<T>> {
    let n_f: f64 = terms.iter().map(|(_, c)| c.focus as f64).sum();
    let n_b: f64 = terms.iter().map(|(_, c)| c.baseline as f64).sum();
    let n_all = n_f + n_b;
    if n_all == 0.0 {
        return Vec::new();
    }
    let a_0 = prior_scale.max(f64::MIN_POSITIVE) * n_all;
    let mut scored: Vec<Scored<T>> = terms
        .iter()
        .filter(|(_, c)| c.focus + c.baseline > 0)
        .map(|(term, counts)| {
            let (y_f, y_b) = (counts.focus as f64, counts.baseline as f64);
            let a_w = a_0 * (y_f + y_b) / n_all;
            let odds_f = (y_f + a_w) / (n_f + a_0 - y_f - a_w);
            let odds_b = (y_b + a_w) / (n_b + a_0 - y_b - a_w);
            let delta = odds_f.ln() - odds_b.ln();
            let variance = 1.0 / (y_f + a_w) + 1.0 / (y_b + a_w);
            Scored {
                term: term.clone(),
                counts: *counts,
                delta,
                z: delta / variance.sqrt(),
            }
        })
        .collect();
    scored.sort_by(|a, b| b.z.total_cmp(&a.z).then_with(|| a.term.cmp(&b.term)));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(focus: u64, baseline: u64) -> Counts {
        Counts { focus, baseline }
    }

    /// A burst of battery complaints against a quiet hour; the screen is as common in both.
    fn burst() -> Vec<(&'static str, Counts)> {
        vec![
            ("battery", counts(120, 20)),
            ("battery drains", counts(60, 2)),
            ("screen", counts(40, 40)),
            ("delivery", counts(30, 60)),
            ("overheating", counts(3, 0)),
            ("price", counts(47, 78)),
        ]
    }

    #[test]
    fn the_burst_ranks_first_and_a_steady_term_scores_near_zero() {
        let ranked = rank(&burst(), DEFAULT_PRIOR_SCALE);
        let order: Vec<&str> = ranked.iter().map(|s| s.term).collect();
        assert_eq!(&order[..2], ["battery", "battery drains"], "{ranked:#?}");
        let z = |term: &str| {
            ranked
                .iter()
                .find(|s| s.term == term)
                .map(|s| s.z)
                .unwrap_or(f64::NAN)
        };
        // Equal counts in sets of different sizes: the focus set is larger (300 against 200),
        // so the same count is a smaller share of it and scores a little below zero.
        assert!(z("screen") < 0.0 && z("screen") > -2.0, "{ranked:#?}");
        // More common before: below the steady term. Price (47 against 78) is a smaller fall
        // than delivery (30 against 60) but on more evidence, and scores lower.
        assert!(
            z("price") < z("delivery") && z("delivery") < z("screen"),
            "{ranked:#?}"
        );
    }

    #[test]
    fn a_rare_term_does_not_outrank_a_frequent_one_on_its_ratio_alone() {
        let ranked = rank(&burst(), DEFAULT_PRIOR_SCALE);
        let position = |term: &str| ranked.iter().position(|s| s.term == term);
        // 3 against 0 is an infinite raw ratio; 120 against 20 is six to one.
        assert!(position("overheating") > position("battery"));
        let overheating = &ranked[position("overheating").unwrap_or(0)];
        assert!(
            overheating.z > 0.0 && overheating.z < 2.0,
            "{overheating:?}"
        );
    }

    #[test]
    fn swapping_the_sets_negates_every_score() {
        let forward = rank(&burst(), DEFAULT_PRIOR_SCALE);
        let swapped: Vec<(&str, Counts)> = burst()
            .into_iter()
            .map(|(t, c)| (t, counts(c.baseline, c.focus)))
            .collect();
        let backward = rank(&swapped, DEFAULT_PRIOR_SCALE);
        for s in &forward {
            let other = backward
                .iter()
                .find(|b| b.term == s.term)
                .map(|b| b.z)
                .unwrap_or(f64::NAN);
            assert!((s.z + other).abs() < 1e-9, "{}: {} vs {other}", s.term, s.z);
        }
    }

    #[test]
    fn the_formula_by_hand() {
        // Two terms, prior scale 1: n_f = 12, n_b = 8, a_0 = 20.
        let ranked = rank(&[("a", counts(10, 2)), ("b", counts(2, 6))], 1.0);
        let a = &ranked[0];
        assert_eq!(a.term, "a");
        // a_w = 20 * 12 / 20 = 12.
        let delta = ((10.0 + 12.0) / (12.0 + 20.0 - 10.0 - 12.0_f64)).ln()
            - ((2.0 + 12.0) / (8.0 + 20.0 - 2.0 - 12.0_f64)).ln();
        let z = delta / (1.0 / 22.0 + 1.0 / 14.0_f64).sqrt();
        assert!((a.delta - delta).abs() < 1e-12);
        assert!((a.z - z).abs() < 1e-12);
    }

    #[test]
    fn nothing_counted_ranks_nothing() {
        assert!(rank::<&str>(&[], 1.0).is_empty());
        assert!(rank(&[("a", counts(0, 0))], 1.0).is_empty());
    }
}
