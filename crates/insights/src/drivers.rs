//! Which terms drive a sentiment: those whose share among the window's posts of that sentiment
//! rose against the baseline's by more than chance explains.
//!
//! Every term mentioned in either window is a test, so a window of a few hundred terms would
//! name a dozen "drivers" at the usual z of 1.96 by chance alone. The threshold is therefore the
//! z that a family of that many one-sided tests needs for a family-wise error rate of
//! [`Settings::family_alpha`] (Bonferroni), and never below [`Settings::min_z`]; a term must also
//! be mentioned by at least [`Settings::min_posts`] posts of the window. A quiet window, whose
//! counts differ from the baseline's only by sampling noise, names no driver at all (with
//! probability `1 - family_alpha`).

use crate::log_odds::{self, Counts, Scored};

/// How demanding the test is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Chance, over all terms of a query together, of naming a driver when nothing changed.
    pub family_alpha: f64,
    /// The least z named, however few terms are tested.
    pub min_z: f64,
    /// The fewest posts of the window that must mention a driver.
    pub min_posts: u64,
    /// The prior's strength (see [`log_odds::DEFAULT_PRIOR_SCALE`]).
    pub prior_scale: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            family_alpha: 0.01,
            min_z: 3.0,
            min_posts: 5,
            prior_scale: log_odds::DEFAULT_PRIOR_SCALE,
        }
    }
}

/// The drivers of one window, with the threshold they passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Drivers<T> {
    /// Terms counted in either window: the size of the test family.
    pub tested: usize,
    /// The z a term needed.
    pub threshold: f64,
    /// The terms that passed, highest z first.
    pub drivers: Vec<Scored<T>>,
}

/// The drivers among `terms` (counts in the window and in the baseline), highest z first.
pub fn find<T: Clone + Ord>(terms: &[(T, Counts)], settings: &Settings) -> Drivers<T> {
    let ranked = log_odds::rank(terms, settings.prior_scale);
    let tested = ranked.len();
    let threshold = family_threshold(tested, settings.family_alpha).max(settings.min_z);
    let drivers = ranked
        .into_iter()
        .filter(|s| s.z >= threshold && s.delta > 0.0 && s.counts.focus >= settings.min_posts)
        .collect();
    Drivers {
        tested,
        threshold,
        drivers,
    }
}

/// The one-sided z that `tests` tests need for a family-wise error rate of `alpha`.
pub fn family_threshold(tests: usize, alpha: f64) -> f64 {
    let per_test = alpha.clamp(1e-12, 0.5) / (tests.max(1) as f64);
    upper_quantile(per_test)
}

/// The z with `p` of the standard normal above it (0 < p < 1): Acklam's rational
/// approximation of the normal quantile, relative error below 1.2e-9.
fn upper_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    // The lower-tail quantile of 1 - p is the upper-tail quantile of p.
    let lower = 1.0 - p;
    let tail = 0.024_25;
    if lower < tail {
        let q = (-2.0 * lower.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if lower <= 1.0 - tail {
        let q = lower - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        // Computed from p itself: 1 - p has lost its digits by now.
        let q = (-2.0 * p.ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(focus: u64, baseline: u64) -> Counts {
        Counts { focus, baseline }
    }

    #[test]
    fn normal_quantiles_match_the_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.025, 1.959_964),
            (0.01, 2.326_348),
            (0.001, 3.090_232),
            (1e-5, 4.264_891),
            (0.975, -1.959_964),
        ] {
            assert!(
                (upper_quantile(p) - z).abs() < 1e-5,
                "p {p}: {}",
                upper_quantile(p)
            );
        }
    }

    #[test]
    fn more_tests_need_a_higher_z() {
        let one = family_threshold(1, 0.01);
        let hundred = family_threshold(100, 0.01);
        assert!((one - 2.326_348).abs() < 1e-5);
        assert!((hundred - 3.719_016).abs() < 1e-5, "{hundred}");
        assert!(family_threshold(0, 0.01) == one);
    }

    /// A steady mix: every term's count is the baseline's scaled to the window, give or take
    /// noise of about one standard deviation.
    fn steady() -> Vec<(String, Counts)> {
        (0..300)
            .map(|i| {
                let base = 20 + (i % 40);
                let wobble = ((i * 7919) % 11) as i64 - 5;
                let focus = u64::try_from(base as i64 + wobble).unwrap_or(0);
                (format!("term{i:03}"), counts(focus, base))
            })
            .collect()
    }

    #[test]
    fn a_quiet_window_names_no_driver() {
        let found = find(&steady(), &Settings::default());
        assert_eq!(found.tested, 300);
        assert!(found.threshold > 3.9, "{}", found.threshold);
        assert!(found.drivers.is_empty(), "{:?}", found.drivers);
    }

    #[test]
    fn a_burst_names_its_terms_and_nothing_else() {
        let mut terms = steady();
        terms.push(("battery drains".into(), counts(80, 2)));
        terms.push(("overheating".into(), counts(60, 1)));
        terms.push(("rare".into(), counts(4, 0)));
        let found = find(&terms, &Settings::default());
        let named: Vec<&str> = found.drivers.iter().map(|d| d.term.as_str()).collect();
        assert_eq!(named, ["battery drains", "overheating"], "{found:?}");
    }

    #[test]
    fn a_fall_is_no_driver() {
        let mut terms = steady();
        terms.push(("delivery".into(), counts(2, 90)));
        let found = find(&terms, &Settings::default());
        assert!(found.drivers.is_empty(), "{:?}", found.drivers);
    }
}
