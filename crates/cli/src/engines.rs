//! ps and unload.

use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;
use crate::models::{age, display_tag, print_table, s};
use modelrunner_format::gguf::format_bytes;

fn state(r: &Value) -> String {
    if r["loading"].as_bool() == Some(true) {
        return "loading".into();
    }
    match r["requests"].as_u64().unwrap_or(0) {
        0 => "idle".into(),
        n => format!("busy ({n})"),
    }
}

fn bytes(v: &Value) -> String {
    v.as_u64().map(format_bytes).unwrap_or_else(|| "-".into())
}

/// `modelrunner ps`.
pub async fn ps(c: &Client, json: bool) -> anyhow::Result<()> {
    let runners = c.get_json("/engines/ps").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&runners)?);
        return Ok(());
    }
    let mut rows = vec![[
        "MODEL NAME",
        "MODE",
        "STATE",
        "CONTEXT",
        "SLOTS",
        "MEMORY",
        "KEEP ALIVE",
        "LAST USED",
    ]
    .map(String::from)
    .to_vec()];
    for r in runners.as_array().map(Vec::as_slice).unwrap_or_default() {
        let last = chrono::DateTime::parse_from_rfc3339(r["last_used"].as_str().unwrap_or(""))
            .map(|t| age(t.timestamp()))
            .unwrap_or_else(|_| "-".into());
        rows.push(vec![
            display_tag(&s(&r["model_name"])),
            s(&r["mode"]),
            state(r),
            s(&r["context_size"]),
            s(&r["slots"]),
            bytes(&r["resident_memory"]),
            s(&r["keep_alive"]),
            last,
        ]);
    }
    print_table(&rows);
    Ok(())
}

/// `modelrunner unload`.
pub async fn unload(c: &Client, all: bool, models: &[String]) -> anyhow::Result<()> {
    if !all && models.is_empty() {
        anyhow::bail!("name the models to unload, or pass --all");
    }
    let body = json!({"all": all, "models": models});
    let r = c
        .send(c.request(Method::POST, "/engines/unload").json(&body))
        .await?;
    let v: Value = r.json().await?;
    let n = v["unloaded_runners"].as_u64().unwrap_or(0);
    println!("Unloaded {n} model{}", if n == 1 { "" } else { "s" });
    Ok(())
}
