//! The `platform` binary: `serve` runs the platform, `token` prints a JWT, `check` validates the
//! configuration and workflows without serving.

use clap::{Parser, Subcommand};
use platform::app::{App, Backends};
use platform::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "platform",
    about = "Reference multi-tenant AI customer-support platform"
)]
struct Cli {
    /// YAML configuration file (defaults are the embedded configuration).
    #[arg(long, global = true, env = "PLATFORM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the API on the configured backends (embedded by default) with the demo data.
    Serve {
        /// Listen address (overrides PLATFORM_ADDR and the config file).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Print a JWT signed with the configured key.
    Token {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "user")]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Validate the configuration and the workflows, then exit.
    Check,
    /// Apply the Postgres migrations (`platform/migrations/`) as the administrator of DATABASE_URL.
    Migrate,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[tokio::main]
async fn main() -> ExitCode {
    platform::telemetry::init_logging();
    let cli = Cli::parse();
    let mut cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.cmd {
        Cmd::Token {
            tenant,
            user,
            role,
            ttl,
        } => {
            if let Err(e) = platform::domain::TenantId::parse(&tenant) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match platform::api::auth::issue_token(
                &cfg,
                &tenant,
                &user,
                &role,
                ttl,
                chrono::Utc::now(),
            ) {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Check => {
            let backends = Backends::embedded(&cfg);
            match App::start(cfg, backends).await {
                Ok(app) => {
                    println!(
                        "ok: {} workflows valid",
                        app.engine.catalog.list("acme").len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Migrate => {
            let Some(url) = cfg.backends.database_url.clone() else {
                eprintln!("error: DATABASE_URL (or backends.database_url) is not set");
                return ExitCode::from(2);
            };
            match platform::store::postgres::migrate(&url).await {
                Ok(()) => {
                    println!("ok: migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Serve { addr } => {
            if let Some(a) = addr {
                cfg.addr = a;
            }
            let addr = cfg.addr.clone();
            let described = Backends::describe(&cfg);
            let manual_clock = cfg.manual_clock;
            let backends = match Backends::from_config(&cfg).await {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let app = match App::start(cfg, backends).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let listener = match tokio::net::TcpListener::bind(&addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {addr}: {e}");
                    return ExitCode::from(2);
                }
            };
            // The address actually bound (with `--addr 127.0.0.1:0`, the port the kernel chose):
            // a supervisor such as the harness's spawned target reads it from this first line.
            let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
            if manual_clock {
                tracing::warn!("manual_clock: the clock is frozen at 2026-01-01T00:00:00Z and moves only through POST /api/v1/operator/clock");
            }
            println!("platform listening on http://{addr} ({described}; demo data seeded)");
            println!("get a token:  curl -s -X POST http://{addr}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"tenant_id\":\"acme\",\"email\":\"bob@acme.test\",\"password\":\"demo\"}}'");
            println!("        or:   platform token --tenant acme --user bob --role user");
            for (tenant, key) in &app.seeded.api_keys {
                println!("admin API key for {tenant}: {key}");
            }
            match app.serve(listener, shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
