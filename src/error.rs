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
    e.to_string()
        .lines()
        .next()
        .unwrap_or("GDAL error")
        .trim()
        .to_string()
}
