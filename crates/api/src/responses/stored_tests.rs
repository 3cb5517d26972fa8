use super::*;
use serde_json::json;

fn record(id: &str, created: u64, pad: usize) -> Record {
    Record {
        response: json!({"id": id, "pad": "x".repeat(pad)}),
        history: vec![json!({"type": "message", "id": "msg_1", "role": "user", "content": "hi"})],
        created,
    }
}

fn limits(max_count: usize, max_bytes: u64) -> Limits {
    Limits {
        max_count,
        max_bytes,
        max_age: Duration::from_secs(3600),
    }
}

#[test]
fn responses_survive_a_restart_and_bad_files_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("responses");
    let r = Responses::open(Some(d.clone()), Limits::default());
    r.put(record("resp_a", now(), 10));
    r.put(record("resp_b", now(), 10));
    assert!(r.delete("resp_b"));
    assert!(!r.delete("resp_b"));
    drop(r);
    fs::write(d.join("resp_bad.json"), b"{not json").unwrap();
    // A file that holds another response than its name says.
    fs::write(
        d.join("resp_c.json"),
        serde_json::to_vec(&record("resp_a", now(), 1)).unwrap(),
    )
    .unwrap();
    let r = Responses::open(Some(d.clone()), Limits::default());
    let a = r.get("resp_a").expect("kept across the restart");
    assert_eq!(a.history[0]["content"], "hi");
    assert!(r.get("resp_b").is_none());
    assert!(r.get("resp_c").is_none());
    assert!(!d.join("resp_bad.json").exists() && !d.join("resp_c.json").exists());
    assert!(!d.join("resp_b.json").exists());
}

#[test]
fn the_oldest_go_first_when_count_or_bytes_are_over() {
    let r = Responses::open(None, limits(2, 1 << 20));
    for (i, id) in ["resp_1", "resp_2", "resp_3"].iter().enumerate() {
        r.put(record(id, now() + i as u64, 10));
    }
    assert!(r.get("resp_1").is_none());
    assert!(r.get("resp_2").is_some() && r.get("resp_3").is_some());
    let size = serde_json::to_vec(&record("resp_x", 0, 400)).unwrap().len() as u64;
    let r = Responses::open(None, limits(100, size * 2 + size / 2));
    for (i, id) in ["resp_x", "resp_y", "resp_z"].iter().enumerate() {
        r.put(record(id, now() + i as u64, 400));
    }
    assert!(r.get("resp_x").is_none());
    assert!(r.get("resp_y").is_some() && r.get("resp_z").is_some());
    // One larger than the whole store is not kept, and drops nothing.
    r.put(record("resp_big", now() + 9, 4000));
    assert!(r.get("resp_big").is_none() && r.get("resp_z").is_some());
}

#[test]
fn old_responses_expire() {
    let r = Responses::open(None, limits(10, 1 << 20));
    r.put(record("resp_old", now() - 7200, 1));
    r.put(record("resp_new", now(), 1));
    assert!(r.get("resp_old").is_none());
    assert!(r.get("resp_new").is_some());
}
