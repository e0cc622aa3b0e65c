//! The rollup index on disk: one file, `ROLLUP`, rewritten whole and
//! atomically by every checkpoint just before the manifest, holding the
//! index of exactly the data the blocks of that manifest hold.
//!
//! It names the manifest it belongs to (sequence numbers and CRC); a file
//! that names another manifest — a crash between the two renames — or that
//! is missing or damaged is not used: the engine rebuilds the index from the
//! blocks and says so. What the file stores is the minimum the index cannot
//! derive (per-ship day totals and bucket masks, the fleet's per-bucket
//! sums); the ship counts and group totals are recomputed on load, and the
//! two stored halves are checked against each other.
//! Byte layout: storage-format.md, "Rollup index".

use std::path::Path;

use super::codec::{put_u32, put_u64, put_varint, Reader};
use super::error::StorageError;
use super::file_header::{self, FileKind, FILE_HEADER_LEN};
use super::fsutil::write_atomic;
use super::io::Vfs;
use super::layout::ROLLUP_FILE;
use super::manifest::ManifestIdentity;
use super::rollup::{Rollup, ShipDay, BUCKETS_PER_DAY, DAY_MASK};
use crate::model::{NanoKwh, ShipId};

pub const ROLLUP_KIND: FileKind = FileKind {
    magic: *b"PWRDRUP\0",
    // 2: energies by the exact definition (model::EnergySum); a version 1
    // file, summed from float energies, is rebuilt.
    version: 2,
    oldest_readable: 2,
    noun: "rollup index",
    description: "powerd rollup index",
};

/// Why [`load`] fails when there is no file at all.
pub const MISSING: &str = "there is no rollup index file";

const MASK_FULL: u8 = 0;
const MASK_EXPLICIT: u8 = 1;
/// Bytes of an explicit 96-bit mask.
const MASK_BYTES: usize = 12;

/// Serialises `rollup`, the index of the data `manifest` describes.
pub fn encode(rollup: &Rollup, manifest: &ManifestIdentity) -> Vec<u8> {
    let mut out = file_header::encode(&ROLLUP_KIND, 0);
    put_u64(&mut out, manifest.first_live_segment);
    put_u64(&mut out, manifest.next_block_id);
    put_u32(&mut out, manifest.crc);
    put_u32(&mut out, manifest.len);

    let fleet: Vec<_> = rollup.fleet_days().collect();
    put_varint(&mut out, fleet.len() as u64);
    for (day, sums) in fleet {
        put_zigzag128(&mut out, i128::from(day));
        for &sum in sums {
            put_zigzag128(&mut out, sum);
        }
    }
    let ships = rollup.ship_days();
    put_varint(&mut out, ships.len() as u64);
    for (ship, days) in ships {
        put_varint(&mut out, ship);
        put_varint(&mut out, days.len() as u64);
        let mut previous: Option<i64> = None;
        for day in &days {
            match previous {
                None => put_zigzag128(&mut out, i128::from(day.day)),
                Some(p) => put_varint(&mut out, (day.day - p) as u64),
            }
            previous = Some(day.day);
            if day.mask == DAY_MASK {
                out.push(MASK_FULL);
            } else {
                out.push(MASK_EXPLICIT);
                out.extend_from_slice(&day.mask.to_le_bytes()[..MASK_BYTES]);
            }
            put_zigzag128(&mut out, day.total);
        }
    }
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    out
}

/// Parses a rollup file; `Err` says why it cannot be used.
pub fn decode(bytes: &[u8], manifest: &ManifestIdentity) -> Result<Rollup, String> {
    file_header::check(&ROLLUP_KIND, Path::new(ROLLUP_FILE), bytes, 0)
        .map_err(|e| e.to_string())?;
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .filter(|(body, _)| body.len() >= FILE_HEADER_LEN)
        .ok_or("shorter than its header and CRC")?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err("CRC mismatch".into());
    }
    let mut r = Reader::new(&body[FILE_HEADER_LEN..]);
    let e = |err: super::codec::DecodeError| err.0;
    let named = ManifestIdentity {
        first_live_segment: r.u64().map_err(e)?,
        next_block_id: r.u64().map_err(e)?,
        crc: r.u32().map_err(e)?,
        len: r.u32().map_err(e)?,
    };
    if named != *manifest {
        return Err(format!(
            "it belongs to another manifest ({named:?}; the manifest is {manifest:?})"
        ));
    }
    // Every count is bounded by the bytes left, so hostile counts cannot
    // make us allocate more than the file's size.
    let bounded = |count: u64, r: &Reader<'_>, what: &str| -> Result<usize, String> {
        usize::try_from(count)
            .ok()
            .filter(|&c| c <= r.remaining())
            .ok_or(format!("{what} count {count} exceeds the file"))
    };
    let fleet_days = bounded(r.varint().map_err(e)?, &r, "fleet day")?;
    let mut fleet = Vec::with_capacity(fleet_days);
    for _ in 0..fleet_days {
        let day = day_number(zigzag128(&mut r)?)?;
        if fleet.last().is_some_and(|(previous, _)| *previous >= day) {
            return Err(format!("fleet day {day} is out of order"));
        }
        let mut sums = [0 as NanoKwh; BUCKETS_PER_DAY as usize];
        for sum in &mut sums {
            *sum = zigzag128(&mut r)?;
        }
        fleet.push((day, sums));
    }
    let ship_count = bounded(r.varint().map_err(e)?, &r, "ship")?;
    let mut ships: Vec<(ShipId, Vec<ShipDay>)> = Vec::with_capacity(ship_count);
    for _ in 0..ship_count {
        let ship = r.varint().map_err(e)?;
        if ships.last().is_some_and(|(previous, _)| *previous >= ship) {
            return Err(format!("ship {ship} is out of order"));
        }
        let day_count = bounded(r.varint().map_err(e)?, &r, "day")?;
        let mut days = Vec::with_capacity(day_count);
        let mut previous: Option<i64> = None;
        for _ in 0..day_count {
            let day = match previous {
                None => day_number(zigzag128(&mut r)?)?,
                Some(p) => i64::try_from(r.varint().map_err(e)?)
                    .ok()
                    .and_then(|delta| p.checked_add(delta))
                    .and_then(|d| day_number(i128::from(d)).ok())
                    .ok_or("day out of range")?,
            };
            previous = Some(day);
            let mask = match r.u8().map_err(e)? {
                MASK_FULL => DAY_MASK,
                MASK_EXPLICIT => {
                    let mut le = [0u8; 16];
                    le[..MASK_BYTES].copy_from_slice(r.take(MASK_BYTES).map_err(e)?);
                    u128::from_le_bytes(le)
                }
                other => return Err(format!("unknown mask kind {other}")),
            };
            let total = zigzag128(&mut r)?;
            days.push(ShipDay { day, mask, total });
        }
        ships.push((ship, days));
    }
    if r.remaining() != 0 {
        return Err(format!("{} bytes after the last ship", r.remaining()));
    }
    Rollup::from_parts(ships, fleet)
}

/// Writes the index file atomically to `path`.
pub fn store(
    vfs: &dyn Vfs,
    path: &Path,
    rollup: &Rollup,
    manifest: &ManifestIdentity,
) -> Result<u64, StorageError> {
    let bytes = encode(rollup, manifest);
    write_atomic(vfs, path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Loads the index file at `path` if it belongs to `manifest`; `Err` says
/// why not (missing, damaged, stale).
pub fn load(vfs: &dyn Vfs, path: &Path, manifest: &ManifestIdentity) -> Result<Rollup, String> {
    match vfs.read(path) {
        Ok(bytes) => decode(&bytes, manifest),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(MISSING.into()),
        Err(e) => Err(format!("it cannot be read: {e}")),
    }
}

/// The fuzz target's properties (`fuzz/fuzz_targets/checks.rs`,
/// `rollup_file`); panics when one breaks. A decoder error is always fine.
///
/// - `data` as a whole file, checked against the manifest it names itself
///   (so the identity check passes and the body decoder runs), and `data`
///   as a body behind a valid header, identity and CRC: no panic, and an
///   accepted file's index re-encodes to a file that decodes to the same
///   index (with the same bytes as that re-encoding).
/// - `data` as a recipe of writes (ship, bucket, energy, coverage, ...):
///   the index they build round-trips through the file exactly.
#[doc(hidden)]
pub fn fuzz_properties(data: &[u8]) {
    let named = |file: &[u8]| -> Option<ManifestIdentity> {
        let mut r = Reader::new(file.get(FILE_HEADER_LEN..)?);
        Some(ManifestIdentity {
            first_live_segment: r.u64().ok()?,
            next_block_id: r.u64().ok()?,
            crc: r.u32().ok()?,
            len: r.u32().ok()?,
        })
    };
    let round_trip = |file: &[u8], identity: &ManifestIdentity| {
        if let Ok(rollup) = decode(file, identity) {
            let again = encode(&rollup, identity);
            let back = decode(&again, identity).expect("a re-encoded index decodes");
            assert!(back == rollup, "re-encoded index differs");
            assert_eq!(
                encode(&back, identity),
                again,
                "encoding is not deterministic"
            );
        }
    };
    if let Some(identity) = named(data) {
        round_trip(data, &identity);
    }
    let identity = ManifestIdentity {
        first_live_segment: 1,
        next_block_id: 2,
        crc: 3,
        len: 4,
    };
    let mut file = file_header::encode(&ROLLUP_KIND, 0);
    put_u64(&mut file, identity.first_live_segment);
    put_u64(&mut file, identity.next_block_id);
    put_u32(&mut file, identity.crc);
    put_u32(&mut file, identity.len);
    file.extend_from_slice(data);
    let crc = crc32fast::hash(&file);
    put_u32(&mut file, crc);
    round_trip(&file, &identity);

    let mut rollup = Rollup::new();
    for record in data.chunks_exact(8) {
        let ship = u64::from(record[0] % 8);
        let first = i64::from(i16::from_le_bytes([record[1], record[2]]));
        let count = i64::from(record[3] % 100);
        let energy = i128::from(u16::from_le_bytes([record[4], record[5]])) * 142_857_143;
        let coverage = u32::from(u16::from_le_bytes([record[6], record[7]]) % 900) + 1;
        let buckets: Vec<crate::model::Bucket> = (first..first + count)
            .map(|index| crate::model::Bucket {
                index,
                energy,
                coverage_s: coverage,
            })
            .collect();
        rollup.apply(ship, &super::rollup::BucketChanges::between(&[], &buckets));
    }
    let bytes = encode(&rollup, &identity);
    assert!(decode(&bytes, &identity).expect("an encoded index decodes") == rollup);
}

/// Days whose buckets have start seconds that fit an `i64`.
fn day_number(value: i128) -> Result<i64, String> {
    const LIMIT: i128 = (i64::MAX / 900 / BUCKETS_PER_DAY) as i128;
    if (-LIMIT..=LIMIT).contains(&value) {
        Ok(value as i64)
    } else {
        Err(format!("day {value} is out of range"))
    }
}

fn put_zigzag128(out: &mut Vec<u8>, value: i128) {
    let mut v = ((value << 1) ^ (value >> 127)) as u128;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag128(r: &mut Reader<'_>) -> Result<i128, String> {
    let mut v: u128 = 0;
    for shift in (0..128).step_by(7) {
        let byte = r.u8().map_err(|e| e.0)?;
        if shift == 126 && byte > 0x03 {
            return Err("varint overflows 128 bits".into());
        }
        v |= u128::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Ok((v >> 1) as i128 ^ -((v & 1) as i128));
        }
    }
    Err("varint longer than 19 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Bucket;
    use crate::storage::rollup::BucketChanges;

    fn identity() -> ManifestIdentity {
        ManifestIdentity {
            first_live_segment: 7,
            next_block_id: 3,
            crc: 0xDEAD_BEEF,
            len: 1234,
        }
    }

    fn sample() -> Rollup {
        let mut rollup = Rollup::new();
        let full: Vec<Bucket> = (0..96)
            .map(|k| Bucket {
                index: 96 * 20_000 + k,
                energy: 1_250_000_000 + k as i128 * 1_000_000_000,
                coverage_s: 900,
            })
            .collect();
        rollup.apply(9, &BucketChanges::between(&[], &full));
        rollup.apply(
            u64::MAX,
            &BucketChanges::between(
                &[],
                &[
                    Bucket {
                        index: -5,
                        energy: 1_000_000_000_000_000_000_000_000,
                        coverage_s: 1,
                    },
                    Bucket {
                        index: 96 * 20_000 + 3,
                        energy: 0,
                        coverage_s: 10,
                    },
                ],
            ),
        );
        rollup
    }

    #[test]
    fn round_trip() {
        let rollup = sample();
        let bytes = encode(&rollup, &identity());
        assert_eq!(decode(&bytes, &identity()).unwrap(), rollup);
        assert_eq!(
            decode(&encode(&Rollup::new(), &identity()), &identity()).unwrap(),
            Rollup::new()
        );
    }

    #[test]
    fn damage_and_staleness_are_refused() {
        let bytes = encode(&sample(), &identity());
        for index in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[index] ^= 0x20;
            assert!(decode(&damaged, &identity()).is_err(), "flip at {index}");
        }
        assert!(decode(&bytes[..bytes.len() - 1], &identity()).is_err());
        let other = ManifestIdentity {
            next_block_id: 4,
            ..identity()
        };
        assert!(decode(&bytes, &other)
            .unwrap_err()
            .contains("another manifest"));
    }

    #[test]
    fn zigzag128_round_trips_extremes() {
        for value in [0, 1, -1, i128::MAX, i128::MIN, 1 << 100, -(1 << 90) + 3] {
            let mut out = Vec::new();
            put_zigzag128(&mut out, value);
            assert_eq!(zigzag128(&mut Reader::new(&out)).unwrap(), value);
        }
        assert!(zigzag128(&mut Reader::new(&[0xFF; 20])).is_err());
    }
}
