//! Live GPU figures of one node, parsed: `nvidia-smi --query-gpu=` [`QUERY`]
//! `--format=csv,noheader,nounits` (one line per GPU) and `nvidia-smi --version` (the
//! driver and CUDA versions).

use serde::Serialize;

/// The fields asked of nvidia-smi, in this order.
pub const QUERY: &str =
    "index,name,utilization.gpu,memory.used,memory.total,power.draw,power.limit,driver_version";

/// One GPU right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveGpu {
    pub index: u32,
    pub name: String,
    /// `None` when the GPU does not report it (`[N/A]`, `[Not Supported]`).
    pub utilization_percent: Option<f64>,
    pub memory_used_mib: Option<u64>,
    pub memory_total_mib: Option<u64>,
    pub power_draw_watts: Option<f64>,
    pub power_limit_watts: Option<f64>,
}

/// A node's GPUs and its NVIDIA driver and CUDA versions.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NodeGpus {
    pub gpus: Vec<LiveGpu>,
    pub driver: Option<String>,
    pub cuda: Option<String>,
}

fn value(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty() && !v.starts_with('[') && v != "N/A").then_some(v)
}

/// The query's CSV lines and the `--version` text; lines that do not have the
/// query's fields are left out.
pub fn parse(query: &str, version: &str) -> NodeGpus {
    let mut out = NodeGpus::default();
    for line in query.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 8 {
            continue;
        }
        let Ok(index) = f[0].parse::<u32>() else {
            continue;
        };
        let num = |i: usize| value(f[i]).and_then(|v| v.parse::<f64>().ok());
        out.gpus.push(LiveGpu {
            index,
            name: f[1].to_string(),
            utilization_percent: num(2),
            memory_used_mib: num(3).map(|v| v as u64),
            memory_total_mib: num(4).map(|v| v as u64),
            power_draw_watts: num(5),
            power_limit_watts: num(6),
        });
        if out.driver.is_none() {
            out.driver = value(f[7]).map(String::from);
        }
    }
    for line in version.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k.eq_ignore_ascii_case("CUDA Version") {
                out.cuda = value(v).map(String::from);
            } else if k.eq_ignore_ascii_case("DRIVER version") && out.driver.is_none() {
                out.driver = value(v).map(String::from);
            }
        }
    }
    out
}

impl NodeGpus {
    /// The summed live draw, `None` when no GPU reports one.
    pub fn draw_watts(&self) -> Option<f64> {
        let draws: Vec<f64> = self
            .gpus
            .iter()
            .filter_map(|g| g.power_draw_watts)
            .collect();
        (!draws.is_empty()).then(|| draws.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_supported_fields_are_none() {
        let g = parse(
            "0, NVIDIA GeForce RTX 4090, 97, 20110, 24564, 431.55, 450.00, 550.54.15\n1, NVIDIA GeForce RTX 4090, [N/A], 3, 24564, [Not Supported], 450.00, 550.54.15\n",
            "NVIDIA-SMI version  : 550.54.15\nNVML version        : 550.54\nDRIVER version      : 550.54.15\nCUDA Version        : 12.4\n",
        );
        assert_eq!(g.gpus.len(), 2);
        assert_eq!(g.gpus[0].utilization_percent, Some(97.0));
        assert_eq!(g.gpus[1].utilization_percent, None);
        assert_eq!(g.gpus[1].power_draw_watts, None);
        assert_eq!(g.draw_watts(), Some(431.55));
        assert_eq!(g.driver.as_deref(), Some("550.54.15"));
        assert_eq!(g.cuda.as_deref(), Some("12.4"));
        assert_eq!(parse("No devices were found\n", ""), NodeGpus::default());
    }
}
