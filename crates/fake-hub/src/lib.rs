//! A fake Hugging Face hub for tests: serves repos held in memory over HTTP/1.1 on 127.0.0.1 (an
//! ephemeral port), with the hub's URL layout and the response headers `huggingface_hub` and
//! pairrm read:
//!
//! - `HEAD|GET /{org}/{name}/resolve/{revision}/{file}`: `X-Repo-Commit`; for plain (git) files
//!   `200` with `ETag` and `Content-Length`; for LFS files `302` to `/cdn/{sha256}/{file}` with
//!   `X-Linked-Etag` (the sha256) and `X-Linked-Size`. Errors carry `X-Error-Code`
//!   (`RepoNotFound` 401, `RevisionNotFound` 404, `EntryNotFound` 404 with `X-Repo-Commit`).
//! - `GET /cdn/{sha256}/{file}`: the content, with `Range: bytes=N-` answered by `206`.
//!
//! Tests add commits ([`FakeHub::commit`]), read the request log ([`FakeHub::requests`]), make
//! a repo private ([`FakeHub::require_token`]), gated ([`FakeHub::gate`]) or renamed
//! ([`FakeHub::rename`]), and inject faults into content downloads ([`FakeHub::fault`]): a
//! connection dropped mid-body, a corrupted byte, a range ignored, or a pause until the test
//! releases it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

/// A file of a commit.
#[derive(Debug, Clone)]
pub struct FakeFile {
    /// Path in the repo.
    pub name: String,
    /// Content.
    pub content: Vec<u8>,
    /// Stored with Git LFS (served through the CDN, etag = sha256).
    pub lfs: bool,
}

impl FakeFile {
    /// A plain git file.
    pub fn git(name: &str, content: impl Into<Vec<u8>>) -> Self {
        FakeFile { name: name.to_string(), content: content.into(), lfs: false }
    }

    /// A Git LFS file.
    pub fn lfs(name: &str, content: impl Into<Vec<u8>>) -> Self {
        FakeFile { name: name.to_string(), content: content.into(), lfs: true }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `HEAD`, `GET`, ...
    pub method: String,
    /// The path (percent-encoded, as sent).
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Logged {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Something to go wrong in the next content download of a file.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Send the headers and this many body bytes, then close the connection.
    DropAfter(usize),
    /// Flip the bits of one body byte.
    Corrupt,
    /// Answer `200` with the whole file even when a range is asked for.
    IgnoreRange,
    /// Send this many body bytes, open the gate's `started` signal, wait until the gate is
    /// released, then send the rest.
    Pause(usize, Arc<Gate>),
}

/// A signal between a paused download and the test.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Self> {
        Arc::new(Gate::default())
    }

    /// Waits until a paused download has started.
    pub fn wait_started(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.changed.wait(s).unwrap();
        }
    }

    /// Lets the paused download finish.
    pub fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn started_and_wait(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.changed.notify_all();
        while !s.1 {
            s = self.changed.wait(s).unwrap();
        }
    }
}

#[derive(Default)]
struct Repo {
    /// commit → files.
    commits: HashMap<String, BTreeMap<String, FakeFile>>,
    /// branch or tag → commit.
    refs: HashMap<String, String>,
    token: Option<String>,
    gated: bool,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    /// sha256 → content.
    blobs: HashMap<String, Vec<u8>>,
    log: Vec<Logged>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// old repo id → new repo id.
    renamed: HashMap<String, String>,
    commits_made: u64,
}

/// The server; it runs until the value is dropped (the listener thread then exits on its own
/// after the next connection attempt, which `Drop` makes).
pub struct FakeHub {
    url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<Mutex<bool>>,
}

impl FakeHub {
    /// Starts a server on 127.0.0.1 on an ephemeral port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(Mutex::new(false));
        let (s, st, base) = (state.clone(), stop.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if *st.lock().unwrap() {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (s, base) = (s.clone(), base.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &s, &base);
                });
            }
        });
        FakeHub { url, state, stop }
    }

    /// The base URL (`http://127.0.0.1:PORT`), to use as `HF_ENDPOINT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a commit holding `files` to `repo` (created if new) and points each of `refs`
    /// (branches or tags) at it. Returns the commit hash.
    pub fn commit(&self, repo: &str, refs: &[&str], files: Vec<FakeFile>) -> String {
        let mut state = self.state.lock().unwrap();
        state.commits_made += 1;
        let mut h = Sha256::new();
        h.update(repo.as_bytes());
        h.update(state.commits_made.to_le_bytes());
        let commit = hex(&h.finalize())[..40].to_string();
        let mut tree = BTreeMap::new();
        for f in files {
            if f.lfs {
                state.blobs.insert(sha256_hex(&f.content), f.content.clone());
            }
            tree.insert(f.name.clone(), f);
        }
        let r = state.repos.entry(repo.to_string()).or_default();
        r.commits.insert(commit.clone(), tree);
        for name in refs {
            r.refs.insert(name.to_string(), commit.clone());
        }
        commit
    }

    /// Makes `repo` private: only requests with `Authorization: Bearer {token}` see it.
    pub fn require_token(&self, repo: &str, token: &str) {
        self.state.lock().unwrap().repos.entry(repo.to_string()).or_default().token = Some(token.to_string());
    }

    /// Makes `repo` gated: without `Authorization: Bearer {token}` it answers `401` (no token) or
    /// `403` (another token) with `X-Error-Code: GatedRepo`.
    pub fn gate(&self, repo: &str, token: &str) {
        let mut state = self.state.lock().unwrap();
        let r = state.repos.entry(repo.to_string()).or_default();
        r.token = Some(token.to_string());
        r.gated = true;
    }

    /// Makes `old` a former name of `new`: its URLs redirect (`307`, relative) to `new`'s.
    pub fn rename(&self, old: &str, new: &str) {
        self.state.lock().unwrap().renamed.insert(old.to_string(), new.to_string());
    }

    /// Queues `fault` for the next content download (`GET /cdn/...`) of a file named `file`.
    pub fn fault(&self, file: &str, fault: Fault) {
        self.state.lock().unwrap().faults.entry(file.to_string()).or_default().push_back(fault);
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// The sha256 of `bytes`, lowercase hex (the etag of an LFS file).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to write.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    fault: Option<Fault>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply { status, headers: Vec::new(), body: Vec::new(), fault: None }
    }

    fn header(mut self, k: &str, v: impl ToString) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Reply::new(status).header("X-Error-Code", code).header("X-Error-Message", message)
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, base: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = match (parts.next(), parts.next()) {
        (Some(m), Some(p)) => (m.to_string(), p.to_string()),
        _ => return Ok(()),
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let logged = Logged { method: method.clone(), path: path.clone(), headers };
    let reply = {
        let mut s = state.lock().unwrap();
        s.log.push(logged.clone());
        route(&mut s, &logged, base)
    };
    write_reply(stream, &method, reply)
}

fn route(s: &mut State, req: &Logged, base: &str) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let (sha, name) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(content) = s.blobs.get(sha).cloned() else {
            return Reply::new(404);
        };
        let fault = s.faults.get_mut(&percent_decode(name)).and_then(|q| q.pop_front());
        return content_reply(content, req.header("range"), fault);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [org, name, "resolve", revision, file] = segments[..] else {
        return Reply::new(404);
    };
    let repo_id = format!("{org}/{name}");
    if let Some(new) = s.renamed.get(&repo_id) {
        return Reply::new(307).header("Location", format!("/{new}/resolve/{revision}/{file}"));
    }
    let Some(repo) = s.repos.get(&repo_id) else {
        return Reply::error(401, "RepoNotFound", "Repository not found");
    };
    if let Some(token) = &repo.token {
        let sent = req.header("authorization");
        if sent != Some(&format!("Bearer {token}")) {
            return match (repo.gated, sent) {
                (false, _) => Reply::error(401, "RepoNotFound", "Repository not found"),
                (true, None) => Reply::error(401, "GatedRepo", "Access to this model is restricted"),
                (true, Some(_)) => Reply::error(403, "GatedRepo", "Access to this model is restricted"),
            };
        }
    }
    let revision = percent_decode(revision);
    let file = percent_decode(file);
    let commit = match repo.refs.get(&revision) {
        Some(c) => c.clone(),
        None if repo.commits.contains_key(&revision) => revision.clone(),
        None => return Reply::error(404, "RevisionNotFound", "Invalid rev id"),
    };
    let Some(f) = repo.commits[&commit].get(&file) else {
        return Reply::error(404, "EntryNotFound", "Entry not found").header("X-Repo-Commit", &commit);
    };
    if f.lfs {
        let sha = sha256_hex(&f.content);
        Reply::new(302)
            .header("X-Repo-Commit", &commit)
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", f.content.len())
            .header("ETag", format!("\"{}\"", &sha256_hex(sha.as_bytes())[..40]))
            .header("Location", format!("{base}/cdn/{sha}/{}?signature=x", f.name))
    } else {
        let etag = &sha256_hex(&[b"blob ".as_slice(), &f.content].concat())[..40];
        let mut r = Reply::new(200).header("X-Repo-Commit", &commit).header("ETag", format!("\"{etag}\""));
        r.body = f.content.clone();
        r
    }
}

fn content_reply(content: Vec<u8>, range: Option<&str>, fault: Option<Fault>) -> Reply {
    let from = range
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let honour = !matches!(fault, Some(Fault::IgnoreRange));
    let mut reply = match from {
        Some(n) if honour && n >= content.len() => {
            return Reply::new(416).header("Content-Range", format!("bytes */{}", content.len()))
        }
        Some(n) if honour => {
            let mut r =
                Reply::new(206).header("Content-Range", format!("bytes {n}-{}/{}", content.len() - 1, content.len()));
            r.body = content[n..].to_vec();
            r
        }
        _ => {
            let mut r = Reply::new(200);
            r.body = content;
            r
        }
    };
    reply.headers.push(("Accept-Ranges".into(), "bytes".into()));
    reply.fault = fault;
    reply
}

fn write_reply(mut stream: TcpStream, method: &str, mut reply: Reply) -> std::io::Result<()> {
    let reason = match reply.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        403 => "Forbidden",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    let has_length = reply.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return stream.flush();
    }
    match reply.fault.take() {
        Some(Fault::DropAfter(n)) => {
            stream.write_all(&reply.body[..n.min(reply.body.len())])?;
            stream.flush()?;
            return stream.shutdown(std::net::Shutdown::Both);
        }
        Some(Fault::Corrupt) if !reply.body.is_empty() => {
            let i = reply.body.len() / 2;
            reply.body[i] ^= 0xff;
        }
        Some(Fault::Pause(n, gate)) => {
            let n = n.min(reply.body.len());
            stream.write_all(&reply.body[..n])?;
            stream.flush()?;
            gate.started_and_wait();
            stream.write_all(&reply.body[n..])?;
            return stream.flush();
        }
        _ => {}
    }
    stream.write_all(&reply.body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("refs%2Fpr%2F1"), "refs/pr/1");
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("plain"), "plain");
    }
}
