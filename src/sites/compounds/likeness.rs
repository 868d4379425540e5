//! How much a group of sites looks like a new base, in [0, 1], with the
//! reasons, from the members' shapes and spectra.
//!
//! Why these cues: a logistics or military base built on open ground shows
//! the same few parts wherever it is, and each shows in the measures the
//! sites already carry:
//!
//! - **rectilinear layout** (weight 0.15): its buildings are rectangles laid
//!   out on one grid, so their orientations agree modulo 90 degrees. The
//!   agreement is the mean resultant length of 4 x orientation over the
//!   rectangular core members (1: all on one axis; about 1/sqrt(n) for n
//!   random ones), each weighted by how far its pixels define its shape
//!   (not at all for 9 pixels, fully from 50), times how rectangular they
//!   are, and counts fully from three such members. The weight is low: on
//!   a 10 m grid small sites are pixel squares, all on the grid's axes, and
//!   whole towns are laid out on one axis too.
//! - **enclosing ring** (0.3): a perimeter berm, wall or fence line is a
//!   hollow member (its pixels fill 40% of its hull or less; nothing from 60%) whose hull holds
//!   the centroids of the other members.
//! - **apron** (0.2): a large paved or graded surface: a compact,
//!   rectangular, solid member of 0.3-1 ha or more whose surface changed
//!   (brightness, BSI or NDBI against the scene's change).
//! - **runway or apron extension** (0.15): a straight linear member 30-60 m
//!   wide and 500 m or more long.
//! - **tracks leading in** (0.2): linear members that reach the hull of the
//!   core members from outside it.
//!
//! The score is (0.5 + 0.5 x the members' area-weighted structure score) x
//! plausible size x (0.1 + 0.9 x the weighted cues): a base is a few
//! hectares to a few square kilometres, so a hull of more than 4 km^2 (a
//! city's worth of sites chained together) counts less and one of 25 km^2
//! or more a fifth, and under half a hectare of change is too little to be
//! one.

use super::hull::{self, Pt};
use crate::sites::classify::{smooth, Kind, SHAPE_PIXELS};
use crate::sites::Site;

/// A member site with its footprint in metres.
pub struct Member<'a> {
    pub site: &'a Site,
    pub hull: &'a [Pt],
    /// The site's pixel centroid, in the same metres.
    pub centroid: Pt,
}

impl Member<'_> {
    fn core(&self) -> bool {
        self.site.kind != Kind::Linear
    }
    /// The share of its hull the site fills (1 for a rectangle, small for a
    /// ring or an L).
    fn solidity(&self) -> f64 {
        let a = hull::area(self.hull);
        if a > 0.0 {
            (self.site.area_m2 / a).min(1.0)
        } else {
            1.0
        }
    }
}

/// A cue's strength in [0, 1] and what it saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub value: f64,
    pub reason: String,
}

pub const WEIGHTS: [f64; 5] = [0.15, 0.3, 0.2, 0.15, 0.2];
/// Cues listed among the reasons from this strength.
pub const REASON_FROM: f64 = 0.25;

#[derive(Debug, Clone, PartialEq)]
pub struct Likeness {
    pub score: f64,
    /// The cues in [`WEIGHTS`]' order.
    pub cues: [Option<Cue>; 5],
    /// The listed cues' reasons, strongest weighted cue first, then size.
    pub reasons: Vec<String>,
}

fn ids(v: &[&Member]) -> String {
    v.iter()
        .map(|m| m.site.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rectangular core members aligned on one axis.
pub fn rectilinear(members: &[Member]) -> Option<Cue> {
    let rect: Vec<&Member> = members
        .iter()
        .filter(|m| m.core() && m.site.shape.rectangularity >= 0.6 && m.solidity() >= 0.5)
        .collect();
    if rect.len() < 2 {
        return None;
    }
    let (mut c, mut s, mut n) = (0.0, 0.0, 0.0);
    for m in &rect {
        let a = (4.0 * m.site.shape.orientation_deg).to_radians();
        let w = smooth(m.site.pixels as f64, SHAPE_PIXELS.0, SHAPE_PIXELS.1);
        c += w * a.cos();
        s += w * a.sin();
        n += w;
    }
    if n <= 0.0 {
        return None;
    }
    let r = c.hypot(s) / n;
    let axis = (s.atan2(c).to_degrees() / 4.0).rem_euclid(90.0);
    let mean_rect = rect
        .iter()
        .map(|m| m.site.shape.rectangularity)
        .sum::<f64>()
        / rect.len() as f64;
    let spread = rect
        .iter()
        .map(|m| {
            let d = (m.site.shape.orientation_deg - axis).rem_euclid(90.0);
            d.min(90.0 - d)
        })
        .fold(0.0, f64::max);
    let value = smooth(r, 0.6, 0.95) * smooth(mean_rect, 0.6, 0.85) * smooth(n, 1.0, 3.0);
    Some(Cue {
        value,
        reason: format!(
            "rectilinear layout: {} rectangular members (rectangularity {:.2}) on one axis ({:.0} deg, within {:.0} deg; agreement {:.2}): sites {}",
            rect.len(),
            mean_rect,
            axis,
            spread,
            r,
            ids(&rect)
        ),
    })
}

/// A hollow member whose hull holds the other members' centroids.
pub fn enclosing_ring(members: &[Member]) -> Option<Cue> {
    let mut best: Option<Cue> = None;
    for ring in members {
        let solidity = ring.solidity();
        if solidity > 0.6 || hull::area(ring.hull) < 10_000.0 {
            continue;
        }
        let others: Vec<&Member> = members
            .iter()
            .filter(|m| m.site.id != ring.site.id && m.core())
            .collect();
        let inside: Vec<&Member> = others
            .iter()
            .copied()
            .filter(|m| hull::contains(ring.hull, m.centroid))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let share = inside.len() as f64 / others.len() as f64;
        let value =
            (1.0 - smooth(solidity, 0.4, 0.6)) * share * smooth(inside.len() as f64, 0.0, 2.0);
        if best.as_ref().is_none_or(|b| value > b.value) {
            best = Some(Cue {
                value,
                reason: format!(
                    "enclosing ring: site {} ({:.0} m across, fills {:.0}% of its hull) encloses {} of {} other members (sites {}): perimeter berm, wall or fence",
                    ring.site.id,
                    ring.site.shape.min_rect_length_m,
                    100.0 * solidity,
                    inside.len(),
                    others.len(),
                    ids(&inside)
                ),
            });
        }
    }
    best
}

/// The largest surface change of a site against the scene's: brightness,
/// BSI or NDBI.
fn surface_change(s: &Site) -> (f64, &'static str) {
    let d = &s.spectral.delta_rel;
    [
        (d.brightness as f64 / 0.06, "brightness"),
        (d.bsi as f64 / 0.1, "BSI"),
        (d.ndbi as f64 / 0.1, "NDBI"),
    ]
    .into_iter()
    .max_by(|a, b| a.0.abs().total_cmp(&b.0.abs()))
    .unwrap_or((0.0, "brightness"))
}

/// A large, compact, solid core member whose surface changed.
pub fn apron(members: &[Member]) -> Option<Cue> {
    let mut best: Option<Cue> = None;
    for m in members.iter().filter(|m| m.core()) {
        let s = m.site;
        let sh = &s.shape;
        if s.spectral.pixels == 0 {
            continue;
        }
        let (change, what) = surface_change(s);
        let value = smooth(s.area_m2, 3_000.0, 10_000.0)
            * smooth(sh.rectangularity, 0.6, 0.85)
            * smooth(sh.compactness, 0.25, 0.45)
            * smooth(m.solidity(), 0.6, 0.85)
            * smooth(change.abs(), 0.3, 1.0);
        if value > 0.0 && best.as_ref().is_none_or(|b| value > b.value) {
            let raw = match what {
                "brightness" => s.spectral.delta_rel.brightness,
                "BSI" => s.spectral.delta_rel.bsi,
                _ => s.spectral.delta_rel.ndbi,
            };
            best = Some(Cue {
                value,
                reason: format!(
                    "large paved or graded apron: site {} ({:.1} ha, {:.0} x {:.0} m, rectangularity {:.2}, {what} {:+.3} vs scene)",
                    s.id,
                    s.area_m2 / 10_000.0,
                    sh.min_rect_length_m,
                    sh.min_rect_width_m,
                    sh.rectangularity,
                    raw
                ),
            });
        }
    }
    best
}

/// A long straight linear member of a runway's width.
pub fn runway(members: &[Member]) -> Option<Cue> {
    let mut best: Option<Cue> = None;
    for m in members.iter().filter(|m| !m.core()) {
        let sh = &m.site.shape;
        let w = sh.min_rect_width_m;
        let value = smooth(sh.elongation, 5.0, 8.0)
            * smooth(w, 20.0, 30.0)
            * (1.0 - smooth(w, 60.0, 80.0))
            * smooth(sh.min_rect_length_m, 300.0, 500.0);
        if value > 0.0 && best.as_ref().is_none_or(|b| value > b.value) {
            best = Some(Cue {
                value,
                reason: format!(
                    "runway or apron extension: site {} ({:.0} m long, {:.0} m wide, {:.0}:1)",
                    m.site.id, sh.min_rect_length_m, w, sh.elongation
                ),
            });
        }
    }
    best
}

/// Linear members reaching the core's hull from outside it.
pub fn tracks_in(members: &[Member], core_hull: &[Pt]) -> Option<Cue> {
    // Touching: within two 10 m pixels of the hull.
    const TOUCH_M: f64 = 20.0;
    let tracks: Vec<&Member> = members
        .iter()
        .filter(|m| {
            !m.core()
                && !hull::contains(core_hull, m.centroid)
                && hull::distance(m.hull, core_hull) <= TOUCH_M
        })
        .collect();
    if tracks.is_empty() {
        return None;
    }
    Some(Cue {
        value: smooth(tracks.len() as f64, 0.0, 2.0),
        reason: format!(
            "{} new track{} leading in (site{} {})",
            tracks.len(),
            if tracks.len() > 1 { "s" } else { "" },
            if tracks.len() > 1 { "s" } else { "" },
            ids(&tracks)
        ),
    })
}

/// The score and reasons of a group whose core members' hull is `core_hull`
/// (metres, area `hull_area_m2` of the whole compound's hull).
pub fn assess(members: &[Member], core_hull: &[Pt], hull_area_m2: f64) -> Likeness {
    let cues = [
        rectilinear(members),
        enclosing_ring(members),
        apron(members),
        runway(members),
        tracks_in(members, core_hull),
    ];
    let evidence: f64 = cues
        .iter()
        .zip(WEIGHTS)
        .map(|(c, w)| w * c.as_ref().map_or(0.0, |c| c.value))
        .sum();
    let area: f64 = members.iter().map(|m| m.site.area_m2).sum();
    let conf = if area > 0.0 {
        members
            .iter()
            .map(|m| m.site.score * m.site.area_m2)
            .sum::<f64>()
            / area
    } else {
        0.0
    };
    let km2 = hull_area_m2 / 1e6;
    let size = smooth(area, 2_000.0, 5_000.0) * (1.0 - 0.8 * smooth(km2, 4.0, 25.0));
    let score = (0.5 + 0.5 * conf.clamp(0.0, 1.0)) * size * (0.1 + 0.9 * evidence);
    let mut listed: Vec<(f64, &str)> = cues
        .iter()
        .zip(WEIGHTS)
        .filter_map(|(c, w)| {
            c.as_ref()
                .filter(|c| c.value >= REASON_FROM)
                .map(|c| (w * c.value, c.reason.as_str()))
        })
        .collect();
    listed.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut reasons: Vec<String> = listed.into_iter().map(|(_, r)| r.to_string()).collect();
    if km2 >= 4.0 {
        reasons.push(format!(
            "sprawling ({km2:.1} km2 hull): more likely a district than one compound"
        ));
    }
    if area < 5_000.0 {
        reasons.push(format!("little change ({area:.0} m2)"));
    }
    Likeness {
        score,
        cues,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::shape::Shape;

    fn rect(x: f64, y: f64, w: f64, h: f64) -> Vec<Pt> {
        vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
    }

    struct Fixture {
        sites: Vec<Site>,
        hulls: Vec<Vec<Pt>>,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                sites: Vec::new(),
                hulls: Vec::new(),
            }
        }
        /// A site of `kind` filling `fill` of its rectangle `hull`.
        fn add(&mut self, kind: Kind, hull: Vec<Pt>, fill: f64, orientation: f64) -> &mut Site {
            let b = hull::bounds(&hull);
            let (w, h) = (b[2] - b[0], b[3] - b[1]);
            let mut s = crate::sites::export::csv::empty_site();
            s.id = self.sites.len() as u32 + 1;
            s.kind = kind;
            s.score = 0.6;
            s.pixels = 100;
            s.area_m2 = fill * w * h;
            s.shape = Shape {
                perimeter_m: 2.0 * (w + h),
                compactness: 0.6,
                rectangularity: fill,
                elongation: w.max(h) / w.min(h),
                orientation_deg: orientation,
                mean_width_m: w.min(h),
                min_rect_length_m: w.max(h),
                min_rect_width_m: w.min(h),
            };
            s.spectral.pixels = 100;
            self.sites.push(s);
            self.hulls.push(hull);
            self.sites.last_mut().unwrap()
        }
        fn members(&self) -> Vec<Member<'_>> {
            self.sites
                .iter()
                .zip(&self.hulls)
                .map(|(s, h)| Member {
                    site: s,
                    hull: h,
                    centroid: hull::centre(h),
                })
                .collect()
        }
    }

    #[test]
    fn aligned_rectangles_are_rectilinear_and_scattered_ones_are_not() {
        let mut f = Fixture::new();
        for (i, o) in [2.0, 92.0, 1.0, 178.0].into_iter().enumerate() {
            f.add(
                Kind::Structure,
                rect(100.0 * i as f64, 0.0, 40.0, 50.0),
                0.95,
                o,
            );
        }
        let c = rectilinear(&f.members()).unwrap();
        assert!(c.value > 0.9, "{c:?}");
        assert!(c.reason.contains("4 rectangular members"), "{}", c.reason);
        let mut g = Fixture::new();
        for (i, o) in [0.0, 22.0, 45.0, 67.0].into_iter().enumerate() {
            g.add(
                Kind::Structure,
                rect(100.0 * i as f64, 0.0, 40.0, 50.0),
                0.95,
                o,
            );
        }
        assert!(rectilinear(&g.members()).unwrap().value < 0.05);
        // One rectangle is no layout.
        let mut h = Fixture::new();
        h.add(Kind::Structure, rect(0.0, 0.0, 40.0, 50.0), 0.95, 0.0);
        assert!(rectilinear(&h.members()).is_none());
    }

    #[test]
    fn a_hollow_member_around_the_others_is_a_ring() {
        let mut f = Fixture::new();
        // A 400 m square berm 40 m wide: 14% of its hull.
        f.add(Kind::Other, rect(0.0, 0.0, 400.0, 400.0), 0.36, 0.0);
        f.add(Kind::Structure, rect(100.0, 100.0, 50.0, 50.0), 0.95, 0.0);
        f.add(Kind::Structure, rect(250.0, 250.0, 50.0, 50.0), 0.95, 0.0);
        let c = enclosing_ring(&f.members()).unwrap();
        assert!(c.value > 0.95, "{c:?}");
        assert!(
            c.reason.starts_with("enclosing ring: site 1"),
            "{}",
            c.reason
        );
        // The same buildings outside it: no ring.
        let mut g = Fixture::new();
        g.add(Kind::Other, rect(0.0, 0.0, 400.0, 400.0), 0.36, 0.0);
        g.add(Kind::Structure, rect(500.0, 100.0, 50.0, 50.0), 0.95, 0.0);
        assert!(enclosing_ring(&g.members()).is_none());
        // A solid block holding them is not a ring either.
        let mut h = Fixture::new();
        h.add(Kind::Other, rect(0.0, 0.0, 400.0, 400.0), 0.9, 0.0);
        h.add(Kind::Structure, rect(100.0, 100.0, 50.0, 50.0), 0.95, 0.0);
        assert!(enclosing_ring(&h.members()).is_none());
    }

    #[test]
    fn a_large_bright_rectangle_is_an_apron_and_a_hut_is_not() {
        let mut f = Fixture::new();
        f.add(Kind::Structure, rect(0.0, 0.0, 140.0, 80.0), 0.95, 0.0)
            .spectral
            .delta_rel
            .brightness = 0.08;
        let c = apron(&f.members()).unwrap();
        assert!(c.value > 0.9, "{c:?}");
        assert!(c.reason.contains("brightness +0.080"), "{}", c.reason);
        let mut g = Fixture::new();
        g.add(Kind::Structure, rect(0.0, 0.0, 40.0, 30.0), 0.95, 0.0)
            .spectral
            .delta_rel
            .brightness = 0.08;
        assert!(apron(&g.members()).is_none());
        // Large but unchanged surface (same brightness and material).
        let mut h = Fixture::new();
        h.add(Kind::Structure, rect(0.0, 0.0, 140.0, 80.0), 0.95, 0.0);
        assert!(apron(&h.members()).is_none());
    }

    #[test]
    fn a_runway_is_long_and_runway_wide_and_a_road_is_not() {
        let mut f = Fixture::new();
        f.add(Kind::Linear, rect(0.0, 0.0, 1200.0, 45.0), 1.0, 90.0);
        let c = runway(&f.members()).unwrap();
        assert!(c.value > 0.99, "{c:?}");
        assert!(c.reason.contains("1200 m long, 45 m wide"), "{}", c.reason);
        let mut g = Fixture::new();
        g.add(Kind::Linear, rect(0.0, 0.0, 1200.0, 12.0), 1.0, 90.0);
        g.add(Kind::Linear, rect(0.0, 100.0, 200.0, 45.0), 1.0, 90.0);
        assert!(runway(&g.members()).is_none());
    }

    #[test]
    fn tracks_reaching_the_core_from_outside_lead_in() {
        let mut f = Fixture::new();
        f.add(Kind::Structure, rect(0.0, 0.0, 200.0, 200.0), 0.95, 0.0);
        // Ends 10 m from the core, runs away from it.
        f.add(Kind::Linear, rect(210.0, 90.0, 500.0, 15.0), 1.0, 90.0);
        // 150 m off: near enough to be a member, not touching.
        f.add(Kind::Linear, rect(0.0, 350.0, 500.0, 15.0), 1.0, 90.0);
        let core = f.hulls[0].clone();
        let c = tracks_in(&f.members(), &core).unwrap();
        assert_eq!(c.value, 0.5);
        assert!(
            c.reason.starts_with("1 new track leading in (site 2)"),
            "{}",
            c.reason
        );
        f.add(Kind::Linear, rect(-510.0, 50.0, 500.0, 15.0), 1.0, 90.0);
        assert_eq!(tracks_in(&f.members(), &core).unwrap().value, 1.0);
    }

    #[test]
    fn a_base_outscores_a_loose_cluster_and_a_sprawl_scores_less() {
        let mut base = Fixture::new();
        base.add(Kind::Other, rect(0.0, 0.0, 400.0, 400.0), 0.36, 0.0);
        base.add(Kind::Structure, rect(90.0, 90.0, 140.0, 70.0), 0.95, 0.0)
            .spectral
            .delta_rel
            .brightness = 0.08;
        for (i, o) in [0.0, 90.0, 1.0].into_iter().enumerate() {
            base.add(
                Kind::Structure,
                rect(90.0 + 80.0 * i as f64, 250.0, 50.0, 50.0),
                0.95,
                o,
            );
        }
        let m = base.members();
        let b = assess(&m, &base.hulls[0], 160_000.0);
        assert!(b.reasons.len() >= 3, "{:?}", b.reasons);
        assert!(
            b.reasons[0].starts_with("enclosing ring"),
            "{:?}",
            b.reasons
        );
        let mut loose = Fixture::new();
        for (i, o) in [0.0, 30.0].into_iter().enumerate() {
            loose.add(
                Kind::Structure,
                rect(200.0 * i as f64, 0.0, 50.0, 50.0),
                0.95,
                o,
            );
        }
        let l = assess(&loose.members(), &loose.hulls[0], 20_000.0);
        assert!(b.score > 2.0 * l.score, "{} vs {}", b.score, l.score);
        let sprawl = assess(&m, &base.hulls[0], 30e6);
        assert!(sprawl.score < 0.3 * b.score);
        assert!(sprawl.reasons.last().unwrap().starts_with("sprawling"));
    }
}
