//! Direction models: their configuration (validated), the networks on candle, and training.
//!
//! Plain numeric code: no database, no files except the safetensors a caller asks for.

mod config;
mod net;
mod train;

pub use config::{ModelConfig, ModelType, CONFIG_KEYS};
pub use net::{accuracy, bce_mean, Net, NetShape};
pub use train::{
    adamw, build_inputs, build_samples, run_epoch, train, EpochMetrics, Samples, TrainOutcome, TrainSettings,
};

/// The compute device, by name.
pub fn device(name: &str) -> anyhow::Result<candle_core::Device> {
    match name {
        "cpu" => Ok(candle_core::Device::Cpu),
        "cuda" => {
            if !cfg!(feature = "cuda") {
                anyhow::bail!("--device cuda: this hptune was built without CUDA; rebuild with `cargo build --release --features cuda`");
            }
            candle_core::Device::new_cuda(0).map_err(|e| anyhow::anyhow!("--device cuda: no usable CUDA device ({e})"))
        }
        other => anyhow::bail!("--device must be cpu or cuda, got '{other}'"),
    }
}
