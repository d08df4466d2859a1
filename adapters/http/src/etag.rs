//! Conditional GETs (RFC 9110 §13): every `200` answer to a GET carries an `ETag` and
//! `Cache-Control: private, no-cache` (a client or a private cache keeps it and asks again with
//! `If-None-Match`); a request whose `If-None-Match` names the current tag is answered
//! `304 Not Modified` without a body.
//!
//! The tag is a hash of the body, unless the handler set a cheaper one it can check without
//! reading the whole resource (an account's: its entry count, see `handlers::get_account`).

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use sha2::{Digest, Sha256};

/// The largest body a GET answers (a page of 100 entries or accounts with their metadata).
const MAX_GET_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A strong tag of `bytes`: the first 16 bytes of their SHA-256, in hex.
pub fn body_tag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether the request's `If-None-Match` names `tag` (`*`, or one of a list; weak tags compared
/// weakly, as RFC 9110 asks for `If-None-Match`).
pub fn matches(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let Ok(tag) = tag.to_str() else { return false };
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',').any(|candidate| candidate.trim() == "*" || opaque(candidate) == opaque(tag))
    })
}

/// `304 Not Modified` with `tag`.
pub fn not_modified(tag: HeaderValue) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response.headers_mut().insert(ETAG, tag);
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

/// The middleware: tags every `200` answer to a GET and answers `304` when the client has it.
pub async fn revalidate(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let asked = request.headers().clone();
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_GET_BODY_BYTES).await else {
        tracing::error!("a GET body could not be buffered to tag it");
        let mut failed = Response::new(Body::empty());
        *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return failed;
    };
    let tag = parts.headers.get(ETAG).cloned().unwrap_or_else(|| body_tag(&bytes));
    if matches(&asked, &tag) {
        return not_modified(tag);
    }
    parts.headers.insert(ETAG, tag);
    parts.headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("private, no-cache"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_a_tag_strongly_weakly_in_a_list_or_by_star() {
        let tag = body_tag(b"{}");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        let tag_text = tag.to_str().unwrap().to_owned();
        assert!(matches(&with(&tag_text), &tag));
        assert!(matches(&with(&format!("W/{tag_text}")), &tag));
        assert!(matches(&with(&format!("\"other\", {tag_text}")), &tag));
        assert!(matches(&with("*"), &tag));
        assert!(!matches(&with("\"other\""), &tag));
        assert!(!matches(&HeaderMap::new(), &tag));
        assert_ne!(body_tag(b"{}"), body_tag(b"{ }"));
    }
}
