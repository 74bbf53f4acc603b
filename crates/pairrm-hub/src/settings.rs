//! Where the hub is, where the cache is, and how to talk to the hub: read once from the
//! environment (the same variables as `huggingface_hub`), or set explicitly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pairrm::checkpoint::hub;
use pairrm::{Error, Result};

/// The public hub, used when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Seconds to wait for the hub's answer about a file (`HF_HUB_ETAG_TIMEOUT`), as
/// `huggingface_hub`.
const DEFAULT_ETAG_TIMEOUT_S: f64 = 10.0;
/// Seconds to wait for a connection or for data while downloading (`HF_HUB_DOWNLOAD_TIMEOUT`), as
/// `huggingface_hub`.
const DEFAULT_DOWNLOAD_TIMEOUT_S: f64 = 10.0;
/// Further attempts after a download breaks off mid-file (each resumes where the last stopped).
const DEFAULT_RETRIES: u32 = 3;

/// How [`crate::HubDownloader`] reaches the hub and where it stores files.
#[derive(Clone)]
pub struct HubSettings {
    /// The hub's base URL without a trailing `/` (`HF_ENDPOINT`, default [`DEFAULT_ENDPOINT`]).
    /// Files are fetched from `{endpoint}/{repo}/resolve/{revision}/{file}`.
    pub endpoint: String,
    /// The cache directory (the one holding `models--*`; see [`hub::cache_dir_from`]).
    pub cache_dir: PathBuf,
    /// The access token sent as `Authorization: Bearer` to the endpoint (`HF_TOKEN`, else the
    /// token file), for private and gated repos.
    pub token: Option<String>,
    /// Never use the network: answer from the cache alone (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// How long to wait for the hub's answer about a file (`HF_HUB_ETAG_TIMEOUT`).
    pub etag_timeout: Duration,
    /// How long to wait for a connection, and for each read while downloading
    /// (`HF_HUB_DOWNLOAD_TIMEOUT`).
    pub download_timeout: Duration,
    /// Further attempts, each resuming where the last stopped, when a download breaks off.
    pub retries: u32,
    /// Use the proxy named by `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (honouring `NO_PROXY`).
    pub proxy_from_env: bool,
}

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .field("etag_timeout", &self.etag_timeout)
            .field("download_timeout", &self.download_timeout)
            .field("retries", &self.retries)
            .field("proxy_from_env", &self.proxy_from_env)
            .finish()
    }
}

impl HubSettings {
    /// Settings for the public hub with the cache at `cache_dir`: no token, online, default
    /// timeouts and retries, no proxy.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        HubSettings {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            cache_dir: cache_dir.into(),
            token: None,
            offline: false,
            etag_timeout: Duration::from_secs_f64(DEFAULT_ETAG_TIMEOUT_S),
            download_timeout: Duration::from_secs_f64(DEFAULT_DOWNLOAD_TIMEOUT_S),
            retries: DEFAULT_RETRIES,
            proxy_from_env: false,
        }
    }

    /// The settings the process environment gives (see [`HubSettings::from_vars`]).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// The settings the variables read by `get` give, with `huggingface_hub`'s rules:
    /// - cache: `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`, ... ([`hub::cache_dir_from`]);
    /// - endpoint: `HF_ENDPOINT` (trailing `/` removed), else [`DEFAULT_ENDPOINT`];
    /// - offline: `HF_HUB_OFFLINE` or `TRANSFORMERS_OFFLINE` ([`hub::offline_from`]);
    /// - token: none if `HF_HUB_DISABLE_IMPLICIT_TOKEN` is set, else `HF_TOKEN`, else
    ///   `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH`, else `HF_HOME/token`
    ///   (surrounding whitespace removed; empty means none);
    /// - timeouts: `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DOWNLOAD_TIMEOUT`, in seconds (default 10);
    /// - proxies from `HTTPS_PROXY` and friends.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let cache_dir = hub::cache_dir_from(&get).ok_or_else(|| {
            Error::Hub("cannot locate the Hugging Face cache: set HF_HUB_CACHE or HF_HOME (HOME is not set)".into())
        })?;
        let endpoint = var("HF_ENDPOINT").map(|e| e.trim_end_matches('/').to_string());
        let endpoint = endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Hub(format!("HF_ENDPOINT {endpoint:?} is not an http(s) URL")));
        }
        let token = if var("HF_HUB_DISABLE_IMPLICIT_TOKEN").is_some_and(|v| hub::is_truthy(&v)) {
            None
        } else {
            match var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")) {
                Some(t) => Some(t),
                None => {
                    let path = var("HF_TOKEN_PATH")
                        .map(PathBuf::from)
                        .or_else(|| hub::hf_home_from(&get).map(|h| h.join("token")));
                    path.and_then(|p| read_token_file(&p))
                }
            }
        };
        let seconds = |key: &str, default: f64| -> Result<Duration> {
            match var(key) {
                None => Ok(Duration::from_secs_f64(default)),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| Error::Hub(format!("{key}={v:?} is not a positive number of seconds"))),
            }
        };
        Ok(HubSettings {
            endpoint,
            cache_dir,
            token,
            offline: hub::offline_from(&get),
            etag_timeout: seconds("HF_HUB_ETAG_TIMEOUT", DEFAULT_ETAG_TIMEOUT_S)?,
            download_timeout: seconds("HF_HUB_DOWNLOAD_TIMEOUT", DEFAULT_DOWNLOAD_TIMEOUT_S)?,
            retries: DEFAULT_RETRIES,
            proxy_from_env: true,
        })
    }
}

/// The token stored in `path` (as `hf auth login` writes it), if the file exists and is not empty.
fn read_token_file(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t.trim().to_string()).filter(|t| !t.is_empty()),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the Hugging Face token file");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let s = HubSettings::from_vars(vars(&[("HOME", "/nonexistent-home")])).unwrap();
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(s.cache_dir, Path::new("/nonexistent-home/.cache/huggingface/hub"));
        assert_eq!(s.token, None);
        assert!(!s.offline && s.proxy_from_env);
        assert_eq!(s.etag_timeout, Duration::from_secs(10));
        assert!(HubSettings::from_vars(vars(&[])).unwrap_err().to_string().contains("HF_HUB_CACHE"));
    }

    #[test]
    fn variables() {
        let s = HubSettings::from_vars(vars(&[
            ("HF_HUB_CACHE", "/c"),
            ("HF_ENDPOINT", "http://127.0.0.1:8080/"),
            ("HF_TOKEN", " hf_x \n"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HUB_ETAG_TIMEOUT", "2.5"),
            ("HF_HUB_DOWNLOAD_TIMEOUT", "30"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:8080");
        assert_eq!(s.cache_dir, Path::new("/c"));
        assert_eq!(s.token.as_deref(), Some("hf_x"));
        assert!(s.offline);
        assert_eq!(s.etag_timeout, Duration::from_millis(2500));
        assert_eq!(s.download_timeout, Duration::from_secs(30));
        assert!(!format!("{s:?}").contains("hf_x"), "the token is never printed");

        let legacy = HubSettings::from_vars(vars(&[("HF_HUB_CACHE", "/c"), ("HUGGING_FACE_HUB_TOKEN", "hf_old")]));
        assert_eq!(legacy.unwrap().token.as_deref(), Some("hf_old"));
        let disabled = HubSettings::from_vars(vars(&[
            ("HF_HUB_CACHE", "/c"),
            ("HF_TOKEN", "hf_x"),
            ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "true"),
        ]));
        assert_eq!(disabled.unwrap().token, None);
    }

    #[test]
    fn token_file() {
        let home = tempfile::tempdir().unwrap();
        let hf_home = home.path().to_str().unwrap();
        std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
        let s = HubSettings::from_vars(vars(&[("HF_HOME", hf_home)])).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_from_file"));
        assert_eq!(s.cache_dir, home.path().join("hub"));
        // HF_TOKEN wins over the file; HF_TOKEN_PATH moves the file.
        let s = HubSettings::from_vars(vars(&[("HF_HOME", hf_home), ("HF_TOKEN", "hf_env")])).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_env"));
        let other = home.path().join("other-token");
        std::fs::write(&other, "hf_other").unwrap();
        let s = HubSettings::from_vars(vars(&[("HF_HOME", hf_home), ("HF_TOKEN_PATH", other.to_str().unwrap())]));
        assert_eq!(s.unwrap().token.as_deref(), Some("hf_other"));
        std::fs::write(home.path().join("token"), "  \n").unwrap();
        assert_eq!(HubSettings::from_vars(vars(&[("HF_HOME", hf_home)])).unwrap().token, None);
    }

    #[test]
    fn bad_values() {
        let e = HubSettings::from_vars(vars(&[("HF_HUB_CACHE", "/c"), ("HF_ENDPOINT", "ftp://x")])).unwrap_err();
        assert!(e.to_string().contains("HF_ENDPOINT \"ftp://x\" is not an http(s) URL"), "{e}");
        let e = HubSettings::from_vars(vars(&[("HF_HUB_CACHE", "/c"), ("HF_HUB_ETAG_TIMEOUT", "soon")])).unwrap_err();
        assert!(e.to_string().contains("HF_HUB_ETAG_TIMEOUT=\"soon\""), "{e}");
    }
}
