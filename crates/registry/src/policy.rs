//! Who may pull what: allowed and denied sources, like Docker Hub's Registry Access
//! Management. A rule is a registry (`docker.io`, `registry.lan:5000`), a namespace or
//! repository under it (`docker.io/ai`, `ghcr.io/acme/model`), a Hugging Face
//! organisation or repository (`hf.co/ORG`, spelled either way), or `ollama` for
//! Ollama's library (`registry.ollama.ai/library`), or one tag (`docker.io/ai/x:latest`). A
//! rule matches a reference whose name (or, for a tagged rule, whole reference) is the
//! rule or lies beneath it, by whole path components. A deny rule wins; when
//! allow rules exist, a reference must match one. No rules: everything is allowed.
//!
//! Every way a model arrives goes through [`crate::Registry::resolve`] or
//! [`crate::Registry::resolve_hub`], which check this first.

use modelrunner_format::Reference;
use serde::{Deserialize, Serialize};

use crate::error::RegistryError;

/// The `[registries.policy]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullPolicy {
    /// Sources models may come from (empty: any not denied).
    pub allow: Vec<String>,
    /// Sources models may never come from.
    pub deny: Vec<String>,
}

/// A rule as written, and the name prefix it stands for.
fn normalise(rule: &str) -> String {
    let r = rule.trim().trim_end_matches('/').to_ascii_lowercase();
    if r == "ollama" {
        return "registry.ollama.ai/library".into();
    }
    for (from, to) in [
        ("hf.co", "huggingface.co"),
        ("index.docker.io", "docker.io"),
        ("ollama.com", "registry.ollama.ai"),
    ] {
        if r == from {
            return to.into();
        }
        if let Some(rest) = r.strip_prefix(&format!("{from}/")) {
            return format!("{to}/{rest}");
        }
    }
    r
}

fn matches(rule: &str, name: &str) -> bool {
    let r = normalise(rule);
    let name = normalise(name);
    name == r || name.starts_with(&format!("{r}/"))
}

impl PullPolicy {
    /// True when no rule is set.
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Refuses `reference` when a deny rule matches it, or allow rules exist and none
    /// does; the error names the rule.
    pub fn check(&self, reference: &Reference) -> Result<(), RegistryError> {
        let (name, full) = (reference.name(), reference.to_string());
        let hit = |r: &String| matches(r, &name) || matches(r, &full);
        if let Some(rule) = self.deny.iter().find(|r| hit(r)) {
            return Err(RegistryError::Forbidden {
                reference: reference.to_string(),
                rule: format!("deny = {rule:?}"),
            });
        }
        if !self.allow.is_empty() && !self.allow.iter().any(hit) {
            return Err(RegistryError::Forbidden {
                reference: reference.to_string(),
                rule: format!("allow = {:?} (it matches none)", self.allow),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> PullPolicy {
        PullPolicy {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ok(p: &PullPolicy, r: &str) -> bool {
        p.check(&r.parse().unwrap()).is_ok()
    }

    #[test]
    fn rules_match_whole_components_and_deny_wins() {
        let p = policy(
            &["docker.io/ai", "hf.co/acme", "ollama"],
            &["docker.io/ai/bad"],
        );
        assert!(ok(&p, "smollm2"), "docker.io/ai/smollm2");
        assert!(!ok(&p, "ai/bad"), "denied");
        assert!(
            !ok(&p, "docker.io/aix/model"),
            "a partial component is no match"
        );
        assert!(ok(&p, "hf.co/acme/model-gguf:Q4_K_M"));
        assert!(ok(&p, "huggingface.co/ACME/other"), "names are lowercased");
        assert!(!ok(&p, "hf.co/other/model"));
        assert!(ok(&p, "registry.ollama.ai/library/llama3.2"));
        assert!(ok(&p, "ollama.com/library/llama3.2"));
        assert!(!ok(&p, "registry.ollama.ai/someone/model"));
        assert!(!ok(&p, "ghcr.io/acme/model"));
        let e = p.check(&"ai/bad".parse().unwrap()).unwrap_err().to_string();
        assert!(e.contains("deny = \"docker.io/ai/bad\""), "{e}");
        let e = p
            .check(&"ghcr.io/x/y".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow = ["), "{e}");
    }

    #[test]
    fn no_rules_allow_everything_and_a_registry_rule_covers_it_all() {
        assert!(ok(&PullPolicy::default(), "ghcr.io/anyone/anything"));
        let p = policy(&[], &["registry.lan:5000", "docker.io/ai/x:bad"]);
        assert!(!ok(&p, "registry.lan:5000/team/model:v1"));
        assert!(ok(&p, "registry.lan:5001/team/model:v1"));
        assert!(!ok(&p, "ai/x:bad"));
        assert!(ok(&p, "ai/x:good"), "a tagged rule covers that tag only");
    }
}
