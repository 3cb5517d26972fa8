//! Pull benchmark: a model of four 256 MiB layers, pulled from a local `docker-registry`
//! by modelrunnerd (`POST /models/create` into a fresh store) and by `skopeo copy` to a
//! fresh OCI layout, alternately, in the same run. Both verify every digest.
//!
//! `pull_bench [LAYERS] [MIB_PER_LAYER] [ROUNDS]` (default 4 256 3); run by
//! `scripts/bench-pull.sh` after a release build. Prints a Markdown table.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use modelrunner_e2e::registry::{skopeo, RegistryOptions, TestRegistry};
use modelrunner_e2e::{sha256_hex, Daemon};
use serde_json::json;
use sha2::Digest as _;

/// Writes `mib` MiB of pseudo-random bytes (xorshift) to `dir/blobs/sha256/<hex>`.
fn write_layer(dir: &Path, mib: usize, seed: u64) -> (String, u64) {
    let tmp = dir.join("layer.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
    let mut h = sha2::Sha256::new();
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        h.update(&buf);
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
    let hex = hex::encode(h.finalize());
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), (mib as u64) << 20)
}

fn put(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let hex = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len() as u64)
}

/// An OCI layout holding a Docker-format model artifact with `layers` GGUF layers.
fn make_layout(dir: &Path, layers: usize, mib: usize) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let descs: Vec<(String, u64)> = (0..layers)
        .map(|i| write_layer(dir, mib, 0x9e37_79b9_7f4a_7c15 ^ i as u64))
        .collect();
    let config = json!({
        "config": {"format": "gguf", "architecture": "llama", "size": format!("{}MiB", layers * mib)},
        "descriptor": {"created": "2026-01-01T00:00:00Z"},
        "rootfs": {"type": "rootfs", "diff_ids": descs.iter().map(|d| d.0.clone()).collect::<Vec<_>>()},
    });
    let (cd, cs) = put(dir, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.docker.ai.model.config.v0.1+json", "size": cs, "digest": cd},
        "layers": descs.iter().map(|(d, s)| json!({"mediaType": "application/vnd.docker.ai.gguf.v3", "size": s, "digest": d})).collect::<Vec<_>>(),
    });
    let (md, ms) = put(dir, manifest.to_string().as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let layers = args.first().copied().unwrap_or(4);
    let mib = args.get(1).copied().unwrap_or(256);
    let rounds = args.get(2).copied().unwrap_or(3);
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("layout");
    make_layout(&layout, layers, mib);
    let reg = TestRegistry::start(RegistryOptions::default());
    let reference = format!("{}/bench/model:v1", reg.host);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", layout.display()),
        &format!("docker://{reference}"),
    ]);
    std::fs::remove_dir_all(&layout).unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let d = Daemon::start(&[]);
        let start = Instant::now();
        let text = reqwest::blocking::Client::builder()
            .timeout(None)
            .build()
            .unwrap()
            .post(d.u("/models/create"))
            .header("accept", "application/json")
            .json(&json!({ "from": reference }))
            .send()
            .unwrap()
            .text()
            .unwrap();
        ours.push(start.elapsed());
        assert!(text.contains("Model pulled successfully"), "{text}");
        drop(d);
        let out = scratch.path().join(format!("skopeo-{round}"));
        let start = Instant::now();
        skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:v1", out.display()),
        ]);
        theirs.push(start.elapsed());
        std::fs::remove_dir_all(&out).unwrap();
        eprintln!(
            "round {round}: modelrunner {:?}, skopeo {:?}",
            ours[round], theirs[round]
        );
    }
    let (o, t) = (median(ours).as_secs_f64(), median(theirs).as_secs_f64());
    let mb = (layers * mib) as f64 * 1.048_576;
    println!(
        "## Pull of {layers} x {mib} MiB layers from a local docker-registry (median of {rounds})"
    );
    println!();
    println!("| figure | modelrunner | skopeo copy | ratio |");
    println!("|---|---:|---:|---:|");
    println!("| time (s) | {o:.2} | {t:.2} | {:.2}x |", t / o);
    println!(
        "| throughput (MB/s) | {:.0} | {:.0} | {:.2}x |",
        mb / o,
        mb / t,
        t / o
    );
}
