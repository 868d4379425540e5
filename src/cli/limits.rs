//! Range checks on numeric options, run by clap while it parses: a value out
//! of range is a usage error (exit code 2, with clap's message naming the
//! option), found before any input is read.

/// A usage error found after parsing (options that contradict each other):
/// the binary exits with 2 for it, as for clap's own errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The widest column block of the score pass (each block is 128 rows of
/// every band, per thread: 16384 columns are about 110 MB of f32 per thread).
pub const MAX_BLOCK_SIZE: usize = 16384;
/// The narrowest: a block must hold the score's neighbourhood halo.
pub const MIN_BLOCK_SIZE: usize = 16;

/// At most this many worker threads, and at most [`THREADS_PER_CORE`] per
/// core: each thread holds its own block buffers, and a pool of a million
/// threads never starts.
pub const MAX_THREADS: usize = 1024;
pub const THREADS_PER_CORE: usize = 64;

/// The largest number of worker threads allowed on this machine.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    MAX_THREADS.min(THREADS_PER_CORE * cores)
}

/// `--block-size`: [`MIN_BLOCK_SIZE`] to [`MAX_BLOCK_SIZE`] columns.
pub fn block_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of columns"))?;
    if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&n) {
        return Err(format!(
            "must be between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE} columns, got {n}"
        ));
    }
    Ok(n)
}

/// `--threads`: 0 (one per core) up to [`max_threads`].
pub fn threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number of threads"))?;
    let max = max_threads();
    if n > max {
        return Err(format!(
            "at most {max} threads on this machine (the lesser of {MAX_THREADS} and {THREADS_PER_CORE} per core), got {n}"
        ));
    }
    Ok(n)
}

/// A score threshold in [0, 1].
pub fn threshold(s: &str) -> Result<f32, String> {
    let t: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(0.0..=1.0).contains(&t) {
        return Err(format!("must be in [0, 1], got {t}"));
    }
    Ok(t)
}

/// `--resolution`: a positive, finite number of metres (the grid size it
/// gives is checked against the scene, see `align::MAX_GRID_PIXELS`).
pub fn resolution(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !(r.is_finite() && r > 0.0) {
        return Err(format!("must be a positive number of metres, got {s}"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert!(block_size("0").is_err());
        assert!(block_size("15").is_err());
        assert_eq!(block_size("256"), Ok(256));
        assert!(block_size("16385").is_err());
        assert!(threads("1000000").unwrap_err().contains("at most"));
        assert_eq!(threads("0"), Ok(0));
        assert!(threshold("2").is_err());
        assert!(threshold("NaN").is_err());
        assert!(resolution("0").is_err());
        assert!(resolution("inf").is_err());
        assert_eq!(resolution("20"), Ok(20.0));
    }
}
