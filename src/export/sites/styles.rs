//! Sidecars that make the site outputs open typed and styled in QGIS:
//! `sites.qml` and `compounds.qml` (QGIS loads `<name>.qml` with
//! `<name>.geojson`: sites filled by kind in the kinds' colours, compounds
//! outlined in the compounds' colour) and `sites.csvt` / `compounds.csvt`
//! (OGR and QGIS read the CSV columns as these types instead of text).

use super::Context;
use crate::error::{Error, Result};
use crate::export::qgis::{categorized_fill_qml, csvt, single_fill_qml};
use crate::sites::classify::KINDS;
use std::path::Path;

pub const SITES_QML: &str = "sites.qml";
pub const COMPOUNDS_QML: &str = "compounds.qml";
pub const SITES_CSVT: &str = "sites.csvt";
pub const COMPOUNDS_CSVT: &str = "compounds.csvt";

/// Each compounds.csv column's OGR type.
pub fn compound_column_types() -> Vec<&'static str> {
    super::compounds::csv_header()
        .iter()
        .map(|c| match c.as_str() {
            "id" | "rank" | "n_members" => "Integer",
            c if c.starts_with("n_") => "Integer",
            "members" | "chip" | "reasons" => "String",
            "before_date" | "after_date" => "Date",
            _ => "Real",
        })
        .collect()
}

pub fn write(into: &Path, _ctx: &Context) -> Result<()> {
    let kinds: Vec<(&str, [u8; 3])> = KINDS.iter().map(|k| (k.name(), k.colour())).collect();
    let files = [
        (SITES_QML, categorized_fill_qml("kind", &kinds)),
        (
            COMPOUNDS_QML,
            single_fill_qml(super::chips::COMPOUND_COLOUR, 40),
        ),
        (SITES_CSVT, csvt(&super::csv::column_types())),
        (COMPOUNDS_CSVT, csvt(&compound_column_types())),
    ];
    for (name, text) in files {
        let p = into.join(name);
        std::fs::write(&p, text).map_err(|e| Error::output(&p, e))?;
    }
    Ok(())
}
