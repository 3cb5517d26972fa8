//! Model lifecycle against the real daemon: on-demand loading, one load for concurrent
//! first requests, keep-alive, LRU eviction under a memory limit, refusal when nothing
//! fits, settings that persist across restarts, tags that move. Supervision (crashes,
//! hangs, overload, SIGTERM, backoff) is in `supervision.rs`.

use std::time::Duration;

use modelrunner_e2e::serving::{chat, ps, streaming, touch};
use modelrunner_e2e::{alive, get, post, runner_pids, wait_until, Daemon};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn loads_on_demand_once_for_concurrent_first_requests() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    assert!(ps(&c, &d).await.is_empty(), "nothing loads at startup");
    assert!(runner_pids(&d.store).is_empty());
    let (url, body) = (d.u("/v1/chat/completions"), chat("stories", 4, false));
    let reqs = (0..8).map(|_| post(&c, &url, &body));
    for (s, _, v) in futures::future::join_all(reqs).await {
        assert_eq!(s, 200, "{v}");
    }
    let runners = ps(&c, &d).await;
    assert_eq!(runners.len(), 1, "{runners:?}");
    assert_eq!(
        runner_pids(&d.store),
        vec![runners[0]["pid"].as_i64().unwrap() as i32]
    );
    let r = &runners[0];
    assert_eq!(r["backend_name"], "llama.cpp");
    assert_eq!(r["model_name"], "docker.io/ai/stories:latest");
    assert_eq!(r["in_use"], false);
    assert_eq!(r["loading"], false);
    assert_eq!(r["keep_alive"], "5m0s");
    assert!(r["last_used"].as_str().unwrap().ends_with('Z'));
    // X-Preload-Only loads without generating.
    d.package_tiny("tiny", 7);
    let r = c
        .post(d.u("/engines/v1/chat/completions"))
        .header("X-Preload-Only", "true")
        .json(&chat("tiny", 1, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(ps(&c, &d).await.len(), 2);
    // Unload by name, then all.
    let (_, _, v) = post(&c, &d.u("/engines/unload"), &json!({"models": ["tiny"]})).await;
    assert_eq!(v["unloaded_runners"], 1);
    let (_, _, v) = post(&c, &d.u("/engines/unload"), &json!({"all": true})).await;
    assert_eq!(v["unloaded_runners"], 1);
    assert!(ps(&c, &d).await.is_empty());
    wait_until("runners to exit", Duration::from_secs(5), || {
        runner_pids(&d.store).is_empty()
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_expires_idle_models() {
    let d = Daemon::start(&["--keep-alive", "1s"]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let (s, _, _) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 2, false)).await;
    assert_eq!(s, 200);
    // Still loaded after the request, with the daemon's keep-alive.
    assert_eq!(ps(&c, &d).await[0]["keep_alive"], "1s");
    wait_until("the idle model to unload", Duration::from_secs(10), || {
        runner_pids(&d.store).is_empty()
    });
    assert!(ps(&c, &d).await.is_empty());
    // Per request, -1 never unloads, where the daemon's own keep-alive is 1 s.
    let mut body = chat("stories", 2, false);
    body["keep_alive"] = json!(-1);
    let (s, _, _) = post(&c, &d.u("/v1/chat/completions"), &body).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runners = ps(&c, &d).await;
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0]["keep_alive"], "-1");
    // And "0" unloads as soon as the request ends, where the daemon's is an hour.
    let d = Daemon::start(&["--keep-alive", "1h"]);
    d.package_chat_model("stories");
    let (s, _, _) = post(&c, &d.u("/v1/chat/completions"), &chat("stories", 2, false)).await;
    assert_eq!(s, 200);
    assert_eq!(ps(&c, &d).await[0]["keep_alive"], "1h0m0s");
    body["keep_alive"] = json!("0");
    let (s, _, v) = post(&c, &d.u("/v1/chat/completions"), &body).await;
    assert_eq!(s, 200, "{v}");
    wait_until("keep_alive 0 to unload", Duration::from_secs(10), || {
        runner_pids(&d.store).is_empty()
    });
    assert!(ps(&c, &d).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn evicts_least_recently_used_and_refuses_what_cannot_fit() {
    // Measure both models' estimates without a limit first.
    let d = Daemon::start(&[]);
    d.package_chat_model("a");
    d.package_tiny("b", 3);
    let c = reqwest::Client::new();
    // Explicit context sizes: a default context would shrink to fit instead.
    for m in ["a", "b"] {
        let (s, _, _) = post(
            &c,
            &d.u("/engines/_configure"),
            &json!({"model": m, "context-size": 512}),
        )
        .await;
        assert_eq!(s, 202);
    }
    touch(&c, &d, "a").await;
    touch(&c, &d, "b").await;
    let est: Vec<u64> = ps(&c, &d)
        .await
        .iter()
        .map(|r| r["estimated_memory"]["total"].as_u64().unwrap())
        .collect();
    let (dir, store) = d.stop();
    // Room for either model alone, not both.
    let limit = est[0].max(est[1]) + est[0].min(est[1]) / 2;
    let d = Daemon::start_in(dir, store, &["--memory-limit", &limit.to_string()]);
    touch(&c, &d, "a").await;
    touch(&c, &d, "b").await;
    let names: Vec<String> = ps(&c, &d)
        .await
        .iter()
        .map(|r| r["model_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["docker.io/ai/b:latest"],
        "a was idle and least recently used"
    );
    wait_until("a's runner to exit", Duration::from_secs(5), || {
        runner_pids(&d.store).len() == 1
    });
    // b busy: a cannot evict it, and is refused with the numbers.
    let held = streaming(&c, &d, "b").await;
    let (s, v) = touch(&c, &d, "a").await;
    assert_eq!(s, 507, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_memory");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("needs about") && msg.contains("KV cache") && msg.contains("memory limit"),
        "{msg}"
    );
    drop(held);
    // A model that can never fit, whatever is unloaded: configuring it says so, and the
    // settings stay.
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "a", "context-size": 1 << 20}),
    )
    .await;
    assert_eq!(s, 507, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_memory");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the settings are saved, but a does not load"),
        "{msg}"
    );
    let (s, v) = touch(&c, &d, "a").await;
    assert_eq!(s, 507, "{v}");
    // The daemon keeps serving.
    let (s, _) = touch(&c, &d, "b").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_persist_and_a_killed_daemon_leaves_nothing_behind() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "stories", "context-size": 512, "keep_alive": "-1", "runtime-flags": ["--parallel", "2"]}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "stories", "runtime-flags": ["--model", "/etc/passwd"]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    wait_until("the preload", Duration::from_secs(10), || {
        runner_pids(&d.store).len() == 1
    });
    let pid = runner_pids(&d.store)[0];
    d.signal(libc::SIGKILL);
    wait_until("the orphaned runner to die", Duration::from_secs(5), || {
        !alive(pid)
    });
    let (dir, store) = d.stop();
    // A runner that survived its daemon (as if the parent-death signal were lost): the
    // next daemon finds it by its pid file and stops it.
    let run_dir = store.join("run");
    let socket = run_dir.join("runner-1-1.sock");
    let model = std::fs::read_dir(store.join("bundles/sha256"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("model/model.gguf");
    let launch = modelrunner_protocol::Launch {
        socket: socket.clone(),
        ..modelrunner_protocol::Launch::new(model)
    };
    let mut stray = std::process::Command::new(modelrunner_e2e::bin("modelrunnerd"))
        .args(launch.to_args())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "the stray runner to listen",
        Duration::from_secs(10),
        || socket.exists(),
    );
    std::fs::write(
        run_dir.join("runner-1-1.pid"),
        format!("{}\n{}\n", stray.id(), socket.display()),
    )
    .unwrap();
    let d = Daemon::start_in(dir, store, &[]);
    wait_until(
        "the stray runner to be stopped",
        Duration::from_secs(5),
        || matches!(stray.try_wait(), Ok(Some(_))),
    );
    let cfg = get(&c, &d.u("/engines/_configure?model=stories")).await;
    assert_eq!(cfg[0]["Config"]["context-size"], 512, "{cfg}");
    assert_eq!(cfg[0]["Config"]["parallel"], 2);
    assert_eq!(cfg[0]["Mode"], "completion");
    let run_dir = d.store.join("run");
    assert_eq!(
        std::fs::read_dir(&run_dir).unwrap().count(),
        0,
        "stale sockets removed"
    );
    post(&c, &d.u("/v1/chat/completions"), &chat("stories", 1, false)).await;
    let r = &ps(&c, &d).await[0];
    assert_eq!(r["context_size"], 512);
    assert_eq!(r["slots"], 2);
    assert_eq!(r["keep_alive"], "-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_follow_a_tag_that_moves_or_goes() {
    // The daemon remembers what a name resolved to; any change to the index must end
    // that, or requests would keep reaching the model a tag used to name.
    let d = Daemon::start(&[]);
    let c = reqwest::Client::new();
    let running = || async {
        ps(&c, &d)
            .await
            .iter()
            .map(|r| r["model_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    d.package_tiny("m", 1);
    let id = || {
        let v: Value = serde_json::from_str(&d.ok(&["inspect", "m"])).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let first = id();
    let (s, _) = touch(&c, &d, "m").await;
    assert_eq!(s, 200);
    assert_eq!(running().await, vec![first.clone()]);
    d.package_tiny("m", 2);
    let second = id();
    assert_ne!(first, second);
    let (s, _) = touch(&c, &d, "m").await;
    assert_eq!(s, 200);
    assert!(
        running().await.contains(&second),
        "the moved tag is followed"
    );
    d.ok(&["rm", "m"]);
    let (s, v) = touch(&c, &d, "m").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
}
