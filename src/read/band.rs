//! Sentinel-2 MSI band names and how to find them in file names and band
//! descriptions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the 13 MSI bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Band {
    B01,
    B02,
    B03,
    B04,
    B05,
    B06,
    B07,
    B08,
    B8A,
    B09,
    B10,
    B11,
    B12,
}

impl Band {
    pub const ALL: [Band; 13] = [
        Band::B01,
        Band::B02,
        Band::B03,
        Band::B04,
        Band::B05,
        Band::B06,
        Band::B07,
        Band::B08,
        Band::B8A,
        Band::B09,
        Band::B10,
        Band::B11,
        Band::B12,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Band::B01 => "B01",
            Band::B02 => "B02",
            Band::B03 => "B03",
            Band::B04 => "B04",
            Band::B05 => "B05",
            Band::B06 => "B06",
            Band::B07 => "B07",
            Band::B08 => "B08",
            Band::B8A => "B8A",
            Band::B09 => "B09",
            Band::B10 => "B10",
            Band::B11 => "B11",
            Band::B12 => "B12",
        }
    }

    /// Native ground sampling distance in metres.
    pub fn native_resolution(self) -> u32 {
        match self {
            Band::B02 | Band::B03 | Band::B04 | Band::B08 => 10,
            Band::B05 | Band::B06 | Band::B07 | Band::B8A | Band::B11 | Band::B12 => 20,
            Band::B01 | Band::B09 | Band::B10 => 60,
        }
    }

    /// The `band_id` used in SAFE product metadata (0..12, B8A is 8).
    pub fn safe_id(self) -> usize {
        Band::ALL.iter().position(|b| *b == self).unwrap()
    }

    /// Parses a band token such as `B04`, `b8a`, `B4` or `B8A`.
    pub fn parse(token: &str) -> Option<Band> {
        let t = token.trim().to_ascii_uppercase();
        let t = t.strip_prefix('B')?;
        match t {
            "1" | "01" => Some(Band::B01),
            "2" | "02" => Some(Band::B02),
            "3" | "03" => Some(Band::B03),
            "4" | "04" => Some(Band::B04),
            "5" | "05" => Some(Band::B05),
            "6" | "06" => Some(Band::B06),
            "7" | "07" => Some(Band::B07),
            "8" | "08" => Some(Band::B08),
            "8A" => Some(Band::B8A),
            "9" | "09" => Some(Band::B09),
            "10" => Some(Band::B10),
            "11" => Some(Band::B11),
            "12" => Some(Band::B12),
            _ => None,
        }
    }

    /// Finds the band a file name stands for: the last `_`/`-`/`.`-separated
    /// token of the stem that is a band name, e.g. `..._B04.tif`,
    /// `T34QEK_20240105T083241_B04_10m.jp2`, `B04.tif`.
    pub fn from_file_name(name: &str) -> Option<Band> {
        let stem = name.rsplit('/').next().unwrap_or(name);
        let stem = match stem.find('.') {
            Some(i) => &stem[..i],
            None => stem,
        };
        stem.split(['_', '-', '.']).rev().find_map(|tok| {
            // Only the zero-padded two-character forms in file names: `B4` is
            // too ambiguous there.
            if tok.len() == 3 {
                Band::parse(tok)
            } else {
                None
            }
        })
    }

    /// Finds the band named by a raster band description, e.g. `B4`,
    /// `B04`, `B8A`, `B04 (665 nm)`, `red`.
    pub fn from_description(desc: &str) -> Option<Band> {
        let d = desc.trim();
        if let Some(b) = d.split([' ', '_', ':', '(', '-']).find_map(Band::parse) {
            return Some(b);
        }
        match d.to_ascii_lowercase().as_str() {
            "coastal" | "coastal aerosol" => Some(Band::B01),
            "blue" => Some(Band::B02),
            "green" => Some(Band::B03),
            "red" => Some(Band::B04),
            "rededge1" | "red edge 1" => Some(Band::B05),
            "rededge2" | "red edge 2" => Some(Band::B06),
            "rededge3" | "red edge 3" => Some(Band::B07),
            "nir" => Some(Band::B08),
            "nir08" | "nir narrow" => Some(Band::B8A),
            "nir09" | "water vapour" | "water vapor" => Some(Band::B09),
            "cirrus" => Some(Band::B10),
            "swir16" | "swir1" => Some(Band::B11),
            "swir22" | "swir2" => Some(Band::B12),
            _ => None,
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_of_every_style() {
        assert_eq!(
            Band::from_file_name("S2A_OPER_MSI_L1C_TL_MTI__20160120T104345_A003020_T39QZG_B04.tif"),
            Some(Band::B04)
        );
        assert_eq!(
            Band::from_file_name("T34QEK_20240105T083241_B04_10m.jp2"),
            Some(Band::B04)
        );
        assert_eq!(
            Band::from_file_name("T40QBM_20180328T065919_B8A.tif"),
            Some(Band::B8A)
        );
        assert_eq!(Band::from_file_name("B11.tif"), Some(Band::B11));
        assert_eq!(
            Band::from_file_name("T34QEK_20240105T083241_SCL_20m.jp2"),
            None
        );
        assert_eq!(Band::from_file_name("preview.png"), None);
    }

    #[test]
    fn descriptions() {
        assert_eq!(Band::from_description("B4"), Some(Band::B04));
        assert_eq!(Band::from_description("B8A"), Some(Band::B8A));
        assert_eq!(Band::from_description("swir16"), Some(Band::B11));
        assert_eq!(Band::from_description("B12 (2190 nm)"), Some(Band::B12));
        assert_eq!(Band::from_description("something"), None);
    }

    #[test]
    fn safe_ids_follow_product_order() {
        assert_eq!(Band::B01.safe_id(), 0);
        assert_eq!(Band::B8A.safe_id(), 8);
        assert_eq!(Band::B12.safe_id(), 12);
    }
}
