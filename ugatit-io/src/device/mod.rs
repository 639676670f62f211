//! Which device a command runs on: `cpu`, `cuda` or `cuda:N` (every binary's `--device`), checked
//! before any work starts, and the burn backend that runs it: Flex on the CPU, burn-cuda (built
//! with `--features cuda`) on NVIDIA GPUs.

use burn::tensor::backend::{AutodiffBackend, Backend};

/// A device named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by index.
    Cuda(usize),
}

/// Why the device asked for cannot be used, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--device {0}: this binary was built without CUDA support \
         (rebuild with `cargo build --release --features cuda`)"
    )]
    NotCompiled(DeviceChoice),
    #[error(
        "--device {device}: no usable CUDA GPU ({reason}); pass --device cpu to run on the CPU"
    )]
    Unusable {
        device: DeviceChoice,
        reason: String,
    },
    #[error("--devices {0}: name two or more different GPUs (cuda:0,cuda:1)")]
    NotSeveralGpus(String),
}

impl DeviceChoice {
    /// The best device a binary was built for: the first GPU when CUDA support is compiled in,
    /// else the CPU.
    pub fn best(cuda_compiled: bool) -> Self {
        if cuda_compiled {
            DeviceChoice::Cuda(0)
        } else {
            DeviceChoice::Cpu
        }
    }

    /// The device to run on. An explicit choice is checked and refused with a one-line error
    /// when unusable; with none, the first GPU of a CUDA build is used when it works, and the
    /// CPU otherwise (with a warning on stderr, so a CUDA build still runs on a laptop).
    pub fn resolve(asked: Option<DeviceChoice>) -> Result<DeviceChoice, DeviceError> {
        match asked {
            Some(d) => d.check().map(|()| d),
            None => {
                let best = DeviceChoice::best(cfg!(feature = "cuda"));
                match best.check() {
                    Ok(()) => Ok(best),
                    Err(e) => {
                        eprintln!("warning: {e}; running on the CPU");
                        Ok(DeviceChoice::Cpu)
                    }
                }
            }
        }
    }

    /// Whether this device can run work: the CPU always can; a GPU must be compiled in and
    /// answer a one-element computation (burn-cuda panics on a machine without a driver or
    /// device; that panic is caught and reported here instead).
    pub fn check(self) -> Result<(), DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(()),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda(_) => Err(DeviceError::NotCompiled(self)),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(i) => probe_cuda(i).map_err(|reason| DeviceError::Unusable {
                device: self,
                reason,
            }),
        }
    }
}

/// Runs a tiny computation on GPU `index`, turning burn-cuda's panic into a message.
#[cfg(feature = "cuda")]
fn probe_cuda(index: usize) -> Result<(), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| {
        let device = burn_cuda::CudaDevice::new(index);
        burn::tensor::Tensor::<burn_cuda::Cuda, 1>::ones([1], &device)
            .into_data()
            .to_vec::<f32>()
            .ok()
    });
    std::panic::set_hook(hook);
    match result {
        Ok(Some(v)) if v == [1.0] => Ok(()),
        Ok(_) => Err("a test computation gave a wrong result".into()),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .map(|s| s.lines().next().unwrap_or_default().to_string())
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "device creation failed".into())),
    }
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

/// Parses `--devices cuda:0,cuda:1`: two or more different GPUs, each checked as `--device`
/// is, so a CUDA build with no usable GPU (or a CPU build) says so in one line.
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
    let gpus = devices.iter().all(|d| matches!(d, DeviceChoice::Cuda(_)));
    if devices.len() < 2 || distinct < devices.len() || !gpus {
        return Err(several());
    }
    for d in &devices {
        d.check()?;
    }
    Ok(devices)
}

/// Runs `work` on the training backend of `devices` (from [`resolve_all`]: GPUs of one
/// backend), the first of them the main one.
pub fn run_autodiff_on_all<W: ParallelWork>(
    devices: &[DeviceChoice],
    work: W,
) -> Result<W::Output, DeviceError> {
    #[cfg(feature = "cuda")]
    {
        let cuda: Option<Vec<_>> = devices
            .iter()
            .map(|d| match d {
                DeviceChoice::Cuda(i) => Some(burn_cuda::CudaDevice::new(*i)),
                DeviceChoice::Cpu => None,
            })
            .collect();
        match cuda {
            Some(cuda) => Ok(work.run::<burn::backend::Autodiff<burn_cuda::Cuda>>(&cuda)),
            None => Err(DeviceError::NotSeveralGpus(list_of(devices))),
        }
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = work;
        Err(match devices.first() {
            Some(d @ DeviceChoice::Cuda(_)) => DeviceError::NotCompiled(*d),
            _ => DeviceError::NotSeveralGpus(list_of(devices)),
        })
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
        DeviceChoice::Cuda(i) => Ok(work.run::<burn_cuda::Cuda>(&burn_cuda::CudaDevice::new(i))),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(DeviceError::NotCompiled(device)),
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
        DeviceChoice::Cuda(i) => {
            Ok(work.run::<Autodiff<burn_cuda::Cuda>>(&burn_cuda::CudaDevice::new(i), device))
        }
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(DeviceError::NotCompiled(device)),
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown device {s:?}: use cpu, cuda or cuda:N");
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceChoice::Cuda).map_err(|_| bad()),
                None => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("CUDA:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("cuda:x"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .contains("cuda:N"));
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cpu_build_refuses_a_gpu_in_one_line_and_defaults_to_the_cpu() {
        let e = DeviceChoice::resolve(Some(DeviceChoice::Cuda(1))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--device cuda:1: this binary was built without CUDA support \
             (rebuild with `cargo build --release --features cuda`)"
        );
        assert_eq!(DeviceChoice::resolve(None), Ok(DeviceChoice::Cpu));
        let e = resolve_all("cuda:0,cuda:1").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--device cuda:0: this binary was built without CUDA"));
    }

    #[test]
    fn devices_must_be_two_or_more_different_gpus() {
        for list in ["cuda:0", "cuda:0,cuda:0", "cpu,cuda:0", "cuda:0,tpu"] {
            assert_eq!(
                resolve_all(list).unwrap_err().to_string(),
                format!("--devices {list}: name two or more different GPUs (cuda:0,cuda:1)")
            );
        }
    }
}
