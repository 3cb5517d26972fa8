//! Model references, parsed and normalised the way Docker Model Runner does.
//!
//! `smollm2` means `docker.io/ai/smollm2:latest`; the name part is lowercased, the tag is
//! not; `hf.co/` is spelled `huggingface.co/`; `index.docker.io` is `docker.io`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::FormatError;

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace a one-component Docker Hub name gets.
pub const DEFAULT_NAMESPACE: &str = "ai";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A fully qualified model reference: registry, repository, and a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry host (with port), e.g. `docker.io` or `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. `ai/smollm2`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when the reference has no digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, for `name@sha256:...` references.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, FormatError> {
        validate_tag(tag, tag)?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// True for a tag reference (as opposed to a digest reference).
    pub fn is_tag(&self) -> bool {
        self.digest.is_none()
    }

    /// The name as people type it: without `docker.io/`, the `ai/` namespace and `:latest`.
    pub fn short(&self) -> String {
        let full = self.to_string();
        let s = full.strip_prefix("docker.io/").unwrap_or(&full);
        let s = s.strip_prefix("ai/").unwrap_or(s);
        s.strip_suffix(":latest").unwrap_or(s).to_string()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")
        } else {
            write!(f, ":{}", self.tag.as_deref().unwrap_or(DEFAULT_TAG))
        }
    }
}

fn invalid(input: &str, reason: &str) -> FormatError {
    FormatError::InvalidReference {
        input: input.chars().take(300).collect(),
        reason: reason.to_string(),
    }
}

fn validate_tag(input: &str, tag: &str) -> Result<(), FormatError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            "a tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with '.' or '-'",
        ))
    }
}

fn validate_component(input: &str, c: &str) -> Result<(), FormatError> {
    let bytes = c.as_bytes();
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ok = !c.is_empty()
        && edge_ok(bytes[0])
        && edge_ok(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| edge_ok(b) || matches!(b, b'.' | b'_' | b'-'))
        && !c.contains("..");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            "each path component is lowercase letters, digits and separators (. _ -), \
             starting and ending with a letter or digit",
        ))
    }
}

fn validate_registry(input: &str, host: &str) -> Result<(), FormatError> {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if name_ok && port_ok {
        Ok(())
    } else {
        Err(invalid(input, "invalid registry host"))
    }
}

impl FromStr for Reference {
    type Err = FormatError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if s.is_empty() {
            return Err(invalid(input, "empty reference"));
        }
        if s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(invalid(input, "whitespace or control characters"));
        }
        let owned;
        // Host names are case-insensitive: `HF.co/` is the alias too (fuzzing found
        // `hf.Co/x` normalising to `hf.co/x`, which then parsed as another model).
        let alias = s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("hf.co/"));
        let s = if alias {
            owned = format!("huggingface.co/{}", &s[6..]);
            owned.as_str()
        } else {
            s
        };
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let d: Digest = d.parse().map_err(|_| {
                    invalid(input, "the digest must be sha256: and 64 lowercase hex")
                })?;
                (n, Some(d))
            }
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            validate_tag(input, t)?;
        }
        if name.is_empty() {
            return Err(invalid(input, "missing repository name"));
        }
        let name = name.to_ascii_lowercase();
        let mut parts: Vec<&str> = name.split('/').collect();
        let first = parts[0];
        let has_registry =
            parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
        let registry = if has_registry {
            let r = parts.remove(0);
            validate_registry(input, r)?;
            if r == "index.docker.io" || r == "registry-1.docker.io" {
                DEFAULT_REGISTRY.to_string()
            } else {
                r.to_string()
            }
        } else {
            DEFAULT_REGISTRY.to_string()
        };
        for p in &parts {
            validate_component(input, p)?;
        }
        let mut repository = parts.join("/");
        if registry == DEFAULT_REGISTRY && parts.len() == 1 {
            repository = format!("{DEFAULT_NAMESPACE}/{repository}");
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(input, "name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (_, Some(_)) => None,
            (Some(t), None) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// What a user may type to name a local model: an ID (full or 12-hex prefix) or a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelRef {
    /// `sha256:<64 hex>` or 64 bare hex digits.
    Id(Digest),
    /// 12 hex digits, a short model ID (may also be a name; stores try the ID first).
    ShortId(String),
    /// A name with tag or digest.
    Name(Reference),
}

impl FromStr for ModelRef {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.starts_with("sha256:") {
            return Ok(ModelRef::Id(t.parse()?));
        }
        if let Ok(d) = Digest::from_hex(t) {
            return Ok(ModelRef::Id(d));
        }
        if t.len() == 12
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Ok(ModelRef::ShortId(t.to_string()));
        }
        Ok(ModelRef::Name(t.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c7790a0a6d8a9e4a3d5f8b1e2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5";

    #[test]
    fn normalises_like_docker_model_runner() {
        let cases: &[(&str, &str)] = &[
            ("smollm2", "docker.io/ai/smollm2:latest"),
            ("smollm2:360M-Q4_K_M", "docker.io/ai/smollm2:360M-Q4_K_M"),
            ("ai/smollm2", "docker.io/ai/smollm2:latest"),
            ("ai/smollm2:latest", "docker.io/ai/smollm2:latest"),
            ("docker.io/ai/smollm2", "docker.io/ai/smollm2:latest"),
            ("index.docker.io/ai/smollm2:1", "docker.io/ai/smollm2:1"),
            ("registry-1.docker.io/ai/x", "docker.io/ai/x:latest"),
            ("SmolLM2", "docker.io/ai/smollm2:latest"),
            ("Gemma3:2B-Q4", "docker.io/ai/gemma3:2B-Q4"),
            ("myorg/mymodel", "docker.io/myorg/mymodel:latest"),
            ("myorg/team/mymodel:v1", "docker.io/myorg/team/mymodel:v1"),
            ("ghcr.io/org/model:v1", "ghcr.io/org/model:v1"),
            ("ghcr.io/org/model", "ghcr.io/org/model:latest"),
            ("localhost:5000/model", "localhost:5000/model:latest"),
            ("localhost:5000/model:tag", "localhost:5000/model:tag"),
            ("localhost/model", "localhost/model:latest"),
            ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"),
            (
                "reg.example.com:8443/x/y",
                "reg.example.com:8443/x/y:latest",
            ),
            (
                "hf.co/bartowski/Llama-3.2-1B-GGUF",
                "huggingface.co/bartowski/llama-3.2-1b-gguf:latest",
            ),
            ("hf.co/org/repo:Q4_K_M", "huggingface.co/org/repo:Q4_K_M"),
            ("hf.Co/g0", "huggingface.co/g0:latest"),
            (
                "huggingface.co/org/repo:Q8_0",
                "huggingface.co/org/repo:Q8_0",
            ),
            ("  smollm2  ", "docker.io/ai/smollm2:latest"),
            ("my_model", "docker.io/ai/my_model:latest"),
            ("a.b-c_d", "docker.io/ai/a.b-c_d:latest"),
            ("model:_private", "docker.io/ai/model:_private"),
        ];
        for (input, want) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *want, "input {input:?}");
        }
    }

    #[test]
    fn digest_references() {
        let r: Reference = format!("ai/smollm2@sha256:{HEX}").parse().unwrap();
        assert_eq!(r.to_string(), format!("docker.io/ai/smollm2@sha256:{HEX}"));
        assert!(!r.is_tag());
        let r: Reference = format!("ghcr.io/o/m:v1@sha256:{HEX}").parse().unwrap();
        assert_eq!(r.to_string(), format!("ghcr.io/o/m@sha256:{HEX}"));
        assert_eq!(r.tag(), None);
        let r: Reference = format!("localhost:5000/m@sha256:{HEX}").parse().unwrap();
        assert_eq!(r.registry(), "localhost:5000");
    }

    #[test]
    fn rejects_invalid_references() {
        for bad in [
            "",
            "   ",
            "a b",
            "model:",
            "model:.bad",
            "model:-bad",
            "model:has/slash",
            "/model",
            "model/",
            "a//b",
            "-model",
            "model-",
            "ai/mo..del",
            "ai/model@sha256:abc",
            "ai/model@md5:0123",
            "ghcr.io/",
            "bad_host:99999x/m",
            "ai/model:t\u{0}",
            &format!("model:{}", "t".repeat(129)),
            &format!("reg.io/{}", "a".repeat(300)),
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn short_form_drops_defaults() {
        let cases = [
            ("smollm2", "smollm2"),
            ("smollm2:v2", "smollm2:v2"),
            ("org/m", "org/m"),
            ("ghcr.io/org/m", "ghcr.io/org/m"),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Reference>().unwrap().short(), want);
        }
    }

    #[test]
    fn model_refs_recognise_ids() {
        assert_eq!(
            format!("sha256:{HEX}").parse::<ModelRef>().unwrap(),
            ModelRef::Id(Digest::from_hex(HEX).unwrap())
        );
        assert!(matches!(HEX.parse::<ModelRef>().unwrap(), ModelRef::Id(_)));
        assert_eq!(
            "c7790a0a6d8a".parse::<ModelRef>().unwrap(),
            ModelRef::ShortId("c7790a0a6d8a".into())
        );
        assert!(matches!(
            "c7790a0a6d8".parse::<ModelRef>().unwrap(),
            ModelRef::Name(_)
        ));
        assert!(matches!(
            "smollm2".parse::<ModelRef>().unwrap(),
            ModelRef::Name(_)
        ));
        assert!("sha256:nothex".parse::<ModelRef>().is_err());
    }

    #[test]
    fn with_tag_moves_only_the_tag() {
        let r: Reference = "ghcr.io/o/m:v1".parse().unwrap();
        assert_eq!(r.with_tag("v2").unwrap().to_string(), "ghcr.io/o/m:v2");
        assert!(r.with_tag("bad tag").is_err());
    }
}
