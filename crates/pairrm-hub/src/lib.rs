//! Hugging Face hub downloads for pairrm, kept out of the engine so that embedding it never pulls
//! in an HTTP client or a TLS stack.
//!
//! The engine (`pairrm`) asks for hub files through its [`SnapshotSource`] seam and, by itself,
//! reads them from the local Hugging Face cache only ([`pairrm::checkpoint::hub`]). This crate
//! adds the other side of the seam:
//! - [`HubDownloader`], a [`SnapshotSource`] that fetches what the cache lacks from the hub
//!   (`HF_ENDPOINT`, `HF_TOKEN`), in `huggingface_hub`'s cache layout, resumed, checked (size,
//!   sha256), repaired when a cached blob is corrupt, and locked against concurrent downloads;
//! - [`EnvSource`], the downloader the process environment describes, made only when a hub id
//!   needs it (what the `pairrm` CLI and the Python package load models with);
//! - [`cache_scan`], what the cache holds (`pairrm models`).
//!
//! ```no_run
//! use pairrm::checkpoint::{Checkpoint, OpenOptions};
//! use pairrm_hub::EnvSource;
//!
//! let checkpoint = Checkpoint::open_with("llm-blender/PairRM", &OpenOptions::default(), &EnvSource::new())?;
//! # Ok::<(), pairrm::Error>(())
//! ```

pub mod cache_scan;
mod downloader;
mod http;
mod settings;
mod store;
mod transfer;
mod verify;

pub use downloader::{DownloadProgress, EnvSource, FileProgress, HubDownloader};
pub use pairrm::checkpoint::hub::{FileRequest, HubCache, SnapshotSource};
pub use settings::{HubSettings, DEFAULT_ENDPOINT};
