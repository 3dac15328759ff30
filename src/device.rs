//! `--device auto|cpu|cuda[:N]`.

use candle_core::Device;

use crate::{Error, Result};

/// Picks the device a command runs on. `auto` takes the first GPU when the
/// binary was built with the `cuda` feature and a GPU answers, else the CPU.
/// [`select`] for inference at `precision`: int8 runs on the CPU, so `auto` means the CPU there.
pub fn select_for(spec: &str, precision: crate::model::Precision) -> Result<Device> {
    if precision == crate::model::Precision::Int8 && spec == "auto" {
        return Ok(Device::Cpu);
    }
    select(spec)
}

pub fn select(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        _ => {
            let ordinal = match spec.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| Error::Other(format!("--device {spec}: expected auto, cpu, cuda or cuda:N")))?,
                None => return Err(Error::Other(format!("--device {spec}: expected auto, cpu, cuda or cuda:N"))),
            };
            Device::new_cuda(ordinal).map_err(|e| {
                Error::Other(format!(
                    "--device {spec}: {e} (CUDA needs a binary built with `--features cuda` and an NVIDIA driver)"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert!(select("cpu").unwrap().is_cpu());
        assert!(select("auto").is_ok());
        assert!(select("gpu").unwrap_err().to_string().contains("expected auto"));
        assert!(select("cuda:x").unwrap_err().to_string().contains("expected auto"));
    }
}
