//! Many scene pairs in one go: the list of pairs, which of them a machine
//! takes (`--shard K/N`), where each pair's run lives and whether it is
//! finished, and the index written over all of them ([`index`]).
//!
//! Each pair is an ordinary `detect` run in `<out>/<name>/`. A run is finished
//! when its run.json exists (detect publishes run.json last), so an
//! interrupted batch resumes by skipping finished pairs, and machines that
//! share an output folder (a network drive, a bucket mount) and take disjoint
//! shards of the same list never write into the same run folder.

pub mod fingerprint;
pub mod index;
pub mod pairs;
pub mod regional;
pub mod scene_list;
pub mod shard;

pub use pairs::{read_pairs, read_pairs_except, Pair};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The part of the pair list one machine runs: pairs `K-1, K-1+N, K-1+2N,
/// ...` of the list (1-based `K`), so N machines given the same list and
/// `1/N` .. `N/N` run every pair exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || Error::invalid(format!("--shard must be K/N with 1 <= K <= N, got {s:?}"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// Whether the pair at `index` (0-based, in list order) is this shard's.
    pub fn takes(&self, index: usize) -> bool {
        index % self.n == self.k - 1
    }
}

/// The run folder of a pair.
pub fn run_dir(out: &Path, pair: &Pair) -> PathBuf {
    out.join(&pair.name)
}

/// Where a failed pair's error line is kept until the pair succeeds: the
/// index reports it, whichever machine ran the pair.
pub fn error_file(out: &Path, pair: &Pair) -> PathBuf {
    out.join(".batch").join(format!("{}.error", pair.name))
}

/// What the output folder holds for a pair.
#[derive(Debug, Clone, PartialEq)]
pub enum PairState {
    /// A finished run of this pair's scenes.
    Done,
    /// The last attempt failed with this error.
    Failed(String),
    /// Not run yet (or running elsewhere).
    Pending,
}

/// Reads the state of `pair` in `out`. A finished run of other scenes in the
/// pair's folder is an error: it would be silently kept or overwritten.
pub fn state(out: &Path, pair: &Pair) -> Result<PairState> {
    let run_json = run_dir(out, pair).join(crate::run::RUN_FILE);
    if run_json.is_file() {
        let text = std::fs::read_to_string(&run_json).map_err(|e| Error::input(&run_json, e))?;
        let rec: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::input(&run_json, format!("not a dunewatch run.json: {e}")))?;
        for (date, want) in [("before", &pair.before), ("after", &pair.after)] {
            let have = rec[date]["path"].as_str().map(PathBuf::from);
            if !have.as_deref().is_some_and(|h| same_path(h, want)) {
                return Err(Error::input(
                    &run_json,
                    format!(
                        "holds a run of other scenes ({date}: {}) than pair {:?} ({}); \
                         remove the folder or use another --out",
                        have.map(|h| h.display().to_string())
                            .unwrap_or_else(|| "none".into()),
                        pair.name,
                        want.display()
                    ),
                ));
            }
        }
        return Ok(PairState::Done);
    }
    match std::fs::read_to_string(error_file(out, pair)) {
        Ok(msg) => Ok(PairState::Failed(msg.trim().to_string())),
        Err(_) => Ok(PairState::Pending),
    }
}

/// The fingerprint (see [`fingerprint`]) of the finished run of `pair` in
/// `out`, as its run.json records it; `None` when there is none.
pub fn recorded_inputs(out: &Path, pair: &Pair) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir(out, pair).join(crate::run::RUN_FILE)).ok()?;
    let mut rec: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(rec.get_mut("inputs")?.take())
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Keeps (or clears, with `None`) a pair's error line for the index.
pub fn record_error(out: &Path, pair: &Pair, msg: Option<&str>) -> Result<()> {
    let path = error_file(out, pair);
    match msg {
        None => {
            let _ = std::fs::remove_file(&path);
            Ok(())
        }
        Some(m) => {
            let dir = path.parent().expect("error files live in .batch/");
            std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
            write_atomic(&path, format!("{m}\n").as_bytes())
        }
    }
}

/// Writes `bytes` to a temporary name beside `path`, then renames it over
/// `path`: readers (and other machines) see the old file or the new one,
/// never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::export::write_file_atomic(path, bytes)
}

/// A hidden name beside `path`, unique to this process and call, that the
/// next run removes should this one be killed before it renames it.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(crate::cleanup::partial_name(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_pair_once() {
        for n in 1..5 {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard { k, n }).collect();
            for i in 0..17 {
                assert_eq!(shards.iter().filter(|s| s.takes(i)).count(), 1);
            }
        }
    }

    #[test]
    fn shard_parses_and_refuses_nonsense() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { k: 2, n: 4 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("--shard must be K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.csv");
        write_atomic(&p, b"a").unwrap();
        write_atomic(&p, b"b").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"b");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
