//! Distribution-free statistics for the throughput comparison: paired per-round ratios, their
//! median, and a 95% confidence interval for that median from order statistics (the sign-test
//! interval: it assumes only that the rounds are independent, not any distribution of the ratios),
//! and the verdict against a goal that follows from the interval.

/// The most each end of the interval may miss by: 2.5% per side, 95% together.
const TAIL: f64 = 0.025;

/// Fewest values for which a 95% order-statistic interval for the median exists (for 5, even the
/// widest interval, minimum to maximum, covers only 1 - 2/32 = 93.75%).
pub const MIN_N: usize = 6;

/// A confidence interval for a median, as ranks in the sorted values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranks {
    /// 1-based rank of the lower end, k.
    pub lo: usize,
    /// 1-based rank of the upper end, n - k + 1.
    pub hi: usize,
    /// Exact coverage, 1 - 2 P(Binomial(n, 1/2) < k): at least 95%.
    pub coverage: f64,
}

/// P(Binomial(n, 1/2) < k): the chance that fewer than `k` of `n` values fall below the median.
/// Summed in log space so that large `n` does not underflow 2^-n.
fn binomial_half_below(n: usize, k: usize) -> f64 {
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut sum = 0.0;
    for i in 0..k.min(n + 1) {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64 / i as f64).ln();
        }
        sum += (ln_choose - ln_half_n).exp();
    }
    sum
}

/// Ranks of the 95% interval for the median of `n` values: [x_(k), x_(n-k+1)] with the largest k
/// such that P(Binomial(n, 1/2) < k) <= 2.5%; `None` when n < [`MIN_N`] (no such k >= 1).
pub fn median_ci_ranks(n: usize) -> Option<Ranks> {
    if binomial_half_below(n, 1) > TAIL {
        return None;
    }
    let mut k = 1;
    while k < n && binomial_half_below(n, k + 1) <= TAIL {
        k += 1;
    }
    Some(Ranks {
        lo: k,
        hi: n - k + 1,
        coverage: 1.0 - 2.0 * binomial_half_below(n, k),
    })
}

/// The 95% interval for the median of `values` (any order): its ends and ranks, or `None` when
/// there are fewer than [`MIN_N`] values.
pub fn median_ci(values: &[f64]) -> Option<(f64, f64, Ranks)> {
    let ranks = median_ci_ranks(values.len())?;
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some((v[ranks.lo - 1], v[ranks.hi - 1], ranks))
}

/// Whether a ratio meets an "at least `goal`" goal, judged by the confidence interval of its median.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole interval is at or above the goal.
    Met,
    /// The whole interval is below the goal.
    Missed,
    /// The goal lies within the interval: the runs cannot tell.
    Inconclusive,
    /// Too few rounds for a 95% interval.
    NoInterval,
}

impl Verdict {
    /// The verdict as the markdown tables show it.
    pub fn text(self) -> String {
        match self {
            Self::Met => "**met**".into(),
            Self::Missed => "**missed**".into(),
            Self::Inconclusive => "inconclusive (within noise)".into(),
            Self::NoInterval => {
                format!("inconclusive (no 95% interval with fewer than {MIN_N} rounds)")
            }
        }
    }
}

/// The verdict for an "at least `goal`" goal from the interval `(lower, upper)` of the median: met if
/// `lower >= goal`, missed if `upper < goal`, otherwise inconclusive.
pub fn verdict_at_least(interval: Option<(f64, f64)>, goal: f64) -> Verdict {
    match interval {
        None => Verdict::NoInterval,
        Some((lo, _)) if lo >= goal => Verdict::Met,
        Some((_, hi)) if hi < goal => Verdict::Missed,
        Some(_) => Verdict::Inconclusive,
    }
}

/// Per-round ratios `num[i] / den[i]` (values of the same round) and what they add up to.
#[derive(Debug, Clone)]
pub struct Paired {
    /// The ratios in round order.
    pub ratios: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// The 95% interval of that median, with its ranks (`None` with fewer than [`MIN_N`] rounds).
    pub ci: Option<(f64, f64, Ranks)>,
}

impl Paired {
    /// Pairs `num` and `den` round by round (the shorter length wins).
    pub fn new(num: &[f64], den: &[f64]) -> Self {
        let ratios: Vec<f64> = num.iter().zip(den).map(|(a, b)| a / b).collect();
        let median = super::runner::median_of(&mut ratios.clone());
        let ci = median_ci(&ratios);
        Self { ratios, median, ci }
    }

    /// The interval's ends, without the ranks.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.ci.map(|(lo, hi, _)| (lo, hi))
    }

    /// The interval as text: `lo–hi`, or why there is none.
    pub fn interval_text(&self) -> String {
        match self.ci {
            Some((lo, hi, _)) => format!("{lo:.3}–{hi:.3}"),
            None => format!("none: < {MIN_N} rounds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_matches_exact_counts() {
        // n = 15: C(15, 0..=3) = 1, 15, 105, 455, sum 576 of 2^15.
        let p = binomial_half_below(15, 4);
        assert!((p - 576.0 / 32768.0).abs() < 1e-12, "{p}");
        assert_eq!(binomial_half_below(7, 0), 0.0);
        assert!((binomial_half_below(7, 8) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn no_interval_below_six_values() {
        for n in 0..MIN_N {
            assert_eq!(median_ci_ranks(n), None, "n = {n}");
        }
        assert!(median_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]).is_none());
    }

    #[test]
    fn ranks_match_the_sign_test_table() {
        // (n, k): the usual table of the distribution-free 95% interval for a median.
        for (n, k) in [
            (6, 1),
            (8, 1),
            (9, 2),
            (10, 2),
            (12, 3),
            (15, 4),
            (20, 6),
            (30, 10),
        ] {
            let r = median_ci_ranks(n).unwrap();
            assert_eq!((r.lo, r.hi), (k, n - k + 1), "n = {n}");
            assert!(r.coverage >= 0.95 && r.coverage < 1.0, "n = {n}: {r:?}");
        }
        let r = median_ci_ranks(15).unwrap();
        assert!((r.coverage - (1.0 - 2.0 * 576.0 / 32768.0)).abs() < 1e-12);
    }

    #[test]
    fn large_n_does_not_underflow() {
        let r = median_ci_ranks(2000).unwrap();
        // About n/2 - 0.98 sqrt(n) = 956.
        assert!((950..=960).contains(&r.lo), "{r:?}");
        assert_eq!(r.hi, 2000 - r.lo + 1);
    }

    #[test]
    fn interval_picks_order_statistics_of_unsorted_values() {
        let v = [9.0, 3.0, 7.0, 1.0, 5.0, 8.0, 2.0, 6.0, 4.0];
        let (lo, hi, r) = median_ci(&v).unwrap();
        assert_eq!((r.lo, r.hi), (2, 8));
        assert_eq!((lo, hi), (2.0, 8.0));
        let v: Vec<f64> = (1..=15).rev().map(f64::from).collect();
        let (lo, hi, _) = median_ci(&v).unwrap();
        assert_eq!((lo, hi), (4.0, 12.0));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict_at_least(Some((0.98, 1.02)), 0.97), Verdict::Met);
        assert_eq!(verdict_at_least(Some((0.97, 1.0)), 0.97), Verdict::Met);
        assert_eq!(verdict_at_least(Some((0.90, 0.969)), 0.97), Verdict::Missed);
        assert_eq!(
            verdict_at_least(Some((0.95, 0.97)), 0.97),
            Verdict::Inconclusive
        );
        assert_eq!(
            verdict_at_least(Some((0.92, 1.19)), 0.97),
            Verdict::Inconclusive
        );
        assert_eq!(verdict_at_least(None, 0.97), Verdict::NoInterval);
        assert!(Verdict::NoInterval.text().contains("fewer than 6"));
    }

    #[test]
    fn paired_ratios_by_round() {
        let p = Paired::new(&[2.0, 3.0, 4.0], &[2.0, 2.0, 2.0]);
        assert_eq!(p.ratios, vec![1.0, 1.5, 2.0]);
        assert_eq!(p.median, 1.5);
        assert!(p.ci.is_none());
        assert!(p.interval_text().starts_with("none"));
    }
}
