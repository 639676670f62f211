//! wgpu adapters (`--device wgpu[:N]`, built with `--features wgpu`): the list a build can use,
//! in wgpu's order for the graphics API burn-wgpu runs on (Vulkan on Linux and Windows, Metal on
//! macOS), and the burn device of one of them.
//!
//! burn-wgpu names an adapter by its kind and its index among adapters of that kind
//! (`WgpuDevice::DiscreteGpu(1)`); `wgpu:N` is the N-th adapter of the whole list, which is what
//! `devices` prints, so the two are mapped here. A software adapter (Mesa's lavapipe, a Vulkan
//! device that runs its shaders on the CPU) is `WgpuDevice::Cpu`, of which burn-wgpu reaches the
//! first only.

use burn_wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
use burn_wgpu::WgpuDevice;

/// Why there is no `wgpu` device on a machine without a driver, and what to do.
pub const NONE_FOUND: &str = "no wgpu adapter found: install a Vulkan driver (your GPU vendor's, \
     or Mesa's: apt-get install libvulkan1 mesa-vulkan-drivers)";

/// What kind of device an adapter is, as wgpu reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    Discrete,
    Integrated,
    Virtual,
    /// Shaders run on the CPU (lavapipe, llvmpipe, WARP).
    Software,
    Other,
}

impl AdapterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterKind::Discrete => "discrete",
            AdapterKind::Integrated => "integrated",
            AdapterKind::Virtual => "virtual",
            AdapterKind::Software => "software",
            AdapterKind::Other => "other",
        }
    }

    /// A GPU, not a CPU standing in for one.
    pub fn is_gpu(self) -> bool {
        matches!(
            self,
            AdapterKind::Discrete | AdapterKind::Integrated | AdapterKind::Virtual
        )
    }
}

/// One adapter of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// Its place in the list: `wgpu:index`.
    pub index: usize,
    pub name: String,
    pub kind: AdapterKind,
    /// The driver, as the adapter reports it (for example "llvmpipe" with its Mesa version).
    pub driver: String,
    /// The graphics API (Vulkan, Metal).
    pub api: String,
}

/// Every adapter of burn-wgpu's graphics API, in wgpu's order (empty without a driver).
pub fn list() -> Vec<Adapter> {
    let backend = AutoGraphicsApi::backend();
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: backend.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    block_on(instance.enumerate_adapters(backend.into()))
        .into_iter()
        .enumerate()
        .map(|(index, a)| {
            let info = a.get_info();
            Adapter {
                index,
                name: info.name,
                kind: match info.device_type {
                    wgpu::DeviceType::DiscreteGpu => AdapterKind::Discrete,
                    wgpu::DeviceType::IntegratedGpu => AdapterKind::Integrated,
                    wgpu::DeviceType::VirtualGpu => AdapterKind::Virtual,
                    wgpu::DeviceType::Cpu => AdapterKind::Software,
                    wgpu::DeviceType::Other => AdapterKind::Other,
                },
                driver: [info.driver, info.driver_info]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" "),
                api: format!("{:?}", info.backend),
            }
        })
        .collect()
}

/// wgpu's enumeration is async in name only on native targets: it is ready when first polled.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The burn device of `wgpu:index` in `adapters`, or why there is none.
pub fn burn_device(adapters: &[Adapter], index: usize) -> Result<WgpuDevice, String> {
    let Some(a) = adapters.get(index) else {
        return Err(match adapters.len() {
            0 => NONE_FOUND.to_string(),
            n => format!(
                "there are {n} wgpu adapters (wgpu:0 to wgpu:{}); `devices` lists them",
                n - 1
            ),
        });
    };
    let same_kind_before = adapters[..index]
        .iter()
        .filter(|b| b.kind == a.kind)
        .count();
    match a.kind {
        AdapterKind::Discrete => Ok(WgpuDevice::DiscreteGpu(same_kind_before)),
        AdapterKind::Integrated => Ok(WgpuDevice::IntegratedGpu(same_kind_before)),
        AdapterKind::Virtual => Ok(WgpuDevice::VirtualGpu(same_kind_before)),
        AdapterKind::Software if same_kind_before == 0 => Ok(WgpuDevice::Cpu),
        AdapterKind::Software | AdapterKind::Other => Err(format!(
            "{} ({}) cannot be chosen by index in burn-wgpu 0.21; pass plain --device wgpu",
            a.name,
            a.kind.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(index: usize, kind: AdapterKind) -> Adapter {
        Adapter {
            index,
            name: format!("card {index}"),
            kind,
            driver: String::new(),
            api: "Vulkan".into(),
        }
    }

    #[test]
    fn an_index_of_the_whole_list_becomes_an_index_among_its_kind() {
        use AdapterKind::*;
        let list: Vec<_> = [Integrated, Discrete, Software, Discrete, Other]
            .into_iter()
            .enumerate()
            .map(|(i, k)| adapter(i, k))
            .collect();
        assert_eq!(burn_device(&list, 0), Ok(WgpuDevice::IntegratedGpu(0)));
        assert_eq!(burn_device(&list, 1), Ok(WgpuDevice::DiscreteGpu(0)));
        assert_eq!(burn_device(&list, 2), Ok(WgpuDevice::Cpu));
        assert_eq!(burn_device(&list, 3), Ok(WgpuDevice::DiscreteGpu(1)));
        assert!(burn_device(&list, 4)
            .unwrap_err()
            .contains("plain --device wgpu"));
        assert_eq!(
            burn_device(&list, 5).unwrap_err(),
            "there are 5 wgpu adapters (wgpu:0 to wgpu:4); `devices` lists them"
        );
        assert!(burn_device(&[], 0)
            .unwrap_err()
            .contains("no wgpu adapter found"));
    }
}
