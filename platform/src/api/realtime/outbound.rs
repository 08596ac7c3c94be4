//! A WebSocket session's outgoing queue: bounded, with a drop policy for frames that a slow client
//! may miss (answer chunks, typing notices) and none for frames it must get (the acknowledgement,
//! the start and the final answer of a turn, pongs, errors). A frame that must arrive is queued
//! even past the bound, so the last message of a turn is never lost; the bound holds for the rest.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Which droppable frame goes when the queue is full (`config.realtime.drop_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropPolicy {
    /// The oldest queued droppable frame.
    Oldest,
    /// The incoming frame (what is queued is kept).
    Newest,
    /// The newest queued droppable frame, so that the first and the latest survive (a stream
    /// loses its middle).
    #[default]
    Intermediate,
}

/// What the writer sends: a text frame, or a protocol ping (the heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    Ping,
}

/// One queued frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub payload: Payload,
    /// A slow client may miss it.
    pub droppable: bool,
}

impl Frame {
    /// A text frame the client must get.
    pub fn kept(text: String) -> Self {
        Self {
            payload: Payload::Text(text),
            droppable: false,
        }
    }
    /// A text frame a slow client may miss.
    pub fn droppable(text: String) -> Self {
        Self {
            payload: Payload::Text(text),
            droppable: true,
        }
    }
}

#[derive(Default)]
struct Inner {
    frames: VecDeque<Frame>,
    closed: bool,
}

/// The queue between a session's producers (the reader, its turns, other sessions' typing
/// notices) and its one writer.
pub struct Outbound {
    capacity: usize,
    policy: DropPolicy,
    inner: Mutex<Inner>,
    ready: Notify,
    room: Notify,
}

impl Outbound {
    pub fn new(capacity: usize, policy: DropPolicy) -> Self {
        Self {
            capacity: capacity.max(1),
            policy,
            inner: Mutex::default(),
            ready: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Queues `f`; returns how many frames were dropped to respect the bound (0 or 1). After
    /// `close`, nothing is queued.
    pub fn push(&self, f: Frame) -> u64 {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if i.closed {
            return 0;
        }
        let mut dropped = 0;
        if i.frames.len() >= self.capacity {
            let victim = match (self.policy, f.droppable) {
                (DropPolicy::Newest, true) => None,
                (DropPolicy::Oldest, _) => i.frames.iter().position(|q| q.droppable),
                (_, _) => i.frames.iter().rposition(|q| q.droppable),
            };
            match victim {
                Some(at) => {
                    i.frames.remove(at);
                    dropped = 1;
                }
                None if f.droppable => return 1,
                // Only frames that must arrive are queued: this one goes past the bound.
                None => {}
            }
        }
        i.frames.push_back(f);
        drop(i);
        self.ready.notify_one();
        dropped
    }

    /// Queues `f` once there is room, waiting at most `patience` for the writer to make some;
    /// then as [`push`](Self::push) (a client that reads that slowly loses droppable frames).
    pub async fn push_within(&self, f: Frame, patience: std::time::Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + patience;
        while !patience.is_zero() {
            let room = self.room.notified();
            {
                let i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                if i.closed || i.frames.len() < self.capacity {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                break;
            }
        }
        self.push(f)
    }

    /// The next frame, waiting for one; None once closed and drained.
    pub async fn pop(&self) -> Option<Frame> {
        loop {
            let ready = self.ready.notified();
            {
                let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = i.frames.pop_front() {
                    drop(i);
                    self.room.notify_one();
                    return Some(f);
                }
                if i.closed {
                    return None;
                }
            }
            ready.await;
        }
    }

    /// No more frames are queued; the writer sends what is queued and ends.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.ready.notify_one();
    }

    /// How many frames wait.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .frames
            .len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(q: &Outbound) -> Vec<String> {
        let i = q.inner.lock().unwrap();
        i.frames
            .iter()
            .map(|f| match &f.payload {
                Payload::Text(t) => t.clone(),
                Payload::Ping => "ping".into(),
            })
            .collect()
    }

    fn fill(policy: DropPolicy, cap: usize, n: usize) -> (Outbound, u64) {
        let q = Outbound::new(cap, policy);
        let dropped = (1..=n)
            .map(|k| q.push(Frame::droppable(format!("msg_{k}"))))
            .sum();
        (q, dropped)
    }

    #[test]
    fn each_policy_keeps_the_bound_and_drops_its_own_victims() {
        // PERF-08's vectors: 10 in, room for 5 -> 5 queued.
        let (q, dropped) = fill(DropPolicy::Intermediate, 5, 10);
        assert_eq!((q.len(), dropped), (5, 5));
        // The first and the latest survive; the middle goes.
        assert_eq!(texts(&q), ["msg_1", "msg_2", "msg_3", "msg_4", "msg_10"]);
        let (q, _) = fill(DropPolicy::Oldest, 3, 5);
        assert_eq!(
            texts(&q),
            ["msg_3", "msg_4", "msg_5"],
            "drops msg_1 and msg_2"
        );
        let (q, _) = fill(DropPolicy::Newest, 3, 5);
        assert_eq!(
            texts(&q),
            ["msg_1", "msg_2", "msg_3"],
            "drops msg_4 and msg_5"
        );
    }

    #[test]
    fn a_frame_that_must_arrive_is_never_dropped() {
        for policy in [
            DropPolicy::Oldest,
            DropPolicy::Newest,
            DropPolicy::Intermediate,
        ] {
            let q = Outbound::new(2, policy);
            q.push(Frame::kept("start".into()));
            q.push(Frame::droppable("chunk".into()));
            assert_eq!(q.push(Frame::kept("final".into())), 1, "{policy:?}");
            assert_eq!(texts(&q), ["start", "final"], "{policy:?}");
            // Full of frames that must arrive: the next one goes past the bound.
            assert_eq!(q.push(Frame::kept("final 2".into())), 0);
            assert_eq!(q.len(), 3);
            assert_eq!(q.push(Frame::droppable("late chunk".into())), 1);
            assert_eq!(q.len(), 3);
        }
    }

    #[tokio::test]
    async fn a_patient_push_waits_for_the_writer_and_an_impatient_one_drops() {
        let q = std::sync::Arc::new(Outbound::new(1, DropPolicy::Newest));
        q.push(Frame::kept("first".into()));
        let zero = std::time::Duration::ZERO;
        assert_eq!(
            q.push_within(Frame::droppable("dropped".into()), zero)
                .await,
            1
        );
        let w = q.clone();
        let reader = tokio::spawn(async move { w.pop().await });
        let long = std::time::Duration::from_secs(5);
        assert_eq!(
            q.push_within(Frame::droppable("kept".into()), long).await,
            0
        );
        assert!(reader.await.unwrap().is_some());
        assert_eq!(texts(&q), ["kept"]);
    }

    #[tokio::test]
    async fn the_writer_drains_then_ends_after_close() {
        let q = std::sync::Arc::new(Outbound::new(4, DropPolicy::default()));
        let w = q.clone();
        let writer = tokio::spawn(async move {
            let mut got = vec![];
            while let Some(f) = w.pop().await {
                got.push(f);
            }
            got
        });
        q.push(Frame::kept("a".into()));
        q.push(Frame::kept("b".into()));
        q.close();
        assert_eq!(q.push(Frame::kept("after".into())), 0);
        let got = writer.await.unwrap();
        assert_eq!(got.len(), 2);
        assert!(q.is_empty());
    }
}
