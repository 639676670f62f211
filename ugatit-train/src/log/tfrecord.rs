//! TFRecord framing, as TensorFlow's `tensorflow/core/lib/io/record_writer.cc` writes it: a
//! little-endian `u64` length, the masked CRC-32C of those 8 bytes, the bytes, and their masked
//! CRC-32C (`tensorflow/core/lib/hash/crc32c.h`).

use std::io::Write;

/// Writes `data` as one record.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc(data).to_le_bytes())
}

/// TensorFlow's masked CRC-32C: the CRC rotated right by 15 bits plus `0xa282ead8`, so that a
/// CRC of data holding CRCs stays strong.
pub fn masked_crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// The records of `bytes`, each CRC checked.
#[cfg(test)]
pub fn read_records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let len_bytes = &bytes[..8];
        assert_eq!(u32_at(bytes, 8), masked_crc(len_bytes), "length CRC");
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let data = &bytes[12..12 + len];
        assert_eq!(u32_at(bytes, 12 + len), masked_crc(data), "data CRC");
        records.push(data.to_vec());
        bytes = &bytes[16 + len..];
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record written by the `tensorboard` package (see tests/fixtures/tensorboard/README.md).
    const FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/tensorboard/scalar_event.tfrecord");

    #[test]
    fn masked_crcs_match_the_tensorboard_package() {
        // The CRC-32C check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // The two masked CRCs make_fixtures.py printed, of the fixture's length and data.
        assert_eq!(masked_crc(&FIXTURE[..8]), 0x1d95_c1c8);
        assert_eq!(masked_crc(&FIXTURE[12..FIXTURE.len() - 4]), 0x47a1_7320);
    }

    #[test]
    fn a_record_is_framed_byte_for_byte_as_the_tensorboard_package_frames_it() {
        let records = read_records(FIXTURE);
        assert_eq!(records.len(), 1);
        let mut ours = Vec::new();
        write_record(&mut ours, &records[0]).unwrap();
        assert_eq!(ours, FIXTURE);
    }
}
