//! list, inspect, rm, tag, df, export, load, purge, status, version.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use futures::StreamExt;
use modelrunner_format::gguf::format_bytes;
use modelrunner_format::{Digest, Reference};
use reqwest::Method;
use serde_json::Value;

use crate::client::{path_escape, Client};

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

pub(crate) fn print_table(rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

pub(crate) fn age(created: i64) -> String {
    let secs = (chrono::Utc::now().timestamp() - created).max(0);
    match secs {
        0..=59 => "Less than a minute ago".into(),
        60..=3599 => format!("{} minutes ago", secs / 60),
        3600..=86_399 => format!("{} hours ago", secs / 3600),
        86_400..=2_591_999 => format!("{} days ago", secs / 86_400),
        _ => format!("{} months ago", secs / 2_592_000),
    }
}

pub(crate) fn display_tag(t: &str) -> String {
    t.parse::<Reference>()
        .map(|r| r.short())
        .unwrap_or_else(|_| t.to_string())
}

/// `list`.
pub async fn list(c: &Client, json: bool, quiet: bool) -> anyhow::Result<()> {
    let models = c.get_json("/models").await?;
    let models = models
        .as_array()
        .context("the daemon answered something other than a list")?;
    if json {
        println!("{}", serde_json::to_string_pretty(models)?);
        return Ok(());
    }
    if quiet {
        for m in models {
            println!("{}", short_id(&s(&m["id"])));
        }
        return Ok(());
    }
    let mut rows = vec![[
        "MODEL NAME",
        "PARAMETERS",
        "QUANTIZATION",
        "ARCHITECTURE",
        "MODEL ID",
        "CREATED",
        "CONTEXT",
        "SIZE",
    ]
    .map(String::from)
    .to_vec()];
    for m in models {
        let cfg = &m["config"];
        let tags: Vec<String> = m["tags"]
            .as_array()
            .map(|t| t.iter().map(s).collect())
            .unwrap_or_default();
        let names = if tags.is_empty() {
            vec!["<none>".to_string()]
        } else {
            tags.iter().map(|t| display_tag(t)).collect()
        };
        for name in names {
            rows.push(vec![
                name,
                s(&cfg["parameters"]),
                s(&cfg["quantization"]),
                s(&cfg["architecture"]),
                short_id(&s(&m["id"])),
                m["created"].as_i64().map(age).unwrap_or_default(),
                s(&cfg["context_size"]),
                s(&cfg["size"]),
            ]);
        }
    }
    print_table(&rows);
    Ok(())
}

/// `inspect`.
pub async fn inspect(c: &Client, model: &str, remote: bool) -> anyhow::Result<()> {
    let q = if remote { "?remote=true" } else { "" };
    let m = c
        .get_json(&format!("/models/{}{q}", path_escape(model)))
        .await?;
    println!("{}", serde_json::to_string_pretty(&m)?);
    Ok(())
}

/// `rm`.
pub async fn rm(c: &Client, models: &[String], force: bool) -> anyhow::Result<()> {
    let mut failed = 0;
    for m in models {
        let q = if force { "?force=true" } else { "" };
        match c
            .send(c.request(Method::DELETE, &format!("/models/{}{q}", path_escape(m))))
            .await
        {
            Ok(r) => {
                let out: Value = r.json().await?;
                for e in out.as_array().into_iter().flatten() {
                    if let Some(t) = e["Untagged"].as_str() {
                        println!("Untagged: {}", display_tag(t));
                    }
                    if let Some(d) = e["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) if models.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("Error: {m}: {e:#}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} removals failed", models.len());
    }
    Ok(())
}

/// `tag`.
pub async fn tag(c: &Client, source: &str, target: &str) -> anyhow::Result<()> {
    let t: Reference = target.parse()?;
    let tag = t.tag().context("the target must be a tag, not a digest")?;
    c.send(c.request(
        Method::POST,
        &format!(
            "/models/{}/tag?repo={}&tag={}",
            path_escape(source),
            path_escape(&t.name()),
            path_escape(tag)
        ),
    ))
    .await?;
    println!("Model {source} tagged as {}", t.short());
    Ok(())
}

/// `df`.
pub async fn df(c: &Client, json: bool) -> anyhow::Result<()> {
    let v = c.get_json("/engines/df").await?;
    if json {
        println!("{v}");
        return Ok(());
    }
    let size = |k: &str| format_bytes(v[k].as_u64().unwrap_or(0));
    print_table(&[
        vec!["TYPE".into(), "SIZE".into()],
        vec!["Models".into(), size("models_disk_usage")],
        vec![
            "Inference engine".into(),
            size("default_backend_disk_usage"),
        ],
    ]);
    Ok(())
}

/// `export`.
pub async fn export(c: &Client, model: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    let resp = c
        .send(c.request(
            Method::GET,
            &format!("/models/{}/export", path_escape(model)),
        ))
        .await?;
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("while creating {}", p.display()))?,
        )),
        None if std::io::stdout().is_terminal() => {
            bail!("refusing to write a tar archive to a terminal; use -o FILE")
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let expected = resp.content_length();
    let mut stream = resp.bytes_stream();
    let mut received = 0u64;
    let copied: anyhow::Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("the daemon ended the archive early (its log says why)")?;
            received += chunk.len() as u64;
            out.write_all(&chunk)?;
        }
        out.flush()?;
        if let Some(n) = expected.filter(|n| *n != received) {
            bail!("received {received} of the archive's {n} bytes");
        }
        Ok(())
    }
    .await;
    drop(out);
    let checked = copied.and_then(|()| match &output {
        Some(p) => crate::verify::verify_archive(p).map(|_| ()),
        None => Ok(()),
    });
    if let Err(e) = checked {
        // A partial or damaged archive is not left behind as if it were one.
        if let Some(p) = &output {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.context(format!("exporting {model} failed")));
    }
    if let Some(p) = output {
        eprintln!("Exported {model} to {} (verified)", p.display());
    }
    Ok(())
}

/// `load`.
pub async fn load(c: &Client, input: PathBuf, tag: Option<String>) -> anyhow::Result<()> {
    let f = tokio::fs::File::open(&input)
        .await
        .with_context(|| format!("while opening {}", input.display()))?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(f, 1 << 20));
    let r = c
        .send(
            c.request(Method::POST, "/models/load")
                .header("content-type", "application/x-tar")
                .body(body),
        )
        .await?;
    let v: Value = serde_json::from_str(r.text().await?.lines().last().unwrap_or("{}"))?;
    let id: Digest = s(&v["id"])
        .parse()
        .context("the daemon did not say which model it loaded")?;
    println!("Loaded model {id}");
    if let Some(t) = tag {
        self::tag(c, &id.to_string(), &t).await?;
    }
    Ok(())
}

/// `purge`.
pub async fn purge(c: &Client, force: bool) -> anyhow::Result<()> {
    if !force {
        if !std::io::stdin().is_terminal() {
            bail!("purge removes every model; pass --force to confirm");
        }
        eprint!("Remove every model from the store? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("purge cancelled");
        }
    }
    c.send(c.request(Method::DELETE, "/models/purge")).await?;
    println!("Model store purged");
    Ok(())
}

/// `status`.
pub async fn status(c: &Client, json: bool) -> anyhow::Result<()> {
    let v = c.get_json("/version").await?;
    // 503 "Loading model" (llama-server's health semantics) still means running.
    let h = match c.get_json("/health").await {
        Ok(h) => h,
        Err(e) if e.to_string().contains("Loading model") => {
            serde_json::json!({"status": "loading a model"})
        }
        Err(e) => return Err(e),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"running": true, "version": v["version"], "health": h["status"]})
        );
    } else {
        println!(
            "modelrunnerd is running (version {}, health {})",
            s(&v["version"]),
            s(&h["status"])
        );
    }
    Ok(())
}
