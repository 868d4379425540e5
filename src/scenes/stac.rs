//! A STAC API client for item search (`POST /search`): area (`intersects`),
//! `datetime` interval, collections and a cloud filter (the `query`
//! extension, `eo:cloud_cover <= N`, which servers without the extension
//! may ignore: the filter is applied here too), following `next` links
//! (GET, or POST with a body to merge) until the result ends.

use crate::error::{Error, Result};
use crate::read::http;
use crate::read::stac_item::{join_url, StacItem};
use serde_json::{json, Value};

/// Earth Search v1, a public catalogue of Sentinel-2 L2A COGs.
pub const EARTH_SEARCH: &str = "https://earth-search.aws.element84.com/v1";
/// Its Sentinel-2 Level-2A collection.
pub const DEFAULT_COLLECTION: &str = "sentinel-2-l2a";

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub collections: Vec<String>,
    /// GeoJSON geometry the items must intersect (lon/lat).
    pub intersects: Value,
    /// Inclusive dates, YYYY-MM-DD.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Largest scene cloud cover, percent.
    pub max_cloud: Option<f64>,
    /// Items per page asked for.
    pub page_size: usize,
    /// Stop after this many items.
    pub max_items: usize,
}

/// The `datetime` interval of `from` and `to` (open ends are `..`).
pub fn datetime_interval(from: Option<&str>, to: Option<&str>) -> Option<String> {
    if from.is_none() && to.is_none() {
        return None;
    }
    let f = from.map_or("..".to_string(), |d| format!("{d}T00:00:00Z"));
    let t = to.map_or("..".to_string(), |d| format!("{d}T23:59:59Z"));
    Some(format!("{f}/{t}"))
}

impl SearchRequest {
    /// The JSON body of `POST /search`.
    pub fn body(&self) -> Value {
        let mut b = json!({
            "collections": self.collections,
            "intersects": self.intersects,
            "limit": self.page_size,
        });
        if let Some(dt) = datetime_interval(self.from.as_deref(), self.to.as_deref()) {
            b["datetime"] = json!(dt);
        }
        if let Some(c) = self.max_cloud {
            b["query"] = json!({"eo:cloud_cover": {"lte": c}});
        }
        b
    }
}

/// Searches `api` (the API's root URL) and returns the matching items.
pub fn search(api: &str, req: &SearchRequest) -> Result<Vec<StacItem>> {
    let api = api.trim_end_matches('/');
    let body = req.body();
    let (items, pages) = search_with(api, req, body.clone())?;
    // A server without the query extension may answer nothing at all
    // (rustac's memory backend does): ask again without it; the cloud
    // filter is applied here anyway.
    if pages == 0 && body.get("query").is_some() {
        let mut plain = body;
        plain.as_object_mut().map(|o| o.remove("query"));
        return Ok(search_with(api, req, plain)?.0);
    }
    Ok(items)
}

/// The items of a search with `first` as body, and how many pages held any.
fn search_with(api: &str, req: &SearchRequest, first: Value) -> Result<(Vec<StacItem>, usize)> {
    let mut url = format!("{api}/search");
    let mut pages = 0;
    let mut body = Some(first.clone());
    let mut items = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // A page limit as well, against a server whose `next` link loops.
    for _page in 0..1000 {
        let bytes = match &body {
            Some(b) => http::post_json(&url, &b.to_string()),
            None => http::get(&url),
        }
        .map_err(|m| Error::invalid(format!("STAC search failed: {m}")))?;
        let page: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(format!("STAC search {url}: the answer is not JSON ({e})"))
        })?;
        let feats = page
            .get("features")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "STAC search {url}: the answer has no \"features\" (is {api} a STAC API?)"
                ))
            })?;
        if feats.is_empty() {
            break;
        }
        pages += 1;
        for f in feats {
            let id = f
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !seen.insert(id.clone()) {
                continue;
            }
            let coll = f.get("collection").and_then(Value::as_str).unwrap_or("");
            let loc = format!("{api}/collections/{coll}/items/{id}");
            let mut it = StacItem::from_json(&loc, f.clone())?;
            // Relative asset hrefs are relative to the item's own URL.
            if let Some(s) = it.self_href() {
                it.location = s;
            }
            if passes(&it, req) {
                items.push(it);
            }
        }
        if items.len() >= req.max_items {
            items.truncate(req.max_items);
            break;
        }
        match next_link(&page) {
            Some((href, method, link_body, merge)) => {
                url = join_url(&url, &href);
                body = if method.eq_ignore_ascii_case("POST") {
                    Some(match (link_body, merge) {
                        (Some(lb), true) => merged(&first, &lb),
                        (Some(lb), false) => lb,
                        (None, _) => first.clone(),
                    })
                } else {
                    None
                };
            }
            None => break,
        }
    }
    Ok((items, pages))
}

/// The filters a server may not apply (cloud cover, dates).
fn passes(it: &StacItem, req: &SearchRequest) -> bool {
    if let (Some(max), Some(c)) = (req.max_cloud, it.cloud_cover()) {
        if c > max {
            return false;
        }
    }
    let d = it.date().unwrap_or_default();
    req.from.as_deref().is_none_or(|f| d.as_str() >= f)
        && req.to.as_deref().is_none_or(|t| d.as_str() <= t)
}

/// `(href, method, body, merge)` of a page's `next` link.
fn next_link(page: &Value) -> Option<(String, String, Option<Value>, bool)> {
    let l = page
        .get("links")?
        .as_array()?
        .iter()
        .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))?;
    Some((
        l.get("href")?.as_str()?.to_string(),
        l.get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_string(),
        l.get("body").cloned(),
        l.get("merge").and_then(Value::as_bool).unwrap_or(false),
    ))
}

fn merged(base: &Value, over: &Value) -> Value {
    let mut b = base.clone();
    if let (Some(bm), Some(om)) = (b.as_object_mut(), over.as_object()) {
        for (k, v) in om {
            bm.insert(k.clone(), v.clone());
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_body() {
        let r = SearchRequest {
            collections: vec!["sentinel-2-l2a".into()],
            intersects: json!({"type": "Point", "coordinates": [23.3, 24.2]}),
            from: Some("2024-03-01".into()),
            to: None,
            max_cloud: Some(20.0),
            page_size: 100,
            max_items: 500,
        };
        let b = r.body();
        assert_eq!(b["datetime"], "2024-03-01T00:00:00Z/..");
        assert_eq!(b["query"]["eo:cloud_cover"]["lte"], 20.0);
        assert_eq!(b["collections"][0], "sentinel-2-l2a");
        assert_eq!(datetime_interval(None, None), None);
    }

    #[test]
    fn next_links_get_and_post() {
        let p = json!({"links": [{"rel": "next", "href": "https://x/search?token=a"}]});
        assert_eq!(next_link(&p).unwrap().1, "GET");
        let p = json!({"links": [{"rel": "next", "href": "https://x/search", "method": "POST",
                                  "body": {"next": "tok"}, "merge": true}]});
        let (_, m, b, merge) = next_link(&p).unwrap();
        assert_eq!((m.as_str(), merge), ("POST", true));
        let full = merged(&json!({"limit": 5, "next": "old"}), &b.unwrap());
        assert_eq!(full, json!({"limit": 5, "next": "tok"}));
        assert!(next_link(&json!({"links": []})).is_none());
    }
}
