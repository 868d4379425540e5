//! The library's error type. Every variant names the file it concerns, so the
//! binary can print one clear line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or understood.
    #[error("{path}: {msg}")]
    Input { path: PathBuf, msg: String },
    /// An output could not be written.
    #[error("{path}: {msg}")]
    Output { path: PathBuf, msg: String },
    /// The request itself is inconsistent (bad option values, no overlap, ...).
    #[error("{0}")]
    Invalid(String),
    /// An option is out of its allowed range (the command line's usage
    /// error: exit code 2).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Input {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
    pub fn output(path: impl Into<PathBuf>, msg: impl std::fmt::Display) -> Self {
        Error::Output {
            path: path.into(),
            msg: msg.to_string(),
        }
    }
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Error::Invalid(msg.to_string())
    }
    pub fn usage(msg: impl std::fmt::Display) -> Self {
        Error::Usage(msg.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Turns a GDAL message into one line: GDAL often repeats the path and ends
/// with a newline.
pub fn gdal_msg(e: &gdal::errors::GdalError) -> String {
    use gdal::errors::GdalError;
    let text = match e {
        GdalError::CplError { msg, .. } | GdalError::NullPointer { msg, .. }
            if msg.trim().is_empty() =>
        {
            "GDAL failed without a message".to_string()
        }
        GdalError::CplError { msg, .. } | GdalError::NullPointer { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    text.lines()
        .next()
        .unwrap_or("GDAL error")
        .trim()
        .to_string()
}

/// Why GDAL could not open `path`, in words: not found, permission denied,
/// not a regular file, a file name that is not UTF-8, or not a raster (with
/// GDAL's own message when it gave one). GDAL often says nothing at all.
pub fn open_failure(path: &std::path::Path, e: &gdal::errors::GdalError, kind: &str) -> String {
    let s = path.to_string_lossy();
    if !s.starts_with("/vsi") {
        if path.to_str().is_none() {
            return "the file name is not valid UTF-8, which GDAL cannot open: rename the file"
                .to_string();
        }
        match std::fs::metadata(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return "not found".to_string()
            }
            Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
                return "permission denied".to_string()
            }
            Err(err) => return format!("cannot read: {err}"),
            Ok(m) if m.is_dir() => return format!("is a folder, not a {kind}"),
            Ok(m) if !m.is_file() => {
                return "not a regular file (a FIFO, socket or device?)".to_string()
            }
            Ok(_) => {
                if let Err(err) = std::fs::File::open(path) {
                    return if err.kind() == std::io::ErrorKind::PermissionDenied {
                        "permission denied".to_string()
                    } else {
                        format!("cannot read: {err}")
                    };
                }
            }
        }
    }
    let m = gdal_msg(e);
    if m == "GDAL failed without a message" {
        format!("not a {kind} GDAL can read (unknown format, or a damaged or empty file)")
    } else {
        format!("not a {kind} GDAL can read: {m}")
    }
}

/// Opens a raster, or says why not (see [`open_failure`]), naming the file.
pub fn open_raster(path: impl AsRef<std::path::Path>) -> Result<gdal::Dataset> {
    let path = path.as_ref();
    if !path.to_string_lossy().starts_with("/vsi") {
        if let Ok(m) = std::fs::metadata(path) {
            // Opening a FIFO blocks until a writer comes: never open one.
            if !m.is_file() && !m.is_dir() {
                return Err(Error::input(
                    path,
                    "not a regular file (a FIFO, socket or device?)",
                ));
            }
        }
    }
    gdal::Dataset::open(path).map_err(|e| Error::input(path, open_failure(path, &e, "raster")))
}
