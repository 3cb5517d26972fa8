//! The chat page (`modelrunner-ui`): `GET /` for browsers and its files under `/ui/`.
//!
//! The page and its files hold no secrets, so they are served without an API key (the
//! page asks for the key and sends it with each API request). Everything else about a
//! request is unchanged: the DNS-rebinding guard and CORS apply as to any route.

use axum::extract::{Path, Request};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use modelrunner_ui::Asset;

use crate::ApiError;

/// Whether the request asks for HTML (a browser navigating to the page).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// Whether the request is for the page or one of its files, which need no key.
pub(crate) fn is_public(req: &Request) -> bool {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return false;
    }
    match req.uri().path() {
        "/" => wants_html(req.headers()),
        p => p
            .strip_prefix("/ui/")
            .is_some_and(|name| modelrunner_ui::asset(name).is_some()),
    }
}

/// `GET /`: the page for browsers, Docker Model Runner's liveness line for the rest.
pub(crate) async fn root(headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        serve(modelrunner_ui::index(), &headers)
    } else {
        "modelrunner is running".into_response()
    }
}

/// `GET /ui/{file}`.
pub(crate) async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match modelrunner_ui::asset(&name) {
        Some(a) if name != "index.html" => serve(a, &headers),
        _ => ApiError::not_found(format!("the page has no file {name:?}")).into_response(),
    }
}

const SECURITY: [(HeaderName, &str); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        modelrunner_ui::CONTENT_SECURITY_POLICY,
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// An asset with its media type, the security headers, and revalidation by `ETag`
/// (a new binary serves new files at once).
fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let etag = asset.etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.media_type)], asset.body).into_response()
    };
    let h = response.headers_mut();
    for (name, value) in SECURITY {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::ETAG, HeaderValue::from_static(etag));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}
