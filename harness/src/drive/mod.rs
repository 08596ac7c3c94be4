//! Clients that talk to the platform: HTTP (JSON, raw bodies), server-sent events, and the event
//! window ([`events`]).

pub mod events;
pub mod ws;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A request as the runner builds it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<Vec<u8>>,
    /// Read the answer as server-sent events.
    pub sse: bool,
}

/// A response as the expectations see it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; for SSE `{events:[{event,data}], final}`; a string for non-JSON bodies.
    pub json: Value,
    pub latency: Duration,
}

/// Why a request got no answer to check (a transport failure, never a status: every status is an
/// answer).
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("{method} {url} failed: {source}")]
    Send {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("reading the body of {method} {url}: {source}")]
    Body {
        method: Method,
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Sends `req`; a transport failure is an error, not a panic.
pub async fn send(client: &reqwest::Client, req: &Request) -> Result<Response, DriveError> {
    let mut rb = client.request(req.method.clone(), &req.url);
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    if let Some(b) = &req.body {
        rb = rb.body(b.clone());
    }
    let started = Instant::now();
    let resp = rb.send().await.map_err(|source| DriveError::Send {
        method: req.method.clone(),
        url: req.url.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let bytes = resp.bytes().await.map_err(|source| DriveError::Body {
        method: req.method.clone(),
        url: req.url.clone(),
        source,
    })?;
    let latency = started.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    let json = if req.sse && status == 200 {
        parse_sse(&text)
    } else if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.to_string()))
    };
    Ok(Response {
        status,
        headers,
        json,
        latency,
    })
}

/// `{events: [{event, data}], final: <data of the last event>}` from an SSE body.
pub fn parse_sse(text: &str) -> Value {
    let mut events = vec![];
    for frame in text.split("\n\n") {
        let mut name = "message".to_string();
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if data.is_empty() && name == "message" {
            continue;
        }
        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
        events.push(json!({"event": name, "data": data}));
    }
    let last = events
        .last()
        .map(|e| e["data"].clone())
        .unwrap_or(Value::Null);
    json!({"events": events, "final": last})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_become_events_and_the_last_data_is_final() {
        let v = parse_sse("event: message_start\ndata: {\"a\":1}\n\nevent: message_chunk\ndata: hi\n\nevent: message_complete\ndata: {\"done\":true}\n\n");
        assert_eq!(v["events"].as_array().unwrap().len(), 3);
        assert_eq!(v["events"][1]["data"], "hi");
        assert_eq!(v["final"]["done"], true);
        assert_eq!(parse_sse("")["events"], json!([]));
    }
}
