//! Packaging: Docker's own test data, reproducibility, shards, CNCF, and bad inputs.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use modelrunner_format::config::{ConfigFile, ParsedConfig};
use modelrunner_format::package::{PackageFormat, PackageSpec};
use modelrunner_format::{media, Digest, Manifest};
use modelrunner_testkit::{shared_dir, LlamaSpec};

fn dmr(name: &str) -> Option<PathBuf> {
    let p = shared_dir().join("reference/dmr-testdata").join(name);
    if p.exists() {
        return Some(p.canonicalize().unwrap());
    }
    modelrunner_testkit::checks_less(&format!("{} is missing", p.display()));
    None
}

fn created() -> Option<chrono::DateTime<Utc>> {
    Some(Utc.timestamp_opt(1_767_225_600, 0).unwrap())
}

fn tiny(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.gguf");
    LlamaSpec::tiny().build(9).write_file(&p).unwrap();
    p
}

#[test]
fn packages_docker_test_data_with_every_layer_kind() {
    let (Some(gguf), Some(lic), Some(tpl), Some(mm)) = (
        dmr("dummy.gguf"),
        dmr("license.txt"),
        dmr("template.jinja"),
        dmr("dummy.mmproj"),
    ) else {
        return;
    };
    let spec = PackageSpec {
        gguf,
        licenses: vec![lic],
        chat_template: Some(tpl),
        mmproj: Some(mm),
        context_size: Some(4096),
        created: created(),
        ..PackageSpec::default()
    };
    let built = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    let m = Manifest::parse(&built.manifest).unwrap();
    assert_eq!(m.media_type.as_deref(), Some(media::OCI_MANIFEST));
    assert_eq!(m.artifact_type, None);
    assert_eq!(m.config.media_type, media::CONFIG_V01);
    let types: Vec<&str> = m.layers.iter().map(|l| l.media_type.as_str()).collect();
    assert_eq!(
        types,
        [
            media::GGUF,
            media::LICENSE,
            media::MMPROJ,
            media::CHAT_TEMPLATE
        ]
    );
    assert_eq!(
        m.layers[1].digest.to_string(),
        "sha256:d0ce8fae4da6de6e5a4b85ebee156ac8f3ab6d8407caf4493968d34e9bc3939e"
    );
    assert_eq!(
        m.layers[1].annotation(media::ANNOTATION_FILEPATH),
        Some("license.txt")
    );
    assert_eq!(
        m.layers[1].annotation(media::ANNOTATION_MEDIATYPE_UNTESTED),
        Some("false")
    );
    let meta: serde_json::Value = serde_json::from_str(
        m.layers[1]
            .annotation(media::ANNOTATION_FILE_METADATA)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["size"], 13);
    assert_eq!(meta["mode"], 420);
    let cfg: ConfigFile = serde_json::from_slice(&built.config).unwrap();
    assert_eq!(cfg.config.context_size, Some(4096));
    assert_eq!(cfg.rootfs.kind, "rootfs");
    assert_eq!(
        cfg.rootfs.diff_ids,
        m.layers.iter().map(|l| l.digest).collect::<Vec<_>>()
    );
    assert_eq!(built.id, Digest::of(&built.manifest));
    // Field order of a descriptor, as Go writes it.
    let raw = String::from_utf8(built.manifest.clone()).unwrap();
    assert!(raw.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"#), "{raw}");
}

#[test]
fn shards_become_one_layer_each_in_order() {
    let Some(first) = dmr("dummy-00001-of-00002.gguf") else {
        return;
    };
    let spec = PackageSpec {
        gguf: first.clone(),
        created: created(),
        ..PackageSpec::default()
    };
    let plan = spec.plan().unwrap();
    let names: Vec<String> = plan
        .layers
        .iter()
        .map(|l| l.path.file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(
        names,
        ["dummy-00001-of-00002.gguf", "dummy-00002-of-00002.gguf"]
    );
    let second = first.with_file_name("dummy-00002-of-00002.gguf");
    let e = PackageSpec {
        gguf: second,
        ..PackageSpec::default()
    }
    .plan()
    .unwrap_err()
    .to_string();
    assert!(e.contains("first shard"), "{e}");
}

#[test]
fn missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = LlamaSpec::tiny().build(1).to_bytes();
    std::fs::write(dir.path().join("m-00001-of-00003.gguf"), &bytes).unwrap();
    std::fs::write(dir.path().join("m-00002-of-00003.gguf"), &bytes).unwrap();
    let spec = PackageSpec {
        gguf: dir.path().join("m-00001-of-00003.gguf"),
        ..PackageSpec::default()
    };
    let e = spec.plan().unwrap_err().to_string();
    assert!(
        e.contains("m-00003-of-00003.gguf") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn same_inputs_and_time_give_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny(dir.path());
    let lic = dir.path().join("LICENSE");
    std::fs::write(&lic, "MIT\n").unwrap();
    let spec = PackageSpec {
        gguf: gguf.clone(),
        licenses: vec![lic.clone()],
        created: created(),
        ..PackageSpec::default()
    };
    let a = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    // Touch the files: times and modes must not leak into a reproducible package.
    std::fs::write(&lic, "MIT\n").unwrap();
    std::process::Command::new("chmod")
        .arg("600")
        .arg(&gguf)
        .status()
        .unwrap();
    let b = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(a.manifest, b.manifest);
    let c = PackageSpec {
        created: Some(Utc.timestamp_opt(1, 0).unwrap()),
        ..spec
    }
    .plan()
    .unwrap()
    .build(&mut |_| {})
    .unwrap();
    assert_ne!(a.id, c.id);
    let tar1 = a.write_tar(Vec::new(), &mut |_| {}).unwrap();
    let tar2 = b.write_tar(Vec::new(), &mut |_| {}).unwrap();
    assert_eq!(tar1, tar2);
}

#[test]
fn context_size_defaults_to_trained_context() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PackageSpec {
        gguf: tiny(dir.path()),
        created: created(),
        ..PackageSpec::default()
    };
    let built = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    let p = ParsedConfig::parse(media::CONFIG_V01, &built.config).unwrap();
    assert_eq!(p.config.context_size, Some(512));
    assert_eq!(p.config.quantization.as_deref(), Some("F32"));
    assert_eq!(p.config.architecture.as_deref(), Some("llama"));
}

#[test]
fn cncf_format_writes_modelpack() {
    let dir = tempfile::tempdir().unwrap();
    let lic = dir.path().join("LICENSE");
    std::fs::write(&lic, "MIT\n").unwrap();
    let spec = PackageSpec {
        gguf: tiny(dir.path()),
        licenses: vec![lic],
        format: PackageFormat::Cncf,
        created: created(),
        ..PackageSpec::default()
    };
    let built = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    let m = Manifest::parse(&built.manifest).unwrap();
    assert_eq!(m.artifact_type.as_deref(), Some(media::CNCF_ARTIFACT_TYPE));
    assert_eq!(m.config.media_type, media::CNCF_CONFIG_V1);
    assert_eq!(m.layers[0].media_type, media::CNCF_WEIGHT_RAW);
    assert_eq!(m.layers[1].media_type, media::CNCF_DOC_RAW);
    let v: serde_json::Value = serde_json::from_slice(&built.config).unwrap();
    assert_eq!(v["modelfs"]["type"], "layers");
    assert_eq!(v["descriptor"]["family"], "llama");
    assert_eq!(v["descriptor"]["createdAt"], "2026-01-01T00:00:00Z");
    let p = ParsedConfig::parse(media::CNCF_CONFIG_V1, &built.config).unwrap();
    assert_eq!(p.config.architecture.as_deref(), Some("llama"));
    let e = PackageSpec {
        context_size: Some(8),
        ..spec
    }
    .plan()
    .unwrap_err()
    .to_string();
    assert!(e.contains("--context-size") && e.contains("cncf"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = tiny(dir.path());
    let cases: Vec<(PackageSpec, &str)> = vec![
        (
            PackageSpec {
                gguf: "relative.gguf".into(),
                ..PackageSpec::default()
            },
            "must be absolute",
        ),
        (
            PackageSpec {
                gguf: dir.path().join("missing.gguf"),
                ..PackageSpec::default()
            },
            "missing.gguf",
        ),
        (
            PackageSpec {
                gguf: dir.path().to_path_buf(),
                ..PackageSpec::default()
            },
            "not a regular file",
        ),
        (
            PackageSpec {
                gguf: good.clone(),
                licenses: vec!["LICENSE".into()],
                ..PackageSpec::default()
            },
            "license path LICENSE must be absolute",
        ),
        (
            PackageSpec {
                gguf: good.clone(),
                context_size: Some(0),
                ..PackageSpec::default()
            },
            "out of range",
        ),
    ];
    for (spec, needle) in cases {
        let e = spec.plan().unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    }
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\0\0\0garbage").unwrap();
    let e = PackageSpec {
        gguf: bad,
        ..PackageSpec::default()
    }
    .plan()
    .unwrap_err()
    .to_string();
    assert!(e.contains("bad.gguf") && e.contains("invalid GGUF"), "{e}");
}
