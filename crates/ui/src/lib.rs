//! The chat page: plain HTML, CSS and ES modules under `assets/`, embedded in the binary
//! with `include_bytes!`. Nothing is built and nothing is fetched from elsewhere: the
//! page loads only these files, and talks only to the daemon that served it (its
//! Content-Security-Policy says so to the browser).

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The policy every asset is served with: only this origin's scripts, styles and API,
/// no inline script or style, no frames, no forms posted elsewhere, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; connect-src 'self'; img-src 'self' data:; manifest-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/ui/` (the page itself is `index.html`, served at `/`).
    pub name: &'static str,
    /// Its media type.
    pub media_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $media:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            media_type: $media,
            body: include_bytes!(concat!("../assets/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page.
pub static ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "app.js" => JS,
    "api.js" => JS,
    "chat.js" => JS,
    "conversations.js" => JS,
    "dom.js" => JS,
    "markdown.js" => JS,
    "models.js" => JS,
    "settings.js" => JS,
];

/// The file called `name`, if the page has one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The page itself.
pub fn index() -> &'static Asset {
    asset("index.html").expect("index.html is embedded")
}

impl Asset {
    /// A strong validator for `ETag`: the first 16 bytes of the body's sha256, in hex
    /// and quoted, computed once.
    pub fn etag(&'static self) -> &'static str {
        static TAGS: OnceLock<Vec<String>> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            ASSETS
                .iter()
                .map(|a| {
                    let d = Sha256::digest(a.body);
                    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
                    format!("\"{hex}\"")
                })
                .collect()
        });
        let i = ASSETS
            .iter()
            .position(|a| std::ptr::eq(a, self))
            .expect("an embedded asset");
        &tags[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the page imports is embedded, and nothing refers to another origin.
    #[test]
    fn imports_are_embedded_and_local() {
        for a in ASSETS {
            let text = std::str::from_utf8(a.body).unwrap();
            for (i, _) in text.match_indices(" from \"./") {
                let rest = &text[i + 9..];
                let name = &rest[..rest.find('"').unwrap()];
                assert!(
                    asset(name).is_some(),
                    "{} imports {name}, not embedded",
                    a.name
                );
            }
            for needle in ["http://", "https://", "//cdn", "src=\"//"] {
                let hits: Vec<_> = text
                    .match_indices(needle)
                    // The SVG's XML namespace names a URI; it is never fetched.
                    .filter(|(i, _)| !text[..*i].ends_with("xmlns=\""))
                    .collect();
                assert!(
                    hits.is_empty(),
                    "{} names another origin ({needle})",
                    a.name
                );
            }
        }
    }

    #[test]
    fn etags_differ_per_file() {
        let tags: std::collections::HashSet<_> = ASSETS.iter().map(|a| a.etag()).collect();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(index().etag().starts_with('"'));
    }
}
