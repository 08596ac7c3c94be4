//! The last resort for GOLDEN services: containers, where a Docker engine answers (testcontainers).
//! Our machines have no Docker engine, so this path is exercised only elsewhere; here every start
//! fails at once and the error says so. Postgres runs with trust authentication, because the
//! application logs in as `aiaas_app`, a role without a password.

use super::InfraError;
use testcontainers_modules::nats::{Nats, NatsServerCmd};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::redis::{Redis, REDIS_PORT};
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt, TestcontainersError};

/// A running container; removed when dropped (or by the testcontainers reaper after the process).
pub enum Container {
    Postgres(ContainerAsync<Postgres>),
    Nats(ContainerAsync<Nats>),
    Redis(ContainerAsync<Redis>),
}

/// An [`InfraError::Container`] for `service`.
fn failed(service: &'static str) -> impl Fn(TestcontainersError) -> InfraError {
    move |source| InfraError::Container { service, source }
}

/// Postgres 15 with trust authentication; returns it and its superuser URL.
pub async fn postgres() -> Result<(Container, String), InfraError> {
    let c = Postgres::default()
        .with_host_auth()
        .with_tag("15-alpine")
        .start()
        .await
        .map_err(failed("postgres"))?;
    let port = c
        .get_host_port_ipv4(5432)
        .await
        .map_err(failed("postgres"))?;
    Ok((
        Container::Postgres(c),
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    ))
}

/// nats-server with JetStream; returns it and its URL.
pub async fn nats() -> Result<(Container, String), InfraError> {
    let cmd = NatsServerCmd::default().with_jetstream();
    let c = Nats::default()
        .with_cmd(&cmd)
        .start()
        .await
        .map_err(failed("nats"))?;
    let port = c.get_host_port_ipv4(4222).await.map_err(failed("nats"))?;
    Ok((Container::Nats(c), format!("nats://127.0.0.1:{port}")))
}

/// Redis; returns it and its URL.
pub async fn redis() -> Result<(Container, String), InfraError> {
    let c = Redis::default().start().await.map_err(failed("redis"))?;
    let port = c
        .get_host_port_ipv4(REDIS_PORT)
        .await
        .map_err(failed("redis"))?;
    Ok((Container::Redis(c), format!("redis://127.0.0.1:{port}")))
}
