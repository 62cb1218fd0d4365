//! `raftix-lazyfs BACKING MOUNTPOINT`: serves the lazy filesystem until killed (a power cut) or
//! unmounted.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: raftix-lazyfs BACKING_DIR MOUNTPOINT");
        return ExitCode::from(2);
    };
    match raftix_lazyfs::serve(backing, mountpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "raftix-lazyfs could not serve {} on {}: {e}",
                backing.display(),
                mountpoint.display()
            );
            ExitCode::FAILURE
        }
    }
}
