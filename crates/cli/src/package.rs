//! `modelrunner package`: build an artifact from local files and load it into the daemon.

use std::path::PathBuf;

use anyhow::{bail, Context};
use chrono::{DateTime, TimeZone, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use modelrunner_format::media::LayerKind;
use modelrunner_format::package::{PackageFormat, PackageSpec};
use modelrunner_format::Reference;
use tokio_util::io::{ReaderStream, SyncIoBridge};

use crate::client::{path_escape, Client};

/// Config flavour.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Docker Model Runner (config v0.1)
    Docker,
    /// CNCF ModelPack v1
    Cncf,
}

/// Package a GGUF model into an OCI artifact and load it into the daemon.
#[derive(Debug, Args)]
pub struct PackageArgs {
    /// Absolute path to the GGUF file (the first shard of a split model)
    #[arg(long)]
    pub gguf: PathBuf,
    /// Absolute path to a license file (repeatable)
    #[arg(short = 'l', long = "license")]
    pub licenses: Vec<PathBuf>,
    /// Absolute path to a Jinja chat template
    #[arg(long)]
    pub chat_template: Option<PathBuf>,
    /// Absolute path to a multimodal projector
    #[arg(long)]
    pub mmproj: Option<PathBuf>,
    /// Default context size to record in the config
    #[arg(long)]
    pub context_size: Option<u64>,
    /// Artifact format
    #[arg(long, value_enum, default_value = "docker")]
    pub format: Format,
    /// Creation time (RFC 3339 or Unix seconds) for reproducible output; defaults to
    /// SOURCE_DATE_EPOCH when set, else now
    #[arg(long)]
    pub created: Option<String>,
    /// Push the packaged model to its registry afterwards
    #[arg(long)]
    pub push: bool,
    /// Store the GGUF files (model and projector) without a second copy: a reflink where
    /// the file system can, else a hard link; refused with the reason when neither works
    /// (another file system, no permission). The daemon must run on this machine
    #[arg(long)]
    pub link: bool,
    /// With --link: copy a file that cannot be linked instead of refusing
    #[arg(long, requires = "link")]
    pub allow_copy: bool,
    /// Tag for the packaged model, e.g. myorg/mymodel:v1
    pub target: String,
}

fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Utc
            .timestamp_opt(secs, 0)
            .single()
            .context("timestamp out of range");
    }
    Ok(DateTime::parse_from_rfc3339(s.trim())
        .with_context(|| format!("{s:?} is neither Unix seconds nor an RFC 3339 time"))?
        .with_timezone(&Utc))
}

fn bar(total: u64, msg: &str, quiet: bool) -> ProgressBar {
    if quiet || total < (64 << 20) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// Runs the command; returns the model ID.
pub async fn run(client: &Client, a: PackageArgs, json: bool) -> anyhow::Result<()> {
    let target: Reference = a.target.parse()?;
    if !target.is_tag() {
        bail!("the target must be a tag, not a digest reference");
    }
    let created = match (&a.created, std::env::var("SOURCE_DATE_EPOCH").ok()) {
        (Some(c), _) => Some(parse_time(c).context("while reading --created")?),
        (None, Some(e)) if !e.is_empty() => {
            Some(parse_time(&e).context("while reading SOURCE_DATE_EPOCH")?)
        }
        _ => None,
    };
    let spec = PackageSpec {
        gguf: a.gguf,
        licenses: a.licenses,
        chat_template: a.chat_template,
        mmproj: a.mmproj,
        context_size: a.context_size,
        format: match a.format {
            Format::Docker => PackageFormat::Docker,
            Format::Cncf => PackageFormat::Cncf,
        },
        created,
    };
    let (built, total) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let plan = spec.plan()?;
        let total = plan.total_bytes();
        let pb = bar(total, "hashing", json);
        let built = plan.build(&mut |n| pb.inc(n))?;
        pb.finish_and_clear();
        Ok((built, total))
    })
    .await??;
    // With --link, the GGUF layers stay out of the archive; the daemon links them.
    let linked: Vec<(PathBuf, u64, modelrunner_format::Digest)> = built
        .layers
        .iter()
        .filter(|(_, d)| a.link && matches!(d.kind(), LayerKind::Gguf | LayerKind::Mmproj))
        .map(|(p, d)| (p.clone(), d.size, d.digest))
        .collect();
    let mut path = "/models/load".to_string();
    for (i, (p, _, _)) in linked.iter().enumerate() {
        let p = p.to_str().context("--link needs UTF-8 paths")?;
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(&format!("link={}", path_escape(p)));
    }
    if a.allow_copy && !linked.is_empty() {
        path.push_str("&allow_copy=true");
    }
    let total = total - linked.iter().map(|(_, size, _)| size).sum::<u64>();
    let (reader, writer) = tokio::io::duplex(1 << 20);
    let upload = built.clone();
    let left_out: Vec<_> = linked.iter().map(|(_, _, d)| *d).collect();
    let pb = bar(total, "loading", json);
    let pb2 = pb.clone();
    let writer_task = tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(1 << 20, SyncIoBridge::new(writer));
        upload
            .write_tar_without(out, &left_out, &mut |n| pb2.inc(n))
            .map(|_| ())
    });
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(reader, 1 << 20).map(|r| r));
    let resp = client
        .send(
            client
                .request(reqwest::Method::POST, &path)
                .header("content-type", "application/x-tar")
                .body(body),
        )
        .await;
    let written = writer_task.await?;
    pb.finish_and_clear();
    let resp = resp?;
    written.context("while streaming the model archive")?;
    let loaded: serde_json::Value =
        serde_json::from_str(resp.text().await?.lines().last().unwrap_or("{}"))?;
    if loaded["id"] != built.id.to_string() {
        bail!(
            "the daemon loaded {} but the package is {}",
            loaded["id"],
            built.id
        );
    }
    let tag = target.tag().unwrap_or("latest");
    client
        .send(client.request(
            reqwest::Method::POST,
            &format!(
                "/models/{}/tag?repo={}&tag={}",
                path_escape(&built.id.to_string()),
                path_escape(&target.name()),
                path_escape(tag)
            ),
        ))
        .await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"id": built.id.to_string(), "tag": target.to_string(), "linked": loaded["linked"]})
        );
    } else {
        for l in loaded["linked"].as_array().into_iter().flatten() {
            let how = match l["kind"].as_str().unwrap_or("") {
                "reflink" => "linked (reflink, shares blocks copy-on-write)",
                "hard_link" => "linked (hard link; do not change the file while it is packaged)",
                "copy" => "copied (it could not be linked)",
                _ => "already in the store",
            };
            println!("{} {how}", l["path"].as_str().unwrap_or("?"));
        }
        println!("Packaged {} as {}", built.id.short(), target.short());
    }
    if a.push {
        crate::transfer::push(client, &target.to_string(), json).await?;
    }
    Ok(())
}
