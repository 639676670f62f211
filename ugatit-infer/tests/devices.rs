//! What a build can use and how a device that cannot do a thing says so, on the device
//! `UGATIT_TEST_DEVICE` names (the test command runs this on wgpu, Mesa's software Vulkan
//! device, in the wgpu build): `devices` lists it, and a panic from inside its backend comes back
//! as one line naming `--device`.

use assert_cmd::Command;
use burn::prelude::*;
use burn::tensor::FloatDType;
use ugatit_io::device::{run_on, test_device, DeviceError, DeviceWork};
use ugatit_model::Precision;

#[test]
fn devices_lists_the_test_device_and_never_defaults_to_a_software_adapter() {
    let device = test_device();
    let out = Command::cargo_bin("ugatit-infer")
        .unwrap()
        .arg("devices")
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    println!("{table}");
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert!(rows[0].starts_with("cpu "), "{table}");
    assert_eq!(rows.iter().filter(|r| r.ends_with(" (default)")).count(), 1);
    let default = rows.iter().find(|r| r.ends_with(" (default)")).unwrap();
    assert!(!default.contains(" software "), "{table}");
    let named = match device.to_string().as_str() {
        "wgpu" => "wgpu:".to_string(),
        d => format!("{d} "),
    };
    assert!(rows.iter().any(|r| r.starts_with(&named)), "{table}");
}

/// A matrix product of ones in a float type. In bfloat16, which burn-wgpu's WGSL shaders cannot
/// compile: the panic inside cubecl that a user must never see.
struct Matmul(FloatDType);

impl DeviceWork for Matmul {
    type Output = Vec<f32>;
    fn run<B: Backend>(self, device: &B::Device) -> Vec<f32> {
        let a = Tensor::<B, 2>::ones([4, 4], device).cast(self.0);
        let p = a.clone().matmul(a).cast(FloatDType::F32);
        p.into_data().convert::<f32>().into_vec().unwrap()
    }
}

#[test]
fn a_panic_inside_a_gpu_backend_becomes_one_line_naming_the_device() {
    let device = test_device();
    if device.check_precision(Precision::Bf16).is_ok() {
        // The device computes it: the product of ones is 4 everywhere.
        assert_eq!(
            run_on(device, Matmul(FloatDType::BF16)).unwrap(),
            vec![4.0; 16]
        );
        return;
    }
    let e = run_on(device, Matmul(FloatDType::BF16)).unwrap_err();
    let line = e.to_string();
    println!("{line}");
    assert!(matches!(e, DeviceError::Failed { .. }), "{line}");
    assert!(
        line.starts_with(&format!("--device {device}: the ")) && line.contains(" backend failed: "),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
}

/// The sum of a tensor of 2^30 + 1 float32s: 4 GiB and 4 bytes, more than any Vulkan device
/// binds as one buffer (its `maxStorageBufferRange` is a 32-bit count of bytes).
struct OverFourGiB;

impl DeviceWork for OverFourGiB {
    type Output = f32;
    fn run<B: Backend>(self, device: &B::Device) -> f32 {
        Tensor::<B, 1>::ones([(1 << 30) + 1], device)
            .sum()
            .into_scalar()
            .elem()
    }
}

/// A tensor the device cannot hold: one line naming `--device`, saying it ran out of device
/// memory and what to do, instead of cubecl's panic. On wgpu only: a CUDA GPU or the CPU may
/// well hold 4 GiB.
#[test]
fn a_tensor_larger_than_the_device_holds_is_one_line_saying_what_to_do() {
    let device = test_device();
    if !device.to_string().starts_with("wgpu") {
        println!("skipped: {device} may hold 4 GiB (the test command runs this on wgpu)");
        return;
    }
    // In a process of its own: a device that failed is not used again by its process, and
    // the other tests here use the same device.
    const NAME: &str = "a_tensor_larger_than_the_device_holds_is_one_line_saying_what_to_do";
    if std::env::var_os("UGATIT_TEST_ALONE").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
            .env("UGATIT_TEST_ALONE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}");
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
        return;
    }
    let e = run_on(device, OverFourGiB).unwrap_err();
    let line = e.to_string();
    println!("{line}");
    assert!(matches!(e, DeviceError::OutOfMemory { .. }), "{line}");
    assert!(
        line.starts_with(&format!("--device {device}: out of device memory ("))
            && line.ends_with("use a smaller batch or image size, or --device cpu"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    // The device still works afterwards (a service keeps serving smaller batches).
    // The backend's state is unknown after a panic inside it (burn-fusion's stream was left
    // half-run: every later operation failed): later work on the device is refused, naming why.
    let again = run_on(device, Matmul(FloatDType::F32)).unwrap_err();
    assert!(matches!(again, DeviceError::FailedBefore { .. }), "{again}");
    assert!(
        again.to_string().contains("can't allocate buffer of size"),
        "{again}"
    );
}

/// A machine without a Vulkan driver (the loader pointed at no driver file): `--device wgpu`
/// is refused before any work in one line naming `--device` and the way out, `devices` lists
/// the CPU alone, and the default device is the CPU. In a build without wgpu, the line says how
/// to build it in.
#[test]
fn no_driver_is_one_line_naming_the_device_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let none = dir.path().join("no-such-driver.json");
    let out_dir = dir.path().join("out");
    let infer = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ugatit-infer"));
        // The loader's two names for the list of driver files (old and new loaders).
        cmd.env("VK_ICD_FILENAMES", &none)
            .env("VK_DRIVER_FILES", &none)
            .args(args)
            .output()
            .unwrap()
    };
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ugatit-store/tests/fixtures/full_96_ch4_r2/official.pt"
    );
    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ugatit-store/tests/fixtures/full_96_ch4_r2/data/testA/a.png"
    );
    let out = infer(&[
        "translate",
        "--device",
        "wgpu",
        "--model",
        model,
        "-o",
        out_dir.to_str().unwrap(),
        input,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("{stderr}");
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    if ugatit_io::device::WGPU_COMPILED {
        assert!(
            stderr.starts_with("error: --device wgpu: no usable wgpu device (")
                && stderr
                    .trim_end()
                    .ends_with("pass --device cpu to run on the CPU"),
            "{stderr}"
        );
    } else {
        assert!(stderr.contains("built without wgpu support"), "{stderr}");
    }
    assert!(!out_dir.exists(), "nothing written before the refusal");

    let out = infer(&["devices"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(
        rows[0].starts_with("cpu ") && rows[0].ends_with(" (default)"),
        "{table}"
    );
}
