//! The static files the pages name: the look (`careline.css`) and the
//! scripts, each served from the binary and named in pages by its
//! content's fingerprint.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The pages' look, served as a file (`/static/careline.css`): no style
/// is written into a page, so the pages' CSP allows none.
pub(crate) const STYLE: &str = include_str!("../static/careline.css");

/// The addresses of the static files a page names, each once.
pub(crate) static STYLE_URL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| asset("/static/careline.css", STYLE));
pub(crate) static COMPOSE_URL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| asset("/static/compose.js", COMPOSE));
pub(crate) static LIVE_URL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| asset("/static/live.js", LIVE));
pub(crate) static SHORTCUTS_URL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| asset("/static/shortcuts.js", SHORTCUTS));

/// A static file's address, naming its content's fingerprint, so a
/// browser keeps it for a year and still fetches a changed one at once.
fn asset(path: &str, content: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(content.as_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{path}?v={short}")
}

/// The page script: fetches the live part of a page again when told.
pub(crate) const LIVE: &str = include_str!("../static/live.js");
/// Drafts kept in the browser, the character count, the idle warning.
pub(crate) const COMPOSE: &str = include_str!("../static/compose.js");
/// The staff's keyboard shortcuts.
pub(crate) const SHORTCUTS: &str = include_str!("../static/shortcuts.js");

pub(crate) async fn script() -> Response {
    static_file(LIVE, "text/javascript; charset=utf-8")
}

pub(crate) async fn compose() -> Response {
    static_file(COMPOSE, "text/javascript; charset=utf-8")
}

pub(crate) async fn shortcuts() -> Response {
    static_file(SHORTCUTS, "text/javascript; charset=utf-8")
}

/// The pages' style sheet.
pub(crate) async fn style() -> Response {
    static_file(STYLE, "text/css; charset=utf-8")
}

/// A static file: pages ask for it by its fingerprint
/// ([`asset`]), so it may be kept for a year.
fn static_file(text: &'static str, content_type: &'static str) -> Response {
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
