//! Registries for tests: the real CNCF Distribution registry (Debian's `docker-registry`)
//! on a free loopback port, with TLS from a CA made here, htpasswd basic auth or a token
//! server run here; and certificates made with `openssl`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// How a test registry is set up.
#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a CA made for the test.
    pub tls: bool,
    /// Require basic auth with this user and password (htpasswd).
    pub basic: Option<(String, String)>,
    /// Require tokens from a token server run by the test, which accepts this user.
    pub token: Option<(String, String)>,
}

/// A running `docker-registry`; killed on drop.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Scratch directory: config, storage, certificates.
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM) when TLS is on.
    pub ca: Option<PathBuf>,
    /// The token server, when token auth is on.
    pub token_server: Option<TokenServer>,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed RSA certificate `cert` with key `key` in `dir`.
fn self_signed(dir: &Path, subject: &str, key: &str, cert: &str) {
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
            "-keyout", key, "-out", cert,
        ],
    );
}

/// Makes `ca.pem`/`ca.key` and a server certificate `server.pem`/`server.key` for
/// 127.0.0.1 and localhost in `dir`.
pub fn make_certs(dir: &Path) {
    self_signed(dir, "/CN=modelrunner test CA", "ca.key", "ca.pem");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

impl TestRegistry {
    /// Starts a registry and waits until it answers.
    pub fn start(opts: RegistryOptions) -> TestRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        let mut ca = None;
        if opts.tls {
            make_certs(dir.path());
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display()
            ));
            ca = Some(dir.path().join("ca.pem"));
        }
        if let Some((user, pass)) = &opts.basic {
            let hash = bcrypt::hash(pass, 4).unwrap();
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            ));
        }
        let mut token_server = None;
        if let Some((user, pass)) = &opts.token {
            let ts = TokenServer::start(dir.path(), user, pass);
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                ts.url,
                ts.cert.display()
            ));
            token_server = Some(ts);
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        // The access log (one line per request) and errors go to registry.log.
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is missing; scripts/deps.sh installs it");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&host).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TestRegistry {
            child,
            host,
            dir,
            ca,
            token_server,
        }
    }
}

/// A request the registry logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, `PUT`...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The status it answered.
    pub status: u16,
    /// Bytes of the body it sent.
    pub bytes: u64,
}

impl TestRegistry {
    /// Every request the registry has answered so far, from its own access log.
    pub fn requests(&self) -> Vec<Logged> {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap();
        log.lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once("] \"")?;
                let (line, rest) = rest.split_once("\" ")?;
                let mut w = line.split(' ');
                let (method, path) = (w.next()?, w.next()?);
                let mut rest = rest.split(' ');
                let status = rest.next()?.parse().ok()?;
                let bytes = rest.next()?.parse().unwrap_or(0);
                Some(Logged {
                    method: method.to_string(),
                    path: path.to_string(),
                    status,
                    bytes,
                })
            })
            .collect()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `skopeo --insecure-policy ARGS` and expects success; returns stdout.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo is missing; scripts/deps.sh installs it");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Writes a Docker config with basic credentials for `host` into a new directory.
pub fn docker_config(dir: &Path, host: &str, user: &str, pass: &str) -> PathBuf {
    let d = dir.join(format!("docker-{}", host.replace([':', '.'], "-")));
    std::fs::create_dir_all(&d).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        d.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    d
}

/// What the token server saw: each request's `Authorization` header and query.
pub type TokenLog = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// A token server for the registry's `token` auth: checks basic credentials and signs
/// JWTs (RS256, with the certificate in `x5c`) with `openssl`. Anonymous callers get
/// tokens that only pull `public/` repositories, as on Docker Hub.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The signing certificate (the registry's root bundle).
    pub cert: PathBuf,
    /// Each request's `Authorization` header (None when absent) and query.
    pub requests: TokenLog,
}

impl TokenServer {
    fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        self_signed(dir, "/CN=token signer", "token.key", "token.pem");
        let der = Command::new("openssl")
            .args(["x509", "-in", "token.pem", "-outform", "DER"])
            .current_dir(dir)
            .output()
            .unwrap()
            .stdout;
        let b64 = base64::engine::general_purpose::STANDARD;
        let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = url_b64.encode(
            serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [b64.encode(&der)]})
                .to_string(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests: TokenLog = Default::default();
        let expected = format!("Basic {}", b64.encode(format!("{user}:{pass}")));
        let key = dir.join("token.key");
        let log = requests.clone();
        let user = user.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (line, headers) = match read_head(&stream) {
                    Some(h) => h,
                    None => continue,
                };
                let auth = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    .map(|(_, v)| v.clone());
                let query = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.split_once('?'))
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push((auth.clone(), query.clone()));
                let mut s = stream;
                let anonymous = auth.is_none();
                if !anonymous && auth.as_deref() != Some(expected.as_str()) {
                    let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    continue;
                }
                let access: Vec<serde_json::Value> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(percent_decode)
                    .filter_map(|s| {
                        let mut parts = s.splitn(3, ':');
                        let (t, n, a) = (parts.next()?, parts.next()?, parts.next()?);
                        // Anonymous callers may only pull, and only public/ repositories.
                        if anonymous && !n.starts_with("public/") {
                            return None;
                        }
                        let actions: Vec<&str> = a
                            .split(',')
                            .filter(|x| !anonymous || *x == "pull")
                            .collect();
                        Some(serde_json::json!({"type": t, "name": n, "actions": actions}))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let claims = url_b64.encode(
                    serde_json::json!({
                        "iss": "test-issuer", "sub": user, "aud": "test-registry",
                        "exp": now + 600, "nbf": now - 60, "iat": now - 60,
                        "jti": format!("{now}-{}", rand_u64()), "access": access,
                    })
                    .to_string(),
                );
                let signing_input = format!("{header}.{claims}");
                let mut child = Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&key)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(signing_input.as_bytes())
                    .unwrap();
                let sig = child.wait_with_output().unwrap().stdout;
                let token = format!("{signing_input}.{}", url_b64.encode(sig));
                let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            url,
            cert: dir.join("token.pem"),
            requests,
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// Decodes `%XX` escapes and `+`.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let v = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?');
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an HTTP request head: the request line and headers.
pub fn read_head(stream: &TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let mut r = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if line.is_empty() {
        return None;
    }
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = vec![0u8; content_length];
    r.read_exact(&mut body).ok()?;
    Some((line.trim_end().to_string(), headers))
}
