//! A list of scenes to follow over time, from a CSV that `dunewatch scenes`
//! writes: `--items` (one STAC item per row, column `item`) or `--pairs`
//! (columns `before` and `after`, every scene of every pair taken once).
//!
//! Why a list file: `watch` runs the comparisons of many dates of one
//! place, and a search result is how those dates are found. Relative
//! entries are relative to the CSV's folder (item copies saved beside it);
//! URLs are taken as they are. An `aoi` column shared by every row is the
//! area the list was searched for.

use super::pairs::split_row;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The scenes of a list, in the list's order, and its area when every row
/// names the same one.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneList {
    pub scenes: Vec<PathBuf>,
    pub aoi: Option<PathBuf>,
}

/// Whether `path` looks like a scene list (a `.csv` file).
pub fn is_scene_list(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Reads a scene list.
pub fn read_scene_list(path: &Path) -> Result<SceneList> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, format!("cannot read the list of scenes: {e}")))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let list = parse(&text, base).map_err(|m| Error::input(path, m))?;
    if list.scenes.is_empty() {
        return Err(Error::input(path, "lists no scenes"));
    }
    Ok(list)
}

fn parse(text: &str, base: &Path) -> std::result::Result<SceneList, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, head)) = rows.next() else {
        return Ok(SceneList {
            scenes: Vec::new(),
            aoi: None,
        });
    };
    let head: Vec<String> = split_row(head)
        .map_err(|m| format!("line 1: {m}"))?
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| head.iter().position(|h| h == name);
    let cols: Vec<usize> = match (col("item"), col("before"), col("after")) {
        (Some(i), _, _) => vec![i],
        (None, Some(b), Some(a)) => vec![b, a],
        _ => {
            return Err(format!(
                "the header must name an item column (dunewatch scenes --items) or before and after columns (--pairs); found {}",
                head.join(",")
            ))
        }
    };
    let caoi = col("aoi");
    let resolve = |p: &str| {
        let p = PathBuf::from(p);
        if p.is_absolute() || crate::read::is_remote(&p) {
            p
        } else {
            base.join(p)
        }
    };
    let mut scenes: Vec<PathBuf> = Vec::new();
    let mut aois: Vec<String> = Vec::new();
    for (i, line) in rows {
        let f = split_row(line).map_err(|m| format!("line {}: {m}", i + 1))?;
        let get = |c: usize| f.get(c).map(|s| s.trim()).unwrap_or("");
        for &c in &cols {
            let s = get(c);
            if s.is_empty() {
                return Err(format!("line {}: no scene in column {}", i + 1, head[c]));
            }
            let p = resolve(s);
            if !scenes.contains(&p) {
                scenes.push(p);
            }
        }
        let a = caoi.map(get).unwrap_or("").to_string();
        if !aois.contains(&a) {
            aois.push(a);
        }
    }
    // A file is relative to the list; a place name or LAT,LON stays as written.
    let aoi = match aois.as_slice() {
        [a] if !a.is_empty() => {
            let f = resolve(a);
            Some(
                if !f.exists() && crate::scenes::resolve::is_preset_or_point(a) {
                    PathBuf::from(a)
                } else {
                    f
                },
            )
        }
        _ => None,
    };
    Ok(SceneList { scenes, aoi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_pairs_lists() {
        let l = parse(
            "id,date,tile,cloud,covers,item,aoi\n\
             a,2024-01-05,39QZG,1.0,100.0,https://x/items/a,k-aoi.geojson\n\
             b,2024-02-04,39QZG,2.0,100.0,\"b,1.json\",k-aoi.geojson\n",
            Path::new("/lists"),
        )
        .unwrap();
        assert_eq!(
            l.scenes,
            vec![
                PathBuf::from("https://x/items/a"),
                PathBuf::from("/lists/b,1.json")
            ]
        );
        assert_eq!(l.aoi, Some(PathBuf::from("/lists/k-aoi.geojson")));
        let l = parse(
            "name,before,after\np1,a.json,b.json\np2,b.json,c.json\n",
            Path::new("/l"),
        )
        .unwrap();
        assert_eq!(l.scenes.len(), 3);
        assert_eq!(l.aoi, None);
        assert!(parse("id,date\nx,2024-01-01\n", Path::new("/l"))
            .unwrap_err()
            .contains("item column"));
    }
}
