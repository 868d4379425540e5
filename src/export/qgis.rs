//! What makes the outputs open styled in QGIS (and described in any GDAL
//! tool): band descriptions and the mask's colour table in the COGs, the
//! mask's category names in a PAM sidecar, and QGIS layer styles (`.qml`)
//! beside the outputs.
//!
//! - The mask's colour table is the TIFF ColorMap (palette photometric), so
//!   GDAL, QGIS and most viewers show 0 transparent, 1 orange and 255 blue
//!   without a style. Band descriptions go into GDAL's own GDAL_METADATA tag.
//! - GDAL 3.6 keeps a GeoTIFF band's category names only in its PAM sidecar
//!   (`<file>.aux.xml`), which it reads whenever it opens the file: written
//!   here for the mask.
//! - QGIS loads `<name>.qml` when it opens `<name>.<ext>`: a paletted style
//!   for the mask, a 0-1 pseudocolour ramp for the score, and styles
//!   categorized by kind for the sites and compounds.

use crate::error::{gdal_msg, Error, Result};
use gdal::Metadata as _;
use std::fmt::Write as _;
use std::path::Path;

pub const MASK_QML: &str = "change_mask.qml";
pub const SCORE_QML: &str = "change_score.qml";
pub const MASK_AUX: &str = "change_mask.tif.aux.xml";

pub const MASK_DESCRIPTION: &str =
    "change: 0 no change, 1 change, 255 masked (cloud, cloud shadow or no data)";
pub const SCORE_DESCRIPTION: &str =
    "change score: 0 no change to 1 certain change (nodata -1: masked)";

/// The mask's classes: value, name, colour (RGB), opacity.
pub const MASK_CLASSES: [(u8, &str, [u8; 3], u8); 3] = [
    (0, "no change", [0, 0, 0], 0),
    (1, "change", [255, 150, 0], 255),
    (255, "masked", [60, 90, 200], 160),
];

/// Sets the band descriptions of the working rasters and the mask's colour
/// table; the COG writers copy both.
pub fn describe_working(mask: &Path, score: &Path) -> Result<()> {
    let m = super::raster::open_for_update(mask)?;
    fn err(p: &Path) -> impl Fn(gdal::errors::GdalError) -> Error + '_ {
        move |e| Error::output(p, gdal_msg(&e))
    }
    let mut band = m.rasterband(1).map_err(err(mask))?;
    band.set_description(MASK_DESCRIPTION).map_err(err(mask))?;
    let mut ct = gdal::raster::ColorTable::new(gdal::raster::PaletteInterpretation::Rgba);
    for v in 0..=255u8 {
        let (c, a) = MASK_CLASSES
            .iter()
            .find(|k| k.0 == v)
            .map_or(([0, 0, 0], 0), |k| (k.2, k.3));
        ct.set_color_entry(
            v as u16,
            &gdal::raster::ColorEntry::rgba(c[0] as i16, c[1] as i16, c[2] as i16, a as i16),
        );
    }
    band.set_color_table(&ct);
    band.set_color_interpretation(gdal::raster::ColorInterpretation::PaletteIndex)
        .map_err(err(mask))?;
    m.close().map_err(err(mask))?;
    let s = super::raster::open_for_update(score)?;
    s.rasterband(1)
        .map_err(err(score))?
        .set_description(SCORE_DESCRIPTION)
        .map_err(err(score))?;
    s.close().map_err(err(score))?;
    Ok(())
}

/// The mask's PAM sidecar: description and category names (one per value,
/// empty where no class).
pub fn mask_aux_xml() -> String {
    let mut o = String::from("<PAMDataset>\n  <PAMRasterBand band=\"1\">\n");
    let _ = writeln!(o, "    <Description>{MASK_DESCRIPTION}</Description>");
    o.push_str("    <CategoryNames>\n");
    for v in 0..=255u8 {
        match MASK_CLASSES.iter().find(|k| k.0 == v) {
            Some(k) => {
                let _ = writeln!(o, "      <Category>{}</Category>", k.1);
            }
            None => o.push_str("      <Category />\n"),
        }
    }
    o.push_str("    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n");
    o
}

const QML_HEAD: &str =
    "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.22.0\" styleCategories=\"Symbology\">\n";

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The mask as a paletted raster: no change transparent.
pub fn mask_qml() -> String {
    let mut o = String::from(QML_HEAD);
    o.push_str("  <pipe>\n    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" alphaBand=\"-1\">\n      <rasterTransparency/>\n      <colorPalette>\n");
    for (v, name, c, a) in MASK_CLASSES {
        let _ = writeln!(
            o,
            "        <paletteEntry value=\"{v}\" color=\"{}\" alpha=\"{a}\" label=\"{name}\"/>",
            hex(c)
        );
    }
    o.push_str("      </colorPalette>\n    </rasterrenderer>\n  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n");
    o
}

/// Stops of the score's ramp (magma-like: dark for no change, bright for change).
const RAMP: [(f64, [u8; 3]); 5] = [
    (0.0, [0, 0, 4]),
    (0.25, [81, 18, 124]),
    (0.5, [183, 55, 121]),
    (0.75, [252, 137, 97]),
    (1.0, [252, 253, 191]),
];

/// The score as a single-band pseudocolour raster over 0..1.
pub fn score_qml() -> String {
    let mut o = String::from(QML_HEAD);
    o.push_str("  <pipe>\n    <rasterrenderer type=\"singlebandpseudocolor\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" classificationMin=\"0\" classificationMax=\"1\">\n      <rasterTransparency/>\n      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy></minMaxOrigin>\n      <rastershader>\n        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" clip=\"0\" minimumValue=\"0\" maximumValue=\"1\">\n");
    for (v, c) in RAMP {
        let _ = writeln!(
            o,
            "          <item value=\"{v}\" color=\"{}\" alpha=\"255\" label=\"{v}\"/>",
            hex(c)
        );
    }
    o.push_str("        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n");
    o
}

/// A polygon layer categorized by the attribute `attr`: one translucent
/// fill with a solid outline per (value, colour).
pub fn categorized_fill_qml(attr: &str, categories: &[(&str, [u8; 3])]) -> String {
    let mut o = String::from(QML_HEAD);
    let _ = writeln!(
        o,
        "  <renderer-v2 type=\"categorizedSymbol\" attr=\"{attr}\" symbollevels=\"0\" enableorderby=\"0\" forceraster=\"0\">\n    <categories>"
    );
    for (i, (v, _)) in categories.iter().enumerate() {
        let _ = writeln!(
            o,
            "      <category symbol=\"{i}\" value=\"{v}\" label=\"{}\" render=\"true\"/>",
            v.replace('_', " ")
        );
    }
    o.push_str("    </categories>\n    <symbols>\n");
    for (i, (_, c)) in categories.iter().enumerate() {
        let rgb = format!("{},{},{}", c[0], c[1], c[2]);
        let _ = writeln!(
            o,
            "      <symbol type=\"fill\" name=\"{i}\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n          <prop k=\"color\" v=\"{rgb},90\"/>\n          <prop k=\"outline_color\" v=\"{rgb},255\"/>\n          <prop k=\"outline_style\" v=\"solid\"/>\n          <prop k=\"outline_width\" v=\"0.6\"/>\n          <prop k=\"outline_width_unit\" v=\"MM\"/>\n          <prop k=\"style\" v=\"solid\"/>\n        </layer>\n      </symbol>"
        );
    }
    o.push_str("    </symbols>\n  </renderer-v2>\n  <blendMode>0</blendMode>\n</qgis>\n");
    o
}

/// A polygon layer with one symbol: fill of opacity `alpha` (0-255) and a
/// solid outline in `c`.
pub fn single_fill_qml(c: [u8; 3], alpha: u8) -> String {
    let rgb = format!("{},{},{}", c[0], c[1], c[2]);
    format!(
        "{QML_HEAD}  <renderer-v2 type=\"singleSymbol\" symbollevels=\"0\" enableorderby=\"0\" forceraster=\"0\">\n    <symbols>\n      <symbol type=\"fill\" name=\"0\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n          <prop k=\"color\" v=\"{rgb},{alpha}\"/>\n          <prop k=\"outline_color\" v=\"{rgb},255\"/>\n          <prop k=\"outline_style\" v=\"solid\"/>\n          <prop k=\"outline_width\" v=\"0.8\"/>\n          <prop k=\"outline_width_unit\" v=\"MM\"/>\n          <prop k=\"style\" v=\"solid\"/>\n        </layer>\n      </symbol>\n    </symbols>\n  </renderer-v2>\n  <blendMode>0</blendMode>\n</qgis>\n"
    )
}

/// A `.csvt` line: each column's OGR type, quoted, comma-separated.
pub fn csvt(types: &[&str]) -> String {
    let q: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
    q.join(",") + "\n"
}

/// Writes the mask's and score's styles and the mask's PAM sidecar into
/// `dir` (the run's staging folder).
pub fn write_raster_sidecars(dir: &Path) -> Result<()> {
    for (name, text) in [
        (MASK_QML, mask_qml()),
        (SCORE_QML, score_qml()),
        (MASK_AUX, mask_aux_xml()),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| Error::output(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with the DTD line QGIS writes allowed (and not fetched).
    fn parse(text: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(text, opts)
            .unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn styles_are_xml_with_the_classes() {
        for text in [
            mask_qml(),
            score_qml(),
            mask_aux_xml(),
            categorized_fill_qml(
                "kind",
                &[("structure", [230, 30, 40]), ("other", [1, 2, 3])],
            ),
            single_fill_qml([0, 220, 255], 40),
        ] {
            parse(&text);
        }
        let m = mask_qml();
        let d = parse(&m);
        let entries: Vec<(String, String)> = d
            .descendants()
            .filter(|n| n.has_tag_name("paletteEntry"))
            .map(|n| {
                (
                    n.attribute("value").unwrap().to_string(),
                    n.attribute("label").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [("0", "no change"), ("1", "change"), ("255", "masked")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let aux = mask_aux_xml();
        let d = parse(&aux);
        let cats: Vec<roxmltree::Node> = d
            .descendants()
            .filter(|n| n.has_tag_name("Category"))
            .collect();
        assert_eq!(cats.len(), 256);
        assert_eq!(cats[1].text(), Some("change"));
        assert_eq!(cats[255].text(), Some("masked"));
        assert_eq!(csvt(&["Integer", "Real"]), "\"Integer\",\"Real\"\n");
    }
}
