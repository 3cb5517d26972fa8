//! A fault-injecting registry for faults a real one cannot make: wrong bytes, truncated
//! and over-long bodies, resets, stalls, ignored ranges, scripted statuses, redirects.
//! It speaks just enough HTTP/1.1 (keep-alive, Range) and records every request.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::sha256_hex;

/// What to do instead of the normal answer, once.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and headers, empty body.
    Status(u16, Vec<(String, String)>),
    /// The right length, wrong bytes.
    WrongBytes,
    /// Announce the full length, send this many bytes, close.
    Truncate(usize),
    /// Send this many bytes more than the blob has (and announce them).
    OverLong(usize),
    /// Send this many bytes, then reset the connection.
    Reset(usize),
    /// Send this many bytes, then go quiet for the duration, then close.
    Stall(usize, Duration),
    /// Answer a Range request with 200 and the whole blob.
    IgnoreRange,
    /// Redirect (307) to this URL.
    Redirect(String),
    /// Wait, then answer normally.
    Delay(Duration),
    /// Wait until the gate opens, then answer normally.
    Hold(Arc<Gate>),
}

/// A gate a [`Fault::Hold`] waits at until the test opens it.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    /// Opens the gate: held requests go on, later ones do not wait.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `HEAD`...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    /// Where upload sessions are sent (`scheme://host`), when not here.
    upload_base: Option<String>,
    manifests: HashMap<String, (Vec<u8>, String)>,
    blobs: HashMap<String, Vec<u8>>,
    faults: HashMap<String, VecDeque<Fault>>,
    seen: Vec<Seen>,
    basic: Option<String>,
    routes: HashMap<String, Route>,
}

/// Response headers, as names and values.
pub type Headers = Vec<(String, String)>;

/// A fixed answer for one path (with its query, or without to match any query).
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Headers,
    /// Body.
    pub body: Vec<u8>,
    /// The `Authorization` value required; others get `refused` (status, headers).
    pub auth: Option<(String, u16, Headers)>,
}

/// The fake registry; serves until dropped (its thread lingers harmlessly).
#[derive(Clone)]
pub struct FakeRegistry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    state: Arc<Mutex<State>>,
}

impl FakeRegistry {
    /// Starts serving on a free loopback port.
    pub fn start() -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state: Arc<Mutex<State>> = Default::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = st.clone();
                std::thread::spawn(move || serve(stream, st));
            }
        });
        FakeRegistry { host, state }
    }

    /// Requires `Authorization: Basic base64(user:pass)` on `/v2/` paths.
    pub fn require_basic(&self, user: &str, pass: &str) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        self.state.lock().unwrap().basic = Some(format!("Basic {b}"));
    }

    /// Stores a blob; returns its digest.
    pub fn put_blob(&self, bytes: Vec<u8>) -> String {
        let d = format!("sha256:{}", sha256_hex(&bytes));
        self.state.lock().unwrap().blobs.insert(d.clone(), bytes);
        d
    }

    /// Stores a manifest under `repo:tag` (and its digest); returns the digest.
    pub fn put_manifest(&self, repo: &str, tag: &str, bytes: Vec<u8>, media_type: &str) -> String {
        let d = format!("sha256:{}", sha256_hex(&bytes));
        let mut s = self.state.lock().unwrap();
        s.manifests.insert(
            format!("/v2/{repo}/manifests/{tag}"),
            (bytes.clone(), media_type.into()),
        );
        s.manifests.insert(
            format!("/v2/{repo}/manifests/{d}"),
            (bytes, media_type.into()),
        );
        d
    }

    /// Queues faults for requests to `path` (without query), used in order.
    pub fn fault(&self, path: &str, faults: Vec<Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(path.to_string())
            .or_default()
            .extend(faults);
    }

    /// Answers `path` (with its query, or without for any query) with `route`.
    pub fn route(&self, path: &str, route: Route) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), route);
    }

    /// Sends upload sessions to `base` (`http://host:port`), another server.
    pub fn uploads_at(&self, base: &str) {
        self.state.lock().unwrap().upload_base = Some(base.to_string());
    }

    /// Whether a blob (put by the test or uploaded) is held.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.state.lock().unwrap().blobs.contains_key(digest)
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests for `path` (query ignored).
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .collect()
    }
}

fn serve(stream: TcpStream, st: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        if !answer(&mut out, &st, method, path, headers, body) {
            return;
        }
    }
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head_only: bool,
) -> bool {
    let mut h = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.write_all(h.as_bytes()).is_ok() && (head_only || out.write_all(body).is_ok())
}

/// Answers one request; false closes the connection.
fn answer(
    out: &mut TcpStream,
    st: &Arc<Mutex<State>>,
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
) -> bool {
    let bare = path.split('?').next().unwrap_or("").to_string();
    let (fault, basic, manifest, blob, route) = {
        let mut s = st.lock().unwrap();
        s.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            headers: headers.clone(),
            at: Instant::now(),
        });
        let fault = s.faults.get_mut(&bare).and_then(VecDeque::pop_front);
        let blob = bare
            .rsplit_once("/blobs/")
            .and_then(|(_, d)| s.blobs.get(d).cloned());
        let route = s.routes.get(&path).or(s.routes.get(&bare)).cloned();
        (
            fault,
            s.basic.clone(),
            s.manifests.get(&bare).cloned(),
            blob,
            route,
        )
    };
    let head = method == "HEAD";
    fn hs(v: &[(String, String)]) -> Vec<(&str, String)> {
        v.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }
    if let Some(r) = route {
        if let Some((want, status, refused)) = &r.auth {
            if headers.get("authorization") != Some(want) {
                return respond(out, *status, &hs(refused), b"", head);
            }
        }
        return respond(out, r.status, &hs(&r.headers), &r.body, head);
    }
    if let Some(want) = basic {
        if bare.starts_with("/v2/") && headers.get("authorization") != Some(&want) {
            return respond(
                out,
                401,
                &[("www-authenticate", "Basic realm=\"fake\"".into())],
                b"",
                false,
            );
        }
    }
    if bare == "/v2/" {
        return respond(out, 200, &[], b"{}", head);
    }
    if let Some(answered) = upload(out, st, &method, &path, &bare, &headers, body) {
        return answered;
    }
    match fault {
        Some(Fault::Status(code, hs)) => {
            let hs: Vec<(&str, String)> = hs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            return respond(out, code, &hs, b"", head);
        }
        Some(Fault::Redirect(url)) => return respond(out, 307, &[("location", url)], b"", head),
        Some(Fault::Delay(d)) => std::thread::sleep(d),
        Some(Fault::Hold(ref gate)) => gate.wait(),
        _ => {}
    }
    if let Some((bytes, mt)) = manifest {
        return respond(out, 200, &[("content-type", mt)], &bytes, head);
    }
    let Some(mut data) = blob else {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        return respond(
            out,
            404,
            &[("content-type", "application/json".into())],
            body,
            head,
        );
    };
    let range = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let total = data.len();
    let (status, start) = match (range, &fault) {
        (
            Some(n),
            None | Some(Fault::Truncate(_)) | Some(Fault::Reset(_)) | Some(Fault::Stall(..)),
        ) if n < total => (206, n),
        _ => (200, 0),
    };
    let mut hs = vec![("content-type", "application/octet-stream".to_string())];
    if status == 206 {
        hs.push((
            "content-range",
            format!("bytes {start}-{}/{total}", total - 1),
        ));
    }
    match fault {
        Some(Fault::WrongBytes) => {
            for b in data.iter_mut() {
                *b ^= 0x5a;
            }
            respond(out, 200, &hs, &data, head)
        }
        Some(Fault::OverLong(extra)) => {
            data.extend(std::iter::repeat_n(7u8, extra));
            respond(out, 200, &hs, &data, head)
        }
        Some(Fault::Truncate(n)) | Some(Fault::Reset(n)) | Some(Fault::Stall(n, _)) => {
            let part = &data[start..];
            let mut h = format!("HTTP/1.1 {status} X\r\n");
            for (k, v) in &hs {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str(&format!("content-length: {}\r\n\r\n", part.len()));
            let _ = out.write_all(h.as_bytes());
            let _ = out.write_all(&part[..n.min(part.len())]);
            let _ = out.flush();
            match fault {
                Some(Fault::Reset(_)) => {
                    set_linger_zero(out);
                }
                Some(Fault::Stall(_, d)) => std::thread::sleep(d),
                _ => {}
            }
            false
        }
        _ => respond(out, status, &hs, &data[start..], head),
    }
}

/// The push side: upload sessions (`POST .../blobs/uploads/` then `PUT /upload/N?digest=`)
/// and manifest `PUT`s. `None` when the request is not one of those.
fn upload(
    out: &mut TcpStream,
    st: &Arc<Mutex<State>>,
    method: &str,
    path: &str,
    bare: &str,
    headers: &HashMap<String, String>,
    body: Vec<u8>,
) -> Option<bool> {
    if method == "POST" && bare.ends_with("/blobs/uploads/") {
        let base = st.lock().unwrap().upload_base.clone().unwrap_or_default();
        let n: u32 = rand_id();
        return Some(respond(
            out,
            202,
            &[("location", format!("{base}/upload/{n}"))],
            b"",
            false,
        ));
    }
    if method == "PUT" && bare.starts_with("/upload/") {
        let digest = path
            .split_once("digest=")
            .map(|(_, d)| crate::registry::percent_decode(d.split('&').next().unwrap_or("")))
            .unwrap_or_default();
        if digest != format!("sha256:{}", sha256_hex(&body)) {
            return Some(respond(out, 400, &[], b"digest mismatch", false));
        }
        st.lock().unwrap().blobs.insert(digest, body);
        return Some(respond(out, 201, &[], b"", false));
    }
    if method == "PUT" && bare.contains("/manifests/") {
        let mt = headers.get("content-type").cloned().unwrap_or_default();
        let d = format!("sha256:{}", sha256_hex(&body));
        st.lock()
            .unwrap()
            .manifests
            .insert(bare.to_string(), (body, mt));
        return Some(respond(
            out,
            201,
            &[("docker-content-digest", d)],
            b"",
            false,
        ));
    }
    None
}

fn rand_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes the next close send a reset instead of a FIN.
fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
