//! `--models-dir`: GGUF files on a volume served in place, as in an image-volume or
//! KServe-style pod. The daemon hashes them where they lie and lists and runs them, with
//! no copy in its store (which holds kilobytes) and no write to the files; a restart gives
//! the same model IDs; a file changed under the daemon is refused naming it while the
//! daemon keeps serving; a missing directory keeps `/health` at 503 naming it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use modelrunner_e2e::{wait_until, Daemon};
use modelrunner_testkit::LlamaSpec;
use serde_json::{json, Value};

fn health(d: &Daemon) -> (u16, Value) {
    let r = reqwest::blocking::get(d.u("/health")).unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn ready(d: &Daemon) {
    wait_until(
        "the models directory to be served",
        Duration::from_secs(120),
        || health(d).0 == 200,
    );
}

fn get(d: &Daemon, path: &str) -> Value {
    reqwest::blocking::get(d.u(path)).unwrap().json().unwrap()
}

fn chat(d: &Daemon, model: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(d.u("/v1/chat/completions"))
        .json(&json!({"model": model, "max_tokens": 8, "temperature": 0,
                      "messages": [{"role": "user", "content": "Once upon a time"}]}))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

/// Bytes, mtime and inode: what a write would change.
fn fingerprint(p: &Path) -> (Vec<u8>, i64, i64, u64) {
    let m = std::fs::metadata(p).unwrap();
    (
        std::fs::read(p).unwrap(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino(),
    )
}

/// A volume with the chat model at its top and a second model in a directory.
fn volume(dir: &Path) -> (PathBuf, PathBuf) {
    let vol = dir.join("volume");
    std::fs::create_dir_all(vol.join("noise")).unwrap();
    let (chat, _) = modelrunner_testkit::chat_model(dir);
    let stories = vol.join("Stories.gguf");
    std::fs::copy(chat, &stories).unwrap();
    let noise = vol.join("noise/model.gguf");
    LlamaSpec::tiny().build(9).write_file(&noise).unwrap();
    (stories, noise)
}

fn ids(d: &Daemon) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = get(d, "/models")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["tags"][0].as_str().unwrap().to_string(),
                m["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_volume_of_ggufs_is_served_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (stories, noise) = volume(tmp.path());
    let before = (fingerprint(&stories), fingerprint(&noise));
    let vol = stories.parent().unwrap().to_str().unwrap().to_string();
    let d = Daemon::start(&["--models-dir", &vol]);
    ready(&d);
    let listed = ids(&d);
    let tags: Vec<&str> = listed.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tags,
        ["docker.io/ai/noise:latest", "docker.io/ai/stories:latest"]
    );
    let (status, answer) = chat(&d, "stories");
    assert_eq!(status, 200, "{answer}");
    assert!(!answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    // The store holds metadata only: no copy of either GGUF.
    let df = get(&d, "/engines/df");
    let stored = df["models_disk_usage"].as_u64().unwrap();
    assert!(stored < 64 * 1024, "the store holds {stored} bytes: {df}");
    assert_eq!((fingerprint(&stories), fingerprint(&noise)), before);
    // A restart on the same store and files: the same models.
    let (dir, store) = d.stop();
    let d = Daemon::start_in(dir, store, &["--models-dir", &vol]);
    ready(&d);
    assert_eq!(ids(&d), listed);
    // A file changed under the daemon is refused, naming it; the daemon keeps serving.
    let mut bytes = std::fs::read(&stories).unwrap();
    bytes.extend_from_slice(&[0; 32]);
    std::fs::write(&stories, &bytes).unwrap();
    let (status, err) = chat(&d, "stories");
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "linked_file_changed");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("Stories.gguf"), "{message}");
    assert_eq!(chat(&d, "noise").0, 200);
    assert_eq!(fingerprint(&noise), before.1);
}

#[test]
fn a_missing_directory_keeps_health_unready() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("not-mounted");
    let d = Daemon::start(&["--models-dir", missing.to_str().unwrap()]);
    wait_until("the failure", Duration::from_secs(60), || {
        health(&d).1.to_string().contains("not-mounted")
    });
    assert_eq!(health(&d).0, 503);
}
