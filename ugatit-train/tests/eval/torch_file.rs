//! A writer of PyTorch's zip checkpoint format (`torch.save` since 1.6) for a flat state dict of
//! f32 and i64 tensors, so the test can make the 95 MB weights file it needs instead of
//! committing one. The layout is the one `torch.save` writes and `torch.load` reads:
//! `<name>/data.pkl`, a pickle (protocol 2) of an `OrderedDict` whose values are
//! `torch._utils._rebuild_tensor_v2(<persistent storage>, 0, size, stride, False, OrderedDict())`;
//! `<name>/data/<i>`, each storage's raw little-endian bytes; `<name>/byteorder` and
//! `<name>/version`. (`torch.load` of a file this writes gives back the same tensors: checked
//! once with torch 2.15, see fixtures/eval/README.md.)

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// One tensor's values.
pub enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Values {
    fn storage(&self) -> &'static str {
        match self {
            Values::F32(_) => "FloatStorage",
            Values::I64(_) => "LongStorage",
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::I64(v) => v.len(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match self {
            Values::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Values::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// The pickle opcodes this writer uses (Python's `pickletools` names).
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }

    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }

    fn unicode(&mut self, s: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    fn int(&mut self, v: usize) -> &mut Self {
        if v < 0x100 {
            self.0.extend_from_slice(&[b'K', v as u8]);
        } else if v < 0x10000 {
            self.0.push(b'M');
            self.0.extend_from_slice(&(v as u16).to_le_bytes());
        } else {
            self.0.push(b'J');
            self.0
                .extend_from_slice(&i32::try_from(v).unwrap().to_le_bytes());
        }
        self
    }

    fn tuple(&mut self, items: &[usize]) -> &mut Self {
        self.op(b'(');
        for &v in items {
            self.int(v);
        }
        self.op(b't')
    }

    /// `collections.OrderedDict()`.
    fn ordered_dict(&mut self) -> &mut Self {
        self.global("collections", "OrderedDict").op(b')').op(b'R')
    }
}

/// Writes `tensors` (key, row-major shape, values) as `torch.save` would write that state dict.
pub fn write(path: &Path, tensors: &[(String, Vec<usize>, Values)]) -> io::Result<()> {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let mut p = Pickle(vec![0x80, 2]);
    p.ordered_dict().op(b'(');
    for (i, (key, shape, values)) in tensors.iter().enumerate() {
        assert_eq!(shape.iter().product::<usize>(), values.len(), "{key}");
        let mut stride = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * shape[d + 1];
        }
        p.unicode(key)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b'(');
        // The storage, as a persistent id: ('storage', torch.FloatStorage, key, 'cpu', numel).
        p.op(b'(')
            .unicode("storage")
            .global("torch", values.storage())
            .unicode(&i.to_string())
            .unicode("cpu")
            .int(values.len())
            .op(b't')
            .op(b'Q');
        p.int(0).tuple(shape).tuple(&stride).op(0x89).ordered_dict();
        p.op(b't').op(b'R');
    }
    p.op(b'u').op(b'.');

    let mut zip = ZipWriter::new(File::create(path)?);
    // torch stores every entry uncompressed, storages aligned to 64 bytes.
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64);
    let mut entry = |file: &str, bytes: &[u8]| -> io::Result<()> {
        zip.start_file(format!("{name}/{file}"), options)?;
        zip.write_all(bytes)
    };
    entry("data.pkl", &p.0)?;
    entry("byteorder", b"little")?;
    for (i, (_, _, values)) in tensors.iter().enumerate() {
        entry(&format!("data/{i}"), &values.bytes())?;
    }
    entry("version", b"3\n")?;
    zip.finish()?;
    Ok(())
}
