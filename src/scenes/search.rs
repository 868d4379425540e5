//! Ranking the items of a search: how much of the area each covers, and
//! the clearest before/after pair near the requested dates.
//!
//! A pair's cost for each date is its cloud (over the area when measured,
//! else the scene's, in percent) plus a fifth of a point per day away from
//! the wanted date plus the share of the area it misses (in percent): a
//! clear scene a fortnight off beats one with 5% more cloud on the day.
//! The after scene is taken from the before scene's tile when one is as
//! good within 10 points (same grid: nothing is warped).

use crate::error::{gdal_msg, Error, Result};
use crate::read::stac_item::StacItem;
use gdal::vector::Geometry;

/// One item found, with what the listing shows.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub item: StacItem,
    pub date: String,
    pub tile: String,
    /// Scene cloud cover, percent.
    pub cloud: Option<f64>,
    /// Share of the area inside the item's footprint, 0..1.
    pub coverage: f64,
    /// Cloud over the area itself (SCL), percent, when measured.
    pub aoi_cloud: Option<f64>,
}

impl Candidate {
    pub fn new(item: StacItem, area: &Geometry) -> Result<Candidate> {
        let coverage = coverage(area, &item)?;
        Ok(Candidate {
            date: item.date().unwrap_or_default(),
            tile: item.tile().unwrap_or_default(),
            cloud: item.cloud_cover(),
            coverage,
            aoi_cloud: None,
            item,
        })
    }

    /// The cloud figure ranking uses: over the area when known.
    pub fn cloud_for_ranking(&self) -> f64 {
        self.aoi_cloud.or(self.cloud).unwrap_or(100.0)
    }
}

/// Share of `area` (lon/lat) inside the item's geometry, 0..1. Computed in
/// degrees, which for areas of tens of km is within a fraction of a percent.
pub fn coverage(area: &Geometry, item: &StacItem) -> Result<f64> {
    let Some(g) = item.json.get("geometry").filter(|g| !g.is_null()) else {
        return Ok(0.0);
    };
    let fp = Geometry::from_geojson(&g.to_string()).map_err(|e| {
        Error::input(
            &item.location,
            format!("bad item geometry: {}", gdal_msg(&e)),
        )
    })?;
    let a = area.area();
    if a <= 0.0 {
        // A point or line: inside or not.
        return Ok(if fp.intersects(area) { 1.0 } else { 0.0 });
    }
    let inter = area.intersection(&fp).map_or(0.0, |i| i.area());
    Ok((inter / a).clamp(0.0, 1.0))
}

/// Days since 1970-01-01 of a YYYY-MM-DD date.
pub fn day_number(date: &str) -> Option<i64> {
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(5..7)?.parse().ok()?;
    let d: i64 = date.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468)
}

fn cost(c: &Candidate, target: i64) -> f64 {
    let days = day_number(&c.date).map_or(10_000, |d| (d - target).abs());
    c.cloud_for_ranking() + 0.2 * days as f64 + 100.0 * (1.0 - c.coverage)
}

/// Indices of the suggested (before, after) pair: the before scene near
/// `from` (default: the earliest date found), the after scene near `to`
/// (default: the latest), on a later date. None with fewer than two dates.
pub fn suggest_pair(
    cands: &[Candidate],
    from: Option<&str>,
    to: Option<&str>,
) -> Option<(usize, usize)> {
    let days: Vec<i64> = cands.iter().filter_map(|c| day_number(&c.date)).collect();
    let first = *days.iter().min()?;
    let last = *days.iter().max()?;
    let t_before = from.and_then(day_number).unwrap_or(first);
    let t_after = to.and_then(day_number).unwrap_or(last);
    let best = |it: &mut dyn Iterator<Item = (usize, f64)>| {
        it.min_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then_with(|| cands[a.0].item.id().cmp(cands[b.0].item.id()))
        })
    };
    let (b, _) = best(
        &mut cands
            .iter()
            .enumerate()
            .filter(|(_, c)| day_number(&c.date).is_some_and(|d| d < last))
            .map(|(i, c)| (i, cost(c, t_before))),
    )?;
    let bd = day_number(&cands[b].date)?;
    let tile = &cands[b].tile;
    let (a, _) = best(
        &mut cands
            .iter()
            .enumerate()
            .filter(|(_, c)| day_number(&c.date).is_some_and(|d| d > bd))
            .map(|(i, c)| {
                let other_tile = if &c.tile == tile { 0.0 } else { 10.0 };
                (i, cost(c, t_after) + other_tile)
            }),
    )?;
    Some((b, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cand(id: &str, date: &str, tile: &str, cloud: f64, coverage: f64) -> Candidate {
        let item = StacItem::from_json(
            "x.json",
            json!({"type": "Feature", "id": id, "properties": {}, "assets": {}}),
        )
        .unwrap();
        Candidate {
            item,
            date: date.into(),
            tile: tile.into(),
            cloud: Some(cloud),
            coverage,
            aoi_cloud: None,
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-03-01"), Some(11017));
        assert_eq!(
            day_number("2024-03-01").unwrap() - day_number("2024-02-28").unwrap(),
            2
        );
        assert_eq!(day_number("2024-13-01"), None);
    }

    #[test]
    fn clearest_pair_near_the_dates() {
        let c = vec![
            cand("a", "2024-01-02", "34RGM", 40.0, 1.0),
            cand("b", "2024-01-12", "34RGM", 2.0, 1.0),
            cand("c", "2024-01-07", "34RGM", 1.0, 0.3),
            cand("d", "2024-06-01", "35RKH", 0.0, 1.0),
            cand("e", "2024-05-27", "34RGM", 3.0, 1.0),
            cand("f", "2024-06-01", "34RGM", 30.0, 1.0),
        ];
        // b: 10 days off but clear and covering; c misses 70% of the area.
        // e: same tile as b, 5 days before the wanted date, 3% cloud, beats d
        // (clear, on the day, but another tile).
        assert_eq!(
            suggest_pair(&c, Some("2024-01-02"), Some("2024-06-01")),
            Some((1, 4))
        );
        // Clouds over the area, when measured, come first.
        let mut c2 = c.clone();
        c2[4].aoi_cloud = Some(60.0);
        assert_eq!(
            suggest_pair(&c2, Some("2024-01-02"), Some("2024-06-01")),
            Some((1, 3))
        );
        assert_eq!(suggest_pair(&c[..1], None, None), None);
    }
}
