//! `powerd token add|remove|list`: the secret is printed once, alone on
//! the last line; the auth file keeps only its SHA-256, with mode 0600;
//! bad input is refused with exit 2 and a reason, nothing written.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::TempDir;

fn token(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_powerd"))
        .arg("token")
        .args(&args[..1])
        .arg("--auth-file")
        .arg(file)
        .args(&args[1..])
        .output()
        .expect("powerd runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn tokens_are_added_listed_and_removed_and_only_their_digest_is_kept() {
    let dir = TempDir::new("tokens");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("auth.json");

    let added = token(&["add", "--name", "ship-42", "--write", "42,7"], &file);
    assert!(added.status.success(), "{added:?}");
    let secret = stdout(&added).lines().last().unwrap().to_owned();
    assert!(secret.starts_with("pwd_") && secret.len() == 68, "{secret}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&secret[4..]), "the secret is stored");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let auth = powerd::auth::AuthFile::load(&file).unwrap();
    assert_eq!(auth.find(&secret).unwrap().name, "ship-42");

    let second = token(&["add", "--name", "dashboard", "--read"], &file);
    let other = stdout(&second).lines().last().unwrap().to_owned();
    assert_ne!(other, secret);

    let listed = stdout(&token(&["list"], &file));
    assert!(listed.contains("ship-42\t7,42\tfalse\tfalse"), "{listed}");
    assert!(listed.contains("dashboard\t-\ttrue\tfalse"), "{listed}");
    assert!(!listed.contains("pwd_"), "{listed}");

    // Refusals: exit 2, a reason, the file unchanged.
    let before = std::fs::read(&file).unwrap();
    for (args, reason) in [
        (
            &["add", "--name", "dashboard", "--read"][..],
            "already exists",
        ),
        (
            &["add", "--name", "x", "--write", "4x"][..],
            "\"4x\" is not a ship id",
        ),
        (
            &["add", "--name", "bad name", "--read"][..],
            "a name may hold",
        ),
        (&["add", "--name", "idle"][..], "would allow nothing"),
        (&["remove", "--name", "nobody"][..], "no token is named"),
    ] {
        let refused = token(args, &file);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }

    let removed = token(&["remove", "--name", "ship-42"], &file);
    assert!(removed.status.success());
    let auth = powerd::auth::AuthFile::load(&file).unwrap();
    assert!(auth.find(&secret).is_none());
    assert_eq!(auth.find(&other).unwrap().name, "dashboard");

    let unreadable = token(&["list"], &dir.path().join("missing.json"));
    assert_eq!(unreadable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreadable.stderr).contains("cannot read the auth file"));
}

/// Root editing the service user's auth file (`deploy/powerd.service`
/// runs as `powerd`) leaves it owned by that user, still 0600: otherwise
/// every `token add` would lock the service out of its own file. Needs
/// root, as CI runs.
#[cfg(unix)]
#[test]
fn a_replaced_auth_file_keeps_its_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = TempDir::new("tokens-owner");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("auth.json");
    assert!(token(&["add", "--name", "first", "--read"], &file)
        .status
        .success());
    // 65534: `nobody` on Debian, standing in for the service user.
    std::os::unix::fs::chown(&file, Some(65534), Some(65534))
        .expect("chown needs root: run the tests as root, as CI does");
    for args in [
        &["add", "--name", "second", "--write", "7"][..],
        &["remove", "--name", "first"][..],
    ] {
        let output = token(args, &file);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{args:?}");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{args:?}");
    }
}
