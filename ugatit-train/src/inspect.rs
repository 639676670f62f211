//! `ugatit-train inspect`: what a run folder or weights file holds.

use std::path::Path;

use anyhow::Result;
use ugatit_store::checkpoint::RunDir;
use ugatit_store::read_tensors;
use ugatit_store::Contents;

pub fn run(path: &Path) -> Result<()> {
    let run = RunDir::new(path);
    if run.checkpoints_dir().is_dir() {
        println!("run folder {}", path.display());
        let all = run.checkpoints()?;
        println!("checkpoints: {}", all.len());
        for c in &all {
            let status = match c.verify() {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("DAMAGED: {e}"),
            };
            println!(
                "  step {:>10}  {:>10}  {status}",
                c.step,
                human(dir_size(&c.dir))
            );
        }
        if let Some(v) = all.last().and_then(|c| c.format_version()) {
            println!("checkpoint format version: {v}");
        }
    }
    let t = read_tensors(path)?;
    println!("file: {}", t.path.display());
    println!("format: {:?}", t.format);
    if let Some(v) = t.format_version {
        println!("file format version: {v}");
    }
    if let Some(step) = t.step {
        println!("step: {step}");
    }
    if let Some(d) = t.direction {
        println!("direction: {d}");
    }
    let c = &t.config;
    println!(
        "model: img_size {}{} ch {} n_res {} {} discriminators {}/{} (global/local layers)",
        c.img_size,
        if t.img_size_known {
            ""
        } else {
            " (not fixed by the weights)"
        },
        c.ch,
        c.n_res,
        if c.light { "light" } else { "full" },
        c.n_dis_global,
        c.n_dis_local
    );
    let (what, sd) = match &t.contents {
        Contents::Model(sd) => ("networks", sd),
        Contents::Generator(sd) => ("generator", sd),
    };
    let values: usize = sd.values().map(|d| d.shape.num_elements()).sum();
    println!("{what}: {} tensors, {} values", sd.len(), values);
    println!("size: {}", human(std::fs::metadata(&t.path)?.len()));
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}
