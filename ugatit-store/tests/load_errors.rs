//! Every way a model path can be wrong gets one clear line naming the file and the problem.

mod common;

use std::path::Path;

use common::fixture;
use ugatit_model::{Cpu, Direction};
use ugatit_store::{load_generator, load_model};

fn gen_error(path: &Path) -> String {
    let e = load_generator::<Cpu>(path, Direction::A2B, &Default::default())
        .err()
        .unwrap_or_else(|| panic!("{} loaded", path.display()))
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    assert!(
        e.contains(&path.display().to_string()),
        "names the file: {e}"
    );
    e
}

fn bad(name: &str) -> std::path::PathBuf {
    fixture("bad").join(name)
}

#[test]
fn a_missing_tensor_is_named() {
    let e = gen_error(&bad("missing_key.pt"));
    assert!(e.ends_with("missing tensor genA2B.UpBlock2.8.beta"), "{e}");
}

#[test]
fn unexpected_tensors_are_named() {
    let e = gen_error(&bad("extra_key.pt"));
    assert!(
        e.ends_with("unexpected tensors in genA2B: UpBlock2.8.extra"),
        "{e}"
    );
}

#[test]
fn the_first_mismatching_tensor_is_named_with_both_shapes() {
    let e = load_model::<Cpu>(&bad("wrong_shape.pt"), &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.ends_with(
            "tensor genB2A.conv1x1.weight has shape [8, 16, 3, 3], but this architecture needs [8, 16, 1, 1]"
        ),
        "{e}"
    );
}

#[test]
fn a_discriminator_without_spectral_norm_is_refused_naming_the_key() {
    for e in [
        gen_error(&bad("no_weight_orig.pt")),
        load_model::<Cpu>(&bad("no_weight_orig.pt"), &Default::default())
            .err()
            .unwrap()
            .to_string(),
    ] {
        assert!(
            e.contains("missing tensor disGA.model.1.weight_orig"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn other_pytorch_files_are_not_ugatit() {
    let e = gen_error(&bad("not_ugatit.pt"));
    assert!(e.contains("not a U-GAT-IT checkpoint"), "{e}");
    assert!(e.contains("model.fc.weight"), "lists what it found: {e}");
    let e = gen_error(&bad("list.pt"));
    assert!(
        e.contains("not a U-GAT-IT checkpoint") || e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn a_truncated_pytorch_file_is_reported() {
    let e = gen_error(&bad("truncated.pt"));
    assert!(e.contains("cannot read this PyTorch file"), "{e}");
}

#[test]
fn empty_random_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pt");
    std::fs::write(&empty, b"").unwrap();
    assert!(gen_error(&empty).ends_with("not a U-GAT-IT checkpoint (the file is empty)"));
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"these are not weights, just some text").unwrap();
    assert!(gen_error(&text).contains("not a U-GAT-IT checkpoint (neither a PyTorch file"));
    let missing = dir.path().join("nope.pt");
    assert!(gen_error(&missing).contains("No such file"));
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    assert!(gen_error(&folder).contains("neither a run folder"));
    std::fs::create_dir(folder.join("checkpoints")).unwrap();
    assert!(gen_error(&folder).contains("holds no complete checkpoint yet"));
}

#[test]
fn a_truncated_safetensors_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gen.safetensors");
    let (model, t) = load_model::<Cpu>(&bad("light_ch2.pt"), &Default::default()).unwrap();
    ugatit_store::export::save_generator_safetensors(
        &path,
        &model.gen_a2b,
        &t.config,
        Direction::A2B,
        None,
        None,
        ugatit_store::export::StoreDtype::F32,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    assert!(gen_error(&path).contains("truncated or damaged safetensors file"));
}
