//! Which files of a Hugging Face GGUF repository make the model: the weights chosen by
//! quant tag (every shard of a split GGUF), and the multimodal projector when there is one.
//!
//! The rules (`docs/registries.md`): candidates are `.gguf` files without `mmproj` or
//! `imatrix` in their name, and of a split GGUF only the first shard; a tag matches a
//! candidate whose file name has it (case-insensitive) between separators (`-`, `.`, `_`
//! before; `-`, `.`, `_` or the end after), or is its whole file name. No tag (or
//! `latest`) means `Q4_K_M`, then `Q8_0`, then the only candidate, then the first by path.
//! The projector is a `.gguf` with `mmproj` in its name in the weights' directory or one
//! above it: the deepest wins, then one marked `f16`, then the first by path.

/// One file of the repository listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Path in the repository.
    pub path: String,
    /// Bytes.
    pub size: u64,
}

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The weights, shards in order.
    pub weights: Vec<String>,
    /// The projector.
    pub mmproj: Option<String>,
    /// The quant as the file name spells it (`Q4_K_M`), or the file name.
    pub quant: String,
}

/// Why nothing was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoChoice {
    /// The repository has no GGUF weights.
    NoGguf,
    /// The tag matches no file; the quants the repository has.
    NoMatch(Vec<String>),
    /// A shard of the chosen split GGUF is not in the listing.
    MissingShard(String),
}

const DEFAULTS: [&str; 2] = ["Q4_K_M", "Q8_0"];

fn name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

fn is_gguf(path: &str) -> bool {
    name(path).to_ascii_lowercase().ends_with(".gguf")
}

fn is_mmproj(path: &str) -> bool {
    is_gguf(path) && name(path).to_ascii_lowercase().contains("mmproj")
}

/// `(prefix, index, count)` of `prefix-NNNNN-of-MMMMM.gguf`.
fn shard(path: &str) -> Option<(&str, u32, u32)> {
    let stem = path.strip_suffix(".gguf")?;
    let (head, count) = stem.rsplit_once("-of-")?;
    let (prefix, index) = head.rsplit_once('-')?;
    if index.len() != 5 || count.len() != 5 {
        return None;
    }
    Some((prefix, index.parse().ok()?, count.parse().ok()?))
}

fn candidates(files: &[Listed]) -> Vec<&str> {
    let mut c: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| is_gguf(p) && !is_mmproj(p))
        .filter(|p| !name(p).to_ascii_lowercase().contains("imatrix"))
        .filter(|p| shard(p).is_none_or(|(_, i, _)| i == 1))
        .collect();
    c.sort_unstable();
    c
}

/// True when `tag` is `name`, or stands in it between separators.
fn tag_in(name: &str, tag: &str) -> bool {
    let (n, t) = (name.to_ascii_lowercase(), tag.to_ascii_lowercase());
    if n == t {
        return true;
    }
    let sep = |c: Option<char>| matches!(c, Some('-' | '.' | '_'));
    n.match_indices(&t).any(|(at, _)| {
        sep(n[..at].chars().next_back()) && {
            let after = n[at + t.len()..].chars().next();
            after.is_none() || sep(after)
        }
    })
}

/// The quant a file name carries (`Q4_K_M`, `IQ2_XS`, `F16`, `BF16`), as spelled there.
pub fn quant_of(path: &str) -> Option<String> {
    let stem = name(path);
    let stem = stem.strip_suffix(".gguf").unwrap_or(stem);
    let stem = shard(&format!("{stem}.gguf")).map_or(stem.to_string(), |(p, _, _)| p.into());
    let parts: Vec<&str> = stem.split(['-', '.']).collect();
    parts.iter().rev().find_map(|p| {
        let up = p.to_ascii_uppercase();
        let start = up.find(['Q', 'I', 'F', 'B'])?;
        let q = &p[start..];
        let u = &up[start..];
        let ok = ["F16", "F32", "BF16", "MXFP4"].contains(&u)
            || ((u.starts_with('Q') || u.starts_with("IQ") || u.starts_with("TQ"))
                && u.trim_start_matches(['I', 'T', 'Q'])
                    .starts_with(|c: char| c.is_ascii_digit()));
        (ok && (start == 0 || p.as_bytes()[start - 1] == b'_')).then(|| q.to_string())
    })
}

/// Chooses the files for `tag` (`None` or `latest`: the default).
pub fn choose(files: &[Listed], tag: Option<&str>) -> Result<Choice, NoChoice> {
    let cands = candidates(files);
    if cands.is_empty() {
        return Err(NoChoice::NoGguf);
    }
    let tag = tag.filter(|t| !t.eq_ignore_ascii_case("latest"));
    let first = match tag {
        Some(t) => cands.iter().find(|p| tag_in(name(p), t)).copied(),
        None => DEFAULTS
            .iter()
            .find_map(|d| cands.iter().find(|p| tag_in(name(p), d)).copied())
            .or(Some(cands[0])),
    };
    let Some(first) = first else {
        let mut quants: Vec<String> = cands.iter().filter_map(|p| quant_of(p)).collect();
        quants.sort_by_key(|q| q.to_ascii_uppercase());
        quants.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        return Err(NoChoice::NoMatch(quants));
    };
    let weights = match shard(first) {
        None => vec![first.to_string()],
        Some((prefix, _, count)) => (1..=count)
            .map(|i| {
                let p = format!("{prefix}-{i:05}-of-{count:05}.gguf");
                if files.iter().any(|f| f.path == p) {
                    Ok(p)
                } else {
                    Err(NoChoice::MissingShard(p))
                }
            })
            .collect::<Result<_, _>>()?,
    };
    let quant = match tag {
        Some(t) => quant_of(first)
            .filter(|q| q.eq_ignore_ascii_case(t))
            .unwrap_or_else(|| t.to_string()),
        None => quant_of(first).unwrap_or_else(|| name(first).to_string()),
    };
    Ok(Choice {
        mmproj: projector(files, dir(first)),
        weights,
        quant,
    })
}

fn projector(files: &[Listed], weights_dir: &str) -> Option<String> {
    let above =
        |d: &str| d.is_empty() || weights_dir == d || weights_dir.starts_with(&format!("{d}/"));
    let mut found: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| is_mmproj(p) && above(dir(p)))
        .collect();
    found.sort_by_key(|p| {
        (
            std::cmp::Reverse(dir(p).len()),
            !name(p).to_ascii_lowercase().contains("f16"),
            p.to_string(),
        )
    });
    found.first().map(|p| p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[&str]) -> Vec<Listed> {
        paths
            .iter()
            .map(|p| Listed {
                path: p.to_string(),
                size: 1,
            })
            .collect()
    }

    const REPO: &[&str] = &[
        "README.md",
        "Model-Q2_K.gguf",
        "Model-Q4_K_M.gguf",
        "Model-Q8_0.gguf",
        "Model-IQ2_XS.gguf",
        "Model.imatrix.gguf",
        "mmproj-Model-Q8_0.gguf",
        "mmproj-Model-F16.gguf",
        "big/Model-BF16-00001-of-00003.gguf",
        "big/Model-BF16-00002-of-00003.gguf",
        "big/Model-BF16-00003-of-00003.gguf",
    ];

    #[test]
    fn the_default_is_q4_k_m_then_q8_0_then_the_first() {
        let c = choose(&listing(REPO), None).unwrap();
        assert_eq!(c.weights, ["Model-Q4_K_M.gguf"]);
        assert_eq!(c.quant, "Q4_K_M");
        assert_eq!(c.mmproj.as_deref(), Some("mmproj-Model-F16.gguf"));
        let no_q4 = listing(&["a-Q8_0.gguf", "a-Q2_K.gguf"]);
        assert_eq!(
            choose(&no_q4, Some("latest")).unwrap().weights,
            ["a-Q8_0.gguf"]
        );
        let neither = listing(&["b-Q5_K_S.gguf", "a-Q3_K.gguf"]);
        assert_eq!(choose(&neither, None).unwrap().weights, ["a-Q3_K.gguf"]);
    }

    #[test]
    fn tags_match_case_insensitively_between_separators() {
        let files = listing(REPO);
        assert_eq!(
            choose(&files, Some("q8_0")).unwrap().weights,
            ["Model-Q8_0.gguf"]
        );
        assert_eq!(choose(&files, Some("q8_0")).unwrap().quant, "Q8_0");
        assert_eq!(
            choose(&files, Some("Q2_K")).unwrap().weights,
            ["Model-Q2_K.gguf"]
        );
        // A tag inside a word never matches.
        assert!(matches!(
            choose(&files, Some("odel")),
            Err(NoChoice::NoMatch(_))
        ));
        assert_eq!(
            choose(&files, Some("Model-IQ2_XS.gguf")).unwrap().weights,
            ["Model-IQ2_XS.gguf"]
        );
    }

    #[test]
    fn a_split_gguf_is_every_shard_and_a_missing_one_is_named() {
        let files = listing(REPO);
        let c = choose(&files, Some("bf16")).unwrap();
        assert_eq!(c.weights.len(), 3);
        assert_eq!(c.weights[2], "big/Model-BF16-00003-of-00003.gguf");
        assert_eq!(c.quant, "BF16");
        let gap = listing(&["m-00001-of-00002.gguf"]);
        assert_eq!(
            choose(&gap, None),
            Err(NoChoice::MissingShard("m-00002-of-00002.gguf".into()))
        );
    }

    #[test]
    fn a_tag_that_matches_nothing_lists_the_quants() {
        let Err(NoChoice::NoMatch(q)) = choose(&listing(REPO), Some("Q6_K")) else {
            panic!("matched");
        };
        assert_eq!(q, ["BF16", "IQ2_XS", "Q2_K", "Q4_K_M", "Q8_0"]);
        assert_eq!(
            choose(&listing(&["README.md"]), None),
            Err(NoChoice::NoGguf)
        );
        assert_eq!(
            choose(&listing(&["mmproj-x-f16.gguf"]), None),
            Err(NoChoice::NoGguf)
        );
    }

    #[test]
    fn the_projector_is_the_deepest_above_the_weights() {
        let files = listing(&[
            "mmproj-top.gguf",
            "q4/model-Q4_K_M.gguf",
            "q4/mmproj-q4.gguf",
            "other/mmproj-other-f16.gguf",
        ]);
        let c = choose(&files, None).unwrap();
        assert_eq!(c.mmproj.as_deref(), Some("q4/mmproj-q4.gguf"));
        let none = listing(&["model-Q4_K_M.gguf", "sub/mmproj-x.gguf"]);
        assert_eq!(choose(&none, None).unwrap().mmproj, None);
    }
}
