//! Real services for GOLDEN mode. Each service comes from, in order: its URL in the environment
//! (`DATABASE_URL`, `NATS_URL`, `REDIS_URL`); the machine's own server on its standard port
//! (127.0.0.1:5432, :4222, :6379) when it answers; a private instance spawned from the installed
//! binary on a free port (`HARNESS_SERVICES=spawn` goes straight there); a container where a Docker
//! engine answers (testcontainers). When none of these works the GOLDEN specs are skipped with the
//! reason, an [`InfraError`] that names each way tried and why it failed, or fail when
//! `HARNESS_REQUIRE_SERVICES=1`.
//!
//! A run isolates itself in a [`GoldenEnv`]: its own database (migrated), its own subject and
//! stream prefix, its own key prefix, all named `harness_<unix time>_<random>`. It removes them at
//! the end, and every run first sweeps what runs older than two hours left behind (a run that
//! crashed before cleaning up).

pub mod containers;
mod error;
pub mod spawn;

pub use error::{InfraError, NoAnswer};

use platform::bus::jetstream::stream_names;
use sqlx::Connection;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a probe waits for a service to answer.
const PROBE_WAIT: Duration = Duration::from_secs(3);

/// The services a run uses, with where each came from.
pub struct Services {
    /// Administrator URL of the Postgres server (its `postgres` database).
    pub database_url: String,
    pub nats_url: String,
    pub redis_url: String,
    /// `postgres: environment (DATABASE_URL)` and so on, for the report.
    pub origins: Vec<String>,
    /// Instances this run started; they stop when the run ends.
    pub started: Mutex<Started>,
}

/// Whether CI asked for services to be mandatory.
pub fn services_required() -> bool {
    matches!(
        std::env::var("HARNESS_REQUIRE_SERVICES").as_deref(),
        Ok("1") | Ok("true")
    )
}

async fn postgres_answers(url: &str) -> Result<(), NoAnswer> {
    let fut = sqlx::PgConnection::connect(url);
    match tokio::time::timeout(PROBE_WAIT, fut).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(NoAnswer::Timeout(PROBE_WAIT)),
    }
}

async fn nats_answers(url: &str) -> Result<(), NoAnswer> {
    let opts = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(2));
    match tokio::time::timeout(PROBE_WAIT, opts.connect(url)).await {
        Ok(Ok(c)) => {
            // JetStream must be on: ask for the account info (raw, to accept any server version).
            let reply = c
                .request("$JS.API.INFO", bytes::Bytes::new())
                .await
                .map_err(NoAnswer::JetStream)?;
            let info: serde_json::Value =
                serde_json::from_slice(&reply.payload).map_err(NoAnswer::JetStreamReply)?;
            match info.get("error") {
                Some(err) => Err(NoAnswer::JetStreamRefused(err.clone())),
                None => Ok(()),
            }
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(NoAnswer::Timeout(PROBE_WAIT)),
    }
}

async fn redis_answers(url: &str) -> Result<(), NoAnswer> {
    let client = redis::Client::open(url)?;
    let fut = async {
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await
    };
    match tokio::time::timeout(PROBE_WAIT, fut).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(NoAnswer::Timeout(PROBE_WAIT)),
    }
}

/// What a run started for itself: private processes and containers, stopped when dropped.
#[derive(Default)]
pub struct Started {
    pub processes: Vec<spawn::Spawned>,
    pub containers: Vec<containers::Container>,
}

/// Finds one service: environment, standard local port, spawned binary, container.
async fn find<F, Fut, C, CF>(
    name: &'static str,
    env: &'static str,
    local: &str,
    answers: F,
    spawn: fn() -> Result<(spawn::Spawned, String), InfraError>,
    container: C,
    started: &mut Started,
) -> Result<(String, String), InfraError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), NoAnswer>>,
    C: FnOnce() -> CF,
    CF: std::future::Future<Output = Result<(containers::Container, String), InfraError>>,
{
    let spawn_only = std::env::var("HARNESS_SERVICES").as_deref() == Ok("spawn");
    if let Some(url) = std::env::var(env).ok().filter(|_| !spawn_only) {
        return match answers(url.clone()).await {
            Ok(()) => Ok((url, format!("{name}: environment ({env})"))),
            Err(reason) => Err(InfraError::Unreachable {
                service: name,
                env,
                url,
                reason,
            }),
        };
    }
    let local_reason = if spawn_only {
        None
    } else {
        match answers(local.to_string()).await {
            Ok(()) => return Ok((local.to_string(), format!("{name}: this machine ({local})"))),
            Err(e) => Some(e),
        }
    };
    let spawn_err = match tokio::task::spawn_blocking(spawn).await {
        Ok(Ok((child, url))) => {
            if let Err(reason) = answers(url.clone()).await {
                return Err(InfraError::SpawnedUnreachable {
                    service: name,
                    what: child.what.clone(),
                    reason,
                });
            }
            let origin = format!("{name}: spawned ({})", child.what);
            started.processes.push(child);
            return Ok((url, origin));
        }
        Ok(Err(e)) => e,
        Err(e) => InfraError::SpawnTask(e),
    };
    match container().await {
        Ok((c, url)) => {
            if let Err(reason) = answers(url.clone()).await {
                return Err(InfraError::ContainerUnreachable {
                    service: name,
                    url,
                    reason,
                });
            }
            started.containers.push(c);
            let origin = format!("{name}: container ({url})");
            Ok((url, origin))
        }
        Err(container_err) => Err(InfraError::Missing {
            service: name,
            env,
            local: local.to_string(),
            local_reason,
            spawn: Box::new(spawn_err),
            container: Box::new(container_err),
        }),
    }
}

impl Services {
    /// Stops the instances this run spawned (also done when `Services` drops).
    pub fn stop_spawned(&self) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Started::default();
    }

    /// Finds (or starts) Postgres, NATS and Redis; the error says what is missing and why.
    pub async fn acquire() -> Result<Services, InfraError> {
        let mut started = Started::default();
        let pg = find(
            "postgres",
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
            |u| async move { postgres_answers(&u).await },
            spawn::postgres,
            containers::postgres,
            &mut started,
        )
        .await;
        let nats = find(
            "nats",
            "NATS_URL",
            "nats://127.0.0.1:4222",
            |u| async move { nats_answers(&u).await },
            spawn::nats,
            containers::nats,
            &mut started,
        )
        .await;
        let redis = find(
            "redis",
            "REDIS_URL",
            "redis://127.0.0.1:6379",
            |u| async move { redis_answers(&u).await },
            spawn::redis,
            containers::redis,
            &mut started,
        )
        .await;
        match (pg, nats, redis) {
            (Ok((database_url, o1)), Ok((nats_url, o2)), Ok((redis_url, o3))) => Ok(Services {
                database_url,
                nats_url,
                redis_url,
                origins: vec![o1, o2, o3],
                started: Mutex::new(started),
            }),
            (pg, nats, redis) => {
                let mut errors: Vec<InfraError> = [pg.err(), nats.err(), redis.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                Err(if errors.len() == 1 {
                    errors.remove(0)
                } else {
                    InfraError::Services(errors)
                })
            }
        }
    }
}

/// The services and a fresh [`GoldenEnv`] on them: what a GOLDEN run needs. Keep the `Services`
/// alive for the run (they own what was spawned) and call [`GoldenEnv::cleanup`] at the end.
pub async fn golden() -> Result<(Services, Arc<GoldenEnv>), InfraError> {
    let services = Services::acquire().await?;
    let env = GoldenEnv::create(&services).await?;
    Ok((services, Arc::new(env)))
}

/// The services of this process, found once and shared by every test in it (their spawned
/// instances live as long as the process).
pub async fn shared_services() -> Result<&'static Services, InfraError> {
    static SERVICES: tokio::sync::OnceCell<Result<Services, Arc<InfraError>>> =
        tokio::sync::OnceCell::const_new();
    SERVICES
        .get_or_init(|| async { Services::acquire().await.map_err(Arc::new) })
        .await
        .as_ref()
        .map_err(|e| InfraError::Shared(Arc::clone(e)))
}

/// For a test that needs the real services: a fresh isolated environment, `None` (after saying
/// why) when the services are missing, and a panic instead when `HARNESS_REQUIRE_SERVICES=1`.
pub async fn env_for_test(test: &str) -> Option<GoldenEnv> {
    let made = match shared_services().await {
        Ok(s) => GoldenEnv::create(s).await,
        Err(e) => Err(e),
    };
    match made {
        Ok(env) => Some(env),
        Err(e) if services_required() => {
            panic!("{test} needs Postgres, NATS and Redis (HARNESS_REQUIRE_SERVICES=1): {e}")
        }
        Err(e) => {
            eprintln!("{test} skipped: no real services: {e}");
            None
        }
    }
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// One run's isolated share of the services.
pub struct GoldenEnv {
    /// `harness_<unix time>_<random>`: the database, the event prefix and the key prefix.
    pub name: String,
    /// Administrator URL of the run's database (migrated).
    pub database_url: String,
    pub nats_url: String,
    pub redis_url: String,
    /// `name` followed by `:`.
    pub kv_prefix: String,
    admin_url: String,
    pub origins: Vec<String>,
    /// The channel endpoint of every platform of the run: they share a database, so any of them
    /// may deliver any queued message, and all must deliver to the same place. Started on first
    /// use; each scenario sees its own tenants' part of it.
    sink: tokio::sync::OnceCell<Arc<crate::target::sink::Sink>>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Leftovers older than this are swept.
const STALE_AFTER_SECS: u64 = 2 * 3600;

fn stale(name: &str) -> bool {
    let ts = name
        .strip_prefix("harness_")
        .and_then(|r| r.split('_').next())
        .and_then(|t| t.parse::<u64>().ok());
    ts.is_some_and(|t| t + STALE_AFTER_SECS < unix_now())
}

impl GoldenEnv {
    /// Creates the run's database (and migrates it), and names its prefixes.
    pub async fn create(services: &Services) -> Result<GoldenEnv, InfraError> {
        let name = format!("harness_{}_{:08x}", unix_now(), rand::random::<u32>());
        let admin_url = services.database_url.clone();
        sweep(&admin_url, &services.nats_url).await;
        let mut c = admin_connection(&admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .map_err(database(format!("cannot create database {name}")))?;
        let _ = c.close().await;
        let database_url = with_database(&admin_url, &name);
        platform::store::postgres::migrate(&database_url)
            .await
            .map_err(|source| InfraError::Migrate {
                database: name.clone(),
                source,
            })?;
        Ok(GoldenEnv {
            kv_prefix: format!("{name}:"),
            name,
            database_url,
            nats_url: services.nats_url.clone(),
            redis_url: services.redis_url.clone(),
            admin_url,
            origins: services.origins.clone(),
            sink: tokio::sync::OnceCell::new(),
        })
    }

    /// The run's channel endpoint.
    pub async fn sink(&self) -> Arc<crate::target::sink::Sink> {
        self.sink
            .get_or_init(|| async { Arc::new(crate::target::sink::Sink::start().await) })
            .await
            .clone()
    }

    /// Drops the run's database, streams and keys. Errors are reported, not returned: cleanup
    /// runs after the verdict.
    pub async fn cleanup(&self) {
        if let Err(e) = drop_database(&self.admin_url, &self.name).await {
            eprintln!("harness: cleanup: {e}");
        }
        delete_streams(&self.nats_url, &self.name).await;
        match platform::kv::redis::RedisKv::connect(&self.redis_url, &self.kv_prefix).await {
            Ok(kv) => {
                if let Err(e) = kv.delete_prefix().await {
                    eprintln!("harness: cleanup: redis keys {}*: {e}", self.kv_prefix);
                }
            }
            Err(e) => eprintln!("harness: cleanup: redis: {e}"),
        }
    }
}

/// An [`InfraError::Database`] for a failed `action`.
fn database(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> InfraError {
    let action = action.into();
    move |source| InfraError::Database { action, source }
}

/// A connection to the Postgres server's administrator database.
async fn admin_connection(admin_url: &str) -> Result<sqlx::PgConnection, InfraError> {
    sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(database("cannot connect"))
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), InfraError> {
    let mut c = admin_connection(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .map_err(database(format!("cannot drop database {name}")))?;
    let _ = c.close().await;
    Ok(())
}

async fn delete_streams(nats_url: &str, prefix: &str) {
    let Ok(c) = async_nats::connect(nats_url).await else {
        return;
    };
    let js = async_nats::jetstream::new(c);
    let (events, dlq) = stream_names(prefix);
    for s in [events, dlq] {
        let _ = js.delete_stream(&s).await;
    }
}

/// Removes databases and streams of runs older than [`STALE_AFTER_SECS`].
async fn sweep(admin_url: &str, nats_url: &str) {
    if let Ok(mut c) = sqlx::PgConnection::connect(admin_url).await {
        let names: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'harness\\_%'")
                .fetch_all(&mut c)
                .await
                .unwrap_or_default();
        let _ = c.close().await;
        for (n,) in names.into_iter().filter(|(n,)| stale(n)) {
            let _ = drop_database(admin_url, &n).await;
        }
    }
    if let Ok(c) = async_nats::connect(nats_url).await {
        use futures::StreamExt;
        let js = async_nats::jetstream::new(c);
        let names: Vec<String> = js
            .stream_names()
            .filter_map(|n| async move { n.ok() })
            .collect()
            .await;
        for n in names {
            let lower = n.to_lowercase();
            let base = lower
                .strip_suffix("_events")
                .or_else(|| lower.strip_suffix("_dlq"));
            if base.is_some_and(stale) {
                let _ = js.delete_stream(&n).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_another_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn only_old_run_names_are_stale() {
        assert!(stale("harness_1000_abcdef12"));
        assert!(!stale(&format!("harness_{}_abcdef12", unix_now())));
        assert!(!stale("production"));
    }
}
