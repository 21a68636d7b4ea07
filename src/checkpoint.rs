//! Checkpoint files: safetensors holding a model's weights and its scaler, checked against the
//! sha256 and size the database recorded for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::features::Scaler;
use crate::model::{ModelConfig, Net};
use crate::states::Role;
use crate::store::{CheckpointRecord, RunRecord, SavedCheckpoint, Store};

/// The file name of a checkpoint inside its folder.
pub const FILE: &str = "model.safetensors";

pub use crate::ids::sha256_hex;

/// Writes weights and scaler to `dir/model.safetensors`; returns the record of checkpoint
/// `run_id/role` and the file's bytes, for `Store::finish_run` to keep.
pub fn save(
    dir: &Path,
    (run_id, role, epoch): (&str, Role, usize),
    weights: &HashMap<String, Tensor>,
    scaler: &Scaler,
) -> anyhow::Result<SavedCheckpoint> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut all = weights.clone();
    let n = scaler.mean.len();
    all.insert("scaler.mean".into(), Tensor::from_slice(&scaler.mean, n, &Device::Cpu)?);
    all.insert("scaler.std".into(), Tensor::from_slice(&scaler.std, n, &Device::Cpu)?);
    let all: HashMap<String, Tensor> =
        all.into_iter().map(|(k, v)| Ok((k, v.to_device(&Device::Cpu)?))).collect::<candle_core::Result<_>>()?;
    let path = std::fs::canonicalize(dir)?.join(FILE);
    Net::save(&all, &path).with_context(|| format!("writing {}", path.display()))?;
    let bytes = std::fs::read(&path)?;
    let record = CheckpointRecord {
        checkpoint_id: format!("{run_id}/{role}"),
        run_id: run_id.into(),
        role,
        epoch: epoch as i32,
        path: path.to_string_lossy().into_owned(),
        sha256: sha256_hex(&bytes),
        size_bytes: bytes.len() as i64,
        cleanup_id: None,
    };
    Ok(SavedCheckpoint { record, bytes })
}

/// A model loaded from a recorded checkpoint, with what it needs to predict.
pub struct LoadedModel {
    pub net: Net,
    pub scaler: Scaler,
    pub config: ModelConfig,
    pub run: RunRecord,
    pub checkpoint: CheckpointRecord,
}

/// Loads a checkpoint file (or the folder holding `model.safetensors`), refusing a file whose
/// bytes differ from what the database recorded for it.
pub fn load(store: &Store, path: &Path, device: &Device) -> anyhow::Result<LoadedModel> {
    let file = if path.is_dir() { path.join(FILE) } else { path.to_path_buf() };
    let file = std::fs::canonicalize(&file).with_context(|| format!("cannot read checkpoint {}", file.display()))?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read checkpoint {}", file.display()))?;
    let sha = sha256_hex(&bytes);
    let record = match store.checkpoint_at(&file.to_string_lossy())? {
        Some(r) => Some(r),
        // A copy elsewhere (an export, a moved folder) is known by its content.
        None => store.checkpoint_by_sha(&sha)?,
    };
    let Some(record) = record else {
        bail!(
            "{} is not a checkpoint recorded in {}; pass a model trained with this database",
            file.display(),
            store.path().display()
        );
    };
    if record.sha256 != sha {
        let what = if bytes.len() as i64 != record.size_bytes {
            format!("it is {} bytes, {} were recorded (truncated or replaced)", bytes.len(), record.size_bytes)
        } else {
            "its content changed".to_string()
        };
        bail!(
            "checkpoint {} does not match its record in {}: {what}; sha256 {sha}, recorded {}. Retrain, or restore the file",
            file.display(),
            store.path().display(),
            record.sha256
        );
    }
    from_bytes(store, record, &bytes, &file, device)
}

/// Loads a recorded checkpoint; a file that is gone or no longer holds the recorded bytes is first
/// written again from the database.
pub fn load_record(store: &Store, record: &CheckpointRecord, device: &Device) -> anyhow::Result<LoadedModel> {
    let path = Path::new(&record.path);
    if ensure(store, record, path)? {
        eprintln!("wrote {} again from the database", path.display());
    }
    load(store, path, device)
}

/// Makes `path` hold a recorded checkpoint's bytes: written from the database when the file is
/// missing or its sha256 differs. Returns whether it wrote.
pub fn ensure(store: &Store, record: &CheckpointRecord, path: &Path) -> anyhow::Result<bool> {
    Ok(ensure_all(store, &[(record, path.to_path_buf())])? > 0)
}

/// [`ensure`] for many checkpoints, with the bytes of all that need writing read from the database
/// together (`Store::each_checkpoint_file`) rather than one query a file. Returns how many files it
/// wrote.
pub fn ensure_all(store: &Store, wanted: &[(&CheckpointRecord, PathBuf)]) -> anyhow::Result<usize> {
    let mut missing: HashMap<&str, Vec<(&CheckpointRecord, &Path)>> = HashMap::new();
    for (record, path) in wanted {
        if matches!(std::fs::read(path), Ok(bytes) if sha256_hex(&bytes) == record.sha256) {
            continue;
        }
        if let Some(cleanup) = &record.cleanup_id {
            bail!(
                "the weights of checkpoint {} were removed by `hptune clean` ({cleanup}); its record stays in {}. \
                 Train the configuration again to get weights",
                record.checkpoint_id,
                store.path().display()
            );
        }
        missing.entry(record.sha256.as_str()).or_default().push((record, path));
    }
    let shas: Vec<&str> = missing.keys().copied().collect();
    let mut written = 0;
    store.each_checkpoint_file(&shas, |sha, bytes| {
        for (_, path) in missing.remove(sha.as_str()).unwrap_or_default() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            crate::files::write_atomic(path, &bytes)?;
            written += 1;
        }
        anyhow::Ok(())
    })?;
    if let Some((record, _)) = missing.into_values().flatten().next() {
        bail!("the bytes of checkpoint {} are not in {}", record.checkpoint_id, store.path().display());
    }
    Ok(written)
}

fn from_bytes(
    store: &Store,
    record: CheckpointRecord,
    bytes: &[u8],
    file: &Path,
    device: &Device,
) -> anyhow::Result<LoadedModel> {
    let mut tensors =
        candle_core::safetensors::load_buffer(bytes, device).with_context(|| format!("reading {}", file.display()))?;
    let take = |t: &mut HashMap<String, Tensor>, k: &str| -> anyhow::Result<Vec<f32>> {
        Ok(t.remove(k).with_context(|| format!("{} has no {k}", file.display()))?.to_vec1::<f32>()?)
    };
    let scaler = Scaler { mean: take(&mut tensors, "scaler.mean")?, std: take(&mut tensors, "scaler.std")? };
    let run = store.run(&record.run_id)?;
    let config =
        ModelConfig::from_json(&run.run.config_json).map_err(|e| anyhow::anyhow!("run {}: {e}", record.run_id))?;
    // The initial values are replaced by the checkpoint's.
    let net =
        Net::new(config.shape(scaler.mean.len(), run.run.tickers.len()), &mut ChaCha8Rng::seed_from_u64(0), device)?;
    net.restore(&tensors)?;
    Ok(LoadedModel { net, scaler, config, run, checkpoint: record })
}
