//! `ugatit-train inspect` reports what a file holds, in the file's own terms.

use std::path::PathBuf;

use assert_cmd::Command;
use ugatit_model::Direction;
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ugatit-store/tests/fixtures")
}

#[test]
fn the_format_version_shown_is_the_files_own() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.safetensors");
    export_generator(
        &fixtures().join("bad/light_ch2.pt"),
        Direction::A2B,
        &file,
        ExportFormat::Safetensors,
        StoreDtype::F32,
    )
    .unwrap();
    // An older file: the same bytes with version 0 in its metadata.
    let bytes = std::fs::read(&file).unwrap();
    let (from, to) = (br#""format_version":"1""#, br#""format_version":"0""#);
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the header records its format version");
    let mut older = bytes.clone();
    older[at..at + from.len()].copy_from_slice(to);
    std::fs::write(&file, older).unwrap();

    let out = Command::cargo_bin("ugatit-train")
        .unwrap()
        .arg("inspect")
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("file format version: 0"), "{out}");
    assert!(out.contains("format: GeneratorFile"), "{out}");
}
