//! Reading a GeoPackage (the site register) in tests: SQL through GDAL.

#![allow(dead_code)]

use gdal::vector::LayerAccess;
use std::path::Path;

/// The rows of an SQL query on a GeoPackage, fields joined by `|`.
pub fn rows(path: &Path, sql: &str) -> Vec<String> {
    let ds = gdal::Dataset::open(path).unwrap();
    let mut rs = ds
        .execute_sql(sql, None, gdal::vector::sql::Dialect::SQLITE)
        .unwrap()
        .unwrap();
    rs.features()
        .map(|f| {
            (0..f.field_count())
                .map(|i| f.field_as_string(i).unwrap().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}
