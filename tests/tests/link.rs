//! `modelrunner package --link`, end to end: the real CLI and daemon store a GGUF without
//! a second copy (the blob is the user's file, same inode, on a file system that cannot
//! clone), the model chats, a change to the file afterwards is refused on load with a
//! 409 naming the file while the daemon keeps serving, and offline `fsck` reports it.
//! The route's own refusals name `link`.

use modelrunner_e2e::Daemon;
use modelrunner_testkit::chat_model;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_linked_model_serves_until_its_file_changes() {
    let d = Daemon::start(&[]);
    let (shared, _) = chat_model(d.dir.path());
    // The user's file, on the store's file system.
    let gguf = d.dir.path().join("mine.gguf");
    std::fs::copy(&shared, &gguf).unwrap();
    let out = d.ok(&[
        "package",
        "--link",
        "--gguf",
        gguf.to_str().unwrap(),
        "--json",
        "linked",
    ]);
    let packaged: Value = serde_json::from_str(out.trim()).unwrap();
    let linked = &packaged["linked"][0];
    assert_eq!(linked["path"], gguf.to_str().unwrap(), "{packaged}");
    let digest = linked["digest"].as_str().unwrap();
    let blob = d.store.join("blobs/sha256").join(&digest[7..]);
    let (src, stored) = (
        std::fs::metadata(&gguf).unwrap(),
        std::fs::metadata(&blob).unwrap(),
    );
    match linked["kind"].as_str().unwrap() {
        "hard_link" => assert_eq!(src.ino(), stored.ino(), "not the same file"),
        "reflink" => assert_ne!(src.ino(), stored.ino()),
        other => panic!("stored as {other}: {packaged}"),
    }
    let human = d.ok(&[
        "package",
        "--link",
        "--gguf",
        gguf.to_str().unwrap(),
        "again",
    ]);
    assert!(human.contains("already in the store"), "{human}");

    let c = reqwest::Client::new();
    let chat = json!({"model": "linked", "messages": [{"role": "user", "content": "Once"}], "max_tokens": 4});
    let r = c
        .post(d.u("/engines/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    d.ok(&["unload", "--all"]);

    // The user changes the file afterwards.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&gguf)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"\0"))
        .unwrap();
    let r = c
        .post(d.u("/engines/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    if linked["kind"] == "reflink" {
        assert_eq!(status, 200, "a clone changed with its original: {body}");
        return;
    }
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "linked_file_changed", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    let canonical = gguf.canonicalize().unwrap();
    assert!(msg.contains(canonical.to_str().unwrap()), "{msg}");
    let r = c.get(d.u("/models")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the daemon stopped serving");

    let (_dir, store) = d.stop();
    let out = std::process::Command::new(modelrunner_e2e::bin("modelrunnerd"))
        .arg("--store")
        .arg(&store)
        .arg("fsck")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!("linked file {} changed", canonical.display())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_load_route_names_link_when_it_refuses() {
    let d = Daemon::start(&[]);
    let c = reqwest::Client::new();
    for (query, status, code) in [
        ("link=relative.gguf", 400, "cannot_link"),
        ("link=/nonexistent/m.gguf", 400, "cannot_link"),
        ("link=/etc/passwd", 400, "cannot_link"),
    ] {
        let r = c
            .post(d.u(&format!("/models/load?{query}")))
            .body(Vec::<u8>::new())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
        assert_eq!(body["error"]["param"], "link", "{query}: {body}");
    }
    let r = c
        .post(d.u("/models/load?link=/x.gguf&allow_copy=maybe"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "allow_copy", "{body}");
}
