//! Pulling GGUF models from a Hugging Face Hub (`hf.co/ORG/REPO[:QUANT]`): the revision
//! pinned to its commit, the file listing (with each LFS file's sha256 and size), the
//! files chosen by quant ([`select`]), downloaded with the same resumable, verified
//! machinery as OCI blobs, and stored as a Docker-format artifact built from them.
//!
//! The token (`HF_TOKEN`) goes to the Hub's origin only: [`Session`] drops it on a
//! redirect elsewhere (the Hub sends downloads to a signed CDN URL).

mod pull;
pub mod select;

use chrono::{DateTime, Utc};
use modelrunner_format::manifest::MAX_DOCUMENT_BYTES;
use modelrunner_format::{Digest, Reference};
use reqwest::header::{HeaderMap, LINK};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use tracing::info;
use url::Url;

use crate::client::Registry;
use crate::error::RegistryError;
use crate::http::{read_bounded, Session};
use select::{choose, Listed, NoChoice};

/// The registry name Hugging Face references normalise to (`hf.co` is spelled so).
pub const HUB_REGISTRY: &str = "huggingface.co";
/// The Hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Listing pages followed at most.
const MAX_PAGES: usize = 1000;

/// True for `hf.co/...` and `huggingface.co/...` references.
pub fn is_hub(reference: &Reference) -> bool {
    reference.registry() == HUB_REGISTRY
}

/// One file to download.
#[derive(Debug, Clone)]
pub struct HubFile {
    /// Path in the repository.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// The Hub's LFS sha256 of the content.
    pub digest: Digest,
}

/// A Hub repository resolved to a commit and the files the reference chose.
pub struct HubResolved {
    session: Session,
    /// `ORG/REPO`.
    pub repo: String,
    /// The commit `main` pointed at.
    pub commit: String,
    /// The weights, shards in order.
    pub weights: Vec<HubFile>,
    /// The multimodal projector.
    pub mmproj: Option<HubFile>,
    /// The quant chosen (`Q4_K_M`).
    pub quant: String,
    /// The files' newest commit date (the artifact's creation time, so the same files
    /// always make the same model ID).
    pub created: DateTime<Utc>,
}

impl HubResolved {
    /// Every file, weights first.
    pub fn files(&self) -> impl Iterator<Item = &HubFile> {
        self.weights.iter().chain(self.mmproj.as_ref())
    }
}

#[derive(Deserialize)]
struct Revision {
    sha: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<Lfs>,
    #[serde(rename = "lastCommit")]
    last_commit: Option<LastCommit>,
}

#[derive(Deserialize)]
struct Lfs {
    oid: String,
    size: u64,
}

#[derive(Deserialize)]
struct LastCommit {
    date: Option<DateTime<Utc>>,
}

impl Registry {
    /// Resolves a Hugging Face reference: the commit, the listing, the files chosen.
    /// Not found, refused (private, gated), no matching quant: all fail here, before a
    /// byte is downloaded. `bearer` (a caller's token) wins over the configured one.
    pub async fn resolve_hub(
        &self,
        reference: &Reference,
        bearer: Option<String>,
    ) -> Result<HubResolved, RegistryError> {
        self.config().policy.check(reference)?;
        let repo = reference.repository().to_string();
        if repo.split('/').count() != 2 || reference.digest().is_some() {
            return Err(RegistryError::Config(format!(
                "{reference}: a Hugging Face reference is hf.co/ORG/REPO or hf.co/ORG/REPO:QUANT"
            )));
        }
        let session = self.hub_session(&repo, bearer)?;
        let rev: Revision = serde_json::from_slice(
            &hub_get(
                &session,
                &repo,
                &["api", "models", &repo, "revision", "main"],
            )
            .await?,
        )
        .map_err(|e| RegistryError::protocol(&session.host(), format!("revision info: {e}")))?;
        let commit = rev.sha;
        if commit.len() != 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RegistryError::protocol(
                &session.host(),
                format!("revision main of {repo} is {commit:?}, not a commit"),
            ));
        }
        let entries = list_tree(&session, &repo, &commit).await?;
        let listed: Vec<Listed> = entries
            .iter()
            .map(|e| Listed {
                path: e.path.clone(),
                size: e.size,
            })
            .collect();
        let choice = choose(&listed, reference.tag()).map_err(|e| no_choice(reference, e))?;
        let file = |path: &str| hub_file(&session, &entries, path);
        let weights = choice
            .weights
            .iter()
            .map(|p| file(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mmproj = choice.mmproj.as_deref().map(file).transpose()?;
        let created = entries
            .iter()
            .filter(|e| weights.iter().chain(&mmproj).any(|f| f.path == e.path))
            .filter_map(|e| e.last_commit.as_ref()?.date)
            .max()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        info!(%repo, %commit, quant = %choice.quant, files = weights.len() + mmproj.is_some() as usize, "resolved on the Hub");
        Ok(HubResolved {
            session,
            repo,
            commit,
            weights,
            mmproj,
            quant: choice.quant,
            created,
        })
    }

    fn hub_session(&self, repo: &str, bearer: Option<String>) -> Result<Session, RegistryError> {
        let endpoint = self.config().hub_endpoint();
        let base = Url::parse(&endpoint).map_err(|e| {
            RegistryError::Config(format!("the Hugging Face endpoint {endpoint:?}: {e}"))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(RegistryError::Config(format!(
                "the Hugging Face endpoint {endpoint:?} is not an http(s) URL"
            )));
        }
        let token = bearer.or_else(|| self.config().hub_token());
        let host = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_string(),
        };
        Ok(Session::new(
            self.client_for(&host),
            base,
            repo,
            Vec::new(),
            None,
            token,
            self.backoff(),
        )
        .without_challenges())
    }
}

/// `base` with `segments` appended to its path (a mirror's path prefix is kept); a
/// segment's own slashes separate segments (`ORG/REPO`, a file in a directory), every
/// other character is escaped.
pub(crate) fn hub_url(base: &Url, segments: &[&str]) -> Url {
    let mut u = base.clone();
    u.path_segments_mut()
        .expect("http(s) URLs have paths")
        .pop_if_empty()
        .extend(segments.iter().flat_map(|s| s.split('/')));
    u
}

async fn hub_get(
    session: &Session,
    repo: &str,
    segments: &[&str],
) -> Result<Vec<u8>, RegistryError> {
    let url = hub_url(&session.base, segments);
    let resp = session
        .send(Method::GET, url, HeaderMap::new(), None, "asking the Hub")
        .await?;
    if resp.status() != StatusCode::OK {
        return Err(hub_fail(session, resp, repo).await);
    }
    read_bounded(resp, MAX_DOCUMENT_BYTES, "a Hub answer", &session.host()).await
}

/// The listing of `commit`, every page (the Hub paginates with `Link: <…>; rel="next"`,
/// followed only on the Hub's own origin).
async fn list_tree(
    session: &Session,
    repo: &str,
    commit: &str,
) -> Result<Vec<Entry>, RegistryError> {
    let mut url = hub_url(&session.base, &["api", "models", repo, "tree", commit]);
    url.set_query(Some("recursive=true&expand=true"));
    let mut next = Some(url);
    let mut entries = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(url) = next.take() else {
            return Ok(entries);
        };
        let resp = session
            .send(
                Method::GET,
                url,
                HeaderMap::new(),
                None,
                "listing the repository",
            )
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(hub_fail(session, resp, repo).await);
        }
        next = next_page(&resp, &session.base)?;
        let page =
            read_bounded(resp, MAX_DOCUMENT_BYTES, "a listing page", &session.host()).await?;
        let page: Vec<Entry> = serde_json::from_slice(&page).map_err(|e| {
            RegistryError::protocol(&session.host(), format!("listing of {repo}: {e}"))
        })?;
        entries.extend(page.into_iter().filter(|e| e.kind == "file"));
    }
    Err(RegistryError::protocol(
        &session.host(),
        format!("the listing of {repo} has more than {MAX_PAGES} pages"),
    ))
}

fn next_page(resp: &Response, base: &Url) -> Result<Option<Url>, RegistryError> {
    let Some(link) = resp.headers().get(LINK).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    for part in link.split(',') {
        let Some((target, params)) = part.split_once(';') else {
            continue;
        };
        if !params.contains("rel=\"next\"") && !params.contains("rel=next") {
            continue;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let url = base.join(target).map_err(|_| {
            RegistryError::protocol(base.as_str(), format!("bad next page {target:?}"))
        })?;
        if url.origin() != base.origin() {
            return Err(RegistryError::protocol(
                base.as_str(),
                format!("the next listing page {url} is on another origin"),
            ));
        }
        return Ok(Some(url));
    }
    Ok(None)
}

/// A chosen path from the listing, checked (a relative path of plain names) and with
/// the sha256 to verify it against.
fn hub_file(session: &Session, entries: &[Entry], path: &str) -> Result<HubFile, RegistryError> {
    let bad = path.starts_with('/')
        || path.contains('\\')
        || path.chars().any(char::is_control)
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(RegistryError::protocol(
            &session.host(),
            format!("the listing names an unsafe path {path:?}"),
        ));
    }
    let e = entries
        .iter()
        .find(|e| e.path == path)
        .expect("chosen from the listing");
    let Some(lfs) = &e.lfs else {
        return Err(RegistryError::Invalid {
            registry: session.host(),
            reason: format!(
                "{path} is not an LFS file, so the Hub gives no sha256 to verify it against; refusing an unverified download"
            ),
        });
    };
    let digest = Digest::from_hex(&lfs.oid.to_ascii_lowercase()).map_err(|_| {
        RegistryError::protocol(
            &session.host(),
            format!("{path} has LFS oid {:?}, not a sha256", lfs.oid),
        )
    })?;
    Ok(HubFile {
        path: path.to_string(),
        size: lfs.size,
        digest,
    })
}

fn no_choice(reference: &Reference, e: NoChoice) -> RegistryError {
    let (what, detail) = match e {
        NoChoice::NoGguf => (
            format!("a GGUF file in {}", reference.name()),
            ": the repository has no .gguf weights (modelrunner runs GGUF models only)".to_string(),
        ),
        NoChoice::NoMatch(quants) => (
            format!(
                "quant {:?} in {}",
                reference.tag().unwrap_or_default(),
                reference.name()
            ),
            format!(
                ": the repository has {}",
                if quants.is_empty() {
                    "no recognisable quant names".into()
                } else {
                    quants.join(", ")
                }
            ),
        ),
        NoChoice::MissingShard(p) => (format!("shard {p} of {}", reference.name()), String::new()),
    };
    RegistryError::NotFound {
        what,
        registry: HUB_REGISTRY.to_string(),
        detail,
    }
}

/// A Hub refusal in words that say what to do (the Hub answers 401 for a missing repo
/// too, when no token is sent).
pub(crate) async fn hub_fail(session: &Session, resp: Response, repo: &str) -> RegistryError {
    let status = resp.status();
    let code = resp
        .headers()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let registry = session.host();
    let name = format!("hf.co/{repo}");
    match (status, code.as_str()) {
        (_, "GatedRepo") => RegistryError::Unauthorized {
            registry,
            reason: format!("{name} is gated: accept its terms on the Hub with your account, and set HF_TOKEN to a token of that account"),
        },
        (_, "RevisionNotFound" | "EntryNotFound") | (StatusCode::NOT_FOUND, _) => RegistryError::NotFound {
            what: format!("repository {name}"),
            registry,
            detail: String::new(),
        },
        (StatusCode::UNAUTHORIZED, _) => RegistryError::Unauthorized {
            registry,
            reason: format!("{name} was not found, or it is private or gated: check the name, and for a private or gated repository set HF_TOKEN to a token that may read it"),
        },
        (StatusCode::FORBIDDEN, _) => RegistryError::Unauthorized {
            registry,
            reason: format!("the token was refused for {name} (403): give HF_TOKEN read access to it"),
        },
        _ => session.fail(resp, "a Hub request", &name).await,
    }
}
