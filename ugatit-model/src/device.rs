//! Which device a command runs on: `cpu`, `cuda` or `cuda:N` (the binaries' `--device`).

/// A device named on the command line. The binaries map it to a backend: Flex for the CPU,
/// burn-cuda (built with `--features cuda`) for NVIDIA GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by index.
    Cuda(usize),
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
}
