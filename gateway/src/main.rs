//! `gateway run | validate | demo | control-plane`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for an invalid configuration (EX_USAGE).
const EXIT_INVALID_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "HTTP/JSON ingress gateway for Apache Dubbo services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with a configuration file (YAML, or TOML by extension).
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and report every problem with its location.
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Serve the xDS resources of a snapshot file (YAML or JSON) over ADS, pushing changes.
    ControlPlane {
        #[arg(long)]
        snapshot: PathBuf,
        /// Where ADS listens.
        #[arg(long, default_value = "127.0.0.1:18000")]
        listen: String,
    },
    /// Start a sample Dubbo2 provider and a gateway in front of it, and print calls to try.
    Demo {
        /// Gateway port (default 8080, or a free port if 8080 is taken).
        #[arg(long)]
        port: Option<u16>,
        /// Make the printed calls, check their answers, and exit (non-zero on any failure).
        #[arg(long)]
        self_test: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Command::Validate { config } = &cli.command {
        return match gateway::config::load(config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(EXIT_INVALID_CONFIG)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => run(config).await,
            Command::Demo { port, self_test } => gateway::demo::run(port, self_test).await,
            Command::Validate { .. } => ExitCode::SUCCESS,
            Command::ControlPlane { snapshot, listen } => control_plane(snapshot, &listen).await,
        }
    })
}

async fn run(path: PathBuf) -> ExitCode {
    let config = match gateway::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let running = match gateway::app::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        listeners = ?running.listeners,
        admin = ?running.admin,
        metadata_grpc = ?running.metadata_grpc,
        "gateway serving"
    );
    tokio::select! {
        () = shutdown_signal() => {}
        () = reload_on_change(&path, &running) => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// Reloads the configuration on SIGHUP, and when the file's content changes (checked every
/// second). A configuration that does not validate, or changes what takes a restart, is
/// refused with the reason logged, and the running one stays.
async fn reload_on_change(path: &std::path::Path, running: &gateway::app::Running) {
    let mut last = std::fs::read(path).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            _ = signalled => "SIGHUP",
            _ = tick.tick() => {
                let now = std::fs::read(path).ok();
                if now.is_none() || now == last {
                    continue;
                }
                "the file changed"
            }
        };
        last = std::fs::read(path).ok();
        let outcome = gateway::config::load(path)
            .map_err(|e| e.to_string())
            .and_then(|config| running.reload(config));
        match outcome {
            Ok(()) => {
                tracing::info!(path = %path.display(), trigger = why, "configuration reloaded")
            }
            Err(e) => tracing::error!(
                path = %path.display(),
                trigger = why,
                reason = %e.trim_end(),
                "configuration reload rejected; the running configuration stays"
            ),
        }
    }
}

async fn control_plane(snapshot: PathBuf, listen: &str) -> ExitCode {
    match gateway::control_plane::start(snapshot, listen, std::time::Duration::from_secs(1)).await {
        Ok(cp) => {
            tracing::info!(ads = %cp.address, "control plane serving");
            shutdown_signal().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
