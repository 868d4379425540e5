//! Sentinel-2 SAFE products, L1C or L2A, as a folder or a `.zip`.
//! (Being implemented: see the SAFE reader task.)

use super::Scene;
use crate::error::{Error, Result};
use std::path::Path;

/// A folder holding `MTD_MSIL1C.xml` or `MTD_MSIL2A.xml`.
pub fn is_safe_folder(dir: &Path) -> bool {
    dir.join("MTD_MSIL1C.xml").is_file() || dir.join("MTD_MSIL2A.xml").is_file()
}

pub fn open_safe_folder(dir: &Path) -> Result<Scene> {
    Err(Error::input(dir, "SAFE products are not supported yet"))
}

pub fn open_safe_zip(path: &Path) -> Result<Scene> {
    Err(Error::input(path, "SAFE products are not supported yet"))
}
