//! The response cache: finished `GET /data` bodies, kept so that asking
//! for the same ship and window again costs a lookup instead of decoding
//! the blocks and printing every bucket (those two are most of what a
//! ship-day answer costs; see README, "Performance").
//!
//! Invariants:
//! - An entry is served only while its ship's engine version
//!   ([`crate::storage::Engine::ship_version`]) is the one it was made at:
//!   any write to the ship makes its entries stale, so an answer from the
//!   cache is byte for byte the answer the engine would give now. Versions
//!   restart with the process, and so does the cache (it lives in memory).
//! - The bodies held stay within the budget (`--response-cache-mib`),
//!   each counted with a fixed overhead for its key and bookkeeping; a
//!   body larger than a shard's share of the budget is not kept.
//! - Eviction is CLOCK (second chance): an entry read since the hand last
//!   passed it survives one more pass, so a working set that fits stays.
//!   Each key is in its shard's queue exactly once while it is cached.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hyper::body::Bytes;

use crate::model::ShipId;

/// What one answer is for: a ship and a window of buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub ship: ShipId,
    pub first_bucket: i64,
    pub end_bucket: i64,
}

/// Independent locks, so the workers rarely wait for each other.
const SHARDS: usize = 16;
/// Bytes an entry costs besides its body: the map slot, the queue slot,
/// the `Bytes` header and its allocation.
const ENTRY_OVERHEAD: usize = 128;

/// A multiply-rotate hash (FxHash's) for [`Key`]'s three integers: keys
/// come from validated requests, and SipHash's flooding defence costs more
/// than the rest of a cache hit. A reader who crafts colliding windows can
/// slow the lookups of the shards they fill, no more: the entries are
/// bounded by the budget, and reading takes a read token where tokens are on.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(5) ^ value).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }
}

pub(crate) struct ResponseCache {
    shards: Box<[Mutex<Shard>]>,
    /// Each shard's share of the budget; 0: the cache is off.
    shard_budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Entries dropped to make room (not counting stale ones replaced).
    evictions: AtomicU64,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    /// The clock: every cached key once, the hand at the front.
    clock: VecDeque<Key>,
    bytes: usize,
}

struct Entry {
    version: u64,
    body: Bytes,
    referenced: bool,
}

/// What [`ResponseCache::stats`] reports, for `/metrics`.
pub(crate) struct CacheStats {
    pub budget_bytes: u64,
    pub bytes: u64,
    pub entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

impl ResponseCache {
    /// A cache holding at most `budget_bytes` (0: nothing is ever kept).
    pub(crate) fn new(budget_bytes: usize) -> ResponseCache {
        ResponseCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_budget: budget_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &Key) -> std::sync::MutexGuard<'_, Shard> {
        // Ships are spread by their id, windows of one ship by their start:
        // a dashboard reading one ship's days spreads over the shards too.
        let mix = key
            .ship
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(key.first_bucket as u64)
            .rotate_left(29);
        // A panic while the lock was held leaves at worst a stale entry
        // count: the cache stays usable.
        self.shards[(mix % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The body cached for `key` if it was made at `version`.
    pub(crate) fn get(&self, key: &Key, version: u64) -> Option<Bytes> {
        if self.shard_budget == 0 {
            return None;
        }
        let found = {
            let mut shard = self.shard(key);
            shard
                .entries
                .get_mut(key)
                .filter(|entry| entry.version == version)
                .map(|entry| {
                    entry.referenced = true;
                    entry.body.clone()
                })
        };
        match &found {
            Some(_) => self.hits.fetch_add(1, Relaxed),
            None => self.misses.fetch_add(1, Relaxed),
        };
        found
    }

    /// Keeps `body` as the answer for `key` at `version`, replacing an
    /// older one, evicting others if the shard is over its budget.
    pub(crate) fn insert(&self, key: Key, version: u64, body: Bytes) {
        let cost = body.len() + ENTRY_OVERHEAD;
        if cost > self.shard_budget {
            return;
        }
        let mut shard = self.shard(&key);
        let shard = &mut *shard;
        match shard.entries.get_mut(&key) {
            Some(entry) => {
                // A newer version may already be there (a racing reader).
                if entry.version > version {
                    return;
                }
                shard.bytes = shard.bytes - entry.body.len() + body.len();
                entry.version = version;
                entry.body = body;
            }
            None => {
                shard.entries.insert(
                    key,
                    Entry {
                        version,
                        body,
                        referenced: false,
                    },
                );
                shard.clock.push_back(key);
                shard.bytes += cost;
            }
        }
        while shard.bytes > self.shard_budget {
            let Some(oldest) = shard.clock.pop_front() else {
                break;
            };
            let Some(entry) = shard.entries.get_mut(&oldest) else {
                continue;
            };
            if entry.referenced && oldest != key {
                entry.referenced = false;
                shard.clock.push_back(oldest);
                continue;
            }
            if let Some(entry) = shard.entries.remove(&oldest) {
                shard.bytes -= entry.body.len() + ENTRY_OVERHEAD;
                self.evictions.fetch_add(1, Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let (mut bytes, mut entries) = (0u64, 0u64);
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            bytes += shard.bytes as u64;
            entries += shard.entries.len() as u64;
        }
        CacheStats {
            budget_bytes: (self.shard_budget * SHARDS) as u64,
            bytes,
            entries,
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ship: ShipId, day: i64) -> Key {
        Key {
            ship,
            first_bucket: day * 96,
            end_bucket: (day + 1) * 96,
        }
    }

    fn body(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    #[test]
    fn serves_only_the_version_it_was_made_at() {
        let cache = ResponseCache::new(1 << 20);
        assert_eq!(cache.get(&key(1, 0), 0), None);
        cache.insert(key(1, 0), 3, body(10, b'a'));
        assert_eq!(cache.get(&key(1, 0), 3), Some(body(10, b'a')));
        assert_eq!(cache.get(&key(1, 0), 4), None, "a write made it stale");
        assert_eq!(cache.get(&key(1, 1), 3), None, "another window");
        assert_eq!(cache.get(&key(2, 0), 3), None, "another ship");
        cache.insert(key(1, 0), 4, body(20, b'b'));
        assert_eq!(cache.get(&key(1, 0), 4), Some(body(20, b'b')));
        // A reader that computed with an older version does not undo it.
        cache.insert(key(1, 0), 3, body(10, b'a'));
        assert_eq!(cache.get(&key(1, 0), 4), Some(body(20, b'b')));
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.hits), (1, 3));
        assert_eq!(stats.bytes, (20 + ENTRY_OVERHEAD) as u64);
        assert_eq!(stats.misses, 4);
    }

    #[test]
    fn stays_within_its_budget_and_keeps_what_is_read() {
        let budget = SHARDS * 10 * (1000 + ENTRY_OVERHEAD);
        let cache = ResponseCache::new(budget);
        // One entry read over and over while a stream of others passes.
        let hot = key(7, 7);
        cache.insert(hot, 1, body(1000, b'h'));
        for day in 0..2000 {
            assert!(cache.get(&hot, 1).is_some(), "evicted after {day} others");
            cache.insert(key(day as u64 + 100, day), 1, body(1000, b'x'));
            assert!(cache.stats().bytes as usize <= budget);
        }
        let stats = cache.stats();
        assert!(stats.evictions > 1000, "{} evictions", stats.evictions);
        // Every shard's queue holds each of its keys once, and only those.
        for shard in cache.shards.iter() {
            let shard = shard.lock().unwrap();
            assert_eq!(shard.clock.len(), shard.entries.len());
        }
    }

    #[test]
    fn off_and_oversized_bodies_keep_nothing() {
        let off = ResponseCache::new(0);
        off.insert(key(1, 0), 0, body(1, b'a'));
        assert_eq!(off.get(&key(1, 0), 0), None);
        assert_eq!(off.stats().entries, 0);
        let small = ResponseCache::new(SHARDS * 1000);
        small.insert(key(1, 0), 0, body(2000, b'a'));
        assert_eq!(small.get(&key(1, 0), 0), None);
        assert_eq!(small.stats().bytes, 0);
    }
}
