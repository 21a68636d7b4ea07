//! hptune: tune, validate, train and backtest next-day direction models on market data, with
//! every stage recorded in one DuckDB file.
//!
//! Dependencies point one way: `cli` -> stages -> {`data`, ...} and `store`. The numeric and data
//! modules never touch the database; `store` owns every SQL string outside `sql/` and
//! `migrations/`.

pub mod backtest;
pub mod baselines;
pub mod checkpoint;
pub mod cli;
pub mod costs;
pub mod cv;
pub mod data;
pub mod features;
pub(crate) mod files;
pub(crate) mod ids;
pub mod interrupt;
pub(crate) mod layout;
pub mod model;
pub mod outcomes;
pub(crate) mod output;
pub(crate) mod plot;
pub(crate) mod progress;
pub(crate) mod provenance;
pub mod search;
pub(crate) mod split;
pub mod stages;
pub mod states;
pub(crate) mod stats;
pub mod store;
pub mod validity;
pub(crate) mod workers;

/// The hptune version, recorded with everything it writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Leaves the CPU threads to rayon, on which hptune's kernels split their batches. candle's own
/// pool for elementwise ops (workers that spin 25,000 times after each op) took a core from them:
/// an epoch of a 3-layer LSTM of 112 units on 2 threads took 13.2-14.6 s with it, 9.1-9.7 s with
/// candle's ops on the calling thread. A `CANDLE_NUM_THREADS` the user set is kept.
pub fn candle_ops_inline() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Keeps freed memory in the process instead of returning it to the system at once. Training
/// allocates and frees tensors of a few hundred kB every step; with glibc's defaults each one is
/// a fresh mmap that the kernel must zero on first touch, which took a third of training time
/// (`RAYON_NUM_THREADS=1 cargo bench --bench train_speed`: mlp 2.6k -> 7.7k samples/s).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
