//! Acquisition dates from file names and side files.

use std::path::Path;

/// Finds the first `YYYYMMDD` (optionally followed by `Thhmmss`) token in a
/// name that looks like a plausible Sentinel-2 date (2015 or later), and
/// returns it as `YYYY-MM-DD`.
pub fn date_from_name(name: &str) -> Option<String> {
    let b = name.as_bytes();
    let mut i = 0;
    while i + 8 <= b.len() {
        let run = &b[i..i + 8];
        let before_ok = i == 0 || !b[i - 1].is_ascii_digit();
        let after_ok = i + 8 == b.len() || !b[i + 8].is_ascii_digit();
        if before_ok && after_ok && run.iter().all(|c| c.is_ascii_digit()) {
            let s = std::str::from_utf8(run).ok()?;
            let (y, m, d) = (&s[0..4], &s[4..6], &s[6..8]);
            let (yn, mn, dn): (u32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
            if (2015..=2100).contains(&yn) && (1..=12).contains(&mn) && (1..=31).contains(&dn) {
                return Some(format!("{y}-{m}-{d}"));
            }
        }
        i += 1;
    }
    None
}

/// OSCD keeps `dates.txt` (`date_1: 20160120`, `date_2: ...`) beside the
/// `imgs_1`/`imgs_2` folders.
pub fn date_from_oscd_side_file(folder: &Path) -> Option<String> {
    let name = folder.file_name()?.to_str()?;
    let key = match name {
        "imgs_1" => "date_1",
        "imgs_2" => "date_2",
        _ => return None,
    };
    let text = std::fs::read_to_string(folder.parent()?.join("dates.txt")).ok()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim_start_matches(':')
                .trim()
                .get(..8)
                .map(str::to_string)
        })
        .and_then(|d| date_from_name(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_names() {
        assert_eq!(
            date_from_name("T34QEK_20240105T083241_B04_10m.jp2").as_deref(),
            Some("2024-01-05")
        );
        assert_eq!(
            date_from_name("S2A_OPER_MSI_L1C_TL_MTI__20160120T104345_A003020_T39QZG_B04.tif")
                .as_deref(),
            Some("2016-01-20")
        );
        assert_eq!(date_from_name("B04.tif"), None);
        assert_eq!(date_from_name("A003020_123456789"), None);
    }
}
