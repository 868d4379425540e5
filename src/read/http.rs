//! HTTP requests through GDAL's own libcurl (`CPLHTTPFetch`): STAC items and
//! searches travel the same way as the `/vsicurl/` pixel reads, with the
//! same TLS, proxy and `GDAL_HTTP_*` settings, and no second HTTP stack in
//! the build. Transient failures (HTTP 429, 500, 502, 503, 504) are retried
//! with a doubling delay; see [`configure_remote_reads`] for the pixels.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

#[repr(C)]
struct CplHttpResult {
    n_status: c_int,
    content_type: *mut c_char,
    err_buf: *mut c_char,
    data_len: c_int,
    data_alloc: c_int,
    data: *mut u8,
    headers: *mut *mut c_char,
    mime_part_count: c_int,
    mime_parts: *mut c_void,
}

extern "C" {
    fn CPLHTTPFetch(url: *const c_char, options: *const *const c_char) -> *mut CplHttpResult;
    fn CPLHTTPDestroyResult(result: *mut CplHttpResult);
}

/// Retries of a failed request (HTTP 429 and 5xx), unless GDAL_HTTP_MAX_RETRY is set.
const MAX_RETRY: &str = "4";
/// First delay before a retry, in seconds, doubled at each retry, unless
/// GDAL_HTTP_RETRY_DELAY is set.
const RETRY_DELAY: &str = "0.5";

/// Whether `s` is an http(s) URL.
pub fn is_url(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// GETs `url`; the error is one line naming the URL.
pub fn get(url: &str) -> Result<Vec<u8>, String> {
    fetch(url, &[])
}

/// POSTs a JSON body to `url` and returns the response body.
pub fn post_json(url: &str, body: &str) -> Result<Vec<u8>, String> {
    fetch(
        url,
        &[
            format!("POSTFIELDS={body}"),
            "HEADERS=Content-Type: application/json\r\nAccept: application/geo+json, application/json"
                .to_string(),
        ],
    )
}

fn fetch(url: &str, extra: &[String]) -> Result<Vec<u8>, String> {
    let mut opts: Vec<String> = vec!["TIMEOUT=120".into(), "CONNECTTIMEOUT=20".into()];
    if std::env::var_os("GDAL_HTTP_MAX_RETRY").is_none() {
        opts.push(format!("MAX_RETRY={MAX_RETRY}"));
    }
    if std::env::var_os("GDAL_HTTP_RETRY_DELAY").is_none() {
        opts.push(format!("RETRY_DELAY={RETRY_DELAY}"));
    }
    opts.extend(extra.iter().cloned());
    let c_url = CString::new(url).map_err(|_| format!("{url}: not a valid URL"))?;
    let c_opts: Vec<CString> = opts
        .iter()
        .map(|o| CString::new(o.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{url}: request holds a NUL byte"))?;
    let mut ptrs: Vec<*const c_char> = c_opts.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: both strings and the NULL-terminated option list outlive the
    // call; the result is read, then freed once by GDAL's own destructor.
    unsafe {
        let r = CPLHTTPFetch(c_url.as_ptr(), ptrs.as_ptr());
        if r.is_null() {
            return Err(format!("{url}: request failed"));
        }
        let res = &*r;
        let out = if !res.err_buf.is_null() || res.n_status != 0 {
            let msg = if res.err_buf.is_null() {
                format!("request failed (curl error {})", res.n_status)
            } else {
                CStr::from_ptr(res.err_buf).to_string_lossy().into_owned()
            };
            let msg = msg.lines().next().unwrap_or("").trim().to_string();
            Err(format!("{url}: {msg}"))
        } else if res.data.is_null() || res.data_len <= 0 {
            Ok(Vec::new())
        } else {
            Ok(std::slice::from_raw_parts(res.data, res.data_len as usize).to_vec())
        };
        CPLHTTPDestroyResult(r);
        out
    }
}

/// Why GDAL could not open `path`, as one line for the error naming the
/// file: for a `/vsicurl/` path whose GDAL message says nothing (a 404 does
/// not), the server's answer to a one-byte request.
pub fn open_failure(path: &str, gdal_msg: &str) -> String {
    let url = path.strip_prefix("/vsicurl/").filter(|u| is_url(u));
    match url {
        Some(url) if gdal_msg.is_empty() || gdal_msg.contains("NULL pointer") => {
            match fetch(url, &["HEADERS=Range: bytes=0-0".to_string()]) {
                Err(m) => m
                    .strip_prefix(url)
                    .map(|m| m.trim_start_matches(':').trim().to_string())
                    .unwrap_or(m),
                Ok(_) => "not a raster GDAL can read".to_string(),
            }
        }
        _ => gdal_msg.to_string(),
    }
}

/// Sets GDAL up for reading windows of remote COGs through `/vsicurl/`
/// (each only when the user has not set it): no directory listing on open
/// (a request per file saved), consecutive ranges merged into one request,
/// and transient HTTP errors retried with a doubling delay.
pub fn configure_remote_reads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (k, v) in [
            ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
            ("GDAL_HTTP_MERGE_CONSECUTIVE_RANGES", "YES"),
            ("GDAL_HTTP_MAX_RETRY", MAX_RETRY),
            ("GDAL_HTTP_RETRY_DELAY", RETRY_DELAY),
            ("GDAL_HTTP_CONNECTTIMEOUT", "20"),
        ] {
            if std::env::var_os(k).is_none() {
                let _ = gdal::config::set_config_option(k, v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_url("https://earth-search.aws.element84.com/v1"));
        assert!(is_url("HTTP://127.0.0.1:8080/a.json"));
        assert!(!is_url("/vsicurl/https://x/a.tif"));
        assert!(!is_url("items/a.json"));
    }

    #[test]
    fn refused_connection_is_one_line_naming_the_url() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::env::set_var("GDAL_HTTP_MAX_RETRY", "0");
        let url = format!("http://127.0.0.1:{port}/item.json");
        let e = get(&url).unwrap_err();
        assert!(e.starts_with(&url), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}
