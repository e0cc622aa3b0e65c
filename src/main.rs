//! The `powerd` binary: parse flags, validate them into a config before any
//! I/O, open the engine, bind, serve until SIGTERM or Ctrl-C, close the
//! engine. Everything testable lives in the library; errors become an exit
//! code in exactly one place, [`main`].

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing::info;

use powerd::auth::{AuthError, AuthFile, Tokens, WriteScope};
use powerd::config::{ConfigError, ServeConfig, ServeFlags, DEFAULT_DATA_DIR};
use powerd::storage::{Engine, EngineOptions, StorageError};
use powerd::tls::Tls;

/// Spaceship Power Service: normalises ship energy readings to kWh per
/// 15 minutes and serves them over HTTP from an embedded engine.
#[derive(Parser)]
#[command(name = "powerd", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C.
    Serve(ServeFlags),
    /// Check a (stopped) data directory for damage.
    Check {
        /// The data directory to check.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Copy a data directory consistently, while a server writes to it or
    /// while none runs. Restore: serve the copy (`serve --data-dir DEST`).
    Backup {
        /// The data directory to back up.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Where the copy goes: a new or empty directory.
        #[arg(long, value_name = "DEST")]
        to: PathBuf,
        /// Copy at most this many bytes per second (default: no limit).
        #[arg(long, value_name = "BYTES")]
        max_rate: Option<u64>,
    },
    /// Rewrite a (stopped) data directory's older block files in the
    /// current format now, rather than over the next checkpoints.
    Upgrade {
        /// The data directory to upgrade.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Write the stored buckets to a Parquet lake, one file per node per
    /// UTC day (LAKE/date=YYYY-MM-DD/NODE.parquet); only days that changed
    /// since the last export are rewritten. Works while a server serves
    /// the directory (it exports a snapshot) and while none does.
    Export {
        /// The data directory to export.
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The lake: a directory (created if missing).
        #[arg(long, value_name = "LAKE")]
        to: PathBuf,
        /// This node's name in the lake (default: the host name).
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// Where the snapshot of a served directory is copied first
        /// (default: the system's temporary directory).
        #[arg(long, value_name = "DIR")]
        scratch: Option<PathBuf>,
    },
    /// Rebuild a node's buckets from a lake into a (stopped) data directory,
    /// as kWh per bucket: the raw readings are not in the lake.
    Import {
        /// The lake to read.
        #[arg(long, value_name = "LAKE")]
        from: PathBuf,
        /// The node whose files to read.
        #[arg(long, value_name = "NAME")]
        node: String,
        /// The data directory to write (created if missing).
        #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Manage access tokens in an auth file (it keeps only their SHA-256).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token; prints it once, alone on the last line.
    Add {
        /// The auth file (created with mode 0600 if missing).
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
        /// The token's name: letters, digits, '-', '_', '.'.
        #[arg(long)]
        name: String,
        /// Ships it may write: `all`, or ids separated by commas.
        #[arg(long, value_name = "all|ID[,ID...]")]
        write: Option<String>,
        /// It may read (GET /data, /data/fleet, /topusers, ...).
        #[arg(long)]
        read: bool,
        /// It may scrape /metrics.
        #[arg(long)]
        admin: bool,
    },
    /// Remove the token named NAME.
    Remove {
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the tokens' names and scopes (never their secrets).
    List {
        #[arg(long, value_name = "FILE")]
        auth_file: PathBuf,
    },
}

/// Why powerd stopped unsuccessfully.
enum AppError {
    Config(ConfigError),
    Storage(StorageError),
    Io {
        what: String,
        source: std::io::Error,
    },
    /// `powerd check` found this many problems.
    Damaged(usize),
    Auth(AuthError),
    Tls(powerd::tls::TlsError),
    /// A failed backup; `marked`: its destination is left marked incomplete.
    Backup {
        error: StorageError,
        marked: bool,
    },
    Lake(powerd::lake::LakeError),
}

impl AppError {
    /// 2 for a problem with how powerd was invoked, 1 for a failure while
    /// running (clap also exits 2 on unparsable flags).
    fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Config(_) | AppError::Auth(AuthError::Invalid(_)) | AppError::Tls(_) => {
                ExitCode::from(2)
            }
            AppError::Auth(_) => ExitCode::FAILURE,
            AppError::Storage(_) | AppError::Io { .. } | AppError::Damaged(_) => ExitCode::FAILURE,
            AppError::Backup { .. } | AppError::Lake(_) => ExitCode::FAILURE,
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AppError {
        let what = what.into();
        move |source| AppError::Io { what, source }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Config(e) => write!(f, "invalid configuration: {e}"),
            AppError::Storage(e) => write!(f, "{e}"),
            AppError::Io { what, source } => write!(f, "could not {what}: {source}"),
            AppError::Auth(e) => write!(f, "{e}"),
            AppError::Tls(e) => write!(f, "TLS: {e}"),
            AppError::Lake(e) => write!(f, "lake: {e}"),
            AppError::Backup {
                error,
                marked: false,
            } => write!(f, "backup failed: {error}"),
            AppError::Backup {
                error,
                marked: true,
            } => write!(
                f,
                "backup failed: {error}. The destination is marked incomplete \
                 (BACKUP-INCOMPLETE): nothing will serve it; delete it"
            ),
            AppError::Damaged(problems) => write!(
                f,
                "the data directory is damaged ({problems} problem(s), listed above)"
            ),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(flags) => flags.validate().map_err(AppError::Config).and_then(serve),
        Command::Check { data_dir } => check(data_dir),
        Command::Backup {
            data_dir,
            to,
            max_rate,
        } => backup(data_dir, to, max_rate),
        Command::Upgrade { data_dir } => upgrade(data_dir),
        Command::Export {
            data_dir,
            to,
            node,
            scratch,
        } => export(data_dir, to, node, scratch),
        Command::Import {
            from,
            node,
            data_dir,
        } => import(from, node, data_dir),
        Command::Token(command) => token(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "powerd: {e}");
            e.exit_code()
        }
    }
}

/// stderr for log lines, where a failed write (a full disk, a closed pipe)
/// loses the line and nothing else: logging is never fatal.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn serve(mut config: ServeConfig) -> Result<(), AppError> {
    if let Some(path) = &config.auth_file {
        config.server.auth = Some(Arc::new(Tokens::load(path).map_err(AppError::Auth)?));
    }
    if let Some((cert, key)) = &config.tls_files {
        config.server.tls = Some(Arc::new(Tls::load(cert, key).map_err(AppError::Tls)?));
    }
    // Lines are handed to a background thread through a bounded queue and
    // dropped when it is full, so a slow or stuck stderr never blocks a
    // request, a commit or a shutdown. The guard flushes what is queued
    // at exit (waiting about a second at most).
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("powerd-log")
        .finish(LossyStderr);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log_level))
        .with_writer(writer)
        // Colour codes only for a human at a terminal, not for log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::io("start the async runtime"))?;
    runtime.block_on(async {
        // Recovery may take a while; it happens before we listen, so no
        // client ever sees a half-recovered engine.
        let engine = Engine::open(
            &config.data_dir,
            EngineOptions {
                checkpoint_log_bytes: config.checkpoint_log_bytes,
                segment_bytes: config.segment_bytes,
                ..EngineOptions::default()
            },
        )
        .map_err(AppError::Storage)?;
        let engine = Arc::new(engine);
        // The lake's state is read before we listen: a lake that cannot
        // be created or read stops the start, not the first pass.
        let exporter = match &config.lake {
            Some(lake) => {
                let exporter = powerd::lake::Exporter::new(&lake.dir, lake.node.clone())
                    .map_err(AppError::Lake)?;
                config.server.lake = Some(exporter.status());
                Some((exporter, lake.clone()))
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(AppError::io(format!("listen on {}", config.listen)))?;
        let address = listener
            .local_addr()
            .map_err(AppError::io("read the bound address"))?;
        // Installed before the banner, so a signal sent right after it is
        // handled rather than killing the process.
        let shutdown = shutdown_signal().map_err(AppError::io("install signal handlers"))?;
        reload_on_hangup(config.server.auth.clone(), config.server.tls.clone())
            .map_err(AppError::io("install the SIGHUP handler"))?;
        let data_dir = std::fs::canonicalize(engine.data_dir())
            .unwrap_or_else(|_| engine.data_dir().to_path_buf());
        // Tests and benchmarks wait for this line: print it only once the
        // engine is open and the socket bound.
        let _ = writeln!(
            std::io::stdout(),
            "powerd listening on {}://{address}, data in {}",
            if config.server.tls.is_some() {
                "https"
            } else {
                "http"
            },
            data_dir.display()
        );
        info!(%address, data_dir = %data_dir.display(), "serving");
        let exporting = match exporter {
            Some((exporter, lake)) => Some(ContinuousExport::start(exporter, lake, &engine)?),
            None => None,
        };
        powerd::http::run(listener, Arc::clone(&engine), config.server, shutdown).await;
        if let Some(exporting) = exporting {
            exporting.stop();
        }
        engine.close().map_err(AppError::Storage)?;
        info!("engine closed; bye");
        Ok(())
    })
}

/// `serve --lake`: export passes on a thread of their own, every
/// `--lake-every` from the start of one to the start of the next (at once
/// when a pass took longer), the first right away. A failed pass is logged
/// and counted; the next one tries again.
struct ContinuousExport {
    stop: Arc<(
        std::sync::atomic::AtomicBool,
        std::sync::Mutex<()>,
        std::sync::Condvar,
    )>,
    thread: std::thread::JoinHandle<()>,
}

impl ContinuousExport {
    fn start(
        mut exporter: powerd::lake::Exporter,
        lake: powerd::config::LakeConfig,
        engine: &Arc<Engine>,
    ) -> Result<ContinuousExport, AppError> {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = Arc::new((
            std::sync::atomic::AtomicBool::new(false),
            std::sync::Mutex::new(()),
            std::sync::Condvar::new(),
        ));
        let engine = Arc::clone(engine);
        let signal = Arc::clone(&stop);
        info!(
            lake = %lake.dir.display(),
            node = %lake.node,
            every_s = lake.every.as_secs(),
            "exporting to the lake"
        );
        let thread = std::thread::Builder::new()
            .name("powerd-lake".into())
            .spawn(move || {
                let (stopping, lock, wake) = &*signal;
                loop {
                    let started = std::time::Instant::now();
                    match exporter.pass(&engine, stopping, &mut |_| {}) {
                        Ok(s) if s.days_written + s.days_removed > 0 => info!(
                            days_checked = s.days_checked,
                            days_written = s.days_written,
                            days_removed = s.days_removed,
                            rows = s.rows,
                            bytes = s.bytes,
                            seconds = s.seconds,
                            "lake export pass"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(
                            "lake export pass failed (the next one tries again): {e}"
                        ),
                    }
                    let next = started + lake.every;
                    let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                    while !stopping.load(Relaxed) {
                        let now = std::time::Instant::now();
                        if now >= next {
                            break;
                        }
                        guard = wake
                            .wait_timeout(guard, next - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    if stopping.load(Relaxed) {
                        return;
                    }
                }
            })
            .map_err(AppError::io("start the lake export thread"))?;
        Ok(ContinuousExport { stop, thread })
    }

    /// Stops between two days (a pass in progress keeps what it wrote).
    fn stop(self) {
        let (stopping, lock, wake) = &*self.stop;
        stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(lock.lock());
        wake.notify_all();
        if self.thread.join().is_err() {
            tracing::error!("the lake export thread panicked");
        }
    }
}

/// `powerd export`: progress on stderr at most once a second, then a
/// summary.
fn export(
    data_dir: PathBuf,
    to: PathBuf,
    node: Option<String>,
    scratch: Option<PathBuf>,
) -> Result<(), AppError> {
    let node = powerd::config::node_name(node.as_deref()).map_err(AppError::Config)?;
    let scratch = scratch.unwrap_or_else(std::env::temp_dir);
    let mut err = std::io::stderr();
    let mut due = once_a_second();
    let mut show = |p: &powerd::lake::ExportProgress| {
        if due(p.days_done == p.days_total) {
            let _ = writeln!(
                std::io::stderr(),
                "export: {}/{} days checked, {} written, {} rows, {:.1} MiB",
                p.days_done,
                p.days_total,
                p.days_written,
                p.rows,
                p.bytes as f64 / 1048576.0
            );
        }
    };
    let mut note = |line: &str| {
        let _ = writeln!(std::io::stderr(), "export: {line}");
    };
    let summary =
        powerd::lake::export_snapshot(&data_dir, &to, node.clone(), &scratch, &mut show, &mut note)
            .map_err(AppError::Lake)?;
    let _ = writeln!(
        err,
        "export complete: node {node}, {} days checked, {} written, {} removed, {} rows, \
         {:.1} MiB in {:.2} s into {}",
        summary.days_checked,
        summary.days_written,
        summary.days_removed,
        summary.rows,
        summary.bytes as f64 / 1048576.0,
        summary.seconds,
        to.display()
    );
    Ok(())
}

/// `powerd import`: a node's day files into a stopped data directory.
fn import(from: PathBuf, node: String, data_dir: PathBuf) -> Result<(), AppError> {
    let node = powerd::config::node_name(Some(&node)).map_err(AppError::Config)?;
    let engine = Engine::open(&data_dir, EngineOptions::default()).map_err(AppError::Storage)?;
    let mut due = once_a_second();
    let mut show = |done: usize, total: usize| {
        if due(done == total) {
            let _ = writeln!(std::io::stderr(), "import: {done}/{total} days");
        }
    };
    let result = powerd::lake::import(&engine, &from, &node, &mut show);
    engine.close().map_err(AppError::Storage)?;
    let summary = result.map_err(AppError::Lake)?;
    let _ = writeln!(
        std::io::stderr(),
        "import complete: node {node}, {} days, {} rows, {} ships in {:.2} s into {}",
        summary.days,
        summary.rows,
        summary.ships,
        summary.seconds,
        data_dir.display()
    );
    Ok(())
}

/// SIGHUP re-reads the auth file and the TLS certificate (its default
/// action would end the process): a file that cannot be read or parsed
/// leaves what was loaded from it in force, and says why in the log.
/// Open connections are not touched.
fn reload_on_hangup(tokens: Option<Arc<Tokens>>, tls: Option<Arc<Tls>>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                if let Some(tls) = &tls {
                    match tls.reload() {
                        Ok(()) => info!(
                            file = %tls.cert_path().display(),
                            "SIGHUP: TLS certificate re-read"
                        ),
                        Err(e) => tracing::warn!(
                            "SIGHUP: the TLS certificate was not re-read, the one in force stays: {e}"
                        ),
                    }
                }
                match &tokens {
                    None if tls.is_some() => {}
                    None => info!("SIGHUP received; no auth file or certificate to re-read"),
                    Some(tokens) => match tokens.reload() {
                        Ok(count) => info!(
                            tokens = count,
                            file = %tokens.path().display(),
                            "SIGHUP: auth file re-read"
                        ),
                        Err(e) => tracing::warn!(
                            "SIGHUP: the auth file was not re-read, the tokens in force stay: {e}"
                        ),
                    },
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (tokens, tls);
    Ok(())
}

/// Resolves on the first SIGTERM or Ctrl-C (SIGINT). The handlers are
/// registered when this is called, not when the future is first polled.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            info!("{name} received; shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C; shutting down");
            }
            info!("Ctrl-C received; shutting down");
        })
    }
}

/// `powerd token ...`: edits the auth file; `add` prints the new token
/// alone on the last line of stdout, once.
fn token(command: TokenCommand) -> Result<(), AppError> {
    let mut out = std::io::stdout();
    match command {
        TokenCommand::Add {
            auth_file,
            name,
            write,
            read,
            admin,
        } => {
            let write = match write {
                Some(text) => WriteScope::parse(&text).map_err(AppError::Auth)?,
                None => WriteScope::None,
            };
            let mut file = AuthFile::load_or_empty(&auth_file).map_err(AppError::Auth)?;
            let summary = format!("write: {write}, read: {read}, admin: {admin}");
            let secret = file
                .add(&name, write, read, admin)
                .map_err(AppError::Auth)?;
            file.store(&auth_file).map_err(AppError::Auth)?;
            let _ = writeln!(
                out,
                "added token {name:?} ({summary}) to {}; it is shown once:\n{secret}",
                auth_file.display()
            );
        }
        TokenCommand::Remove { auth_file, name } => {
            let mut file = AuthFile::load(&auth_file).map_err(AppError::Auth)?;
            file.remove(&name).map_err(AppError::Auth)?;
            file.store(&auth_file).map_err(AppError::Auth)?;
            let _ = writeln!(out, "removed token {name:?} from {}", auth_file.display());
        }
        TokenCommand::List { auth_file } => {
            let file = AuthFile::load(&auth_file).map_err(AppError::Auth)?;
            let _ = writeln!(out, "name\twrite\tread\tadmin");
            for t in file.tokens() {
                let _ = writeln!(out, "{}\t{}\t{}\t{}", t.name, t.write, t.read, t.admin);
            }
        }
    }
    Ok(())
}

/// For progress lines: true at most once a second, and for the last one
/// (`last`), so a long job says where it is without flooding stderr.
fn once_a_second() -> impl FnMut(bool) -> bool {
    let mut shown: Option<std::time::Instant> = None;
    move |last| {
        let due = last || shown.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if due {
            shown = Some(std::time::Instant::now());
        }
        due
    }
}

/// `powerd backup`: progress on stderr at most once a second, then a
/// summary line saying which writes the copy holds.
fn backup(data_dir: PathBuf, to: PathBuf, max_rate: Option<u64>) -> Result<(), AppError> {
    let mut err = std::io::stderr();
    let mut due = once_a_second();
    let mut show = |p: &powerd::storage::BackupProgress| {
        if due(p.files_done == p.files_total) {
            let _ = writeln!(
                err,
                "backup: {}/{} files, {:.1}/{:.1} MiB, {:.1} s",
                p.files_done,
                p.files_total,
                p.bytes_done as f64 / 1048576.0,
                p.bytes_total as f64 / 1048576.0,
                p.elapsed.as_secs_f64()
            );
        }
    };
    let options = powerd::storage::BackupOptions {
        max_bytes_per_s: max_rate,
    };
    let report = powerd::storage::backup(
        &*powerd::storage::io::RealFs::shared(),
        &data_dir,
        &to,
        &options,
        &mut show,
    )
    .map_err(|error| AppError::Backup {
        error,
        marked: to.join(powerd::storage::BACKUP_MARKER).exists(),
    })?;
    let stamp = |t: std::time::SystemTime| {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let secs = ms.div_euclid(1000);
        let mut text = powerd::wire::format_timestamp(secs);
        // 2026-12-02T14:05:03Z → 2026-12-02T14:05:03.123Z
        text.insert_str(text.len() - 1, &format!(".{:03}", ms.rem_euclid(1000)));
        text
    };
    let secs = report.elapsed.as_secs_f64();
    let which = if report.alongside_server {
        format!(
            "taken while a server was writing (from {}): it holds every write acknowledged \
             before {}, when the log was read; of writes acknowledged later, at most those \
             already being committed then, each whole",
            stamp(report.started_at),
            stamp(report.log_read_at)
        )
    } else {
        "no server was running: it holds every acknowledged write".to_owned()
    };
    let _ = writeln!(
        err,
        "backup complete: {} holds {} files, {:.1} MiB ({} block files, {} log segments with {} \
         writes not yet checkpointed) in {secs:.2} s ({:.1} MiB/s); {which}. Verify it with \
         `powerd check --data-dir {}`; restore by serving it.",
        to.display(),
        report.files,
        report.bytes as f64 / 1048576.0,
        report.block_files,
        report.segments,
        report.log_records,
        report.bytes as f64 / 1048576.0 / secs.max(1e-9),
        to.display()
    );
    Ok(())
}

/// `powerd upgrade`: opens the directory (recovering it like `serve`),
/// checkpoints until no block of an older version is left, and closes.
/// Each checkpoint is crash-safe: a kill at any point leaves a directory
/// that opens, and the next run (or the server's checkpoints) carries on.
fn upgrade(data_dir: PathBuf) -> Result<(), AppError> {
    let mut err = std::io::stderr();
    let started = std::time::Instant::now();
    let engine = Engine::open(&data_dir, EngineOptions::default()).map_err(AppError::Storage)?;
    let before = engine.stats();
    let _ = writeln!(
        err,
        "upgrade: {} of {} block files are of an older version",
        before.older_block_files, before.block_files
    );
    let mut left = before.older_block_files;
    while left > 0 {
        engine.checkpoint().map_err(AppError::Storage)?;
        let now = engine.stats().older_block_files;
        let _ = writeln!(
            err,
            "upgrade: {now} older block files left, {:.1} s",
            started.elapsed().as_secs_f64()
        );
        if now >= left {
            return Err(AppError::Storage(StorageError::Failed(format!(
                "a checkpoint rewrote no older block ({now} left)"
            ))));
        }
        left = now;
    }
    engine.close().map_err(AppError::Storage)?;
    let _ = writeln!(
        err,
        "upgrade complete: {} holds only current-version files ({} block files rewritten) in \
         {:.2} s",
        data_dir.display(),
        before.older_block_files,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `powerd check`: verifies a data directory offline and prints what it
/// found; damage makes the exit status non-zero.
fn check(data_dir: PathBuf) -> Result<(), AppError> {
    let report = powerd::storage::check(&data_dir).map_err(AppError::Storage)?;
    let _ = writeln!(std::io::stdout(), "{report}");
    if report.is_ok() {
        Ok(())
    } else {
        Err(AppError::Damaged(report.problems.len()))
    }
}
