//! Reading the trained models' JSON files (the `learned` and `cnn`
//! methods'): parsing, and the checks their common fields share.
//!
//! Both files carry a format tag, the input features by name and the
//! probability cut chosen at training; a file made by another version (or
//! for the other method) is refused with one line naming it before any of
//! its numbers are used.

use super::learned::{FEATURES, NF};
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// What a model file is, as its errors say.
pub(crate) struct Kind {
    /// The format tag this dunewatch reads.
    pub format: &'static str,
    /// What the file is said not to be when it does not parse.
    pub name: &'static str,
    /// Who reads `format`, in the wrong-format message.
    pub reader: &'static str,
}

/// The fields every model file has.
#[derive(Deserialize)]
struct Common {
    format: String,
    features: Vec<String>,
    probability_threshold: f64,
}

/// Parses and checks a model file's contents; `what` names it in errors.
/// `check_own` checks the type's own fields (vector lengths, parameters),
/// after the features and before the probability cut.
pub(crate) fn parse<M: DeserializeOwned>(
    s: &str,
    what: &str,
    kind: &Kind,
    check_own: impl FnOnce(&M) -> Result<()>,
) -> Result<M> {
    let not_a = |e: serde_json::Error| Error::invalid(format!("{what}: not a {}: {e}", kind.name));
    let m: M = serde_json::from_str(s).map_err(not_a)?;
    // Read again as the common fields (a small file, read once per run).
    let c: Common = serde_json::from_str(s).map_err(not_a)?;
    if c.format != kind.format {
        return Err(Error::invalid(format!(
            "{what}: model format '{}', {} reads '{}'",
            c.format, kind.reader, kind.format
        )));
    }
    check_features(what, &c.features)?;
    check_own(&m)?;
    let t = c.probability_threshold;
    if !(t > 0.0 && t < 1.0) {
        return Err(Error::invalid(format!(
            "{what}: probability_threshold must be in (0, 1)"
        )));
    }
    Ok(m)
}

/// Reads a model file and parses it with `parse` (naming the file).
pub(crate) fn load<M>(
    path: &std::path::Path,
    parse: impl FnOnce(&str, &str) -> Result<M>,
) -> Result<M> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::input(path, e))?;
    parse(&s, &path.display().to_string())
}

/// Refuses a model whose per-feature vectors (`which`: "weight",
/// "standardisation") do not have one value per feature.
pub(crate) fn check_lengths(what: &str, which: &str, lengths: &[usize]) -> Result<()> {
    if lengths.iter().any(|&n| n != NF) {
        return Err(Error::invalid(format!(
            "{what}: {which} vectors must have {NF} values"
        )));
    }
    Ok(())
}

/// Refuses a model whose input features are not this dunewatch's
/// [`FEATURES`], in order (a model made by another version).
pub(crate) fn check_features(what: &str, features: &[String]) -> Result<()> {
    if !features.iter().map(String::as_str).eq(FEATURES) {
        return Err(Error::invalid(format!(
            "{what}: the model's features do not match this dunewatch's ({} vs {NF})",
            features.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::cnn::CnnModel;
    use super::super::learned::LearnedModel;

    #[test]
    fn each_method_refuses_the_others_file_naming_it() {
        let cnn = super::super::cnn::DEFAULT_MODEL_JSON;
        let learned = super::super::learned::DEFAULT_MODEL_JSON;
        let e = LearnedModel::from_json(cnn, "a.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.json") && e.contains("not a dunewatch model"),
            "{e}"
        );
        let e = CnnModel::from_json(learned, "b.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.json") && e.contains("not a dunewatch CNN model"),
            "{e}"
        );
    }

    #[test]
    fn common_fields_are_checked() {
        let mut v: serde_json::Value =
            serde_json::from_str(super::super::learned::DEFAULT_MODEL_JSON).unwrap();
        v["format"] = "dunewatch-learned/0".into();
        let e = LearnedModel::from_json(&v.to_string(), "m")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model format 'dunewatch-learned/0', this dunewatch reads"),
            "{e}"
        );
        let mut v: serde_json::Value =
            serde_json::from_str(super::super::cnn::DEFAULT_MODEL_JSON).unwrap();
        v["probability_threshold"] = 1.0.into();
        let e = CnnModel::from_json(&v.to_string(), "m")
            .unwrap_err()
            .to_string();
        assert!(e.contains("probability_threshold must be in (0, 1)"), "{e}");
        v["probability_threshold"] = 0.5.into();
        v["features"].as_array_mut().unwrap().pop();
        let e = CnnModel::from_json(&v.to_string(), "m")
            .unwrap_err()
            .to_string();
        assert!(e.contains("features do not match"), "{e}");
    }
}
