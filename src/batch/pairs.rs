//! The list of scene pairs of a batch, from a CSV file or a folder of pair
//! folders.
//!
//! CSV: a header row naming the columns `name`, `before`, `after` and
//! optionally `aoi` (any order, other columns ignored), one pair per row,
//! RFC 4180 quoting, `#` lines and blank lines skipped; relative paths are
//! relative to the CSV's folder, so a list travels with its data.
//!
//! Folder: every sub-folder that holds a `before` and an `after` entry (a
//! folder, a `.SAFE` folder, a `.zip` or a `.tif`, named `before` or
//! `before.<ext>`) is a pair named after the sub-folder, in name order; an
//! `aoi.geojson` there clips that pair. The shipped `sample_tiles/` is laid
//! out this way.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One scene pair of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// Names the pair's run folder: letters, digits, `.`, `_`, `-`.
    pub name: String,
    pub before: PathBuf,
    pub after: PathBuf,
    /// A vector file, or a preset place or region name or `LAT,LON` as
    /// written (see [`crate::align::Aoi::resolve`]).
    pub aoi: Option<PathBuf>,
}

/// Reads the pairs listed by `path` (a CSV file or a folder of pairs).
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>> {
    read_pairs_except(path, None)
}

/// [`read_pairs`], where a folder of pairs may hold the batch's output
/// folder `out`, which is not a pair.
pub fn read_pairs_except(path: &Path, out: Option<&Path>) -> Result<Vec<Pair>> {
    let pairs = if path.is_dir() {
        from_folder(path, out.and_then(|o| o.canonicalize().ok()).as_deref())?
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::input(path, format!("cannot read the list of pairs: {e}")))?;
        let base = path.parent().unwrap_or(Path::new(""));
        from_csv(&text, base).map_err(|m| Error::input(path, m))?
    };
    if pairs.is_empty() {
        return Err(Error::input(path, "lists no scene pairs"));
    }
    let mut seen = BTreeSet::new();
    for p in &pairs {
        if !seen.insert(p.name.as_str()) {
            return Err(Error::input(
                path,
                format!("pair name {:?} appears twice", p.name),
            ));
        }
    }
    Ok(pairs)
}

/// What the batch writes into its output folder beside the pairs' folders
/// (see [`super::index`]): no pair may be named so.
pub const RESERVED: [&str; 4] = [
    super::index::INDEX_CSV,
    super::index::INDEX_HTML,
    super::index::SITES_GEOJSON,
    super::index::SITES_CSV,
];

fn check_name(name: &str) -> std::result::Result<(), String> {
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "pair name {name:?} is taken by the batch's index ({}, and names starting              with '.'): rename the pair",
            RESERVED.join(", ")
        ));
    }
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pair name {name:?} must be letters, digits, '.', '_' or '-' (it names a folder)"
        ))
    }
}

fn from_csv(text: &str, base: &Path) -> std::result::Result<Vec<Pair>, String> {
    // Spreadsheets save UTF-8 CSV with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, head)) = rows.next() else {
        return Ok(Vec::new());
    };
    let head: Vec<String> = split_row(head)
        .map_err(|m| format!("line 1: {m}"))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| head.iter().position(|h| h == name);
    let (Some(cn), Some(cb), Some(ca)) = (col("name"), col("before"), col("after")) else {
        return Err(format!(
            "the header must name the columns name, before, after (and optionally aoi); found {}",
            head.join(",")
        ));
    };
    let caoi = col("aoi");
    let resolve = |p: &str| {
        let p = PathBuf::from(p.trim());
        // URLs (STAC items) and GDAL virtual paths are taken as they are.
        if p.is_absolute() || crate::read::is_remote(&p) {
            p
        } else {
            base.join(p)
        }
    };
    let mut pairs = Vec::new();
    for (i, line) in rows {
        let f = split_row(line).map_err(|m| format!("line {}: {m}", i + 1))?;
        let get = |c: usize| f.get(c).map(|s| s.trim()).unwrap_or("");
        let (name, before, after) = (get(cn), get(cb), get(ca));
        if before.is_empty() || after.is_empty() {
            return Err(format!(
                "line {}: pair {name:?} needs a before and an after scene",
                i + 1
            ));
        }
        check_name(name).map_err(|m| format!("line {}: {m}", i + 1))?;
        pairs.push(Pair {
            name: name.to_string(),
            before: resolve(before),
            after: resolve(after),
            aoi: caoi.map(get).filter(|s| !s.is_empty()).map(|s| {
                // A place, region or LAT,LON stays as written; a file is
                // relative to the CSV's folder.
                let f = resolve(s);
                if !f.exists() && crate::scenes::resolve::is_preset_or_point(s) {
                    PathBuf::from(s)
                } else {
                    f
                }
            }),
        });
    }
    Ok(pairs)
}

/// Splits one CSV row (RFC 4180: fields in double quotes may hold commas and
/// doubled quotes).
pub(crate) fn split_row(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true
            }
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// The pair folders of `dir`, leaving out `skip` (the batch's own output
/// folder, when it lies inside: canonical path).
fn from_folder(dir: &Path, skip: Option<&Path>) -> Result<Vec<Pair>> {
    let list = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::input(d, format!("cannot list folder: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let mut pairs = Vec::new();
    for sub in list(dir)? {
        let name = sub
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !sub.is_dir() || name.starts_with('.') {
            continue;
        }
        if skip.is_some() && sub.canonicalize().ok().as_deref() == skip {
            continue;
        }
        let entries = list(&sub)?;
        let find = |stem: &str| -> Result<Option<PathBuf>> {
            let hits: Vec<&PathBuf> = entries
                .iter()
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    n == stem || n.strip_prefix(stem).is_some_and(|r| r.starts_with('.'))
                })
                .collect();
            match hits.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some((*one).clone())),
                _ => Err(Error::input(
                    &sub,
                    format!("has more than one {stem} scene: {}", names(&hits)),
                )),
            }
        };
        let (Some(before), Some(after)) = (find("before")?, find("after")?) else {
            // Not a pair folder (sample_tiles/ has only pair folders, but a
            // data folder may hold others): say so rather than guess.
            return Err(Error::input(
                &sub,
                "is not a pair folder: it needs a `before` and an `after` scene",
            ));
        };
        check_name(&name).map_err(|m| Error::input(&sub, m))?;
        let aoi = sub.join("aoi.geojson");
        pairs.push(Pair {
            name,
            before,
            after,
            aoi: aoi.is_file().then_some(aoi),
        });
    }
    Ok(pairs)
}

fn names(paths: &[&PathBuf]) -> String {
    paths
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_in_any_order_paths_relative_to_the_list() {
        let text = "# watch list\nafter,name,before,aoi\n\
                    a2.SAFE.zip,kufra,/abs/b1,\n\"x, y/a\",\"ma\"\"tan\"\"\",b,k.geojson\n";
        let e = from_csv(text, Path::new("/data")).unwrap_err();
        assert!(e.contains("line 4") && e.contains("must be letters"), "{e}");
        let text = text.replace("ma\"\"tan\"\"", "matan-2");
        let p = from_csv(&text, Path::new("/data")).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "kufra");
        assert_eq!(p[0].before, PathBuf::from("/abs/b1"));
        assert_eq!(p[0].after, PathBuf::from("/data/a2.SAFE.zip"));
        assert_eq!(p[0].aoi, None);
        let places = "name,before,after,aoi\nk,b,a,Kufra\np,b,a,\"24.18, 23.31\"\n";
        let q = from_csv(places, Path::new("/data")).unwrap();
        assert_eq!(q[0].aoi, Some(PathBuf::from("Kufra")));
        assert_eq!(q[1].aoi, Some(PathBuf::from("24.18, 23.31")));
        assert_eq!(p[1].after, PathBuf::from("/data/x, y/a"));
        assert_eq!(p[1].aoi, Some(PathBuf::from("/data/k.geojson")));
    }

    #[test]
    fn csv_without_the_columns_is_refused() {
        let e = from_csv("city,first,second\na,b,c\n", Path::new("")).unwrap_err();
        assert!(e.contains("name, before, after"), "{e}");
        let e = from_csv("name,before,after\nx,,c\n", Path::new("")).unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("before and an after"),
            "{e}"
        );
    }

    #[test]
    fn folder_of_pair_folders() {
        let d = tempfile::tempdir().unwrap();
        for (sub, entries) in [
            ("b_site", &["before", "after.zip", "aoi.geojson"][..]),
            ("a_site", &["before.SAFE", "after", "label.tif"][..]),
        ] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
            for e in entries {
                std::fs::write(d.path().join(sub).join(e), "").unwrap();
            }
        }
        std::fs::write(d.path().join("README.md"), "").unwrap();
        let p = read_pairs(d.path()).unwrap();
        assert_eq!(
            p.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a_site", "b_site"]
        );
        assert!(p[0].before.ends_with("a_site/before.SAFE"));
        assert!(p[1].after.ends_with("b_site/after.zip"));
        assert!(p[1].aoi.as_ref().unwrap().ends_with("b_site/aoi.geojson"));
        std::fs::create_dir(d.path().join("c_site")).unwrap();
        let e = read_pairs(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("c_site") && e.contains("not a pair folder"),
            "{e}"
        );
    }

    #[test]
    fn index_names_are_refused_and_a_byte_order_mark_is_not() {
        for bad in [
            "batch.csv",
            "INDEX.html",
            "sites.geojson",
            "sites.csv",
            ".batch",
        ] {
            let e =
                from_csv(&format!("name,before,after\n{bad},a,b\n"), Path::new("")).unwrap_err();
            assert!(e.contains("line 2") && e.contains(bad), "{e}");
        }
        let p = from_csv("\u{feff}name,before,after\nx,a,b\n", Path::new("")).unwrap();
        assert_eq!(p[0].name, "x");
    }

    #[test]
    fn the_output_folder_inside_a_folder_of_pairs_is_not_a_pair() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/before")).unwrap();
        std::fs::create_dir_all(d.path().join("a/after")).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join("a")).unwrap();
        assert!(read_pairs(d.path()).is_err());
        let p = read_pairs_except(d.path(), Some(&out)).unwrap();
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pairs.csv");
        std::fs::write(&f, "name,before,after\nx,a,b\nx,c,d\n").unwrap();
        let e = read_pairs(&f).unwrap_err().to_string();
        assert!(
            e.contains("pairs.csv") && e.contains("appears twice"),
            "{e}"
        );
    }
}
