//! Timing for the `bench` commands: medians of repeated runs after warm-up runs, as
//! `shared/reference/bench_torch.py` times PyTorch, and the process's peak memory.

use std::time::Instant;

use crate::DeviceChoice;

/// Times of repeated runs, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
}

/// Warm-up runs before timing on `device`: one on the CPU; several on a GPU, which compiles and
/// tunes its kernels on first use.
pub fn warmup_runs(device: DeviceChoice) -> usize {
    match device {
        DeviceChoice::Cpu => 1,
        DeviceChoice::Cuda(_) | DeviceChoice::Wgpu(_) => 3,
    }
}

/// Runs `f` `warmup` times untimed (what a GPU compiles or tunes on first use), then `repeat`
/// times timed. `f` must wait for its device's result (reading it back does).
pub fn time_runs(warmup: usize, repeat: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let mut times: Vec<f64> = (0..repeat.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Timing {
        median_s: times[times.len() / 2],
        min_s: times[0],
    }
}

/// The process's peak resident memory (VmHWM) in MiB, where /proc tells it (else 0).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_times_each_repeat() {
        let mut calls = 0;
        let t = time_runs(2, 3, || calls += 1);
        assert_eq!(calls, 5);
        assert!(t.min_s <= t.median_s);
        assert!(peak_rss_mb() > 0.0);
    }
}
