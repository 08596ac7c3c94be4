//! The WebSocket client of `ws:` steps: opens the chat session (and any peers' sessions first),
//! sends the step's frames one at a time, each once the one before has had its last answer
//! (`message_complete`, `pong` or `error`; `typing` has none), then waits a short settling time
//! for frames that must not arrive (another session's typing notice).

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Frames = Arc<Mutex<Vec<Value>>>;

/// What a `ws:` step saw: the upgrade's status, the session's frames, and each peer's.
#[derive(Debug, Clone)]
pub struct Seen {
    pub status: u16,
    /// The session's frames in order (the error envelope when the upgrade was refused).
    pub frames: Vec<Value>,
    pub peers: Vec<Vec<Value>>,
}

/// The frame types that end an answer.
const LAST: [&str; 3] = ["message_complete", "pong", "error"];

fn answers_expected(sent: &[Value]) -> usize {
    sent.iter().filter(|f| f["type"] != "typing").count()
}

fn done(frames: &Frames, n: usize) -> bool {
    let f = frames.lock().unwrap_or_else(|e| e.into_inner());
    f.iter()
        .filter(|v| LAST.contains(&v["type"].as_str().unwrap_or_default()))
        .count()
        >= n
}

/// Waits until the server's `handshake_ack` is among `frames`; false at `deadline`.
async fn acknowledged(frames: &Frames, deadline: Instant) -> bool {
    loop {
        if frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|v| v["type"] == "handshake_ack")
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

type Conn =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a WebSocket session could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// A peer's upgrade was refused (its status and body).
    #[error("peer {peer} could not connect: {status} {body}")]
    PeerRefused {
        peer: usize,
        status: u16,
        body: Value,
    },
    /// A peer's connection failed before any answer (no status): the transport, not the platform.
    #[error("peer {peer} could not reach the platform: {reason}")]
    PeerUnreachable { peer: usize, reason: String },
    /// The platform never acknowledged a session (`who`: the session or a peer).
    #[error("the {who} was not acknowledged in time")]
    NotAcknowledged { who: &'static str },
    /// A frame could not be sent.
    #[error("sending a frame: {0}")]
    Send(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Opens a session; a refused upgrade is `Err((status, body))`.
async fn open(url: &str, headers: &BTreeMap<String, String>) -> Result<Conn, (u16, Value)> {
    let mut req = url
        .into_client_request()
        .map_err(|e| (0, json!(e.to_string())))?;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            k.parse::<tokio_tungstenite::tungstenite::http::HeaderName>(),
            v.parse(),
        ) {
            req.headers_mut().insert(k, v);
        }
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((resp.status().as_u16(), body))
        }
        Err(e) => Err((0, json!(e.to_string()))),
    }
}

/// Reads text frames into `into` until the socket ends.
fn collect(
    mut rx: futures::stream::SplitStream<Conn>,
    into: Frames,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Text(t) = m {
                let v = serde_json::from_str(t.as_str()).unwrap_or_else(|_| json!(t.as_str()));
                into.lock().unwrap_or_else(|e| e.into_inner()).push(v);
            }
        }
    })
}

/// Runs one `ws:` step: `peers` (credentials of other sessions, opened first), then the session
/// with `headers`, which sends `sent` (a string goes as it is: malformed input) once the server
/// has acknowledged it. Gives up waiting for answers after `timeout`.
pub async fn session(
    url: &str,
    headers: &BTreeMap<String, String>,
    peers: &[BTreeMap<String, String>],
    sent: &[Value],
    settle: Duration,
    timeout: Duration,
) -> Result<Seen, WsError> {
    let mut peer_frames = vec![];
    let mut tasks = vec![];
    let mut sinks = vec![];
    for (i, p) in peers.iter().enumerate() {
        let ws = open(url, p).await.map_err(|(status, body)| match status {
            0 => WsError::PeerUnreachable {
                peer: i + 1,
                reason: body.as_str().unwrap_or_default().to_string(),
            },
            _ => WsError::PeerRefused {
                peer: i + 1,
                status,
                body,
            },
        })?;
        let (tx, rx) = ws.split();
        let frames: Frames = Arc::default();
        tasks.push(collect(rx, frames.clone()));
        sinks.push(tx);
        peer_frames.push(frames);
    }
    // Each peer is acknowledged before the session opens, so it is there for what the session does.
    let deadline = Instant::now() + timeout;
    for f in &peer_frames {
        if !acknowledged(f, deadline).await {
            return Err(WsError::NotAcknowledged { who: "peer" });
        }
    }
    let ws = match open(url, headers).await {
        Ok(ws) => ws,
        Err((status, body)) => {
            return Ok(Seen {
                status,
                frames: vec![body],
                peers: vec![],
            })
        }
    };
    let (mut tx, rx) = ws.split();
    let frames: Frames = Arc::default();
    tasks.push(collect(rx, frames.clone()));
    if !acknowledged(&frames, deadline).await {
        return Err(WsError::NotAcknowledged { who: "session" });
    }
    // One frame at a time, each after the last answer of the one before: the frames then come in
    // the same order on every run (a pong cannot overtake a turn's answer), so transcripts and
    // episodes do not depend on scheduling.
    for (i, f) in sent.iter().enumerate() {
        let text = match f {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        tx.send(Message::Text(text.into())).await?;
        let n = answers_expected(&sent[..=i]);
        while !done(&frames, n) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::time::sleep(settle).await;
    let _ = tx.close().await;
    for mut s in sinks {
        let _ = s.close().await;
    }
    for t in tasks {
        t.abort();
    }
    let take = |f: &Frames| f.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Seen {
        status: 101,
        frames: take(&frames),
        peers: peer_frames.iter().map(take).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_calls_for_no_answer_everything_else_for_one() {
        let sent = vec![
            json!({"type": "typing"}),
            json!({"type": "ping"}),
            json!("{not json"),
            json!({"type": "message", "content": "hi"}),
        ];
        assert_eq!(answers_expected(&sent), 3);
    }
}
