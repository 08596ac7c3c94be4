//! Why the harness has no service: each way of finding, starting or preparing Postgres, NATS and
//! Redis fails with its own variant, carrying the error underneath. The message is what a user
//! sees when GOLDEN specs are skipped or a run cannot start, so it says which service, where it
//! was looked for and why that did not work.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

/// Why a service, or a run's isolated share of one, is not available.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// The binary a private instance needs (`nats-server`, `redis-server`, `initdb`, `postgres`)
    /// is neither on PATH nor in Postgres's versioned bin directories.
    #[error("{0} is not installed")]
    NotInstalled(&'static str),
    /// No free loopback port could be bound for a private instance.
    #[error("no free port: {0}")]
    NoFreePort(#[source] std::io::Error),
    /// The temporary directory of a private instance could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Running as root, the directory of a private Postgres could not be given to the `postgres`
    /// user (Postgres refuses to run as root).
    #[error("cannot hand {} to postgres: {source}", path.display())]
    Chown {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Running as root, there is no `postgres` user to run a private Postgres as.
    #[error("running as root and there is no `postgres` user to run Postgres as")]
    NoPostgresUser,
    /// A service binary (or `initdb`) could not be started at all.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    /// `initdb` ran but did not make the cluster; its error output says why.
    #[error("initdb failed ({status}): {stderr}")]
    InitdbFailed { status: ExitStatus, stderr: String },
    /// A private instance ended before it listened on its port.
    #[error("{what} exited at start-up ({status})")]
    Exited { what: String, status: ExitStatus },
    /// A private instance still runs but did not accept connections on its port in time.
    #[error("{what} did not listen on port {port} within {} s", waited.as_secs())]
    NotListening {
        what: String,
        port: u16,
        waited: Duration,
    },
    /// A NATS URL to restart a private broker on has no port.
    #[error("no port in {url}")]
    NoPort { url: String },
    /// The blocking task that starts a private instance panicked or was cancelled.
    #[error("spawning failed: {0}")]
    SpawnTask(#[source] tokio::task::JoinError),
    /// No container could be started or asked for its port (usually: no Docker engine answers).
    #[error("no {service} container (is a Docker engine running?): {source}")]
    Container {
        service: &'static str,
        source: testcontainers_modules::testcontainers::TestcontainersError,
    },
    /// The service the environment names (`DATABASE_URL`, `NATS_URL`, `REDIS_URL`) does not
    /// answer. The environment is taken at its word: nothing else is tried.
    #[error("{service}: {env}={url} does not answer: {reason}")]
    Unreachable {
        service: &'static str,
        env: &'static str,
        url: String,
        #[source]
        reason: NoAnswer,
    },
    /// A private instance started and listens, but does not answer as the service.
    #[error("{service}: spawned {what} but it does not answer: {reason}")]
    SpawnedUnreachable {
        service: &'static str,
        what: String,
        #[source]
        reason: NoAnswer,
    },
    /// A container started, but the service in it does not answer.
    #[error("{service}: a container started at {url} but does not answer: {reason}")]
    ContainerUnreachable {
        service: &'static str,
        url: String,
        #[source]
        reason: NoAnswer,
    },
    /// Every way to a service failed: no URL in the environment, nothing on the standard local
    /// port (`local_reason`, or `None` when `HARNESS_SERVICES=spawn` skipped it), no private
    /// instance (`spawn`), no container (`container`).
    #[error(
        "{service}: {env} unset, nothing answers at {local} ({}), no private instance ({spawn}), {container}",
        local_reason_text(local_reason)
    )]
    Missing {
        service: &'static str,
        env: &'static str,
        local: String,
        local_reason: Option<NoAnswer>,
        spawn: Box<InfraError>,
        container: Box<InfraError>,
    },
    /// More than one service is missing: each one's error, in the order Postgres, NATS, Redis.
    #[error("{}", join(.0))]
    Services(Vec<InfraError>),
    /// The Postgres server refused or failed a step of managing a run's database: connecting,
    /// `CREATE DATABASE`, `DROP DATABASE`.
    #[error("postgres: {action}: {source}")]
    Database { action: String, source: sqlx::Error },
    /// The platform's migrations failed on a run's fresh database.
    #[error("postgres: cannot migrate database {database}: {source}")]
    Migrate {
        database: String,
        source: platform::store::StoreError,
    },
    /// The services this process shares between its tests could not be found; every caller
    /// after the first gets the first attempt's error.
    #[error(transparent)]
    Shared(Arc<InfraError>),
}

/// Why a service at a URL did not answer the harness's probe (a connection, and for NATS a
/// JetStream request, for Redis a `PING`).
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    /// Nothing came back within the probe's wait.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// Postgres refused the connection or the login.
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
    /// NATS refused the connection.
    #[error(transparent)]
    Nats(#[from] async_nats::ConnectError),
    /// NATS answers but the JetStream request failed (JetStream is off, or no responder).
    #[error("JetStream is not available: {0}")]
    JetStream(#[source] async_nats::RequestError),
    /// NATS answered the JetStream request with something that is not JSON.
    #[error("JetStream answered something else: {0}")]
    JetStreamReply(#[source] serde_json::Error),
    /// NATS answered the JetStream request with an error (JetStream is not enabled).
    #[error("JetStream is not available: {0}")]
    JetStreamRefused(serde_json::Value),
    /// The Redis URL is invalid, or the connection or `PING` failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

fn local_reason_text(reason: &Option<NoAnswer>) -> String {
    match reason {
        Some(r) => r.to_string(),
        None => "HARNESS_SERVICES=spawn".to_string(),
    }
}

fn join(errors: &[InfraError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_service_says_every_way_it_was_looked_for() {
        let e = InfraError::Missing {
            service: "nats",
            env: "NATS_URL",
            local: "nats://127.0.0.1:4222".into(),
            local_reason: Some(NoAnswer::Timeout(Duration::from_secs(3))),
            spawn: Box::new(InfraError::NotInstalled("nats-server")),
            container: Box::new(InfraError::NoPostgresUser),
        };
        assert_eq!(
            e.to_string(),
            "nats: NATS_URL unset, nothing answers at nats://127.0.0.1:4222 (no answer within 3 s), \
             no private instance (nats-server is not installed), running as root and there is no \
             `postgres` user to run Postgres as"
        );
    }

    #[test]
    fn several_missing_services_are_listed_in_order_and_a_shared_error_reads_the_same() {
        let both = InfraError::Services(vec![
            InfraError::NotInstalled("initdb"),
            InfraError::NoPort {
                url: "nats://h".into(),
            },
        ]);
        assert_eq!(
            both.to_string(),
            "initdb is not installed; no port in nats://h"
        );
        let shared = InfraError::Shared(Arc::new(both));
        assert_eq!(
            shared.to_string(),
            "initdb is not installed; no port in nats://h"
        );
    }
}
