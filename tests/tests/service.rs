//! The systemd unit: it verifies, and its exact command line serves as an unprivileged
//! user, tells systemd (`Type=notify`) when it listens, and answers the CLI on its Unix
//! socket.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use modelrunner_e2e::bin;

const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../config/modelrunnerd.service"
);
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/modelrunnerd.toml");

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::copy(UNIT, r.join("etc/systemd/system/modelrunnerd.service")).unwrap();
    std::fs::copy(bin("modelrunnerd"), r.join("usr/local/bin/modelrunnerd")).unwrap();
    // The units the service refers to (targets), from this machine's systemd.
    copy_dir(
        Path::new("/usr/lib/systemd/system"),
        &r.join("usr/lib/systemd"),
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .arg("modelrunnerd.service")
        .output()
        .expect("systemd-analyze is missing; scripts/deps.sh installs systemd");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // verify exits 0 even for unknown keys; any word about our unit is a failure.
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("modelrunnerd"), "{said}");
}

/// `ExecStart=` of the unit, split into words.
fn exec_start() -> Vec<String> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_unit_command_line_serves_as_an_unprivileged_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = unsafe { libc::getuid() } == 0;
    // The unit's paths, moved under the scratch directory; every flag stays as written.
    let program = d.join("bin/modelrunnerd");
    let etc = d.join("etc");
    let state = d.join("state");
    let run = d.join("run");
    for p in [program.parent().unwrap(), &etc, &state, &run] {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::copy(bin("modelrunnerd"), &program).unwrap();
    std::fs::copy(CONFIG, etc.join("modelrunnerd.toml")).unwrap();
    let map = |w: &str| -> String {
        let pairs: [(&str, &Path); 4] = [
            ("/usr/local/bin/modelrunnerd", &program),
            ("/etc/modelrunner", &etc),
            ("/var/lib/modelrunner", &state),
            ("/run/modelrunner", &run),
        ];
        for (from, to) in pairs {
            if let Some(rest) = w.strip_prefix(from) {
                return format!("{}{rest}", to.display());
            }
        }
        w.to_string()
    };
    let words: Vec<String> = exec_start().iter().map(|w| map(w)).collect();
    assert!(words.iter().any(|w| w == "--socket"), "{words:?}");
    let socket = PathBuf::from(&words[words.iter().position(|w| w == "--socket").unwrap() + 1]);
    // systemd's side of Type=notify.
    let notify_path = d.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut cmd = if root {
        // The unit's User= is an unprivileged system user; nobody stands in for it.
        for p in [&state, &run] {
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
        c.args(&words);
        c
    } else {
        let mut c = Command::new(&words[0]);
        c.args(&words[1..]);
        c
    };
    let mut child = cmd
        .env("NOTIFY_SOCKET", &notify_path)
        .env("HOME", &state)
        .env("MODELRUNNER_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the unit's command line");
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("READY=1 within 60 s");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.contains("READY=1"), "{msg}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    if root {
        assert!(uid_line.contains("65534"), "{uid_line}");
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the group may use the socket");
    let cli = |args: &[&str]| {
        Command::new(bin("modelrunner"))
            .args(args)
            .env("MODEL_RUNNER_HOST", format!("unix://{}", socket.display()))
            .output()
            .unwrap()
    };
    let out = cli(&["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["ls", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // SIGTERM: STOPPING=1, a clean exit, the socket removed.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    assert!(!socket.exists());
}

#[test]
fn install_and_uninstall_place_and_remove_the_files() {
    let stage = tempfile::tempdir().unwrap();
    let binaries = bin("modelrunnerd").parent().unwrap().to_path_buf();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(repo.join("scripts/install.sh"))
            .args(args)
            .env("DESTDIR", stage.path())
            .env("BINARIES", &binaries)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&[]);
    let s = stage.path();
    for f in [
        "usr/local/bin/modelrunnerd",
        "usr/local/bin/modelrunner",
        "etc/modelrunner/modelrunnerd.toml",
        "etc/systemd/system/modelrunnerd.service",
        "usr/local/share/doc/modelrunner/operations.md",
    ] {
        assert!(s.join(f).exists(), "{f} not installed");
    }
    let unit = std::fs::read_to_string(s.join("etc/systemd/system/modelrunnerd.service")).unwrap();
    assert_eq!(unit, std::fs::read_to_string(UNIT).unwrap());
    // A configuration that was edited survives a reinstall.
    std::fs::write(
        s.join("etc/modelrunner/modelrunnerd.toml"),
        "parallel = 2\n",
    )
    .unwrap();
    run(&[]);
    assert_eq!(
        std::fs::read_to_string(s.join("etc/modelrunner/modelrunnerd.toml")).unwrap(),
        "parallel = 2\n"
    );
    // Uninstall keeps the store and the configuration unless asked.
    std::fs::create_dir_all(s.join("var/lib/modelrunner/blobs")).unwrap();
    let said = run(&["--uninstall"]);
    assert!(said.contains("kept"), "{said}");
    assert!(!s.join("usr/local/bin/modelrunnerd").exists());
    assert!(!s.join("etc/systemd/system/modelrunnerd.service").exists());
    assert!(s.join("var/lib/modelrunner/blobs").exists());
    assert!(s.join("etc/modelrunner/modelrunnerd.toml").exists());
    run(&["--uninstall", "--purge"]);
    assert!(!s.join("var/lib/modelrunner").exists());
    assert!(!s.join("etc/modelrunner").exists());
}
