//! The systemd unit, `deploy/powerd.service` (issue 12).
//!
//! Guarantee: `systemd-analyze verify` finds nothing wrong with it (its
//! binary path aside, which is only installed on a real host),
//! `systemd-analyze security --offline=yes` rates its exposure at most 2.0,
//! and it has the properties the issue asks for: a static `powerd` user,
//! reload by SIGHUP, a state directory, the sandboxing settings, an
//! ExecStart whose flags `powerd serve` accepts, and a stop timeout longer
//! than powerd's own shutdown grace. `systemd-analyze` is Debian's
//! `systemd` package, which `.ci/run` installs; without it these tests
//! fail (they never skip), saying so. Neither command needs a running
//! systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use clap::Parser;
use powerd::config::{ServeConfig, ServeFlags};

use crate::util::TempDir;

/// Where the unit says the binary is installed (README, "Deploying").
const INSTALLED_BINARY: &str = "/usr/local/bin/powerd";
/// The highest overall exposure issue 12 accepts (0 is fully locked down,
/// 10 is unprotected).
const MAX_EXPOSURE: f64 = 2.0;

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/powerd.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("deploy/powerd.service is readable")
}

fn systemd_analyze() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join("systemd-analyze"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "systemd-analyze is not installed, and the unit tests need it: run \
                 `bash .ci/run` (it installs it) or `apt-get update && apt-get install -y systemd`"
            )
        })
}

/// Runs `systemd-analyze ARGS UNIT`; the log level is pinned so that an
/// inherited `SYSTEMD_LOG_LEVEL=debug` cannot add lines.
fn analyze(args: &[&str], unit: &Path) -> Output {
    Command::new(systemd_analyze())
        .args(args)
        .arg(unit)
        .env("SYSTEMD_LOG_LEVEL", "info")
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .expect("systemd-analyze runs")
}

/// stdout and stderr, for assertions and failure messages.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The unit's `Key=value` settings as (section, key, value), in order.
/// Comments and blank lines are left out; the unit uses no continuation
/// lines (checked), so each setting is one line.
fn settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(!line.ends_with('\\'), "continuation line: {line}");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a Key=value line: {line}"));
        out.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    out
}

/// Every value `key` has in [Service], in order.
fn service_values(settings: &[(String, String, String)], key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(section, k, _)| section == "Service" && k == key)
        .map(|(_, _, value)| value.clone())
        .collect()
}

/// The one value of `key` in [Service].
fn service_value(settings: &[(String, String, String)], key: &str) -> String {
    match &service_values(settings, key)[..] {
        [value] => value.clone(),
        values => panic!("expected one {key}= in [Service], found {values:?}"),
    }
}

/// A systemd time span of the forms the unit may use: `60`, `60s`,
/// `2min`, `2min 30s`.
fn time_span(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    for part in text.split_whitespace() {
        let digits = part.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let number: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("{text:?}: not a time span this test reads"));
        total += match &part[digits.len()..] {
            "" | "s" | "sec" => Duration::from_secs(number),
            "min" | "m" => Duration::from_secs(number * 60),
            unit => panic!("{text:?}: time unit {unit:?} not read by this test"),
        };
    }
    total
}

/// ExecStart's arguments after `serve`, validated by powerd's own flag
/// parser: a typo in the unit fails here, not on a host at start.
fn exec_start_config(exec_start: &str) -> ServeConfig {
    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        flags: ServeFlags,
    }
    assert!(
        !exec_start.contains(['"', '\'', '$', '%']),
        "ExecStart uses quoting or substitutions this test does not read: {exec_start}"
    );
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    assert_eq!(
        words[..2],
        [INSTALLED_BINARY, "serve"],
        "ExecStart runs `{INSTALLED_BINARY} serve`: {exec_start}"
    );
    let argv = ["powerd"].into_iter().chain(words[2..].iter().copied());
    Serve::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("ExecStart's flags: {e}"))
        .flags
        .validate()
        .unwrap_or_else(|e| panic!("ExecStart's flags: {e}"))
}

#[test]
fn deploy_unit_verifies_clean() {
    let text = unit_text();
    assert!(text.contains(&format!("ExecStart={INSTALLED_BINARY} serve")));

    // As written, the only complaint may be the binary missing from this
    // machine.
    let output = analyze(&["verify", "--man=no"], &unit_path());
    let missing = format!(
        "powerd.service: Command {INSTALLED_BINARY} is not executable: No such file or directory"
    );
    let all = printed(&output);
    let others: Vec<&str> = all
        .lines()
        .filter(|line| !line.trim().is_empty() && line.trim() != missing)
        .collect();
    assert!(others.is_empty(), "systemd-analyze verify:\n{all}");

    // With the binary pointed at the one just built, nothing at all.
    let dir = TempDir::new("deploy-verify");
    std::fs::create_dir_all(dir.path()).unwrap();
    let unit = dir.path().join("powerd.service");
    std::fs::write(
        &unit,
        text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_powerd")),
    )
    .unwrap();
    let output = analyze(&["verify", "--man=no"], &unit);
    assert!(
        output.status.success() && printed(&output).trim().is_empty(),
        "systemd-analyze verify ({}):\n{}",
        output.status,
        printed(&output)
    );
}

#[test]
fn deploy_unit_security_exposure_is_at_most_2() {
    let output = analyze(&["security", "--offline=yes", "--no-pager"], &unit_path());
    let all = printed(&output);
    assert!(output.status.success(), "{}:\n{all}", output.status);
    let last = all
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let exposure: f64 = last
        .split_once("Overall exposure level for powerd.service:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure on the last line:\n{all}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "exposure {exposure} > {MAX_EXPOSURE}:\n{all}"
    );
}

#[test]
fn deploy_unit_has_the_properties_issue_12_asks_for() {
    let settings = settings(&unit_text());
    let value = |key: &str| service_value(&settings, key);

    // A static user that can own the 0600 auth file it re-reads.
    assert_eq!(value("User"), "powerd");
    assert_eq!(value("Group"), "powerd");
    assert!(service_values(&settings, "DynamicUser").is_empty());
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value("KillSignal"), "SIGTERM");

    let config = exec_start_config(&value("ExecStart"));
    assert_eq!(value("StateDirectory"), "powerd");
    assert_eq!(config.data_dir, Path::new("/var/lib/powerd"));
    assert_eq!(
        config.auth_file.as_deref(),
        Some(Path::new("/etc/powerd/auth.json"))
    );
    // No CAP_NET_BIND_SERVICE: the port must be unprivileged.
    assert!(config.listen.port() >= 1024, "{}", config.listen);
    let stop = time_span(&value("TimeoutStopSec"));
    assert!(
        stop > config.server.shutdown_grace,
        "TimeoutStopSec {stop:?} must outlast the shutdown grace {:?}",
        config.server.shutdown_grace
    );
    // The commented TLS variant: the same service, with certificate flags.
    let tls_line = unit_text()
        .lines()
        .find_map(|line| line.strip_prefix("#ExecStart="))
        .map(str::to_owned)
        .expect("a commented TLS ExecStart");
    let tls = exec_start_config(&tls_line);
    assert_eq!(
        tls.tls_files,
        Some((
            PathBuf::from("/etc/powerd/cert.pem"),
            PathBuf::from("/etc/powerd/key.pem")
        ))
    );
    assert_eq!(
        (&tls.data_dir, &tls.auth_file, tls.listen),
        (&config.data_dir, &config.auth_file, config.listen)
    );
    let open_files: usize = value("LimitNOFILE").parse().expect("a number");
    assert!(open_files > config.server.max_connections);

    for (key, expected) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("PrivateDevices", "yes"),
        ("PrivateTmp", "yes"),
        ("SystemCallArchitectures", "native"),
        ("MemoryDenyWriteExecute", "yes"),
        ("UMask", "0077"),
    ] {
        assert_eq!(value(key), expected, "{key}=");
    }
    let filters = service_values(&settings, "SystemCallFilter");
    assert!(
        filters.contains(&"@system-service".to_string()),
        "{filters:?}"
    );
    let families: Vec<String> = value("RestrictAddressFamilies")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(families, ["AF_INET", "AF_INET6"]);

    let sysusers = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/sysusers.d/powerd.conf"),
    )
    .expect("deploy/sysusers.d/powerd.conf is readable");
    assert!(
        sysusers
            .lines()
            .any(|line| line.split_whitespace().take(2).eq(["u", "powerd"])),
        "{sysusers}"
    );
}
