use super::*;

fn resolve(v: &[&str]) -> anyhow::Result<Config> {
    let m = Args::command()
        .try_get_matches_from(std::iter::once("modelrunnerd").chain(v.iter().copied()))?;
    let a = Args::from_arg_matches(&m)?;
    Config::resolve(&m, &a)
}

fn text(r: anyhow::Result<Config>) -> String {
    format!("{:#}", r.unwrap_err())
}

#[test]
fn flag_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "listen = \"127.0.0.1:9\"\nstore = \"/srv/models\"\ncors_origins = [\"https://a.example\"]\n").unwrap();
    let c = resolve(&["--config", f.to_str().unwrap()]).unwrap();
    assert_eq!(c.access.listen.0.unwrap().port(), 9);
    assert_eq!(c.store, PathBuf::from("/srv/models"));
    assert_eq!(c.storage.body_limit, 16 << 20);
    let c = resolve(&[
        "--config",
        f.to_str().unwrap(),
        "--listen",
        "127.0.0.1:7",
        "--cors-origin",
        "https://b.example",
    ])
    .unwrap();
    assert_eq!(c.access.listen.0.unwrap().port(), 7);
    // Lists add up, the file's first.
    assert_eq!(
        c.access.cors_origins,
        ["https://a.example", "https://b.example"]
    );
}

#[test]
fn serving_settings_parse_and_name_their_flag() {
    let c = resolve(&[
        "--memory-limit",
        "1.5GiB",
        "--keep-alive",
        "-1",
        "--health-interval",
        "250ms",
        "--store",
        "/s",
    ])
    .unwrap();
    assert_eq!(c.serving.memory_limit, Some(values::Size(3 << 29)));
    assert_eq!(
        c.serving.keep_alive,
        modelrunner_scheduler::KeepAlive::Forever
    );
    assert_eq!(
        c.serving.health_interval.0,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(c.serving.parallel, DEFAULT_PARALLEL);
    for (flag, value) in [
        ("--memory-limit", "lots"),
        ("--keep-alive", "soon"),
        ("--health-interval", "-1"),
        ("--parallel", "0"),
        ("--parallel", "many"),
    ] {
        let e = text(resolve(&[flag, value, "--store", "/s"]));
        assert!(e.contains(flag), "{flag}: {e}");
    }
}

use modelrunner_protocol::launch::DEFAULT_PARALLEL;

#[test]
fn the_shipped_config_file_is_the_defaults() {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/modelrunnerd.toml"
    );
    let c = resolve(&["--config", shipped, "--store", "/s"]).unwrap();
    let d = resolve(&["--store", "/s"]).unwrap();
    assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&d).unwrap());
}

#[test]
fn unknown_keys_and_bad_values_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    let path = f.to_str().unwrap();
    std::fs::write(&f, "listn = \"x\"\n").unwrap();
    let e = text(resolve(&["--config", path]));
    assert!(e.contains("c.toml") && e.contains("listn"), "{e}");
    let e = text(resolve(&["--store", "relative"]));
    assert!(e.contains("--store"), "{e}");
    // A bad value in the file names the key and the file; the same value from a flag
    // does not blame the file.
    std::fs::write(&f, "parallel = 0\n").unwrap();
    let e = text(resolve(&["--config", path, "--store", "/s"]));
    assert!(e.contains("parallel") && e.contains("c.toml"), "{e}");
    std::fs::write(&f, "parallel = 2\n").unwrap();
    let e = text(resolve(&[
        "--config",
        path,
        "--parallel",
        "0",
        "--store",
        "/s",
    ]));
    assert!(e.contains("--parallel") && !e.contains("c.toml"), "{e}");
    // A value of the wrong type in the file.
    std::fs::write(&f, "parallel = \"two\"\n").unwrap();
    let e = text(resolve(&["--config", path, "--store", "/s"]));
    assert!(e.contains("parallel") && e.contains("c.toml"), "{e}");
    std::fs::write(&f, "keep_alive = \"soon\"\n").unwrap();
    let e = text(resolve(&["--config", path, "--store", "/s"]));
    assert!(e.contains("keep_alive") && e.contains("c.toml"), "{e}");
}
