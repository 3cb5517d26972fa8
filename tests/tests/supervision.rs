//! Runner supervision against the real daemon: a crashed runner fails its streams and is
//! reloaded, a hung one is killed and replaced, a full queue is refused and disconnected
//! clients free their places, SIGTERM lets requests finish, repeated load failures back
//! off.

use std::time::Duration;

use futures::StreamExt;
use modelrunner_e2e::serving::{chat, ps, streaming, touch};
use modelrunner_e2e::{alive, post, runner_pids, sse_data, wait_until, Daemon};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_runner_fails_its_streams_fast_and_reloads() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let mut s = streaming(&c, &d, "stories").await;
    let pid = ps(&c, &d).await[0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the runner we just looked up.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // The stream ends with the runner, not when its context would have filled: an error
    // event and no [DONE] (the timeout only guards against waiting for ever).
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        let mut rest = String::new();
        while let Some(Ok(b)) = s.next().await {
            rest.push_str(&String::from_utf8_lossy(&b));
        }
        rest
    })
    .await
    .expect("the stream of a killed runner ends");
    assert!(
        rest.contains("\"error\""),
        "the stream ends with an error event: {rest}"
    );
    assert!(!rest.contains("[DONE]"), "never a fake [DONE]");
    wait_until(
        "the dead runner to leave ps",
        Duration::from_secs(2),
        || futures::executor::block_on(ps(&c, &d)).is_empty(),
    );
    let (st, _, v) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 3, false)).await;
    assert_eq!(st, 200, "{v}");
    let new_pid = ps(&c, &d).await[0]["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, pid);
    // A runner that dies between requests costs no request: the next one right after
    // the crash is served by a fresh runner.
    // SAFETY: killing the runner we just looked up.
    unsafe { libc::kill(new_pid, libc::SIGKILL) };
    let (st, _, v) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 3, false)).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_runner_is_killed_and_replaced() {
    let d = Daemon::start(&["--health-interval", "200ms"]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    post(&c, &d.u("/v1/chat/completions"), &chat("stories", 2, false)).await;
    let pid = ps(&c, &d).await[0]["pid"].as_i64().unwrap() as i32;
    // SAFETY: stopping the runner we just looked up.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    wait_until(
        "the hung runner to be killed",
        Duration::from_secs(15),
        || !alive(pid),
    );
    let (st, _, v) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 2, false)).await;
    assert_eq!(st, 200, "{v}");
    assert_ne!(ps(&c, &d).await[0]["pid"].as_i64().unwrap() as i32, pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_refused_fast_and_disconnects_free_slots() {
    let d = Daemon::start(&["--parallel", "1", "--max-queue", "2"]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    // A context so long that the held stream (end-of-generation banned) would take far
    // longer than the queued requests' wait below to end by itself.
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "stories", "context-size": 65536}),
    )
    .await;
    assert!(s.is_success(), "{s} {v}");
    let requests = || {
        futures::executor::block_on(ps(&c, &d))[0]["requests"]
            .as_u64()
            .unwrap()
    };
    let queue = || {
        let (c, url) = (c.clone(), d.u("/v1/chat/completions"));
        tokio::spawn(async move { post(&c, &url, &chat("stories", 3, false)).await })
    };
    let first = streaming(&c, &d, "stories").await;
    let queued = queue();
    wait_until("one request queued", Duration::from_secs(5), || {
        requests() == 2
    });
    // A queued client that goes away gives its place back.
    let gone = queue();
    wait_until("two requests queued", Duration::from_secs(5), || {
        requests() == 3
    });
    gone.abort();
    wait_until(
        "the abandoned place to free",
        Duration::from_secs(5),
        || requests() == 2,
    );
    let queued2 = queue();
    wait_until("the queue to fill", Duration::from_secs(5), || {
        requests() == 3
    });
    // Slot and queue full: refused, not queued (a queued request would wait for the
    // held stream and then succeed).
    let (s, h, v) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 3, false)).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(h["retry-after"], "1");
    assert_eq!(v["error"]["code"], "model_busy");
    // The client of the first goes away: its slot frees, the queued ones run.
    drop(first);
    for q in [queued, queued2] {
        let (s, _, v) = tokio::time::timeout(Duration::from_secs(10), q)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s, 200, "{v}");
    }
    wait_until("no requests left", Duration::from_secs(5), || {
        requests() == 0
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_finish_then_stops_runners() {
    let mut d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    post(&c, &d.u("/v1/chat/completions"), &chat("stories", 1, false)).await;
    let pid = runner_pids(&d.store)[0];
    let r = c
        .post(d.u("/v1/completions"))
        .json(&json!({"model": "stories", "prompt": "Once", "max_tokens": 300, "stream": true}))
        .send()
        .await
        .unwrap();
    d.signal(libc::SIGTERM);
    let data = sse_data(r).await;
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "the request in flight finished"
    );
    assert_eq!(d.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(!alive(pid), "the runner stopped with the daemon");
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_load_failures_back_off() {
    let d = Daemon::start(&[]);
    let p = d.dir.path().join("alien.gguf");
    modelrunner_testkit::LlamaSpec::tiny()
        .build(5)
        .set(
            "general.architecture",
            modelrunner_testkit::Kv::Str("nonesuch".into()),
        )
        .write_file(&p)
        .unwrap();
    d.ok(&["package", "--gguf", p.to_str().unwrap(), "alien"]);
    let c = reqwest::Client::new();
    let waits = || async {
        let log = c
            .get(d.u("/logs?tail=10000"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        log.lines()
            .filter(|l| l.contains("waiting before loading again"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for _ in 0..2 {
        let (s, v) = touch(&c, &d, "alien").await;
        assert_eq!(s, 500, "{v}");
    }
    assert!(waits().await.is_empty(), "{:?}", waits().await);
    // From the second failure in a row, the next load waits (1 s, then 2 s, ...): the
    // scheduler says so in its log, with the count of failures.
    let (s, v) = touch(&c, &d, "alien").await;
    assert_eq!(s, 500, "{v}");
    let w = waits().await;
    assert!(w.len() == 1 && w[0].contains("failures=2"), "{w:?}");
    // Settings for a model that cannot load: the answer says so.
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "alien", "context-size": 256}),
    )
    .await;
    assert_eq!(s, 500, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the settings are saved, but alien does not load"),
        "{msg}"
    );
}
