//! The service with its model on the device `UGATIT_TEST_DEVICE` names (the test command runs
//! this on wgpu, Mesa's software Vulkan device, in the wgpu build): four uploads at once,
//! translated in batches of up to 4, each within 1 grey level of the CPU's translation.

mod common;

use std::time::Duration;

use common::{client, max_diff, png, upload, wait_finished, Server, SIZE};
use ugatit_infer::{Crop, Options, Translator};
use ugatit_model::{Cpu, Direction};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_the_test_device_equal_the_cpu_within_one_grey_level() {
    let device = ugatit_io::device::test_device();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_on(&device.to_string(), dir.path(), &["--max-batch", "4"]);
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.starts_with(&format!("model loaded on {device}:"))
                && l.ends_with("up to 4 a batch")),
        "{:?}",
        server.log()
    );
    let pictures: Vec<_> = (0..4u32)
        .map(|k| {
            image::RgbImage::from_fn(160, 140, |x, y| {
                image::Rgb([
                    ((x * (k + 1) + y) % 256) as u8,
                    ((y * 3 + k * 40) % 256) as u8,
                    ((x ^ y) % 256) as u8,
                ])
            })
        })
        .collect();
    let c = client();
    let uploads = pictures
        .iter()
        .map(|p| upload(&c, &server, png(p), &[("direction", "a2b")]));
    let ids: Vec<String> = futures::future::join_all(uploads)
        .await
        .into_iter()
        .map(|(code, body, _)| {
            assert_eq!(code, 202, "{body}");
            body["id"].as_str().unwrap().to_string()
        })
        .collect();
    let cpu = Translator::<Cpu>::load(
        &common::model(),
        Direction::A2B,
        Some(SIZE),
        &Default::default(),
    )
    .unwrap();
    for (id, picture) in ids.iter().zip(&pictures) {
        let done = wait_finished(&c, &server, id, Duration::from_secs(300)).await;
        assert_eq!(done["status"], "done", "{done}");
        let link = done["result_url"].as_str().unwrap();
        let bytes = c.get(server.url(link)).send().await.unwrap().bytes().await;
        let served = image::load_from_memory(&bytes.unwrap()).unwrap().to_rgb8();
        // An upload without a crop is translated from its central square.
        let options = Options {
            crop: Crop::Center,
            ..Default::default()
        };
        let want = cpu.translate(picture, &options).unwrap().image;
        let d = max_diff(&served, &want);
        println!("job {id} on {device}: {d} grey levels from the CPU");
        assert!(d <= 1, "job {id} on {device}: {d} grey levels from the CPU");
    }
}
