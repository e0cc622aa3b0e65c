//! Settings with their documented defaults, in two stages (ripgrep's
//! lowargs → hiargs): [`ServeFlags`] is what the operator typed, exactly as
//! clap parsed it; [`ServeFlags::validate`] turns it into a [`ServeConfig`]
//! or a [`ConfigError`] before any I/O happens (no directory is created, no
//! socket bound, no logger installed until the whole configuration is known
//! to be sane).
//!
//! Must never know: how the settings are used. The HTTP layer reads
//! [`ServerConfig`]; the binary reads the rest.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Largest accepted request body; larger bodies get 413. A year of 5-minute
/// readings (105,120 of them) is about 6 MiB of JSON, so the default leaves
/// room for that with a margin.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Upper bound for `--max-body-bytes`: bodies are buffered whole in memory
/// before parsing, so the limit is also a per-connection memory bound.
pub const MAX_BODY_BYTES_LIMIT: usize = 1024 * 1024 * 1024;
/// A client must finish sending its request headers within this time.
///
/// hyper arms this timer whenever it waits for a request head, including on
/// an idle keep-alive connection, so idle keep-alive connections are also
/// closed after this long.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that moves no bytes for this long while the server is not
/// working on one of its requests is closed: an idle keep-alive connection,
/// a client stalled mid-body (it gets 408), or a client that stopped reading
/// its response.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; further ones wait in the kernel backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// In-flight requests get this long to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// A checkpoint starts after this much log: it bounds replay time after a
/// crash (about 0.1 s per 32 MiB) and the memory the memtable holds.
pub const DEFAULT_CHECKPOINT_LOG_BYTES: u64 = 32 * 1024 * 1024;
/// Bounds of `--checkpoint-log-bytes`: below 64 KiB checkpoints would run
/// back to back; above 1 GiB replay would take most of a minute.
pub const CHECKPOINT_LOG_BYTES_RANGE: std::ops::RangeInclusive<u64> =
    64 * 1024..=1024 * 1024 * 1024;
/// Size of each zero-filled log segment: a commit appends inside one, and
/// a spare is prepared ahead, so this much (twice, counting the spare) is
/// reserved on disk. 8 MiB holds about 14,000 day-long POSTs.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// Bounds of `--segment-bytes`: below 64 KiB the log would move on every
/// few writes; above 256 MiB a spare takes seconds to prepare.
/// Default budget of the response cache (`--response-cache-mib`).
pub const DEFAULT_RESPONSE_CACHE_MIB: u64 = 256;
/// Largest `--response-cache-mib`: 1 TiB is a typo, not a cache.
pub const MAX_RESPONSE_CACHE_MIB: u64 = 64 * 1024;
pub const SEGMENT_BYTES_RANGE: std::ops::RangeInclusive<u64> = 64 * 1024..=256 * 1024 * 1024;
/// Log filter when `--log-level` is not given (tracing `EnvFilter` syntax).
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The HTTP layer's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub max_body_bytes: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// The tokens requests must carry (`--auth-file`); `None`: no checks.
    pub auth: Option<std::sync::Arc<crate::auth::Tokens>>,
    /// The certificate connections are served with (`--tls-cert`,
    /// `--tls-key`); `None`: plain HTTP.
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
    /// Bytes of finished `GET /data` answers kept for asking again; 0: off.
    pub response_cache_bytes: usize,
    /// The continuous lake export's counters (`--lake`), for `/metrics`.
    pub lake: Option<std::sync::Arc<crate::lake::LakeStatus>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            auth: None,
            tls: None,
            response_cache_bytes: (DEFAULT_RESPONSE_CACHE_MIB << 20) as usize,
            lake: None,
        }
    }
}

/// Everything `powerd serve` needs, validated.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub server: ServerConfig,
    /// A tracing `EnvFilter` directive string, known to parse.
    pub log_level: String,
    /// Log bytes between checkpoints.
    pub checkpoint_log_bytes: u64,
    /// Bytes of each preallocated log segment.
    pub segment_bytes: u64,
    /// The auth file to load tokens from (`--auth-file`).
    pub auth_file: Option<PathBuf>,
    /// The PEM certificate chain and private key to serve TLS with.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    /// Where and how often to export to a Parquet lake (`--lake`).
    pub lake: Option<LakeConfig>,
}

/// `serve --lake LAKE [--node NAME] [--lake-every DURATION]`.
#[derive(Clone, Debug)]
pub struct LakeConfig {
    pub dir: PathBuf,
    pub node: crate::lake::NodeName,
    /// Time between the starts of two export passes.
    pub every: Duration,
}

/// Default `--lake-every`.
pub const DEFAULT_LAKE_EVERY: &str = "60s";

/// `powerd serve` flags as typed, before validation.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeFlags {
    /// Directory holding the engine's files; created if missing.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address to listen on, as IP:PORT. Port 0 picks a free port (the real
    /// one is printed on start).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Largest accepted request body in bytes; larger bodies get 413.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send its request headers (also bounds how
    /// long an idle keep-alive connection is kept).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    pub header_timeout: f64,
    /// Seconds without any bytes moving after which a connection is closed,
    /// unless the server is busy answering one of its requests.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    pub idle_timeout: f64,
    /// Connections served at once; more wait in the kernel's accept backlog.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds in-flight requests get to finish on SIGTERM or Ctrl-C.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE.as_secs_f64())]
    pub shutdown_grace: f64,
    /// Log filter (tracing EnvFilter syntax, e.g. `debug` or
    /// `info,powerd::http=debug`). Logs go to stderr.
    #[arg(long, value_name = "FILTER", default_value = DEFAULT_LOG_LEVEL)]
    pub log_level: String,
    /// Log bytes written between checkpoints (which fold the log into
    /// blocks): bounds the replay after a crash and the memtable's memory.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHECKPOINT_LOG_BYTES)]
    pub checkpoint_log_bytes: u64,
    /// Bytes of each zero-filled log segment (the log and one spare each
    /// reserve this much; smaller suits a small disk).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_SEGMENT_BYTES)]
    pub segment_bytes: u64,
    /// Tokens every request needs (except GET /health and the dashboard's
    /// files); make them with `powerd token add`.
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Serve a non-loopback address without tokens: anyone who reaches it
    /// can write any ship.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs
    /// --tls-key. SIGHUP re-reads both.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Export the stored buckets continuously to this Parquet lake
    /// (`LAKE/date=YYYY-MM-DD/<node>.parquet`), for Spark and other engines.
    #[arg(long, value_name = "LAKE")]
    pub lake: Option<PathBuf>,
    /// This node's name in the lake (default: the host name).
    #[arg(long, value_name = "NAME", requires = "lake")]
    pub node: Option<String>,
    /// Time between export passes: seconds, or a number with s, m or h.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_LAKE_EVERY, requires = "lake")]
    pub lake_every: String,
    /// MiB of memory for finished `GET /data` answers, served again while
    /// the ship has no new writes; 0 turns the cache off.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_RESPONSE_CACHE_MIB)]
    pub response_cache_mib: u64,
}

impl ServeFlags {
    /// Checks every flag; does no I/O.
    pub fn validate(self) -> Result<ServeConfig, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            ConfigError::new(
                "--listen",
                format!("{:?} is not an IP:PORT address", self.listen),
            )
        })?;
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_BYTES_LIMIT {
            return Err(ConfigError::new(
                "--max-body-bytes",
                format!(
                    "{} is outside 1..={MAX_BODY_BYTES_LIMIT}",
                    self.max_body_bytes
                ),
            ));
        }
        // The semaphore that enforces the limit cannot hold more permits.
        if self.max_connections == 0 || self.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "--max-connections",
                format!(
                    "{} is outside 1..={}",
                    self.max_connections,
                    tokio::sync::Semaphore::MAX_PERMITS
                ),
            ));
        }
        if !CHECKPOINT_LOG_BYTES_RANGE.contains(&self.checkpoint_log_bytes) {
            return Err(ConfigError::new(
                "--checkpoint-log-bytes",
                format!(
                    "{} is outside {}..={}",
                    self.checkpoint_log_bytes,
                    CHECKPOINT_LOG_BYTES_RANGE.start(),
                    CHECKPOINT_LOG_BYTES_RANGE.end()
                ),
            ));
        }
        if self.response_cache_mib > MAX_RESPONSE_CACHE_MIB {
            return Err(ConfigError::new(
                "--response-cache-mib",
                format!(
                    "{} is outside 0..={MAX_RESPONSE_CACHE_MIB}",
                    self.response_cache_mib
                ),
            ));
        }
        if !SEGMENT_BYTES_RANGE.contains(&self.segment_bytes) {
            return Err(ConfigError::new(
                "--segment-bytes",
                format!(
                    "{} is outside {}..={}",
                    self.segment_bytes,
                    SEGMENT_BYTES_RANGE.start(),
                    SEGMENT_BYTES_RANGE.end()
                ),
            ));
        }
        if !listen.ip().is_loopback() && self.auth_file.is_none() && !self.insecure_no_auth {
            return Err(ConfigError::new(
                "--listen",
                format!(
                    "refusing to serve {listen} without --auth-file: anyone who can reach it \
                     could overwrite any ship's history. Make tokens with `powerd token add \
                     --auth-file FILE --name NAME --write all|IDS --read` and pass \
                     --auth-file FILE (or, knowingly, --insecure-no-auth)"
                ),
            ));
        }
        let tls_files = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "--tls-key",
                    "is missing: --tls-cert needs the certificate's private key",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "--tls-cert",
                    "is missing: --tls-key needs the certificate it belongs to",
                ))
            }
        };
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("--data-dir", "must not be empty"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(ConfigError::new(
                "--log-level",
                format!("{:?} is not a log filter: {e}", self.log_level),
            ));
        }
        let lake = match self.lake {
            None => None,
            Some(dir) => Some(LakeConfig {
                node: node_name(self.node.as_deref())?,
                every: duration("--lake-every", &self.lake_every)?,
                dir,
            }),
        };
        Ok(ServeConfig {
            lake,
            data_dir: self.data_dir,
            listen,
            server: ServerConfig {
                max_body_bytes: self.max_body_bytes,
                header_timeout: seconds("--header-timeout", self.header_timeout)?,
                idle_timeout: seconds("--idle-timeout", self.idle_timeout)?,
                max_connections: self.max_connections,
                shutdown_grace: seconds("--shutdown-grace", self.shutdown_grace)?,
                auth: None,
                tls: None,
                response_cache_bytes: (self.response_cache_mib << 20) as usize,
                lake: None,
            },
            log_level: self.log_level,
            checkpoint_log_bytes: self.checkpoint_log_bytes,
            segment_bytes: self.segment_bytes,
            auth_file: self.auth_file,
            tls_files,
        })
    }
}

/// `--node`, or the host name when it is not given.
pub fn node_name(flag: Option<&str>) -> Result<crate::lake::NodeName, ConfigError> {
    match flag {
        Some(name) => crate::lake::NodeName::parse(name).map_err(|e| ConfigError::new("--node", e)),
        None => crate::lake::NodeName::from_host().map_err(|e| ConfigError::new("--node", e)),
    }
}

/// `90`, `90s`, `5m` or `1h`: from one second to a day.
fn duration(flag: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if scale > 0 && (1..=86_400).contains(&(n * scale)) => {
            Ok(Duration::from_secs(n * scale))
        }
        _ => Err(ConfigError::new(
            flag,
            format!("{text:?} is not a duration from 1s to 24h (like 30s, 5m or 1h)"),
        )),
    }
}

/// A positive, finite number of seconds of at most a day: anything longer is
/// a typo, and a zero timeout would close every connection at once.
fn seconds(flag: &'static str, secs: f64) -> Result<Duration, ConfigError> {
    const DAY_S: f64 = 86_400.0;
    if secs.is_finite() && secs > 0.0 && secs <= DAY_S {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(ConfigError::new(
            flag,
            format!("{secs} is not a number of seconds in (0, {DAY_S}]"),
        ))
    }
}

/// A flag with a value that cannot work, named for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(flag: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            flag,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::EngineOptions;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ServeFlags,
    }

    fn parse(args: &[&str]) -> Result<ServeConfig, ConfigError> {
        let mut argv = vec!["powerd"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("clap accepts the flags")
            .flags
            .validate()
    }

    #[test]
    fn defaults_are_the_documented_constants() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.server.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.server.header_timeout, DEFAULT_HEADER_TIMEOUT);
        assert_eq!(config.server.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        assert_eq!(config.server.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(config.server.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(config.log_level, DEFAULT_LOG_LEVEL);
        assert_eq!(config.checkpoint_log_bytes, DEFAULT_CHECKPOINT_LOG_BYTES);
        assert_eq!(
            EngineOptions::default().checkpoint_log_bytes,
            DEFAULT_CHECKPOINT_LOG_BYTES
        );
        assert_eq!(config.segment_bytes, DEFAULT_SEGMENT_BYTES);
        assert_eq!(
            EngineOptions::default().segment_bytes,
            DEFAULT_SEGMENT_BYTES
        );
    }

    #[test]
    fn fractional_timeouts_are_accepted() {
        let config = parse(&["--header-timeout", "0.5", "--idle-timeout", "2"]).unwrap();
        assert_eq!(config.server.header_timeout, Duration::from_millis(500));
        assert_eq!(config.server.idle_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["--listen", "localhost"][..], "--listen"),
            (&["--max-body-bytes", "0"][..], "--max-body-bytes"),
            (&["--max-connections", "0"][..], "--max-connections"),
            (&["--header-timeout", "0"][..], "--header-timeout"),
            (&["--idle-timeout=-1"][..], "--idle-timeout"),
            (&["--shutdown-grace", "NaN"][..], "--shutdown-grace"),
            (&["--log-level", "info,=[{"][..], "--log-level"),
            (
                &["--checkpoint-log-bytes", "1000"][..],
                "--checkpoint-log-bytes",
            ),
            (&["--segment-bytes", "4096"][..], "--segment-bytes"),
            (
                &["--response-cache-mib", "65537"][..],
                "--response-cache-mib",
            ),
            (&["--lake", "/l", "--node", "../x"][..], "--node"),
            (
                &["--lake", "/l", "--node", "a", "--lake-every", "0s"][..],
                "--lake-every",
            ),
            (
                &["--lake", "/l", "--node", "a", "--lake-every", "2d"][..],
                "--lake-every",
            ),
            (
                &["--lake", "/l", "--node", "a", "--lake-every", "25h"][..],
                "--lake-every",
            ),
        ] {
            assert_eq!(parse(args).unwrap_err().flag, flag, "{args:?}");
        }
    }
}
