//! Commands to a running `raftix up`: typed on its terminal, or sent by `raftix up --restart N`
//! from another one through a Unix socket in the data directory (`DATA_DIR/up.sock`, created
//! when `up` starts and removed when it stops).
//!
//! The one command is `restart N`: the node is stopped (SIGTERM, as `docker restart` does) and
//! started again, or started at once if it is down. A reply line says what was done.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;

use super::up::UpError;

/// The socket file of a running `up` over `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("up.sock")
}

/// What a command line asks for, or why it cannot be done; the reply is the sentence sent back.
pub(super) fn handle(line: &str, restarts: &BTreeMap<u64, mpsc::UnboundedSender<()>>) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [] => String::new(),
        ["restart", id] => match id
            .parse::<u64>()
            .ok()
            .and_then(|n| restarts.get(&n).map(|tx| (n, tx)))
        {
            Some((n, tx)) if tx.send(()).is_ok() => format!("restarting node {n}"),
            Some((n, _)) => format!("node {n} is stopping with the cluster"),
            None => format!(
                "there is no node {id}: nodes are {}",
                restarts
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        ["help"] => "commands: `restart N` (stop node N and start it again, or start it if it \
                     is down); Ctrl-C stops the cluster"
            .to_string(),
        _ => format!("unknown command `{line}`: try `restart N` or `help`"),
    }
}

/// Listens on `path` for command lines; each one is answered with a reply line. A stale socket
/// file (no `up` behind it: the data dirs' locks were free) is replaced.
pub(super) fn listen(path: &Path) -> Result<tokio::net::UnixListener, UpError> {
    let _ = std::fs::remove_file(path);
    tokio::net::UnixListener::bind(path).map_err(|source| UpError::Io {
        what: format!("cannot listen for commands on {}", path.display()),
        source,
    })
}

/// Reads one command line from `stream` and writes `reply(line)` back.
pub(super) async fn serve_one(stream: tokio::net::UnixStream, reply: impl FnOnce(&str) -> String) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    let read_line = reader.read_line(&mut line);
    if tokio::time::timeout(Duration::from_secs(5), read_line)
        .await
        .is_err()
    {
        return;
    }
    let answer = reply(line.trim());
    let _ = write.write_all(format!("{answer}\n").as_bytes()).await;
}

/// `raftix up --restart N`: asks the `up` running over `data_dir` to restart node `n`; returns
/// its reply.
pub fn request_restart(data_dir: &Path, n: u64) -> Result<String, UpError> {
    let path = socket_path(data_dir);
    let not_running = |source: std::io::Error| UpError::Io {
        what: format!(
            "no `raftix up` is running over {} (nothing answers on {}); start one with \
             `raftix up --data-dir {}`",
            data_dir.display(),
            path.display(),
            data_dir.display()
        ),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(not_running)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(not_running)?;
    writeln!(stream, "restart {n}").map_err(not_running)?;
    let mut reply = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(not_running)?;
    Ok(reply.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_answered_in_sentences() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let restarts = BTreeMap::from([(1, tx)]);
        assert_eq!(handle("restart 1", &restarts), "restarting node 1");
        assert_eq!(rx.try_recv(), Ok(()));
        assert_eq!(
            handle("restart 7", &restarts),
            "there is no node 7: nodes are 1"
        );
        assert!(handle("reboot", &restarts).starts_with("unknown command `reboot`"));
        assert!(handle("help", &restarts).contains("restart N"));
        drop(rx);
        assert_eq!(
            handle("restart 1", &restarts),
            "node 1 is stopping with the cluster"
        );
    }
}
