//! The JetStream `Bus`. Events go to the stream `<PREFIX>_EVENTS` (subjects `<prefix>.>`), each
//! published with `Nats-Msg-Id` = its event id, so the broker drops a duplicate sent within the
//! stream's duplicate window (the outbox relay may send an event twice). Every event is written to
//! the [`Outbox`] first: when the broker is down, `publish` still succeeds and the relay sends the
//! event once the broker is back.
//!
//! Durable consumers ([`Bus::consume`]) ack explicitly, are redelivered after `ack_wait` and with
//! the configured backoff, and after `max_deliver` attempts (or at once, for a payload that is not
//! an event) the message goes to `dlq.<subject>` in the stream `<PREFIX>_DLQ`, with the headers
//! `Dlq-Original-Subject`, `Dlq-Error`, `Dlq-Delivery-Count` and `Dlq-Consumer` and the original
//! payload. The in-process fan-out ([`Bus::subscribe`]) follows the stream with an ordered consumer.

use super::outbox::Outbox;
use super::{dead_letter_subject, Bus, BusError, Delivery, DeliveryConfig, Event, Handler};
use async_nats::jetstream::{self, consumer, stream, AckKind};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Tunables of the JetStream backend.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    pub url: String,
    pub prefix: String,
    pub delivery: DeliveryConfig,
    /// How long `publish` waits for the broker's ack before leaving the event to the relay.
    pub publish_timeout: Duration,
    /// How often the relay looks at the outbox.
    pub relay_interval: Duration,
    /// The stream's de-duplication window.
    pub duplicate_window: Duration,
}

/// The stream names of a prefix: events and dead letters.
pub fn stream_names(prefix: &str) -> (String, String) {
    let base: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    (format!("{base}_EVENTS"), format!("{base}_DLQ"))
}

/// How long an event waits in the outbox before the window counts it as published without a
/// position (a broker that is down), rather than in flight.
const STUCK_IN_OUTBOX: Duration = Duration::from_millis(250);

/// The JetStream backend of the `Bus` port.
pub struct JetStreamBus {
    opts: JetStreamOptions,
    client: async_nats::Client,
    js: jetstream::Context,
    events_stream: String,
    outbox: Arc<dyn Outbox>,
    tx: broadcast::Sender<Delivery>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl JetStreamBus {
    /// Connects (retrying in the background if the broker is not up yet), makes sure both streams
    /// exist, and starts the fan-out and the outbox relay.
    pub async fn connect(
        opts: JetStreamOptions,
        outbox: Arc<dyn Outbox>,
    ) -> Result<Arc<Self>, BusError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .request_timeout(Some(opts.publish_timeout))
            .retry_on_initial_connect()
            .connect(opts.url.as_str())
            .await
            .map_err(unavailable)?;
        let js = jetstream::new(client.clone());
        let (events_stream, dlq_stream) = stream_names(&opts.prefix);
        let (tx, _) = broadcast::channel(4096);
        let bus = Arc::new(Self {
            client,
            js,
            events_stream,
            outbox,
            tx,
            tasks: Mutex::new(Vec::new()),
            opts,
        });
        bus.ensure_streams(&dlq_stream).await?;
        let fanout = bus.clone().spawn_fanout().await?;
        let relay = bus.clone().spawn_relay();
        bus.track(fanout);
        bus.track(relay);
        Ok(bus)
    }

    fn track(&self, h: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(h);
    }

    async fn ensure_streams(&self, dlq_stream: &str) -> Result<(), BusError> {
        let p = &self.opts.prefix;
        self.ensure_stream(stream::Config {
            name: self.events_stream.clone(),
            subjects: vec![format!("{p}.>")],
            duplicate_window: self.opts.duplicate_window,
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        })
        .await?;
        self.ensure_stream(stream::Config {
            name: dlq_stream.to_string(),
            subjects: vec![dead_letter_subject(&format!("{p}.>"))],
            max_age: Duration::from_secs(30 * 24 * 3600),
            ..Default::default()
        })
        .await
    }

    /// Creates the stream unless it exists. Instances starting together race to create it; the
    /// loser's create fails (the server says "subjects overlap" or "already in use"), and the stream
    /// it then finds is the winner's.
    async fn ensure_stream(&self, cfg: stream::Config) -> Result<(), BusError> {
        let name = cfg.name.clone();
        match self.js.get_or_create_stream(cfg).await {
            Ok(_) => Ok(()),
            Err(e) => match self.js.get_stream(&name).await {
                Ok(_) => Ok(()),
                Err(_) => Err(unavailable(e)),
            },
        }
    }

    /// Sends one event to the broker and waits for its ack.
    async fn send(&self, event_id: &str, subject: &str, payload: Vec<u8>) -> Result<(), BusError> {
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload.into())
            .message_id(event_id);
        let sent = async {
            let ack = self
                .js
                .send_publish(subject.to_string(), publish)
                .await
                .map_err(unavailable)?;
            ack.await.map_err(unavailable)
        };
        tokio::time::timeout(self.opts.publish_timeout, sent)
            .await
            .map_err(|_| BusError::Unavailable("no ack from the broker in time".into()))??;
        Ok(())
    }

    /// Follows the events stream from now on and broadcasts each event in this process.
    async fn spawn_fanout(self: Arc<Self>) -> Result<JoinHandle<()>, BusError> {
        let stream = self
            .js
            .get_stream(&self.events_stream)
            .await
            .map_err(unavailable)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{}.>", self.opts.prefix),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let tx = self.tx.clone();
        Ok(tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                match m {
                    Ok(m) => {
                        let position = m.info().map(|i| i.stream_sequence).unwrap_or(0);
                        if let Ok(event) = serde_json::from_slice::<Event>(&m.payload) {
                            let _ = tx.send(Delivery {
                                subject: m.subject.to_string(),
                                event,
                                position,
                            });
                        }
                    }
                    Err(err) => tracing::warn!(%err, "event fan-out interrupted"),
                }
            }
        }))
    }

    /// Sends what waits in the outbox, oldest first, every `relay_interval`.
    fn spawn_relay(self: Arc<Self>) -> JoinHandle<()> {
        // The relay must not keep the bus alive: it holds a weak reference.
        let weak = Arc::downgrade(&self);
        let interval = self.opts.relay_interval;
        drop(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(bus) = weak.upgrade() else { break };
                bus.relay_once().await;
            }
        })
    }

    /// One pass of the relay; returns how many events it sent.
    pub async fn relay_once(&self) -> usize {
        // Events younger than the publish timeout may still be in flight from `publish`.
        let pending = match self.outbox.pending(self.opts.publish_timeout, 500).await {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "outbox relay cannot read the outbox");
                return 0;
            }
        };
        let mut sent = 0;
        for p in pending {
            let payload = serde_json::to_vec(&p.payload).unwrap_or_default();
            if let Err(err) = self
                .send(&p.event_id.to_string(), &p.subject, payload)
                .await
            {
                tracing::warn!(%err, waiting = %p.event_id, "broker still unavailable; outbox keeps the event");
                break;
            }
            if let Err(err) = self.outbox.mark_relayed(p.seq).await {
                tracing::warn!(%err, "relayed event not marked; it may be sent again (deduplicated)");
            }
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(sent, "outbox relay sent waiting events");
        }
        sent
    }

    async fn dead_letter(
        js: &jetstream::Context,
        m: &jetstream::Message,
        error: &str,
        deliveries: i64,
        group: &str,
    ) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Dlq-Original-Subject", m.subject.as_str());
        headers.insert("Dlq-Error", error.replace(['\r', '\n'], " ").as_str());
        headers.insert("Dlq-Delivery-Count", deliveries.to_string().as_str());
        headers.insert("Dlq-Consumer", group);
        let ack = js
            .publish_with_headers(
                dead_letter_subject(m.subject.as_str()),
                headers,
                m.payload.clone(),
            )
            .await
            .map_err(unavailable)?;
        ack.await.map_err(unavailable)?;
        Ok(())
    }
}

impl Drop for JetStreamBus {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

#[async_trait::async_trait]
impl Bus for JetStreamBus {
    fn prefix(&self) -> &str {
        &self.opts.prefix
    }

    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let subject = format!("{}.{}", self.opts.prefix, event.event_type);
        let payload = serde_json::to_value(event).map_err(unavailable)?;
        let seq = self
            .outbox
            .enqueue(event.event_id, &subject, &payload)
            .await?;
        // While the connection is down, do not wait for an ack that cannot come: the relay sends
        // the event when the broker is back.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            tracing::warn!(%subject, "broker disconnected; the event waits in the outbox");
            return Ok(());
        }
        let bytes = serde_json::to_vec(&payload).map_err(unavailable)?;
        match self
            .send(&event.event_id.to_string(), &subject, bytes)
            .await
        {
            Ok(()) => {
                if let Err(err) = self.outbox.mark_relayed(seq).await {
                    tracing::warn!(%err, "published event not marked; the relay will resend it (deduplicated)");
                }
            }
            Err(err) => {
                tracing::warn!(%err, %subject, "broker unavailable; the event waits in the outbox");
            }
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.tx.subscribe()
    }

    /// The events stream's last sequence, asked of the broker (the fan-out delivers in that order).
    /// While events wait in the outbox (the broker was down), some published events have no
    /// position yet: then there is none to give, and a reader must not take the window as whole.
    async fn published_position(&self) -> Result<u64, BusError> {
        // Events in flight (enqueued, being acked) are left out: only those the broker has not
        // taken for a while mean it is down.
        if !self.outbox.pending(STUCK_IN_OUTBOX, 1).await?.is_empty() {
            return Err(BusError::Unavailable(
                "events wait in the outbox for the broker".into(),
            ));
        }
        let stream = self
            .js
            .get_stream(&self.events_stream)
            .await
            .map_err(unavailable)?;
        Ok(stream.cached_info().state.last_sequence)
    }

    async fn consume(&self, group: &str, handler: Handler) -> Result<JoinHandle<()>, BusError> {
        let d = &self.opts.delivery;
        let stream = self
            .js
            .get_stream(&self.events_stream)
            .await
            .map_err(unavailable)?;
        let name: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let backoff: Vec<Duration> = (1..d.max_deliver).map(|a| d.backoff(a)).collect();
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &name,
                consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: format!("{}.>", self.opts.prefix),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_millis(d.ack_wait_ms),
                    max_deliver: i64::from(d.max_deliver),
                    backoff,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let js = self.js.clone();
        let delivery = d.clone();
        let group = group.to_string();
        Ok(tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                let m = match m {
                    Ok(m) => m,
                    Err(err) => {
                        tracing::warn!(%err, consumer = %group, "consumer interrupted");
                        continue;
                    }
                };
                let (delivered, position) = m
                    .info()
                    .map(|i| (i.delivered, i.stream_sequence))
                    .unwrap_or((1, 0));
                let outcome = match serde_json::from_slice::<Event>(&m.payload) {
                    Err(e) => Err((format!("not an event: {e}"), true)),
                    Ok(event) => handler(Delivery {
                        subject: m.subject.to_string(),
                        event,
                        position,
                    })
                    .await
                    .map_err(|e| (e, delivered >= i64::from(delivery.max_deliver))),
                };
                let ack = match outcome {
                    Ok(()) => m.ack_with(AckKind::Ack).await,
                    Err((error, true)) => {
                        tracing::error!(%error, subject = %m.subject, delivered, consumer = %group, "dead-lettered");
                        match Self::dead_letter(&js, &m, &error, delivered, &group).await {
                            Ok(()) => m.ack_with(AckKind::Term).await,
                            // The broker did not take the dead letter: let it come again.
                            Err(_) => m.ack_with(AckKind::Nak(None)).await,
                        }
                    }
                    Err((_, false)) => {
                        let wait = delivery.backoff(delivered.max(1) as u32);
                        m.ack_with(AckKind::Nak(Some(wait))).await
                    }
                };
                if let Err(err) = ack {
                    tracing::warn!(%err, consumer = %group, "ack not sent; the broker will redeliver");
                }
            }
        }))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<super::DeadLetter>, BusError> {
        let (_, dlq) = stream_names(&self.opts.prefix);
        let mut stream = self.js.get_stream(&dlq).await.map_err(unavailable)?;
        let total = stream.info().await.map_err(unavailable)?.state.messages as usize;
        let want = total.min(limit);
        if want == 0 {
            return Ok(Vec::new());
        }
        // Read the last `want` messages: start from the sequence that leaves exactly that many.
        let first = stream.cached_info().state.last_sequence + 1 - want as u64;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: first,
                },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let mut out = Vec::new();
        while out.len() < want {
            let next = tokio::time::timeout(self.opts.publish_timeout, messages.next()).await;
            let Ok(Some(Ok(m))) = next else { break };
            let h = |k: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(k))
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default()
            };
            out.push(super::DeadLetter {
                subject: h("Dlq-Original-Subject"),
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
                error: h("Dlq-Error"),
                deliveries: h("Dlq-Delivery-Count").parse().unwrap_or(0),
                consumer: h("Dlq-Consumer"),
            });
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(BusError::Unavailable(format!(
                "broker connection {other:?}"
            ))),
        }
    }
}
