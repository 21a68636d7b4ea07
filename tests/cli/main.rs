//! Integration tests: the real hptune binary, real data, a real DuckDB file per test.

mod backtest;
mod bad_input;
mod common;
mod concurrency;
mod cv;
mod data;
mod engine;
mod extend;
mod features;
mod interop;
mod interrupt;
mod pipeline;
mod query;
mod search;
mod store;
mod train;
mod tune;

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    hptune::cli::Cli::command().debug_assert();
}
