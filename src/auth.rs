//! Access tokens and the auth file that keeps them: random secrets, of
//! which the file holds only SHA-256 digests, each with a name and scopes
//! (which ships it may write, whether it may read, whether it may scrape
//! `/metrics`). `powerd token add|remove|list` edit the file; the server
//! looks tokens up in it.
//!
//! Invariants: a secret is never stored, logged or printed except once, by
//! `token add`; the file is written whole and atomically (temporary file
//! with mode 0600, synced, renamed over, directory synced), so a reader
//! sees the old file or the new one; a token is found by its digest and
//! the digests compared in constant time.
//!
//! Must never know: HTTP. It says what a token may do; the HTTP layer
//! decides what a refusal becomes.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::model::ShipId;

/// Prefix of every token, so a leaked one is recognisable for what it is.
const TOKEN_PREFIX: &str = "pwd_";
/// Random bytes per token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// The auth file's format version.
const FORMAT_VERSION: u64 = 1;
const MAX_NAME_LEN: usize = 64;

/// Which ships a token may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteScope {
    None,
    All,
    Ships(BTreeSet<ShipId>),
}

impl WriteScope {
    /// `all`, or ship ids separated by commas.
    pub fn parse(text: &str) -> Result<WriteScope, AuthError> {
        if text.trim() == "all" {
            return Ok(WriteScope::All);
        }
        let mut ships = BTreeSet::new();
        for piece in text.split(',') {
            let piece = piece.trim();
            let ship = piece.parse::<ShipId>().map_err(|_| {
                AuthError::Invalid(format!(
                    "--write: {piece:?} is not a ship id (write `all`, or ship ids separated by commas, such as 1,2,42)"
                ))
            })?;
            ships.insert(ship);
        }
        Ok(WriteScope::Ships(ships))
    }

    pub fn allows(&self, ship: ShipId) -> bool {
        match self {
            WriteScope::None => false,
            WriteScope::All => true,
            WriteScope::Ships(ships) => ships.contains(&ship),
        }
    }
}

impl fmt::Display for WriteScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteScope::None => write!(f, "-"),
            WriteScope::All => write!(f, "all"),
            WriteScope::Ships(ships) => {
                let ids: Vec<String> = ships.iter().map(|s| s.to_string()).collect();
                write!(f, "{}", ids.join(","))
            }
        }
    }
}

/// One token's entry: its name, the digest of its secret, its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    digest: [u8; 32],
    pub write: WriteScope,
    pub read: bool,
    pub admin: bool,
}

/// The tokens of one auth file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthFile {
    tokens: Vec<Token>,
    /// Position of each digest in `tokens`: a fleet may hold 10,000 ship
    /// tokens, and a request should not compare against all of them.
    by_digest: HashMap<[u8; 32], usize>,
}

/// Why an auth file operation failed; the message says what to do.
#[derive(Debug)]
pub enum AuthError {
    /// The file could not be read or written.
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// The file is not a valid auth file.
    Malformed { path: PathBuf, why: String },
    /// A bad name, a duplicate, an unknown name, a bad ship list.
    Invalid(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Io { path, what, source } => {
                write!(
                    f,
                    "cannot {what} the auth file {}: {source}",
                    path.display()
                )
            }
            AuthError::Malformed { path, why } => {
                write!(f, "{} is not a valid auth file: {why}", path.display())
            }
            AuthError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for AuthError {}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equal digests, in time that does not depend on where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AuthFile {
    /// Reads the auth file at `path`.
    pub fn load(path: &Path) -> Result<AuthFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_path_buf(),
            what: "read",
            source,
        })?;
        AuthFile::parse(&text).map_err(|why| AuthError::Malformed {
            path: path.to_path_buf(),
            why,
        })
    }

    /// [`AuthFile::load`], or an empty file when there is none yet.
    pub fn load_or_empty(path: &Path) -> Result<AuthFile, AuthError> {
        match AuthFile::load(path) {
            Err(AuthError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(AuthFile::default())
            }
            other => other,
        }
    }

    fn parse(text: &str) -> Result<AuthFile, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        if json["version"].as_u64() != Some(FORMAT_VERSION) {
            return Err(format!(
                "\"version\" must be {FORMAT_VERSION} (this build reads version {FORMAT_VERSION})"
            ));
        }
        let entries = json["tokens"]
            .as_array()
            .ok_or("\"tokens\" must be an array")?;
        let mut file = AuthFile::default();
        for (i, entry) in entries.iter().enumerate() {
            let field = |name: &str| format!("tokens[{i}].{name}");
            let name = entry["name"]
                .as_str()
                .ok_or_else(|| format!("{} must be a string", field("name")))?;
            check_name(name).map_err(|e| format!("{}: {e}", field("name")))?;
            let digest = entry["sha256"]
                .as_str()
                .and_then(unhex)
                .ok_or_else(|| format!("{} must be 64 hex digits", field("sha256")))?;
            let write = match &entry["write"] {
                serde_json::Value::String(all) if all == "all" => WriteScope::All,
                serde_json::Value::Array(ids) => {
                    let ships: Option<BTreeSet<ShipId>> =
                        ids.iter().map(serde_json::Value::as_u64).collect();
                    let ships =
                        ships.ok_or_else(|| format!("{} must hold ship ids", field("write")))?;
                    if ships.is_empty() {
                        WriteScope::None
                    } else {
                        WriteScope::Ships(ships)
                    }
                }
                _ => {
                    return Err(format!(
                        "{} must be \"all\" or a list of ship ids",
                        field("write")
                    ))
                }
            };
            let flag = |name: &str| {
                entry[name]
                    .as_bool()
                    .ok_or_else(|| format!("{} must be true or false", field(name)))
            };
            let token = Token {
                name: name.to_owned(),
                digest,
                write,
                read: flag("read")?,
                admin: flag("admin")?,
            };
            if file.tokens.iter().any(|t| t.name == token.name) {
                return Err(format!("two tokens are named {:?}", token.name));
            }
            file.tokens.push(token);
        }
        file.reindex();
        Ok(file)
    }

    fn render(&self) -> String {
        let tokens: Vec<serde_json::Value> = self
            .tokens
            .iter()
            .map(|t| {
                let write = match &t.write {
                    WriteScope::All => serde_json::json!("all"),
                    WriteScope::None => serde_json::json!([]),
                    WriteScope::Ships(ships) => serde_json::json!(ships),
                };
                serde_json::json!({
                    "name": t.name,
                    "sha256": hex(&t.digest),
                    "write": write,
                    "read": t.read,
                    "admin": t.admin,
                })
            })
            .collect();
        let json = serde_json::json!({ "version": FORMAT_VERSION, "tokens": tokens });
        serde_json::to_string_pretty(&json).expect("JSON values serialise") + "\n"
    }

    /// Writes the file whole and atomically, readable by its owner only;
    /// a file it replaces keeps its owner and group.
    pub fn store(&self, path: &Path) -> Result<(), AuthError> {
        let io = |what: &'static str| {
            move |source| AuthError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(io("write"))?;
        // A leftover temporary file keeps its old mode: set it again.
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io("write"))?;
        // A replaced file keeps its owner and group: root editing the
        // service user's file leaves it readable by the service.
        #[cfg(unix)]
        if let Ok(old) = std::fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            let new = file.metadata().map_err(io("write"))?;
            if (old.uid(), old.gid()) != (new.uid(), new.gid()) {
                std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()))
                    .map_err(io("keep the owner of"))?;
            }
        }
        file.write_all(self.render().as_bytes())
            .map_err(io("write"))?;
        file.sync_all().map_err(io("write"))?;
        std::fs::rename(&tmp, path).map_err(io("replace"))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory of"))?;
        Ok(())
    }

    /// Adds a token named `name` with these scopes; returns its secret,
    /// which exists nowhere else.
    pub fn add(
        &mut self,
        name: &str,
        write: WriteScope,
        read: bool,
        admin: bool,
    ) -> Result<String, AuthError> {
        check_name(name).map_err(|e| AuthError::Invalid(format!("--name: {e}")))?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(AuthError::Invalid(format!(
                "a token named {name:?} already exists (remove it first, or pick another name)"
            )));
        }
        if write == WriteScope::None && !read && !admin {
            return Err(AuthError::Invalid(
                "the token would allow nothing: give it --write, --read or --admin".into(),
            ));
        }
        let mut random = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut random).map_err(|e| {
            AuthError::Invalid(format!("the operating system gave no randomness: {e}"))
        })?;
        let secret = format!("{TOKEN_PREFIX}{}", hex(&random));
        self.tokens.push(Token {
            name: name.to_owned(),
            digest: digest(&secret),
            write,
            read,
            admin,
        });
        self.reindex();
        Ok(secret)
    }

    /// Removes the token named `name`.
    pub fn remove(&mut self, name: &str) -> Result<(), AuthError> {
        let before = self.tokens.len();
        self.tokens.retain(|t| t.name != name);
        if self.tokens.len() == before {
            return Err(AuthError::Invalid(format!("no token is named {name:?}")));
        }
        self.reindex();
        Ok(())
    }

    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    fn reindex(&mut self) {
        self.by_digest = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.digest, i))
            .collect();
    }

    /// The token whose secret is `secret`, if any: found by the digest of
    /// the secret (hashing first means a guess's timing can only tell
    /// about its digest, which says nothing about any secret), then the
    /// digests compared once more in constant time.
    pub fn find(&self, secret: &str) -> Option<&Token> {
        let wanted = digest(secret);
        let token = &self.tokens[*self.by_digest.get(&wanted)?];
        same_digest(&token.digest, &wanted).then_some(token)
    }
}

/// The tokens a running server checks: one [`AuthFile`], replaced whole
/// when the file is re-read (SIGHUP), so a request sees the old tokens or
/// the new ones, never a mix.
#[derive(Debug)]
pub struct Tokens {
    path: PathBuf,
    current: RwLock<Arc<AuthFile>>,
}

impl Tokens {
    /// Loads `path`; a file without a token is refused (every request
    /// would be).
    pub fn load(path: &Path) -> Result<Tokens, AuthError> {
        let file = AuthFile::load(path)?;
        if file.tokens.is_empty() {
            return Err(AuthError::Invalid(format!(
                "{} holds no token: every request would be refused; add one with `powerd token add`",
                path.display()
            )));
        }
        Ok(Tokens {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(file)),
        })
    }

    /// The tokens in force.
    pub fn current(&self) -> Arc<AuthFile> {
        Arc::clone(&self.current.read().expect("token lock poisoned"))
    }

    /// Re-reads the file. On an error the tokens in force stay; an empty
    /// file is taken (revoking the last token must work). Returns how many
    /// tokens are now in force.
    pub fn reload(&self) -> Result<usize, AuthError> {
        let file = AuthFile::load(&self.path)?;
        let count = file.tokens.len();
        *self.current.write().expect("token lock poisoned") = Arc::new(file);
        Ok(count)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("a name has 1 to {MAX_NAME_LEN} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{name:?}: a name may hold letters, digits, '-', '_' and '.' only"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_file_and_are_found_by_their_secret() {
        let mut file = AuthFile::default();
        let ship = file
            .add("ship-42", WriteScope::parse("42, 7").unwrap(), false, false)
            .unwrap();
        let reader = file
            .add("dashboard", WriteScope::None, true, false)
            .unwrap();
        assert!(ship.starts_with(TOKEN_PREFIX) && ship.len() == TOKEN_PREFIX.len() + 64);
        assert_ne!(ship, reader);
        let parsed = AuthFile::parse(&file.render()).unwrap();
        assert_eq!(parsed, file);
        assert!(!file.render().contains(&ship[TOKEN_PREFIX.len()..]));
        let found = parsed.find(&ship).unwrap();
        assert_eq!(found.name, "ship-42");
        assert!(found.write.allows(42) && found.write.allows(7) && !found.write.allows(8));
        assert!(!found.read);
        assert!(parsed.find("pwd_00").is_none());
        assert_eq!(parsed.find(&reader).unwrap().name, "dashboard");
    }

    #[test]
    fn bad_names_scopes_and_files_are_refused_with_a_reason() {
        let mut file = AuthFile::default();
        file.add("a", WriteScope::All, false, false).unwrap();
        let dup = file.add("a", WriteScope::All, false, false).unwrap_err();
        assert!(dup.to_string().contains("already exists"), "{dup}");
        assert!(file.add("", WriteScope::All, false, false).is_err());
        assert!(file.add("a b", WriteScope::All, false, false).is_err());
        assert!(file.add("none", WriteScope::None, false, false).is_err());
        let bad = WriteScope::parse("1,x").unwrap_err();
        assert!(bad.to_string().contains("\"x\" is not a ship id"), "{bad}");
        assert!(file
            .remove("nobody")
            .unwrap_err()
            .to_string()
            .contains("no token"));
        for text in [
            "",
            "{}",
            r#"{"version":2,"tokens":[]}"#,
            r#"{"version":1,"tokens":[{"name":"a","sha256":"00","write":"all","read":true,"admin":false}]}"#,
        ] {
            assert!(AuthFile::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn the_file_is_written_atomically_for_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("powerd-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth.json");
        let mut file = AuthFile::load_or_empty(&path).unwrap();
        let secret = file.add("x", WriteScope::All, true, true).unwrap();
        file.store(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = AuthFile::load(&path).unwrap();
        assert_eq!(loaded.find(&secret).unwrap().name, "x");
        assert!(!dir.join("auth.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
