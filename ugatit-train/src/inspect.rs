//! `ugatit-train inspect`: what a run folder or weights file holds.

use std::path::Path;

use anyhow::Result;
use ugatit_model::checkpoint::RunDir;
use ugatit_model::read_tensors;
use ugatit_model::weights::Contents;

pub fn run(path: &Path) -> Result<()> {
    let run = RunDir::new(path);
    if run.checkpoints_dir().is_dir() {
        println!("run folder {}", path.display());
        let all = run.checkpoints()?;
        println!("checkpoints: {}", all.len());
        for c in &all {
            println!(
                "  step {:>10}  {}  {}",
                c.step,
                human(dir_size(&c.dir)),
                c.dir.display()
            );
        }
    }
    let t = read_tensors(path)?;
    println!("file: {}", t.path.display());
    println!("format: {:?}", t.format);
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
