use clap::Parser;

fn main() -> std::process::ExitCode {
    hptune::keep_freed_memory();
    hptune::candle_ops_inline();
    // A closed standard output (`hptune data list | head -1`) ends the process quietly, as it
    // does other Unix tools, instead of a panic in println!.
    // SAFETY: restoring the default action of a signal before any other thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = hptune::cli::Cli::parse();
    let verbose = cli.verbose;
    let result = cli.run();
    hptune::store::release();
    if verbose {
        eprint!("{}", hptune::costs::report());
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`hptune query ... | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return std::process::ExitCode::SUCCESS;
            }
            if let Some(i) = hptune::interrupt::is_interrupted(&e) {
                eprintln!("{i}");
                return std::process::ExitCode::from(i.exit_code());
            }
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
