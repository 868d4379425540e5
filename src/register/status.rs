//! How a register site's status, confidence and appearance interval change
//! when a run sees it again, or covers it without seeing it.
//!
//! Each run is a comparison (before date -> after date). A site flagged in
//! it appeared in that interval. A later comparison that starts after the
//! site appeared and does not flag it confirms the change persisted (its
//! confidence rises). A later comparison that flags it again with the
//! opposite change (the brightness goes back to what it was before the
//! site appeared) means the change vanished: the site is transient
//! (vehicles, water, a cloud the masks missed). The analyst's review is
//! never overwritten; a dismissed site comes back as changed_since_review
//! only when it grew beyond the grow factor since it was reviewed.

use gdal::vector::Geometry;

pub const NEW: &str = "new";
pub const SEEN_AGAIN: &str = "seen_again";
pub const GROWN: &str = "grown";
pub const NOT_SEEN_SINCE: &str = "not_seen_since";
pub const CHANGED_SINCE_REVIEW: &str = "changed_since_review";
pub const UNREVIEWED: &str = "unreviewed";
pub const DISMISSED: &str = "dismissed";
pub const TRANSIENT: &str = "transient";

/// A site of the register, as read (or about to be written).
#[derive(Debug, Clone)]
pub struct RegSite {
    /// Feature id in the GeoPackage; None until written.
    pub fid: Option<u64>,
    pub site_id: i64,
    pub outline: Geometry,
    pub first_seen: String,
    pub last_seen: String,
    pub times_seen: i64,
    pub kind: String,
    pub best_score: f64,
    pub area_m2: f64,
    pub area_first_m2: f64,
    pub status: String,
    pub review: String,
    pub appeared_after: String,
    pub appeared_by: String,
    pub confidence: String,
    pub confirmations: i64,
    pub merged_into: Option<i64>,
    pub split_from: Option<i64>,
    pub area_at_review: Option<f64>,
    pub first_run: String,
    pub last_run: String,
    pub first_brightness_before: f64,
    pub first_brightness_after: f64,
}

/// The comparison a run made.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    pub run_id: &'a str,
    pub before_date: &'a str,
    pub after_date: &'a str,
}

/// What a run says about one site it flagged.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub outline: &'a Geometry,
    pub kind: &'a str,
    pub score: f64,
    pub area_m2: f64,
    pub brightness_before: f64,
    pub brightness_after: f64,
}

/// Rules with their parameters.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Area ratio beyond which a site is `grown` (over its previous area)
    /// and a dismissed site is `changed_since_review` (over its area when
    /// it was reviewed).
    pub grow_factor: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { grow_factor: 1.5 }
    }
}

fn confidence(confirmations: i64) -> &'static str {
    match confirmations {
        0 => "low",
        1 => "medium",
        _ => "high",
    }
}

/// Whether a later change undoes the first one: the brightness after it is
/// closer to the brightness before the site appeared than half the first
/// change. Unknown brightness (NaN) is never a reversal.
pub fn undoes(first_before: f64, first_after: f64, later_after: f64) -> bool {
    let first = (first_after - first_before).abs();
    first > 0.0 && (later_after - first_before).abs() < 0.5 * first
}

/// A site the run flagged for the first time.
pub fn first_seen(site_id: i64, s: &Seen, c: &Comparison) -> RegSite {
    RegSite {
        fid: None,
        site_id,
        outline: s.outline.clone(),
        first_seen: c.after_date.to_string(),
        last_seen: c.after_date.to_string(),
        times_seen: 1,
        kind: s.kind.to_string(),
        best_score: s.score,
        area_m2: s.area_m2,
        area_first_m2: s.area_m2,
        status: NEW.to_string(),
        review: UNREVIEWED.to_string(),
        appeared_after: c.before_date.to_string(),
        appeared_by: c.after_date.to_string(),
        confidence: confidence(0).to_string(),
        confirmations: 0,
        merged_into: None,
        split_from: None,
        area_at_review: None,
        first_run: c.run_id.to_string(),
        last_run: c.run_id.to_string(),
        first_brightness_before: s.brightness_before,
        first_brightness_after: s.brightness_after,
    }
}

/// A register site the run flagged again.
pub fn seen_again(r: &mut RegSite, s: &Seen, c: &Comparison, p: &Policy) {
    let prev_area = r.area_m2;
    if r.review != UNREVIEWED && r.area_at_review.is_none() {
        // The analyst reviewed the site as it was before this run.
        r.area_at_review = Some(prev_area);
    }
    // A comparison that starts when the site was already there saw a
    // second change at the same place.
    let later = c.before_date >= r.last_seen.as_str();
    if later
        && undoes(
            r.first_brightness_before,
            r.first_brightness_after,
            s.brightness_after,
        )
    {
        r.confidence = TRANSIENT.to_string();
    } else {
        r.confirmations += 1;
        if r.confidence != TRANSIENT {
            r.confidence = confidence(r.confirmations).to_string();
        }
    }
    r.times_seen += 1;
    r.best_score = r.best_score.max(s.score);
    if c.after_date >= r.last_seen.as_str() {
        r.outline = s.outline.clone();
        r.area_m2 = s.area_m2;
        r.kind = s.kind.to_string();
        r.last_seen = c.after_date.to_string();
        r.last_run = c.run_id.to_string();
    }
    if c.after_date < r.first_seen.as_str() {
        // A run older than the register's first sight of the site.
        r.first_seen = c.after_date.to_string();
        r.appeared_by = c.after_date.to_string();
        r.appeared_after = c.before_date.to_string();
    }
    r.status = if s.area_m2 > p.grow_factor * prev_area {
        GROWN.to_string()
    } else {
        SEEN_AGAIN.to_string()
    };
    if r.review == DISMISSED {
        if let Some(a) = r.area_at_review {
            if s.area_m2 > p.grow_factor * a {
                r.status = CHANGED_SINCE_REVIEW.to_string();
            }
        }
    }
}

/// A register site inside the run's compared area that the run did not
/// flag. Returns whether the site changed.
pub fn not_seen(r: &mut RegSite, c: &Comparison) -> bool {
    let mut changed = false;
    if c.before_date >= r.appeared_by.as_str() && r.confidence != TRANSIENT {
        // The change was there at the start of this comparison and did not
        // go away during it: it persisted.
        r.confirmations += 1;
        r.confidence = confidence(r.confirmations).to_string();
        changed = true;
    }
    if c.after_date > r.last_seen.as_str() && r.status != NOT_SEEN_SINCE {
        r.status = NOT_SEEN_SINCE.to_string();
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sq() -> Geometry {
        Geometry::from_wkt("POLYGON((0 0,1 0,1 1,0 1,0 0))").unwrap()
    }

    fn seen(g: &Geometry, area: f64, bb: f64, ba: f64) -> Seen<'_> {
        Seen {
            outline: g,
            kind: "structure",
            score: 0.8,
            area_m2: area,
            brightness_before: bb,
            brightness_after: ba,
        }
    }

    const C1: Comparison = Comparison {
        run_id: "a",
        before_date: "2020-01-01",
        after_date: "2020-02-01",
    };
    const C2: Comparison = Comparison {
        run_id: "b",
        before_date: "2020-02-01",
        after_date: "2020-03-01",
    };

    #[test]
    fn persisted_change_gains_confidence_and_keeps_its_interval() {
        let g = sq();
        let mut r = first_seen(1, &seen(&g, 1000.0, 0.2, 0.4), &C1);
        assert_eq!(
            (r.appeared_after.as_str(), r.appeared_by.as_str()),
            ("2020-01-01", "2020-02-01")
        );
        assert!(not_seen(&mut r, &C2));
        assert_eq!(r.confidence, "medium");
        assert_eq!(r.status, NOT_SEEN_SINCE);
        assert_eq!(r.appeared_by, "2020-02-01");
    }

    #[test]
    fn a_change_undone_later_is_transient() {
        let g = sq();
        let mut r = first_seen(1, &seen(&g, 1000.0, 0.2, 0.4), &C1);
        seen_again(
            &mut r,
            &seen(&g, 1000.0, 0.4, 0.21),
            &C2,
            &Policy::default(),
        );
        assert_eq!(r.confidence, TRANSIENT);
        // Continued construction (brighter still) is not.
        let mut r = first_seen(1, &seen(&g, 1000.0, 0.2, 0.4), &C1);
        seen_again(&mut r, &seen(&g, 1000.0, 0.4, 0.5), &C2, &Policy::default());
        assert_eq!(r.confidence, "medium");
    }

    #[test]
    fn dismissed_stays_dismissed_and_returns_only_when_grown() {
        let g = sq();
        let mut r = first_seen(1, &seen(&g, 1000.0, 0.2, 0.4), &C1);
        r.review = DISMISSED.to_string();
        seen_again(&mut r, &seen(&g, 1200.0, 0.2, 0.4), &C1, &Policy::default());
        assert_eq!(r.review, DISMISSED);
        assert_eq!(r.status, SEEN_AGAIN);
        assert_eq!(r.area_at_review, Some(1000.0));
        seen_again(&mut r, &seen(&g, 1600.0, 0.2, 0.4), &C1, &Policy::default());
        assert_eq!(r.review, DISMISSED);
        assert_eq!(r.status, CHANGED_SINCE_REVIEW);
    }

    #[test]
    fn growth_beyond_the_factor_is_flagged() {
        let g = sq();
        let mut r = first_seen(1, &seen(&g, 1000.0, 0.2, 0.4), &C1);
        seen_again(&mut r, &seen(&g, 1400.0, 0.2, 0.4), &C1, &Policy::default());
        assert_eq!(r.status, SEEN_AGAIN);
        seen_again(&mut r, &seen(&g, 2200.0, 0.2, 0.4), &C1, &Policy::default());
        assert_eq!(r.status, GROWN);
        assert_eq!(r.area_first_m2, 1000.0);
    }
}
