//! Settings with their documented defaults. The CLI turns flags into a
//! [`ServeConfig`], validated before any I/O happens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// Largest accepted request body; larger bodies get 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A client must finish sending its request headers within this time.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection (or one stalled mid-body) is closed after this.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; further ones wait in the kernel backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// In-flight requests get this long to finish on shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub max_body_bytes: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub server: ServerConfig,
}
