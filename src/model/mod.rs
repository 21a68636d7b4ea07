//! Direction models: their configuration (validated), the networks on candle, and training.
//!
//! Plain numeric code: no database, no files except the safetensors a caller asks for.

mod adamw;
mod config;
mod fused_rnn;
mod kernels;
mod linear;
mod net;
mod packed;
mod train;

pub use adamw::AdamW;
pub use config::{Layout, ModelConfig, ModelType, CONFIG_KEYS};
pub use kernels::{cpu, Cpu, CPU_ENV};
pub use net::{accuracy, bce_mean, Net, NetShape};
pub use train::{
    adamw, build_inputs, build_samples, run_epoch, train, EpochMetrics, Samples, TrainOutcome, TrainSettings,
};

crate::states::states! {
    /// Where a model trains.
    #[derive(clap::ValueEnum)]
    Device {
        Cpu = "cpu",
        /// The first NVIDIA GPU (needs a build with `--features cuda`).
        Cuda = "cuda",
    }
}

/// candle's device for `device`; a build without CUDA refuses `cuda` with what to do.
pub fn device(device: Device) -> anyhow::Result<candle_core::Device> {
    crate::provenance::set_device(device.as_str());
    match device {
        Device::Cpu => Ok(candle_core::Device::Cpu),
        Device::Cuda => {
            if !cfg!(feature = "cuda") {
                anyhow::bail!("--device cuda: this hptune was built without CUDA; rebuild with `cargo build --release --features cuda`");
            }
            candle_core::Device::new_cuda(0).map_err(|e| anyhow::anyhow!("--device cuda: no usable CUDA device ({e})"))
        }
    }
}
