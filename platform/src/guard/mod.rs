//! Guards: what stands between an attacker and a leak. The scripted model is naive on purpose, so
//! these checks, not the model, decide what reaches a tool or leaves the platform.
//!
//! - [`ssrf`]: whether a URL a tool is asked to fetch may be fetched, and at which addresses.

pub mod ssrf;
