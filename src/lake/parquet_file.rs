//! One day file: its schema, writing it, reading it back.
//!
//! Encodings were chosen on the fleet generator's data (README, "The
//! Parquet lake"): plain doubles under zstd beat byte-stream-split for
//! `kwh` (hourly meters repeat a value four times, which zstd finds), and
//! delta encoding makes the sorted ship ids and regular times nearly free.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::data_type::{DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, Type};

use super::LakeError;

/// The schema of every day file (storage-format.md, "The lake").
const SCHEMA: &str = "message powerd_bucket {
    required int64 spaceship_id (INTEGER(64, false));
    required int64 datetime (TIMESTAMP(MICROS, true));
    required double kwh;
    required int32 coverage_s;
}";

/// Rows per row group: a day of 10,000 ships is one group; bigger fleets
/// get groups of about 8 MB, a good size for scans.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// The rows of one file, column by column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Columns {
    pub ships: Vec<u64>,
    /// Bucket start, seconds since the epoch.
    pub starts_s: Vec<i64>,
    pub kwh: Vec<f64>,
    pub coverage_s: Vec<i32>,
}

impl Columns {
    pub fn len(&self) -> usize {
        self.ships.len()
    }

    pub fn clear(&mut self) {
        self.ships.clear();
        self.starts_s.clear();
        self.kwh.clear();
        self.coverage_s.clear();
    }
}

fn schema() -> Arc<Type> {
    // The text is a constant checked by the tests; it always parses.
    Arc::new(parse_message_type(SCHEMA).expect("the lake schema parses"))
}

fn properties(metadata: Vec<KeyValue>) -> Arc<WriterProperties> {
    let level = ZstdLevel::try_new(3).expect("zstd level 3 exists");
    Arc::new(
        WriterProperties::builder()
            // Version 1 data pages: what every reader, old Spark included, reads.
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(Compression::ZSTD(level))
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("coverage_s"), true)
            .set_column_encoding(
                ColumnPath::from("spaceship_id"),
                Encoding::DELTA_BINARY_PACKED,
            )
            .set_column_encoding(ColumnPath::from("datetime"), Encoding::DELTA_BINARY_PACKED)
            // Min/max per column chunk let readers skip row groups by ship.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("powerd {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(metadata))
            .build(),
    )
}

/// Writes `rows` (sorted by ship, then time) to a new file at `path` and
/// syncs it; returns its size.
pub fn write(path: &Path, rows: &Columns, metadata: Vec<KeyValue>) -> Result<u64, LakeError> {
    let fail = |e: parquet::errors::ParquetError| {
        LakeError::io(path, "write Parquet to", std::io::Error::other(e))
    };
    let file = File::create(path).map_err(|e| LakeError::io(path, "create", e))?;
    let mut writer =
        SerializedFileWriter::new(file, schema(), properties(metadata)).map_err(fail)?;
    let ids: Vec<i64> = rows.ships.iter().map(|&ship| ship as i64).collect();
    let micros: Vec<i64> = rows.starts_s.iter().map(|&s| s * 1_000_000).collect();
    let mut start = 0;
    while start < rows.len() {
        let end = (start + ROW_GROUP_ROWS).min(rows.len());
        let mut group = writer.next_row_group().map_err(fail)?;
        write_column::<Int64Type>(&mut group, &ids[start..end]).map_err(fail)?;
        write_column::<Int64Type>(&mut group, &micros[start..end]).map_err(fail)?;
        write_column::<DoubleType>(&mut group, &rows.kwh[start..end]).map_err(fail)?;
        write_column::<Int32Type>(&mut group, &rows.coverage_s[start..end]).map_err(fail)?;
        group.close().map_err(fail)?;
        start = end;
    }
    let file = writer.into_inner().map_err(fail)?;
    file.sync_all()
        .map_err(|e| LakeError::io(path, "sync", e))?;
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| LakeError::io(path, "measure", e))
}

/// Writes the row group's next column (in schema order) whole.
fn write_column<T: parquet::data_type::DataType>(
    group: &mut parquet::file::writer::SerializedRowGroupWriter<'_, File>,
    values: &[T::T],
) -> Result<(), parquet::errors::ParquetError> {
    let mut column = group.next_column()?.ok_or_else(|| {
        parquet::errors::ParquetError::General("more columns than the schema".into())
    })?;
    column.typed::<T>().write_batch(values, None, None)?;
    column.close()
}

/// Reads a day file back, checking it has the lake's schema.
pub fn read(path: &Path) -> Result<Columns, LakeError> {
    let bad = |e: parquet::errors::ParquetError| LakeError::bad(path, e);
    let file = File::open(path).map_err(|e| LakeError::io(path, "open", e))?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let found = reader.metadata().file_metadata().schema();
    let expected = schema();
    if found != expected.as_ref() {
        return Err(LakeError::bad(
            path,
            format!(
                "not a powerd lake file: its schema is {:?}, not the lake's",
                found
                    .get_fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            ),
        ));
    }
    let mut rows = Columns::default();
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(bad)?;
        let count = usize::try_from(group.metadata().num_rows())
            .map_err(|_| LakeError::bad(path, "a negative row count"))?;
        let mut ids = vec![0i64; count];
        let mut micros = vec![0i64; count];
        let mut kwh = vec![0f64; count];
        let mut coverage = vec![0i32; count];
        read_column::<Int64Type>(path, group.get_column_reader(0).map_err(bad)?, &mut ids)?;
        read_column::<Int64Type>(path, group.get_column_reader(1).map_err(bad)?, &mut micros)?;
        read_column::<DoubleType>(path, group.get_column_reader(2).map_err(bad)?, &mut kwh)?;
        read_column::<Int32Type>(
            path,
            group.get_column_reader(3).map_err(bad)?,
            &mut coverage,
        )?;
        rows.ships.extend(ids.iter().map(|&id| id as u64));
        for &m in &micros {
            if m % 1_000_000 != 0 {
                return Err(LakeError::bad(
                    path,
                    format!("datetime {m} µs is not a whole second"),
                ));
            }
            rows.starts_s.push(m / 1_000_000);
        }
        rows.kwh.extend(kwh);
        rows.coverage_s.extend(coverage);
    }
    Ok(rows)
}

/// Fills `out` from one column chunk of exactly `out.len()` values.
fn read_column<T: parquet::data_type::DataType>(
    path: &Path,
    reader: parquet::column::reader::ColumnReader,
    out: &mut Vec<T::T>,
) -> Result<(), LakeError>
where
    T::T: Default + Clone,
{
    let mut typed = parquet::column::reader::get_typed_column_reader::<T>(reader);
    let wanted = out.len();
    out.clear();
    while out.len() < wanted {
        let (records, _, _) = typed
            .read_records(wanted - out.len(), None, None, out)
            .map_err(|e| LakeError::bad(path, e))?;
        if records == 0 {
            return Err(LakeError::bad(path, "a column chunk ends early"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_file_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("powerd-lake-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.parquet");
        let mut rows = Columns::default();
        for ship in [0u64, 7, u64::MAX] {
            for k in 0..96 {
                rows.ships.push(ship);
                rows.starts_s.push(1_767_225_600 + k * 900);
                rows.kwh.push(k as f64 * 0.123_456_789);
                rows.coverage_s.push(if k == 5 { 300 } else { 900 });
            }
        }
        let bytes = write(
            &path,
            &rows,
            vec![KeyValue::new("k".to_string(), "v".to_string())],
        )
        .unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(read(&path).unwrap(), rows);
        std::fs::write(&path, b"PAR1 not really").unwrap();
        assert!(matches!(read(&path), Err(LakeError::BadFile { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
