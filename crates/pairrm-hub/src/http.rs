//! The hub's file protocol, as `huggingface_hub` speaks it.
//!
//! - `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` (no redirects followed, except relative
//!   ones: a renamed repo) tells the commit the revision points to (`X-Repo-Commit`), the file's
//!   etag (`X-Linked-Etag` for LFS files — their sha256 —, else `ETag`), its size
//!   (`X-Linked-Size`, else `Content-Length`) and, for LFS files, where the content lives
//!   (`Location`, usually a CDN).
//! - `GET` of that location, with `Range: bytes=N-` to resume, following redirects.
//! - Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`,
//!   `GatedRepo`) and `X-Error-Message`.
//!
//! The token goes to the endpoint only, never to another host (a CDN's URLs are signed).

use std::io::Read;

use ureq::http::{HeaderMap, Response};
use ureq::Body;

use crate::settings::HubSettings;
use crate::verify::is_sha256;
use pairrm::{Error, Result};

/// Relative redirects followed when asking about a file (a renamed repo redirects once).
const MAX_RELATIVE_REDIRECTS: usize = 5;

/// What the hub says about a file at a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteFile {
    /// The commit the revision points to.
    pub commit: String,
    /// The etag: the blob's name in the cache.
    pub etag: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The sha256 of the content (lowercase hex), when the etag is one (LFS files).
    pub sha256: Option<String>,
    /// Where to download the content from.
    pub location: String,
}

/// The hub's answer about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    /// The file exists.
    Found(RemoteFile),
    /// The repo and revision exist but the file does not; the commit when the hub names it.
    Missing { commit: Option<String> },
}

/// A download under way: the body from byte `start` of the file.
pub(crate) struct Download {
    /// The offset of the body's first byte in the file (0 when the server ignored the range).
    pub start: u64,
    /// The body.
    pub body: Box<dyn Read + Send>,
}

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The connection failed or broke: worth another try.
    Transport(String),
    /// The server answered, and the answer is final.
    Refused(Error),
}

fn unreachable_message(endpoint: &str, cause: &str) -> String {
    format!(
        "cannot reach {endpoint} ({cause}); check the connection, HF_ENDPOINT and proxy settings, \
         or set HF_HUB_OFFLINE=1 to use the local cache only"
    )
}

/// An HTTP client for one hub endpoint.
pub(crate) struct HubClient {
    agent: ureq::Agent,
    endpoint: String,
    token: Option<String>,
    etag_timeout: std::time::Duration,
}

impl HubClient {
    /// A client for the endpoint, token, timeouts and proxy of `settings`.
    pub fn new(settings: &HubSettings) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(format!("pairrm/{}", env!("CARGO_PKG_VERSION")))
            .proxy(if settings.proxy_from_env { ureq::Proxy::try_from_env() } else { None })
            .timeout_connect(Some(settings.download_timeout))
            .timeout_per_read(Some(settings.download_timeout))
            .build();
        HubClient {
            agent: config.into(),
            endpoint: settings.endpoint.clone(),
            token: settings.token.clone(),
            etag_timeout: settings.etag_timeout,
        }
    }

    /// The endpoint's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, the revision and file percent-encoded.
    pub fn file_url(&self, repo: &str, revision: &str, file: &str) -> String {
        format!("{}/{repo}/resolve/{}/{}", self.endpoint, encode(revision, false), encode(file, true))
    }

    fn authorization(&self, url: &str) -> Option<String> {
        let token = self.token.as_ref()?;
        (origin(url) == origin(&self.endpoint)).then(|| format!("Bearer {token}"))
    }

    /// Asks the hub about `file` of `repo` at `revision`.
    pub fn head(&self, repo: &str, revision: &str, file: &str) -> Result<Head> {
        let mut url = self.file_url(repo, revision, file);
        for _ in 0..=MAX_RELATIVE_REDIRECTS {
            let mut request = self.agent.head(&url).header("Accept-Encoding", "identity");
            if let Some(auth) = self.authorization(&url) {
                request = request.header("Authorization", auth);
            }
            let response = request
                .config()
                .max_redirects(0)
                .timeout_recv_response(Some(self.etag_timeout))
                .build()
                .call()
                .map_err(|e| Error::Hub(unreachable_message(&self.endpoint, &e.to_string())))?;
            let status = response.status().as_u16();
            let headers = response.headers();
            let location = header(headers, "location");
            if (300..400).contains(&status) {
                if let Some(path) = location.filter(|l| l.starts_with('/') && !l.starts_with("//")) {
                    url = format!("{}{path}", origin(&url));
                    continue;
                }
            }
            return self.read_head(&response, &url, repo, revision, file);
        }
        Err(Error::Hub(format!("{url}: too many redirects")))
    }

    fn read_head(&self, response: &Response<Body>, url: &str, repo: &str, revision: &str, file: &str) -> Result<Head> {
        let status = response.status().as_u16();
        let headers = response.headers();
        let commit = header(headers, "x-repo-commit").map(str::to_string);
        if let Some(c) = &commit {
            if !is_name(c) {
                return Err(Error::Hub(format!("{url}: invalid X-Repo-Commit {c:?}")));
            }
        }
        if !(200..400).contains(&status) {
            return match self.status_error(status, headers, url, repo, revision) {
                Some(e) => Err(e),
                None => Ok(Head::Missing { commit }),
            };
        }
        let not_a_hub = |what: &str| {
            Error::Hub(format!(
                "{url} answered {status} without {what}: it does not look like a Hugging Face hub \
                 (check HF_ENDPOINT and proxy settings)"
            ))
        };
        let commit = commit.ok_or_else(|| not_a_hub("an X-Repo-Commit header"))?;
        let etag = header(headers, "x-linked-etag")
            .or_else(|| header(headers, "etag"))
            .map(normalize_etag)
            .ok_or_else(|| not_a_hub("an ETag"))?;
        if !is_name(&etag) {
            return Err(Error::Hub(format!("{url}: unusable ETag {etag:?}")));
        }
        let size = header(headers, "x-linked-size")
            .or_else(|| header(headers, "content-length"))
            .ok_or_else(|| not_a_hub("the file size (X-Linked-Size or Content-Length)"))?;
        let size = size.trim().parse::<u64>().map_err(|_| Error::Hub(format!("{url}: invalid size {size:?}")))?;
        // Download from where the hub redirects (LFS files), else from the file's URL at the
        // commit just named, so that a push in between cannot mix two commits.
        let location = match header(headers, "location") {
            Some(l) if (300..400).contains(&status) => resolve(url, l),
            _ => self.file_url(repo, &commit, file),
        };
        let sha256 = is_sha256(&etag).then(|| etag.to_ascii_lowercase());
        tracing::debug!(repo, file, commit, etag, size, location, "hub file metadata");
        Ok(Head::Found(RemoteFile { commit, etag, size, sha256, location }))
    }

    /// The error for an unsuccessful answer about a file, or `None` when it means "no such file".
    fn status_error(&self, status: u16, headers: &HeaderMap, url: &str, repo: &str, revision: &str) -> Option<Error> {
        let code = header(headers, "x-error-code").unwrap_or("");
        let message = header(headers, "x-error-message").unwrap_or("");
        let detail = if message.is_empty() { String::new() } else { format!(": {message}") };
        let endpoint = &self.endpoint;
        let token_hint = if self.token.is_some() {
            "the token that was sent may lack access to it"
        } else {
            "if it is private or gated, set HF_TOKEN (or log in with `hf auth login`)"
        };
        let message = match (status, code) {
            (_, "EntryNotFound") => return None,
            (_, "RevisionNotFound") => format!("revision {revision:?} not found in {repo} on {endpoint}"),
            (_, "GatedRepo") => format!(
                "{repo} is gated: accept its conditions at {endpoint}/{repo} and set HF_TOKEN to a token of that account ({status}{detail})"
            ),
            (401, _) if message == "Invalid credentials in Authorization header" => {
                format!("the hub rejected the token (HF_TOKEN or the token file) for {repo}: {message}")
            }
            (401, _) | (_, "RepoNotFound") => {
                format!("repository {repo} not found on {endpoint} ({status}); {token_hint}")
            }
            (403, _) => format!("access to {repo} refused ({status}{detail}); {token_hint}"),
            (404, _) => return None,
            _ => format!("{url}: the hub answered {status}{detail}"),
        };
        Some(Error::Hub(message))
    }

    /// Starts downloading `url` from byte `from` (a `Range` request when `from > 0`).
    pub fn get(&self, url: &str, from: u64) -> std::result::Result<Download, RequestError> {
        let mut request = self.agent.get(url).header("Accept-Encoding", "identity");
        if from > 0 {
            request = request.header("Range", format!("bytes={from}-"));
        }
        if let Some(auth) = self.authorization(url) {
            request = request.header("Authorization", auth);
        }
        let response = request.call().map_err(|e| RequestError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let start = match status {
            200 => 0,
            206 => {
                let range = header(response.headers(), "content-range").unwrap_or("");
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(from) {
                    return Err(RequestError::Refused(Error::Hub(format!(
                        "{url}: asked for bytes from {from}, got Content-Range {range:?}"
                    ))));
                }
                from
            }
            // The part we have is as long as the file or longer: start over.
            416 if from > 0 => return self.get(url, 0),
            _ => {
                let detail =
                    header(response.headers(), "x-error-message").map(|m| format!(": {m}")).unwrap_or_default();
                return Err(RequestError::Refused(Error::Hub(format!("{url}: the server answered {status}{detail}"))));
            }
        };
        Ok(Download { start, body: Box::new(response.into_body().into_reader()) })
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// `W/"abc"` or `"abc"` → `abc`.
fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_string()
}

/// Whether `s` can name a file or folder in the cache: ASCII letters, digits, `-`, `_`, `.`, not
/// starting with `.`, at most 128 characters.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// `location` (absolute, or relative to `url`'s origin or directory) as an absolute URL.
fn resolve(url: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = url.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(url))
    } else {
        let dir = url.rsplit_once('/').map_or(url, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

/// Percent-encodes everything but ASCII letters, digits, `-._~` (and `/` when `keep_slash`).
pub(crate) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let client = HubClient::new(&HubSettings::new("/tmp/unused"));
        assert_eq!(
            client.file_url("llm-blender/PairRM", "refs/pr/1", "sub dir/a+b.json"),
            "https://huggingface.co/llm-blender/PairRM/resolve/refs%2Fpr%2F1/sub%20dir/a%2Bb.json"
        );
        assert_eq!(origin("http://127.0.0.1:80/a/b"), "http://127.0.0.1:80");
        assert_eq!(origin("https://host"), "https://host");
        assert_eq!(resolve("https://hub/a/b/c", "https://cdn/x?sig=1"), "https://cdn/x?sig=1");
        assert_eq!(resolve("https://hub/a/b/c", "/new/c"), "https://hub/new/c");
        assert_eq!(resolve("https://hub/a/b/c", "//cdn/x"), "https://cdn/x");
        assert_eq!(resolve("https://hub/a/b/c", "d"), "https://hub/a/b/d");
    }

    #[test]
    fn token_goes_to_the_endpoint_only() {
        let mut settings = HubSettings::new("/tmp/unused");
        settings.token = Some("hf_secret".into());
        let client = HubClient::new(&settings);
        assert_eq!(
            client.authorization("https://huggingface.co/x/resolve/main/f").as_deref(),
            Some("Bearer hf_secret")
        );
        assert_eq!(client.authorization("https://cdn-lfs.huggingface.co/x"), None);
        assert_eq!(client.authorization("http://huggingface.co/x"), None);
    }

    #[test]
    fn etags_and_names() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        let sha = "a".repeat(64);
        assert!(is_sha256(&sha) && !is_sha256(&"a".repeat(40)));
        assert!(is_name(&sha) && is_name("0123abc"));
        for bad in ["", "../x", ".hidden", "a/b", "a b", &"a".repeat(129)] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
