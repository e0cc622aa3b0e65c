//! `LAKE/_powerd/<node>/state.json`: what a node has exported, so a new
//! process resumes instead of rewriting every day.
//!
//! ```json
//! {"format": 1, "node": "a", "days": {"2026-01-01": {"rows": 960000,
//!   "bytes": 3912345, "fingerprint": "9c1f0e2d4b6a8c7e"}}}
//! ```
//!
//! `fingerprint` is a 64-bit hash ([`Fingerprint`]) of the day's rows as written
//! (ship, bucket start, the `kwh` bits, coverage): a day is exported again
//! when its rows hash differently, or when its file is missing or has
//! another size than recorded. An unreadable or foreign state file is set
//! aside (every day is then checked against the data anyway).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{day_name, parse_day_name, LakeError, NodeName};

const FORMAT: u64 = 1;

/// What was exported of one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRecord {
    pub rows: u64,
    pub bytes: u64,
    pub fingerprint: u64,
}

#[derive(Debug)]
pub struct State {
    path: PathBuf,
    node: NodeName,
    pub days: BTreeMap<i64, DayRecord>,
}

impl State {
    /// `LAKE/_powerd/<node>`.
    pub fn dir(lake: &Path, node: &NodeName) -> PathBuf {
        lake.join("_powerd").join(node.as_str())
    }

    /// Loads the node's state, or starts an empty one; the directory is
    /// created. A state file that does not parse is logged and ignored.
    pub fn load(lake: &Path, node: &NodeName) -> Result<State, LakeError> {
        let dir = State::dir(lake, node);
        std::fs::create_dir_all(&dir).map_err(|e| LakeError::io(&dir, "create", e))?;
        let path = dir.join("state.json");
        let mut state = State {
            path,
            node: node.clone(),
            days: BTreeMap::new(),
        };
        match std::fs::read(&state.path) {
            Ok(bytes) => match parse(&bytes, node) {
                Ok(days) => state.days = days,
                Err(problem) => tracing::warn!(
                    "ignoring {}: {problem}; every day is checked against the data",
                    state.path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LakeError::io(&state.path, "read", e)),
        }
        Ok(state)
    }

    /// Writes the state through a synced temporary file and a rename.
    pub fn save(&self) -> Result<(), LakeError> {
        let mut days = serde_json::Map::new();
        for (&day, record) in &self.days {
            days.insert(
                day_name(day),
                serde_json::json!({
                    "rows": record.rows,
                    "bytes": record.bytes,
                    "fingerprint": format!("{:016x}", record.fingerprint),
                }),
            );
        }
        let text = serde_json::json!({
            "format": FORMAT,
            "node": self.node.as_str(),
            "days": days,
        });
        let bytes = serde_json::to_vec_pretty(&text).unwrap_or_default();
        // The lake may have been emptied under a running exporter.
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LakeError::io(dir, "create", e))?;
        }
        super::export::replace_file(&self.path, |file| {
            use std::io::Write;
            file.write_all(&bytes)
        })
    }
}

fn parse(bytes: &[u8], node: &NodeName) -> Result<BTreeMap<i64, DayRecord>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    if value["format"].as_u64() != Some(FORMAT) {
        return Err(format!("format {} is not {FORMAT}", value["format"]));
    }
    if value["node"].as_str() != Some(node.as_str()) {
        return Err(format!("it belongs to node {}", value["node"]));
    }
    let mut days = BTreeMap::new();
    for (name, record) in value["days"].as_object().ok_or("no days")? {
        let day = parse_day_name(name).ok_or_else(|| format!("{name:?} is not a day"))?;
        let field = |key: &str| record[key].as_u64().ok_or(format!("{name}: no {key}"));
        let fingerprint = record["fingerprint"]
            .as_str()
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or(format!("{name}: no fingerprint"))?;
        days.insert(
            day,
            DayRecord {
                rows: field("rows")?,
                bytes: field("bytes")?,
                fingerprint,
            },
        );
    }
    Ok(days)
}

/// A 64-bit rotate-xor-multiply hash over whole words: change detection,
/// not defence against someone choosing data to collide (they could only
/// keep their own change out of the lake until the day changes again).
#[derive(Clone, Copy, Debug)]
pub struct Fingerprint(u64);

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint(0xcbf2_9ce4_8422_2325)
    }
}

impl Fingerprint {
    pub fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_foreign_files_are_ignored() {
        let lake = std::env::temp_dir().join(format!("powerd-lake-state-{}", std::process::id()));
        let node = NodeName::parse("a").unwrap();
        let mut state = State::load(&lake, &node).unwrap();
        assert!(state.days.is_empty());
        let record = DayRecord {
            rows: 96,
            bytes: 1234,
            fingerprint: u64::MAX - 3,
        };
        state.days.insert(20_454, record);
        state.save().unwrap();
        assert_eq!(State::load(&lake, &node).unwrap().days[&20_454], record);
        // Another node's state, or garbage: ignored, not fatal.
        let other = NodeName::parse("b").unwrap();
        std::fs::create_dir_all(State::dir(&lake, &other)).unwrap();
        std::fs::copy(
            State::dir(&lake, &node).join("state.json"),
            State::dir(&lake, &other).join("state.json"),
        )
        .unwrap();
        assert!(State::load(&lake, &other).unwrap().days.is_empty());
        std::fs::write(State::dir(&lake, &node).join("state.json"), b"{").unwrap();
        assert!(State::load(&lake, &node).unwrap().days.is_empty());
        std::fs::remove_dir_all(&lake).unwrap();
    }
}
