//! A blocking client for OpenAI-compatible text generation servers (vLLM, TGI, llama.cpp,
//! Ollama, OpenAI): `/v1/completions` and `/v1/chat/completions` with `n` samples per request,
//! a bearer token, per-request timeouts, and retries with exponential backoff and jitter on
//! rate limits, server errors and connection errors (honouring `Retry-After`).

mod client;
mod retry;
mod wire;

pub use client::{Client, ClientOptions, RequestError};
pub use retry::RetryPolicy;
pub use wire::{Params, Prompt, Usage, RESERVED_FIELDS};
