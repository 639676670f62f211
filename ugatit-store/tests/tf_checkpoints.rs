//! TensorFlow U-GAT-IT checkpoints (fixtures made with the official TF code, see
//! tests/fixtures/tf/README.md): exports keep the TF outputs, and every malformed input is named
//! (the outputs themselves are checked on every backend in ugatit-train/tests/parity/forwards.rs).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, expectations, fixture};
use prost::Message;
use ugatit_model::Variant;
use ugatit_model::{Cpu, Direction};
use ugatit_store::export::{export_generator, ExportFormat, StoreDtype};
use ugatit_store::formats::tf::bundle::Bundle;
use ugatit_store::proto::tf::{
    tensor_shape_proto, BundleEntryProto, BundleHeaderProto, TensorShapeProto,
};
use ugatit_store::{load_generator, load_model};

fn case(name: &str) -> PathBuf {
    fixture("tf").join(name)
}

// The generators' outputs against the TF code's are checked on every backend in
// ugatit-train/tests/parity/forwards.rs.

#[test]
fn a_tf_checkpoint_tells_its_architecture_and_step() {
    let g = load_generator::<Cpu>(
        &case("full_64_ch8/checkpoint"),
        Direction::A2B,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        (
            g.config.ch,
            g.config.n_res,
            g.config.light,
            g.config.img_size
        ),
        (8, 4, false, 64)
    );
    assert!(g.img_size_known);
    assert_eq!(g.step, Some(1000));
}

#[test]
fn exported_tf_generators_translate_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["full_64_ch8", "light_64_ch8"] {
        let f32_path = dir.path().join(format!("{name}.safetensors"));
        export_generator(
            &case(&format!("{name}/checkpoint")),
            Direction::A2B,
            &f32_path,
            ExportFormat::Safetensors,
            StoreDtype::F32,
        )
        .unwrap();
        check_direction(&f32_path, name, 1e-4);
        let f16_path = dir.path().join(format!("{name}-f16.safetensors"));
        export_generator(
            &case(&format!("{name}/checkpoint")),
            Direction::A2B,
            &f16_path,
            ExportFormat::Safetensors,
            StoreDtype::F16,
        )
        .unwrap();
        check_direction(&f16_path, name, 2e-2);
        let e = load_generator::<Cpu>(&f32_path, Direction::B2A, &Default::default()).unwrap_err();
        assert!(
            e.to_string().contains("this generator translates a2b"),
            "{e}"
        );
    }
}

fn check_direction(file: &Path, name: &str, tol: f32) {
    let ex = expectations(&format!("tf/{name}"));
    let g = load_generator::<Cpu>(file, Direction::A2B, &Default::default()).unwrap();
    assert_eq!(g.generator.variant(), Variant::Tf);
    let out = g.generator.forward(common::tensor(&ex["input"]));
    assert_close(
        &format!("{} image", file.display()),
        out.image,
        &ex["a2b.image"],
        tol,
    );
}

fn copy_case(to: &Path) -> PathBuf {
    let src = case("full_64_ch8/checkpoint");
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "UGATIT.model-1000.index",
        "UGATIT.model-1000.data-00000-of-00001",
    ] {
        std::fs::copy(src.join(f), to.join(f)).unwrap();
    }
    to.join("UGATIT.model-1000")
}

fn error(path: &Path) -> String {
    let e = load_generator::<Cpu>(path, Direction::A2B, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "{e}");
    e
}

#[test]
fn damaged_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = copy_case(&dir.path().join("crc"));
    let bundle = Bundle::open(&prefix).unwrap();
    let (name, entry) = bundle
        .entries
        .iter()
        .find(|(k, _)| k.starts_with("generator_B/conv_1x1"))
        .unwrap();
    let data = PathBuf::from(format!("{}.data-00000-of-00001", prefix.display()));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[entry.offset as usize + 5] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();
    let e = error(&prefix);
    assert!(e.contains(&format!("tensor {name}: CRC mismatch")), "{e}");

    std::fs::write(&data, &bytes[..bytes.len() / 3]).unwrap();
    assert!(error(&prefix).contains("truncated"), "{}", error(&prefix));
    std::fs::remove_file(&data).unwrap();
    assert!(
        error(&prefix).contains("missing data shard"),
        "{}",
        error(&prefix)
    );
}

#[test]
fn meta_files_unresolvable_lists_and_training_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("UGATIT.model-1000.meta");
    std::fs::write(&meta, b"graph").unwrap();
    assert!(
        error(&meta).contains("a .meta file holds only the graph"),
        "{}",
        error(&meta)
    );
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("checkpoint"),
        "model_checkpoint_path: \"elsewhere/UGATIT.model-5\"\n",
    )
    .unwrap();
    assert!(
        error(&folder).contains("names elsewhere/UGATIT.model-5, but no"),
        "{}",
        error(&folder)
    );
    let e = load_model::<Cpu>(&case("full_64_ch8/checkpoint"), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("training from it is out of scope"), "{e}");
}

/// A minimal TF tensor bundle (one float tensor a name), for checkpoints that are not U-GAT-IT:
/// our `BundleEntryProto`s in a LevelDB table written by hand.
fn write_bundle(prefix: &Path, tensors: &[(&str, &[usize])]) {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn block(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in entries {
            varint(&mut b, 0);
            varint(&mut b, k.len() as u64);
            varint(&mut b, v.len() as u64);
            b.extend_from_slice(k);
            b.extend_from_slice(v);
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b
    }
    let mut data = Vec::new();
    let header = BundleHeaderProto {
        num_shards: 1,
        ..Default::default()
    };
    let mut entries = vec![(Vec::new(), header.encode_to_vec())];
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let crc = crc32c::crc32c(&bytes)
            .rotate_right(15)
            .wrapping_add(0xa282_ead8);
        let dim = shape
            .iter()
            .map(|&d| tensor_shape_proto::Dim { size: d as i64 })
            .collect();
        let entry = BundleEntryProto {
            dtype: 1,
            shape: Some(TensorShapeProto {
                dim,
                ..Default::default()
            }),
            offset: data.len() as i64,
            size: bytes.len() as i64,
            crc32c: crc,
            ..Default::default()
        };
        entries.push((name.as_bytes().to_vec(), entry.encode_to_vec()));
        data.extend_from_slice(&bytes);
    }
    let mut index = Vec::new();
    let data_block = block(&entries);
    let data_handle = (0u64, data_block.len() as u64);
    index.extend_from_slice(&data_block);
    index.extend_from_slice(&[0, 0, 0, 0, 0]);
    let meta_handle = (index.len() as u64, 8u64);
    index.extend_from_slice(&block(&[]));
    index.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mut h = Vec::new();
    varint(&mut h, data_handle.0);
    varint(&mut h, data_handle.1);
    let index_block = block(&[(entries.last().unwrap().0.clone(), h)]);
    let index_handle = (index.len() as u64, index_block.len() as u64);
    index.extend_from_slice(&index_block);
    index.extend_from_slice(&[0, 0, 0, 0, 0]);
    let mut footer = Vec::new();
    for v in [meta_handle.0, meta_handle.1, index_handle.0, index_handle.1] {
        varint(&mut footer, v);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&0xdb47_7524_8b80_fb57u64.to_le_bytes());
    index.extend_from_slice(&footer);
    std::fs::write(format!("{}.index", prefix.display()), index).unwrap();
    std::fs::write(format!("{}.data-00000-of-00001", prefix.display()), data).unwrap();
}

#[test]
fn other_checkpoints_are_named_for_what_they_lack() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("resnet");
    write_bundle(
        &other,
        &[
            ("resnet/conv1/kernel", &[3, 3, 3, 8]),
            ("resnet/fc/bias", &[10]),
        ],
    );
    let e = error(&other);
    assert!(
        e.contains("not a U-GAT-IT TF checkpoint: no usable generator_B/conv/conv2d/kernel"),
        "{e}"
    );
    assert!(e.contains("it holds scopes: resnet"), "{e}");
    let tf2 = dir.path().join("ckpt-1");
    write_bundle(
        &tf2,
        &[("model/layer/kernel/.ATTRIBUTES/VARIABLE_VALUE", &[2, 2])],
    );
    assert!(
        error(&tf2).contains("a TF2 object-based checkpoint"),
        "{}",
        error(&tf2)
    );
}
