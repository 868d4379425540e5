//! Precision of the top-ranked sites: of the first k sites an analyst reads
//! (k = 10, 20, 50), how many are real change.
//!
//! A site is **true** when at least 30 % of the pixels it covers, or at
//! least 5 of them, are labelled change in the truth. Covered pixels are
//! defined in [`super::site_pixels`] (pixel centres inside the polygon, all
//! touched pixels for sites smaller than a pixel). The 5-pixel arm keeps a
//! large site that contains a real structure from being called false only
//! because the rest of it is unlabelled ground; the 30 % arm judges small
//! sites, which cannot hold 5 change pixels.
//!
//! Order: the sites' `rank` property (1 = read first), as dunewatch writes
//! it; sites without one keep their place in the file (their position
//! counts as their rank), and ties keep file order. Sites entirely off the
//! grid cannot be judged and are left out before ranking. When fewer than k
//! sites are judged, the precision is over the sites there are, and
//! [`TopK::sites`] says how many.

use super::confusion::ratio;
use serde::Serialize;

/// The k of the top-k figures.
pub const TOP_K: [usize; 3] = [10, 20, 50];
/// A site with this many change pixels is true whatever its size.
pub const MIN_CHANGE_PIXELS: u64 = 5;
/// ... or with this share of its pixels changed, as a fraction
/// `SHARE_NUM / SHARE_DEN` (integers: 0.3 × 10 is not exactly 3 in floating point).
const SHARE_NUM: u64 = 3;
const SHARE_DEN: u64 = 10;

/// Whether a site covering `cover` pixels, `change` of them labelled
/// change, is a true site.
pub fn is_true_site(cover: u64, change: u64) -> bool {
    change >= MIN_CHANGE_PIXELS || (change > 0 && SHARE_DEN * change >= SHARE_NUM * cover)
}

/// Precision of the first k sites by rank.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TopK {
    pub k: usize,
    /// Sites looked at: min(k, judged sites).
    pub sites: u64,
    /// Of which true.
    pub true_sites: u64,
    /// true_sites / sites (0 when there are none).
    pub precision: f64,
}

/// One judged site: its rank (None = none given), its place in the file and
/// whether it is true.
#[derive(Debug, Clone, Copy)]
pub struct Judged {
    pub rank: Option<u64>,
    pub order: usize,
    pub is_true: bool,
}

/// The top-k figures for every k in `ks` (see the module doc for the order).
pub fn top_k(judged: &[Judged], ks: &[usize]) -> Vec<TopK> {
    let mut order: Vec<&Judged> = judged.iter().collect();
    order.sort_by_key(|j| (j.rank.unwrap_or(j.order as u64 + 1), j.order));
    ks.iter()
        .map(|&k| {
            let first = &order[..k.min(order.len())];
            let t = first.iter().filter(|j| j.is_true).count() as u64;
            TopK {
                k,
                sites: first.len() as u64,
                true_sites: t,
                precision: ratio(t as f64, first.len() as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_thirty_percent_or_five_pixels() {
        assert!(is_true_site(10, 3), "exactly 30 %");
        assert!(!is_true_site(10, 2));
        assert!(is_true_site(1, 1));
        assert!(!is_true_site(1, 0));
        assert!(!is_true_site(0, 0));
        assert!(is_true_site(1000, 5), "5 pixels, 0.5 %");
        assert!(!is_true_site(1000, 4));
        assert!(is_true_site(14, 5) && !is_true_site(17, 4));
    }

    fn j(rank: Option<u64>, order: usize, is_true: bool) -> Judged {
        Judged {
            rank,
            order,
            is_true,
        }
    }

    #[test]
    fn ranks_not_file_order_and_short_lists() {
        // 25 sites listed in reverse rank order; ranks 1..=5 and 21..=25 are true.
        let v: Vec<Judged> = (0..25)
            .map(|i| {
                let rank = 25 - i as u64;
                j(Some(rank), i, rank <= 5 || rank > 20)
            })
            .collect();
        let t = top_k(&v, &TOP_K);
        let got: Vec<(usize, u64, u64)> = t.iter().map(|t| (t.k, t.sites, t.true_sites)).collect();
        assert_eq!(got, vec![(10, 10, 5), (20, 20, 5), (50, 25, 10)]);
        assert!((t[0].precision - 0.5).abs() < 1e-12);
        assert!((t[1].precision - 0.25).abs() < 1e-12);
        assert!((t[2].precision - 0.4).abs() < 1e-12);
        assert_eq!(
            top_k(&[], &[10])[0],
            TopK {
                k: 10,
                sites: 0,
                true_sites: 0,
                precision: 0.0
            }
        );
    }

    #[test]
    fn missing_ranks_use_file_order() {
        // File order: true, false, true; no ranks: the first 2 are read first.
        let v = [j(None, 0, true), j(None, 1, false), j(None, 2, true)];
        assert_eq!(top_k(&v, &[2])[0].true_sites, 1);
        // A tie on rank keeps file order.
        let v = [
            j(Some(1), 0, false),
            j(Some(1), 1, true),
            j(Some(3), 2, true),
        ];
        assert_eq!(top_k(&v, &[1])[0].true_sites, 0);
    }
}
