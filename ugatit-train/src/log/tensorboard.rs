//! A minimal TensorBoard event-file writer: scalars and PNG images.
//!
//! An event file is a sequence of TFRecords (`u64` length, masked CRC-32C of the length, the
//! bytes, masked CRC-32C of the bytes), each an `Event` protobuf. The few messages needed are
//! encoded by hand below, with their field numbers from TensorFlow's `event.proto` and
//! `summary.proto`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends events to one `events.out.tfevents.*` file in a folder.
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl EventWriter {
    /// Creates a new event file in `dir` (TensorBoard reads every file of a folder, so a resumed
    /// run simply adds one).
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let secs = wall_time() as u64;
        let path = dir.join(format!(
            "events.out.tfevents.{secs}.ugatit-rs.{}",
            std::process::id()
        ));
        let mut w = Self {
            out: BufWriter::new(File::create(&path)?),
            path,
        };
        let mut event = Vec::new();
        field_double(&mut event, 1, wall_time());
        field_bytes(&mut event, 3, b"brain.Event:2");
        w.record(&event)?;
        w.flush()?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A scalar summary (`Summary.Value.simple_value`).
    pub fn scalar(&mut self, tag: &str, step: u64, value: f32) -> std::io::Result<()> {
        let mut v = Vec::new();
        field_bytes(&mut v, 1, tag.as_bytes());
        key(&mut v, 2, 5);
        v.extend_from_slice(&value.to_le_bytes());
        self.summary(step, &v)
    }

    /// An image summary of an encoded PNG (`Summary.Image`).
    pub fn image(
        &mut self,
        tag: &str,
        step: u64,
        png: &[u8],
        height: u32,
        width: u32,
    ) -> std::io::Result<()> {
        let mut img = Vec::new();
        field_varint(&mut img, 1, u64::from(height));
        field_varint(&mut img, 2, u64::from(width));
        field_varint(&mut img, 3, 3);
        field_bytes(&mut img, 4, png);
        let mut v = Vec::new();
        field_bytes(&mut v, 1, tag.as_bytes());
        field_bytes(&mut v, 4, &img);
        self.summary(step, &v)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn summary(&mut self, step: u64, value: &[u8]) -> std::io::Result<()> {
        let mut summary = Vec::new();
        field_bytes(&mut summary, 1, value);
        let mut event = Vec::new();
        field_double(&mut event, 1, wall_time());
        field_varint(&mut event, 2, step);
        field_bytes(&mut event, 5, &summary);
        self.record(&event)
    }

    fn record(&mut self, data: &[u8]) -> std::io::Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        self.out.write_all(&len)?;
        self.out.write_all(&masked_crc(&len).to_le_bytes())?;
        self.out.write_all(data)?;
        self.out.write_all(&masked_crc(data).to_le_bytes())
    }
}

/// TFRecord's masked CRC-32C.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire_type));
}

fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn field_double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Spelled as in TensorFlow's crc32c.h, not as the rotation it is.
    #[allow(clippy::manual_rotate)]
    fn varints_and_masked_crc_follow_the_formats() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        // The masking of TensorFlow's crc32c.h: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
        // The CRC-32C check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let crc = crc32c::crc32c(b"abc");
        assert_eq!(
            masked_crc(b"abc"),
            ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8)
        );
    }
}
