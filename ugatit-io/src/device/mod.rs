//! Which device a command runs on: `cpu`, `cuda[:N]` or `wgpu[:N]` (every binary's `--device`),
//! checked before any work starts, and the burn backend that runs it: Flex on the CPU,
//! burn-cuda (built with `--features cuda`) on NVIDIA GPUs, burn-wgpu (built with `--features
//! wgpu`) on any GPU with a Vulkan or Metal driver, Mesa's software Vulkan (lavapipe) included.
//!
//! burn-cuda and burn-wgpu run the same burn-cubecl operations (convolution, matmul, reduction,
//! fusion, autotune); only the shader compiler and the runtime differ, so the wgpu build on a
//! software Vulkan device runs, on any machine, the GPU code path of the networks and the step.
//! Work on a GPU runs under [`guard::quietly`]: a backend's panic (a shader the adapter cannot
//! compile, a type it lacks) becomes a one-line [`DeviceError::Failed`], and running out of device
//! memory [`DeviceError::OutOfMemory`], which says what to do. A device that failed so is not
//! used again by the same process ([`DeviceError::FailedBefore`]).

#[cfg(feature = "wgpu")]
pub mod adapters;
// Used by the GPU backends only; its tests run in every build.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
mod guard;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::DType;
use ugatit_model::Precision;

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by index.
    Cuda(usize),
    /// A wgpu adapter: its index in the list `devices` prints, or wgpu's default adapter (a
    /// high-performance GPU where there is one, else what there is, a software one included).
    Wgpu(Option<usize>),
}

/// Why the device asked for cannot be used, or failed, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--device {0}: this binary was built without {backend} support \
         (rebuild with `cargo build --release --features {feature}`)",
        backend = .0.backend_name(), feature = .0.feature()
    )]
    NotCompiled(DeviceChoice),
    #[error("--device {device}: no usable {backend} device ({reason}); pass --device cpu to run on the CPU",
        backend = .device.backend_name())]
    Unusable {
        device: DeviceChoice,
        reason: String,
    },
    #[error(
        "--device {device} ({adapter}): this device has no {precision} arithmetic; \
         use precision f32{other}",
        other = if *.precision == Precision::F16 { "" } else { " or f16" }
    )]
    NoPrecision {
        device: DeviceChoice,
        adapter: String,
        precision: Precision,
    },
    #[error(
        "--device {device}: the {backend} backend failed: {message} (--device cpu runs \
         anywhere)",
        backend = .device.backend_name()
    )]
    Failed {
        device: DeviceChoice,
        message: String,
    },
    #[error(
        "--device {device}: out of device memory ({message}); use a smaller batch or image \
         size, or --device cpu"
    )]
    OutOfMemory {
        device: DeviceChoice,
        message: String,
    },
    #[error(
        "--device {device}: failed earlier in this process ({first}), which leaves its backend's \
         state unknown; start again (a new process) to use it"
    )]
    FailedBefore { device: DeviceChoice, first: String },
    #[error("--devices {0}: name two or more different GPUs of one backend (cuda:0,cuda:1)")]
    NotSeveralGpus(String),
}

/// The backends this binary was built with.
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");
pub const WGPU_COMPILED: bool = cfg!(feature = "wgpu");

impl DeviceChoice {
    fn backend_name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "CPU",
            DeviceChoice::Cuda(_) => "CUDA",
            DeviceChoice::Wgpu(_) => "wgpu",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "",
            DeviceChoice::Cuda(_) => "cuda",
            DeviceChoice::Wgpu(_) => "wgpu",
        }
    }

    pub fn is_gpu(self) -> bool {
        self != DeviceChoice::Cpu
    }

    /// The device to run on. An explicit choice is checked and refused with a one-line error
    /// when unusable. With none: the first CUDA GPU of a CUDA build when it works, else wgpu's
    /// default adapter of a wgpu build when it is a GPU (not a software one: Flex is faster on a
    /// CPU than a Vulkan driver emulating a GPU on it), else the CPU, with a note on stderr when
    /// a GPU build falls back.
    pub fn resolve(asked: Option<DeviceChoice>) -> Result<DeviceChoice, DeviceError> {
        if let Some(d) = asked {
            return d.check().map(|()| d);
        }
        let (device, notes) = default_device();
        for n in notes {
            eprintln!("note: {n}; running on the CPU");
        }
        Ok(device)
    }

    /// Whether this device can run work: the CPU always can; a GPU must be compiled in and
    /// answer a one-element computation (the backends panic on a machine without a driver or
    /// device; that panic is caught and reported here instead).
    pub fn check(self) -> Result<(), DeviceError> {
        #[cfg(any(feature = "cuda", feature = "wgpu"))]
        let unusable = |reason| DeviceError::Unusable {
            device: self,
            reason,
        };
        match self {
            DeviceChoice::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => {
                probe::<burn_cuda::Cuda>(&burn_cuda::CudaDevice::new(i)).map_err(unusable)
            }
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu(i) => {
                let device = wgpu_device(i).map_err(unusable)?;
                probe::<burn_wgpu::Wgpu>(&device).map_err(unusable)
            }
            #[allow(unreachable_patterns)]
            _ => Err(DeviceError::NotCompiled(self)),
        }
    }

    /// Refuses, before any work, a precision whose arithmetic this device lacks (lavapipe and
    /// WGSL shaders have no bfloat16; some adapters have no float16), naming the adapter.
    pub fn check_precision(self, precision: Precision) -> Result<(), DeviceError> {
        #[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(unused_variables))]
        let dtype = match precision {
            Precision::F32 => return Ok(()),
            Precision::Bf16 => DType::BF16,
            Precision::F16 => DType::F16,
        };
        let (supported, adapter) = match self {
            // Flex computes bf16 and f16 (by way of f32 arithmetic).
            DeviceChoice::Cpu => (true, String::new()),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => (
                guard::quietly(|| {
                    <burn_cuda::Cuda as Backend>::supports_dtype(
                        &burn_cuda::CudaDevice::new(i),
                        dtype,
                    )
                })
                .unwrap_or(false),
                format!("CUDA GPU {i}"),
            ),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu(i) => {
                let device = wgpu_device(i).map_err(|reason| DeviceError::Unusable {
                    device: self,
                    reason,
                })?;
                let supported =
                    guard::quietly(|| <burn_wgpu::Wgpu as Backend>::supports_dtype(&device, dtype))
                        .unwrap_or(false);
                (supported, wgpu_adapter_name(i))
            }
            #[allow(unreachable_patterns)]
            _ => return Err(DeviceError::NotCompiled(self)),
        };
        if supported {
            Ok(())
        } else {
            Err(DeviceError::NoPrecision {
                device: self,
                adapter,
                precision,
            })
        }
    }
}

/// What `--device` defaults to (see [`DeviceChoice::resolve`]), and why each GPU backend built
/// in was passed over.
fn default_device() -> (DeviceChoice, Vec<String>) {
    let mut notes = Vec::new();
    if CUDA_COMPILED {
        match DeviceChoice::Cuda(0).check() {
            Ok(()) => return (DeviceChoice::Cuda(0), notes),
            Err(e) => notes.push(e.to_string()),
        }
    }
    #[cfg(feature = "wgpu")]
    match wgpu_default_kind() {
        Ok(kind) if kind.is_gpu() => {
            let d = DeviceChoice::Wgpu(None);
            match d.check() {
                Ok(()) => return (d, notes),
                Err(e) => notes.push(e.to_string()),
            }
        }
        Ok(kind) => notes.push(format!(
            "wgpu's default adapter is a {} one; pass --device wgpu to use it",
            kind.as_str()
        )),
        Err(e) => notes.push(format!("wgpu: {e}")),
    }
    (DeviceChoice::Cpu, notes)
}

/// Runs a tiny computation on `device`, turning a backend's panic into a message.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe<B: Backend>(device: &B::Device) -> Result<(), String> {
    let values = guard::quietly(|| {
        burn::tensor::Tensor::<B, 1>::ones([1], device)
            .into_data()
            .to_vec::<f32>()
            .ok()
    })?;
    match values {
        Some(v) if v == [1.0] => Ok(()),
        _ => Err("a test computation gave a wrong result".into()),
    }
}

/// wgpu's adapters, listed once per process: each listing creates a Vulkan (or Metal) instance,
/// and checking, choosing and naming a device each need the list.
#[cfg(feature = "wgpu")]
fn wgpu_adapters() -> Result<Vec<adapters::Adapter>, String> {
    static LIST: std::sync::OnceLock<Result<Vec<adapters::Adapter>, String>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| guard::quietly(adapters::list)).clone()
}

/// The burn device of `wgpu[:index]`.
#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<burn_wgpu::WgpuDevice, String> {
    let list = wgpu_adapters()?;
    match index {
        // burn-wgpu would panic on its device thread instead.
        None if list.is_empty() => Err(adapters::NONE_FOUND.into()),
        None => Ok(burn_wgpu::WgpuDevice::DefaultDevice),
        Some(i) => adapters::burn_device(&list, i),
    }
}

/// The name and kind of `wgpu[:index]`'s adapter, for messages.
#[cfg(feature = "wgpu")]
fn wgpu_adapter_name(index: Option<usize>) -> String {
    let list = wgpu_adapters().unwrap_or_default();
    let adapter = match index {
        Some(i) => list.get(i).cloned(),
        None => default_adapter(&list),
    };
    adapter.map_or_else(
        || "an unnamed adapter".into(),
        |a| format!("{}, {}", a.name, a.kind.as_str()),
    )
}

/// The adapter wgpu picks by default: the first discrete GPU, else the first integrated one,
/// else the first of the list (wgpu's high-performance preference).
#[cfg(feature = "wgpu")]
fn default_adapter(list: &[adapters::Adapter]) -> Option<adapters::Adapter> {
    use adapters::AdapterKind::*;
    [Discrete, Integrated, Virtual]
        .iter()
        .find_map(|k| list.iter().find(|a| a.kind == *k))
        .or(list.first())
        .cloned()
}

#[cfg(feature = "wgpu")]
fn wgpu_default_kind() -> Result<adapters::AdapterKind, String> {
    let list = wgpu_adapters()?;
    default_adapter(&list)
        .map(|a| a.kind)
        .ok_or_else(|| adapters::NONE_FOUND.into())
}

/// One device a build can use, as `devices` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// What `--device` takes.
    pub device: String,
    pub name: String,
    /// cpu, discrete, integrated, virtual, software or other.
    pub kind: String,
    /// The burn backend that runs it.
    pub backend: String,
    /// What `--device` defaults to.
    pub default: bool,
}

/// Every device this build can use: the CPU, the CUDA GPUs of a CUDA build, the wgpu adapters
/// of a wgpu build, the default marked.
pub fn list_devices() -> Vec<DeviceInfo> {
    let mut out = vec![DeviceInfo {
        device: "cpu".into(),
        name: cpu_name(),
        kind: "cpu".into(),
        backend: "Flex (with ugatit-model's kernels)".into(),
        default: false,
    }];
    #[cfg(feature = "cuda")]
    {
        let n = guard::quietly(|| <burn_cuda::Cuda as Backend>::device_count(0)).unwrap_or(0);
        out.extend((0..n).map(|i| DeviceInfo {
            device: format!("cuda:{i}"),
            name: format!("CUDA GPU {i}"),
            kind: "discrete".into(),
            backend: "burn-cuda".into(),
            default: false,
        }));
    }
    #[cfg(feature = "wgpu")]
    out.extend(
        wgpu_adapters()
            .unwrap_or_default()
            .into_iter()
            .map(|a| DeviceInfo {
                device: format!("wgpu:{}", a.index),
                name: if a.driver.is_empty() {
                    a.name
                } else {
                    format!("{} ({})", a.name, a.driver)
                },
                kind: a.kind.as_str().into(),
                backend: format!("burn-wgpu ({})", a.api),
                default: false,
            }),
    );
    let default = match default_device().0 {
        #[cfg(feature = "wgpu")]
        d @ DeviceChoice::Wgpu(None) => {
            let list = wgpu_adapters().unwrap_or_default();
            default_adapter(&list).map_or(d, |a| DeviceChoice::Wgpu(Some(a.index)))
        }
        d => d,
    };
    for d in &mut out {
        d.default = d.device == default.to_string();
    }
    out
}

/// The CPU's model name (Linux), else the architecture.
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// `devices` as a table, one device a line, columns as wide as their widest entry.
pub fn devices_table(list: &[DeviceInfo]) -> String {
    let width = |f: fn(&DeviceInfo) -> &str, head: &str| {
        list.iter().map(|d| f(d).len()).fold(head.len(), usize::max)
    };
    let (wd, wk, wb) = (
        width(|d| &d.device, "device"),
        width(|d| &d.kind, "kind"),
        width(|d| &d.backend, "backend"),
    );
    let mut s = format!(
        "{:<wd$}  {:<wk$}  {:<wb$}  name\n",
        "device", "kind", "backend"
    );
    for d in list {
        s += &format!(
            "{:<wd$}  {:<wk$}  {:<wb$}  {}{}\n",
            d.device,
            d.kind,
            d.backend,
            d.name,
            if d.default { " (default)" } else { "" }
        );
    }
    s
}

/// The device tests run on: `UGATIT_TEST_DEVICE` (cpu, cuda[:N], wgpu[:N]) when set, else the
/// CPU. `scripts/test.sh` runs the golden tests of a wgpu build with `UGATIT_TEST_DEVICE=wgpu`
/// and `scripts/gpu-check.sh` with `cuda`; a device that cannot run panics the test with the
/// one-line reason.
pub fn test_device() -> DeviceChoice {
    let d = std::env::var("UGATIT_TEST_DEVICE").map_or(DeviceChoice::Cpu, |d| {
        d.parse()
            .unwrap_or_else(|e| panic!("UGATIT_TEST_DEVICE: {e}"))
    });
    if let Err(e) = d.check() {
        panic!("UGATIT_TEST_DEVICE: {e}");
    }
    d
}

/// Work generic over an inference backend, run by [`run_on`].
pub trait DeviceWork {
    type Output;
    fn run<B: Backend>(self, device: &B::Device) -> Self::Output;
}

/// Work generic over a training (autodiff) backend, run by [`run_autodiff_on`].
pub trait AutodiffWork {
    type Output;
    fn run<B: AutodiffBackend>(self, device: &B::Device, name: DeviceChoice) -> Self::Output;
}

/// Work generic over a training backend on several of its devices, run by
/// [`run_autodiff_on_all`].
pub trait ParallelWork {
    type Output;
    fn run<B: AutodiffBackend>(self, devices: &[B::Device]) -> Self::Output;
}

/// Parses `--devices cuda:0,cuda:1`: two or more different GPUs of one backend, each checked
/// as `--device` is, so a build with no usable GPU (or a CPU build) says so in one line.
pub fn resolve_all(list: &str) -> Result<Vec<DeviceChoice>, DeviceError> {
    let several = || DeviceError::NotSeveralGpus(list.to_string());
    let devices = list
        .split(',')
        .map(|d| d.trim().parse::<DeviceChoice>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| several())?;
    let distinct = devices
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let one_backend = devices.iter().all(|d| matches!(d, DeviceChoice::Cuda(_)))
        || devices
            .iter()
            .all(|d| matches!(d, DeviceChoice::Wgpu(Some(_))));
    if devices.len() < 2 || distinct < devices.len() || !one_backend {
        return Err(several());
    }
    for d in &devices {
        d.check()?;
    }
    Ok(devices)
}

/// GPUs whose work failed in this process, with the failure. A panic inside burn's fusion stream
/// leaves it half-run: after an out-of-memory on lavapipe every later operation on that device
/// panicked with "index out of bounds" (measured), so later work there is refused naming the
/// first failure instead.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
static FAILED: std::sync::Mutex<Vec<(DeviceChoice, String)>> = std::sync::Mutex::new(Vec::new());

/// Runs `work` under the GPU guard of `device` (the CPU runs it as it is).
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn guarded<T>(device: DeviceChoice, work: impl FnOnce() -> T) -> Result<T, DeviceError> {
    if !device.is_gpu() {
        return Ok(work());
    }
    let failed = || {
        FAILED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some((_, first)) = failed().iter().find(|(d, _)| *d == device) {
        return Err(DeviceError::FailedBefore {
            device,
            first: first.clone(),
        });
    }
    guard::quietly(work).map_err(|message| {
        failed().push((device, message.clone()));
        if is_out_of_memory(&message) {
            DeviceError::OutOfMemory { device, message }
        } else {
            DeviceError::Failed { device, message }
        }
    })
}

/// Whether a backend's panic says it ran out of device memory: cubecl's memory manager refusing
/// a buffer larger than the device takes ("can't allocate buffer of size"), wgpu's and the CUDA
/// driver's out-of-memory errors.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["can't allocate buffer", "out of memory", "outofmemory"]
        .iter()
        .any(|needle| m.contains(needle))
}

/// Runs `work` on the training backend of `devices` (from [`resolve_all`]: GPUs of one
/// backend), the first of them the main one.
pub fn run_autodiff_on_all<W: ParallelWork>(
    devices: &[DeviceChoice],
    work: W,
) -> Result<W::Output, DeviceError> {
    #[cfg(any(feature = "cuda", feature = "wgpu"))]
    use burn::backend::Autodiff;
    let first = *devices
        .first()
        .ok_or_else(|| DeviceError::NotSeveralGpus(String::new()))?;
    let _ = &work;
    match first {
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(_) => {
            let cuda: Vec<_> = devices
                .iter()
                .filter_map(|d| match d {
                    DeviceChoice::Cuda(i) => Some(burn_cuda::CudaDevice::new(*i)),
                    _ => None,
                })
                .collect();
            guarded(first, || work.run::<Autodiff<burn_cuda::Cuda>>(&cuda))
        }
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu(_) => {
            let wgpu = devices
                .iter()
                .map(|d| match d {
                    DeviceChoice::Wgpu(i) => wgpu_device(*i),
                    _ => Err(String::new()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| DeviceError::Unusable {
                    device: first,
                    reason,
                })?;
            guarded(first, || work.run::<Autodiff<burn_wgpu::Wgpu>>(&wgpu))
        }
        DeviceChoice::Cpu => Err(DeviceError::NotSeveralGpus(list_of(devices))),
        #[allow(unreachable_patterns)]
        d => Err(DeviceError::NotCompiled(d)),
    }
}

fn list_of(devices: &[DeviceChoice]) -> String {
    devices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `work` on the backend of `device` (resolved by [`DeviceChoice::resolve`]).
pub fn run_on<W: DeviceWork>(device: DeviceChoice, work: W) -> Result<W::Output, DeviceError> {
    match device {
        DeviceChoice::Cpu => Ok(work.run::<ugatit_model::Cpu>(&Default::default())),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => guarded(device, || {
            work.run::<burn_cuda::Cuda>(&burn_cuda::CudaDevice::new(i))
        }),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu(i) => {
            let d = wgpu_device(i).map_err(|reason| DeviceError::Unusable { device, reason })?;
            guarded(device, || work.run::<burn_wgpu::Wgpu>(&d))
        }
        #[allow(unreachable_patterns)]
        _ => Err(DeviceError::NotCompiled(device)),
    }
}

/// Runs `work` on the autodiff backend of `device` (resolved by [`DeviceChoice::resolve`]).
pub fn run_autodiff_on<W: AutodiffWork>(
    device: DeviceChoice,
    work: W,
) -> Result<W::Output, DeviceError> {
    use burn::backend::Autodiff;
    match device {
        DeviceChoice::Cpu => {
            Ok(work.run::<Autodiff<ugatit_model::Cpu>>(&Default::default(), device))
        }
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(i) => guarded(device, || {
            work.run::<Autodiff<burn_cuda::Cuda>>(&burn_cuda::CudaDevice::new(i), device)
        }),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu(i) => {
            let d = wgpu_device(i).map_err(|reason| DeviceError::Unusable { device, reason })?;
            guarded(device, || work.run::<Autodiff<burn_wgpu::Wgpu>>(&d, device))
        }
        #[allow(unreachable_patterns)]
        _ => Err(DeviceError::NotCompiled(device)),
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown device {s:?}: use cpu, cuda, cuda:N, wgpu or wgpu:N");
        let lower = s.to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "wgpu" => Ok(DeviceChoice::Wgpu(None)),
            other => {
                if let Some(n) = other.strip_prefix("cuda:") {
                    n.parse().map(DeviceChoice::Cuda).map_err(|_| bad())
                } else if let Some(n) = other.strip_prefix("wgpu:") {
                    n.parse()
                        .map(|n| DeviceChoice::Wgpu(Some(n)))
                        .map_err(|_| bad())
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Wgpu(None) => f.write_str("wgpu"),
            DeviceChoice::Wgpu(Some(n)) => write!(f, "wgpu:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_is_told_from_other_failures() {
        for oom in [
            "can't allocate buffer of size: 4294967300",
            "Error in Queue::submit: Validation Error: Out of Memory",
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")",
            "Device::create_buffer: OutOfMemory",
        ] {
            assert!(is_out_of_memory(oom), "{oom}");
        }
        assert!(!is_out_of_memory("Types BF16 not supported"));
        let line = DeviceError::OutOfMemory {
            device: DeviceChoice::Wgpu(Some(1)),
            message: "can't allocate buffer of size: 8".into(),
        }
        .to_string();
        assert_eq!(
            line,
            "--device wgpu:1: out of device memory (can't allocate buffer of size: 8); use a \
             smaller batch or image size, or --device cpu"
        );
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("CUDA:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("wgpu".parse(), Ok(DeviceChoice::Wgpu(None)));
        assert_eq!("wgpu:1".parse(), Ok(DeviceChoice::Wgpu(Some(1))));
        for bad in ["cuda:x", "wgpu:", "wgpu:-1", "tpu"] {
            assert!(bad
                .parse::<DeviceChoice>()
                .unwrap_err()
                .contains("cuda:N, wgpu or wgpu:N"));
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
        assert_eq!(DeviceChoice::Wgpu(None).to_string(), "wgpu");
        assert_eq!(DeviceChoice::Wgpu(Some(0)).to_string(), "wgpu:0");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_build_without_cuda_refuses_it_in_one_line() {
        let e = DeviceChoice::resolve(Some(DeviceChoice::Cuda(1))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--device cuda:1: this binary was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)"
        );
        let e = resolve_all("cuda:0,cuda:1").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--device cuda:0: this binary was built without CUDA"));
    }

    /// The line a build without wgpu gives for `--device wgpu[:N]` (and, in such a build, that
    /// `resolve` gives it).
    #[test]
    fn a_build_without_wgpu_refuses_it_in_one_line() {
        for d in [DeviceChoice::Wgpu(None), DeviceChoice::Wgpu(Some(2))] {
            if !WGPU_COMPILED {
                assert_eq!(
                    DeviceChoice::resolve(Some(d)),
                    Err(DeviceError::NotCompiled(d))
                );
            }
            assert_eq!(
                DeviceError::NotCompiled(d).to_string(),
                format!(
                    "--device {d}: this binary was built without wgpu support \
                     (rebuild with `cargo build --release --features wgpu`)"
                )
            );
        }
    }

    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    #[test]
    fn a_cpu_build_defaults_to_the_cpu_and_lists_only_it() {
        assert_eq!(DeviceChoice::resolve(None), Ok(DeviceChoice::Cpu));
        let list = list_devices();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].device.as_str(), list[0].default), ("cpu", true));
        assert!(devices_table(&list).contains("(default)"));
    }

    #[test]
    fn the_cpu_has_every_precision() {
        for p in Precision::ALL {
            assert_eq!(DeviceChoice::Cpu.check_precision(p), Ok(()));
        }
    }

    #[test]
    fn precision_errors_name_the_adapter_and_the_way_out() {
        let e = DeviceError::NoPrecision {
            device: DeviceChoice::Wgpu(Some(0)),
            adapter: "llvmpipe, software".into(),
            precision: Precision::Bf16,
        };
        assert_eq!(
            e.to_string(),
            "--device wgpu:0 (llvmpipe, software): this device has no bf16 arithmetic; \
             use precision f32 or f16"
        );
    }

    #[test]
    fn devices_must_be_two_or_more_different_gpus_of_one_backend() {
        for list in [
            "cuda:0",
            "cuda:0,cuda:0",
            "cpu,cuda:0",
            "cuda:0,tpu",
            "cuda:0,wgpu:1",
            "wgpu,wgpu:1",
        ] {
            assert_eq!(
                resolve_all(list).unwrap_err().to_string(),
                format!(
                    "--devices {list}: name two or more different GPUs of one backend \
                     (cuda:0,cuda:1)"
                )
            );
        }
    }
}
