//! What can be checked of `docker/Dockerfile` without a Docker engine: each build stage
//! matches its runtime stage's distribution (so the binary runs with the image's glibc),
//! the libraries the binary needs are installed, the user is not root, and the paths,
//! port and health check agree with the daemon's configuration.

use std::collections::HashMap;
use std::process::Command;

use modelrunner_e2e::bin;

const DOCKERFILE: &str = include_str!("../../docker/Dockerfile");

/// `FROM image AS name` lines: name → image.
fn stages() -> HashMap<String, String> {
    DOCKERFILE
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 3 && w[1] == "AS").then(|| (w[2].to_string(), w[0].to_string()))
        })
        .collect()
}

/// The text of a stage, from its FROM to the next FROM.
fn stage_text(name: &str) -> String {
    let start = DOCKERFILE
        .find(&format!(" AS {name}\n"))
        .unwrap_or_else(|| panic!("no stage {name}"));
    let rest = &DOCKERFILE[start..];
    let end = rest[1..].find("\nFROM ").map_or(rest.len(), |i| i + 1);
    rest[..end].to_string()
}

fn env_value(key: &str) -> String {
    let at = DOCKERFILE
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key}"));
    DOCKERFILE[at + key.len() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('\\')
        .to_string()
}

#[test]
fn build_and_runtime_stages_share_a_distribution() {
    let s = stages();
    let distro = |image: &str| -> String {
        for d in ["bookworm", "ubuntu22.04", "ubuntu24.04", "bullseye"] {
            if image.contains(d) {
                return d.to_string();
            }
        }
        panic!("unknown distribution in {image}")
    };
    for variant in ["cpu", "cuda"] {
        let build = &s[&format!("build-{variant}")];
        let runtime = &s[&format!("runtime-{variant}")];
        assert_eq!(
            distro(build),
            distro(runtime),
            "{variant}: {build} vs {runtime}"
        );
    }
    assert!(DOCKERFILE.contains("FROM build-${VARIANT} AS build"));
    assert!(DOCKERFILE.contains("\nFROM runtime-${VARIANT}\n"));
    assert!(stage_text("build-cuda").contains("--features cuda"));
}

#[test]
fn the_runtime_installs_what_the_binary_links() {
    let out = Command::new("readelf")
        .args(["-d"])
        .arg(bin("modelrunnerd"))
        .output()
        .expect("readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let needed: Vec<String> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split('[')
                .nth(1)
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect();
    assert!(!needed.is_empty(), "{dynamic}");
    // Debian packages: essential ones come with every image.
    let package = |soname: &str| -> Option<&'static str> {
        match soname {
            s if s.starts_with("libc.so")
                || s.starts_with("libm.so")
                || s.starts_with("ld-linux") =>
            {
                None
            }
            s if s.starts_with("libgcc_s.so") => None,
            s if s.starts_with("libgomp.so") => Some("libgomp1"),
            s if s.starts_with("libstdc++.so") => Some("libstdc++6"),
            other => {
                panic!("the binary links {other}: add its package to docker/Dockerfile and here")
            }
        }
    };
    for variant in ["runtime-cpu", "runtime-cuda"] {
        let text = stage_text(variant);
        for so in &needed {
            if let Some(p) = package(so) {
                assert!(text.contains(p), "{variant} lacks {p} for {so}");
            }
        }
    }
    // The newest glibc symbol the binary uses is in bookworm's glibc (2.36).
    let out = Command::new("objdump")
        .arg("-T")
        .arg(bin("modelrunnerd"))
        .output()
        .unwrap();
    let newest = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| {
            w.strip_prefix("(GLIBC_")
                .or_else(|| w.strip_prefix("GLIBC_"))
        })
        .filter_map(|v| {
            let v = v.trim_end_matches(')');
            let mut p = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
            Some((p.next()?, p.next().unwrap_or(0)))
        })
        .max()
        .unwrap();
    assert!(newest <= (2, 36), "needs GLIBC {}.{}", newest.0, newest.1);
}

#[test]
fn user_paths_port_and_health_check_agree_with_the_daemon() {
    let user = DOCKERFILE
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    assert_ne!(user.trim(), "root");
    assert!(DOCKERFILE.contains(&format!("useradd --system --uid 10001 --home-dir /models --create-home --shell /usr/sbin/nologin {}", user.trim())));
    let store = env_value("MODELRUNNER_STORE");
    assert!(DOCKERFILE.contains(&format!("VOLUME [\"{store}\"]")));
    let listen = env_value("MODELRUNNER_LISTEN");
    let port = listen.rsplit(':').next().unwrap();
    assert!(DOCKERFILE.contains(&format!("EXPOSE {port}\n")));
    assert!(DOCKERFILE.contains(&format!("http://127.0.0.1:{port}/health")));
    assert!(DOCKERFILE.contains("ENTRYPOINT [\"/usr/local/bin/modelrunnerd\"]"));
    assert!(DOCKERFILE.contains(
        "COPY --from=build /usr/local/bin/modelrunnerd /usr/local/bin/modelrunner /usr/local/bin/"
    ));
    // The image's environment is a valid configuration once access is decided, and
    // without a decision the daemon refuses to start exposed.
    let run = |extra: &[(&str, &str)]| {
        let mut c = Command::new(bin("modelrunnerd"));
        c.arg("--print-config")
            .env("MODELRUNNER_STORE", &store)
            .env("MODELRUNNER_LISTEN", &listen)
            .env(
                "MODELRUNNER_LOG_FORMAT",
                env_value("MODELRUNNER_LOG_FORMAT"),
            )
            .env_remove("MODELRUNNER_INSECURE_NO_AUTH")
            .env_remove("MODELRUNNER_API_KEY_HASHES");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--insecure-no-auth"));
    let ok = run(&[("MODELRUNNER_INSECURE_NO_AUTH", "true")]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shown = String::from_utf8_lossy(&ok.stdout);
    assert!(
        shown.contains(&format!("store = \"{store}\""))
            && shown.contains(&format!("listen = \"{listen}\"")),
        "{shown}"
    );
    let key = "sha256:0b026dcaf52dd2d7e8b377ed75182bfcc65497aff885b3a37dd1be1a75ca394d";
    assert!(run(&[("MODELRUNNER_API_KEY_HASHES", key)]).status.success());
}
