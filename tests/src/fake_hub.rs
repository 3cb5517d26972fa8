//! A Hugging Face Hub for tests, from the public Hub API's documented shapes: the
//! revision (`/api/models/ORG/REPO/revision/main` → `sha`), the tree listing
//! (`/api/models/ORG/REPO/tree/COMMIT?recursive=true&expand=true`, entries with `lfs`
//! `oid`/`size` and `lastCommit`, two per page with a `Link: <…>; rel="next"` header),
//! and `resolve`, which answers 302 to a second origin (the CDN, which serves the bytes
//! with Range) with `X-Repo-Commit`, `X-Linked-Etag` and `X-Linked-Size`. Private repos
//! want `Authorization: Bearer TOKEN` (401 `RepoNotFound` otherwise, with a challenge
//! naming the CDN as a token realm, which must not be followed); gated ones answer
//! 403 `GatedRepo`. Both origins are [`FakeRegistry`]s, so faults and recorded requests
//! work as there.

use serde_json::json;

use crate::fake_registry::{FakeRegistry, Route};

/// The token private repositories accept.
pub const TOKEN: &str = "hf_test_token";
/// Entries per listing page.
const PAGE: usize = 2;

/// One file of a repository.
pub struct HubFile<'a> {
    /// Path in the repository.
    pub path: &'a str,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Who may read a repository.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Bearer [`TOKEN`].
    Private,
    /// Nobody: the terms are not accepted.
    Gated,
}

/// The Hub (API and `resolve`) and its CDN.
pub struct FakeHub {
    /// The Hub's origin.
    pub hub: FakeRegistry,
    /// Where `resolve` redirects.
    pub cdn: FakeRegistry,
}

fn json_route(v: serde_json::Value, extra: Vec<(String, String)>) -> Route {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    headers.extend(extra);
    Route {
        status: 200,
        headers,
        body: serde_json::to_vec(&v).unwrap(),
        auth: None,
    }
}

impl FakeHub {
    /// Starts both origins.
    pub fn start() -> FakeHub {
        FakeHub {
            hub: FakeRegistry::start(),
            cdn: FakeRegistry::start(),
        }
    }

    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.hub.host)
    }

    /// The CDN path a file's bytes are served at (for faults and recorded requests).
    pub fn cdn_path(bytes: &[u8]) -> String {
        format!("/cdn/blobs/sha256:{}", crate::sha256_hex(bytes))
    }

    /// Publishes `repo` (`org/name`, lowercase) at `commit` (40 hex) with `files`; a
    /// file named `*.md` is a plain git file (no LFS), every other one is LFS.
    pub fn repo(&self, repo: &str, commit: &str, access: Access, files: &[HubFile<'_>]) {
        let auth = match access {
            Access::Public => None,
            Access::Private => Some((
                format!("Bearer {TOKEN}"),
                401,
                vec![
                    ("x-error-code".to_string(), "RepoNotFound".to_string()),
                    (
                        "x-error-message".to_string(),
                        "Repository not found".to_string(),
                    ),
                    // A challenge naming another origin, which a Hub client must not
                    // follow with the token.
                    (
                        "www-authenticate".to_string(),
                        format!("Bearer realm=\"http://{}/token\"", self.cdn.host),
                    ),
                ],
            )),
            Access::Gated => Some((
                "nobody".to_string(),
                403,
                vec![("x-error-code".to_string(), "GatedRepo".to_string())],
            )),
        };
        let guard = |mut r: Route| {
            r.auth = auth.clone();
            r
        };
        self.hub.route(
            &format!("/api/models/{repo}/revision/main"),
            guard(json_route(json!({"id": repo, "sha": commit}), vec![])),
        );
        let entries: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                let mut e = json!({
                    "type": "file",
                    "path": f.path,
                    "size": f.bytes.len(),
                    "oid": format!("{:040x}", f.bytes.len()),
                    "lastCommit": {"id": commit, "title": "upload", "date": "2025-03-04T05:06:07.000Z"},
                });
                if !f.path.ends_with(".md") {
                    e["lfs"] = json!({"oid": crate::sha256_hex(&f.bytes), "size": f.bytes.len(), "pointerSize": 134});
                }
                e
            })
            .collect();
        let tree = format!("/api/models/{repo}/tree/{commit}");
        let pages: Vec<&[serde_json::Value]> = entries.chunks(PAGE).collect();
        for (i, page) in pages.iter().enumerate() {
            let query = if i == 0 {
                "recursive=true&expand=true".to_string()
            } else {
                format!("recursive=true&expand=true&cursor={i}")
            };
            let link = (i + 1 < pages.len()).then(|| {
                (
                    "link".to_string(),
                    format!(
                        "<{}{tree}?recursive=true&expand=true&cursor={}>; rel=\"next\"",
                        self.endpoint(),
                        i + 1
                    ),
                )
            });
            self.hub.route(
                &format!("{tree}?{query}"),
                guard(json_route(json!(page), link.into_iter().collect())),
            );
        }
        for f in files {
            let sha = crate::sha256_hex(&f.bytes);
            self.cdn.put_blob(f.bytes.clone());
            let location = format!(
                "http://{}{}?X-Amz-Signature=fake",
                self.cdn.host,
                Self::cdn_path(&f.bytes)
            );
            let headers = vec![
                ("location".to_string(), location),
                ("x-repo-commit".to_string(), commit.to_string()),
                ("x-linked-etag".to_string(), format!("\"{sha}\"")),
                ("x-linked-size".to_string(), f.bytes.len().to_string()),
            ];
            self.hub.route(
                &format!("/{repo}/resolve/{commit}/{}", f.path),
                guard(Route {
                    status: 302,
                    headers,
                    body: Vec::new(),
                    auth: None,
                }),
            );
        }
    }
}
