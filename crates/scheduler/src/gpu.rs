//! Free GPU memory from `nvidia-smi`, asked off the async threads with a time limit and
//! remembered briefly: admission asks on every load, and a wedged driver can make
//! `nvidia-smi` hang for minutes.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::warn;

/// How long `nvidia-smi` may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer is reused.
const FRESH: Duration = Duration::from_secs(2);

static CACHE: Mutex<Option<(Instant, Option<u64>)>> = Mutex::new(None);

/// Free memory of the first NVIDIA GPU (the one llama.cpp uses); `None` without one, or
/// when `nvidia-smi` fails or does not answer in time.
pub async fn free() -> Option<u64> {
    if let Some((at, v)) = *CACHE.lock().unwrap() {
        if at.elapsed() < FRESH {
            return v;
        }
    }
    let v = query(Path::new("nvidia-smi"), TIMEOUT).await;
    *CACHE.lock().unwrap() = Some((Instant::now(), v));
    v
}

/// Forgets the remembered answer (after a runner that held GPU memory has exited).
pub fn forget() {
    *CACHE.lock().unwrap() = None;
}

/// Runs `program` as `nvidia-smi`, killed after `timeout`.
async fn query(program: &Path, timeout: Duration) -> Option<u64> {
    let child = tokio::process::Command::new(program)
        .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(timeout, child).await {
        Ok(Ok(out)) => out,
        Ok(Err(_)) => return None,
        Err(_) => {
            warn!(
                program = %program.display(),
                ?timeout,
                "nvidia-smi did not answer in time; GPU memory unknown"
            );
            return None;
        }
    };
    if !out.status.success() {
        return None;
    }
    parse(&String::from_utf8_lossy(&out.stdout))
}

/// `nvidia-smi`'s free MiB of the first GPU, in bytes.
fn parse(text: &str) -> Option<u64> {
    let mib: u64 = text.lines().next()?.trim().parse().ok()?;
    Some(mib << 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reads_nvidia_smi() {
        assert_eq!(parse("81037\n"), Some(81037 << 20));
        assert_eq!(parse("1024\n2048\n"), Some(1024 << 20));
        assert_eq!(parse("[N/A]\n"), None);
        assert_eq!(parse(""), None);
    }

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn a_hanging_nvidia_smi_is_abandoned_and_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let hang = script(
            dir.path(),
            "hang",
            &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
        );
        assert_eq!(query(&hang, Duration::from_millis(300)).await, None);
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        // Killed on drop and reaped by tokio: the process is gone (or a zombie).
        let gone = || {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .map_or(true, |s| s.contains(") Z "))
        };
        for _ in 0..100 {
            if gone() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "nvidia-smi stand-in {pid} still runs");
        let ok = script(dir.path(), "ok", "echo 2048");
        assert_eq!(query(&ok, TIMEOUT).await, Some(2048 << 20));
        let fails = script(dir.path(), "fails", "echo 7; exit 9");
        assert_eq!(query(&fails, TIMEOUT).await, None);
    }
}
