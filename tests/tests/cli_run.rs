//! `modelrunner run`, `ps` and `unload` against the real daemon.

use std::time::Duration;

use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
use modelrunner_e2e::{runner_pids, wait_until, Daemon};

#[test]
fn run_answers_a_prompt_preloads_and_chats() {
    let d = Daemon::start(&[]);
    let stories = d.package_chat_model("stories");
    let out = d.ok(&[
        "run",
        "--max-tokens",
        "40",
        "--temperature",
        "0",
        "stories",
        "Once upon a time",
    ]);
    assert!(out.trim().len() > 10, "{out:?}");
    if stories {
        assert!(
            out.split_whitespace()
                .any(|w| ["the", "a", "was", "and"].contains(&w)),
            "{out}"
        );
    }
    // A prompt on stdin.
    let o = d.cli_stdin(
        &["run", "--max-tokens", "20", "stories"],
        "Tell me about a dog",
    );
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
    // Interactive turns with history, a multi-line message and /bye.
    let o = d.cli_stdin(
        &[
            "run",
            "-i",
            "--max-tokens",
            "1",
            "--temperature",
            "0",
            "stories",
        ],
        "Hello\n\"\"\"first line\nsecond line\"\"\"\n/bye\nnever sent\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let answers = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        answers.matches('\n').count(),
        2,
        "two answers, none after /bye: {answers:?}"
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Error"));

    d.ok(&["unload", "--all"]);
    wait_until("unload", Duration::from_secs(5), || {
        runner_pids(&d.store).is_empty()
    });
    assert!(d.ok(&["run", "-d", "stories"]).contains("loaded"));
    assert_eq!(runner_pids(&d.store).len(), 1);
    let ps = d.ok(&["ps"]);
    assert!(
        ps.contains("MODEL NAME") && ps.contains("stories") && ps.contains("idle"),
        "{ps}"
    );
    let json = d.ok(&["ps", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["mode"], "completion");
    assert!(d.ok(&["unload", "stories"]).contains("Unloaded 1 model"));
    assert!(d.fails(&["unload"]).contains("--all"));
    // A model that is neither stored nor in its registry.
    let reg = TestRegistry::start(RegistryOptions::default());
    let missing = format!("{}/nope/model:1", reg.host);
    let err = d.fails(&["run", &missing, "hi"]);
    assert!(
        err.contains(&missing) && err.contains("not found") && err.contains("modelrunner package"),
        "{err}"
    );
}
