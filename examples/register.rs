//! The smallest useful custom state machine: a replicated register holding the last value
//! written, kept in one file replaced atomically (value and applied index together). One node,
//! three writes, then it stops. `cargo run --release --example register`; the README shows the
//! state machine part, and `examples/embedded_counter.rs` is the complete tour (three nodes,
//! snapshots, leader changes, an application actor).

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use raftix::actors::start_node;
use raftix::config::NodeConfig;
use raftix::core::{Entry, EntryPayload, Index};
use raftix::state_machine::{SnapshotSource, StateMachine, StateMachineError};
use raftix::storage::DataDir;

/// The register: its value and the index it reflects, saved as `index\nvalue` in one file.
struct Register {
    file: PathBuf,
    applied: Index,
    value: Bytes,
}

impl Register {
    fn save(&self, applied: Index, value: &[u8]) -> Result<(), StateMachineError> {
        let io = |e: std::io::Error| StateMachineError::Storage(e.to_string());
        let tmp = self.file.with_extension("tmp");
        let mut bytes = format!("{applied}\n").into_bytes();
        bytes.extend_from_slice(value);
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &self.file).map_err(io) // atomic: old or new, never half
    }
}

impl StateMachine for Register {
    fn applied_index(&self) -> Index {
        self.applied
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Bytes>, StateMachineError> {
        let mut value = self.value.clone();
        for entry in entries {
            if let EntryPayload::Command(bytes) = &entry.payload {
                value = bytes.clone(); // the last write wins
            }
        }
        let last = entries.last().map_or(self.applied, |e| e.index);
        self.save(last, &value)?; // effects and applied index durable together
        (self.applied, self.value) = (last, value.clone());
        Ok(entries.iter().map(|_| value.clone()).collect())
    }

    fn snapshot(&mut self) -> Result<Box<dyn SnapshotSource>, StateMachineError> {
        Ok(Box::new(RegisterSnapshot(self.value.clone())))
    }

    fn restore(&mut self, last: Index, data: &mut dyn Read) -> Result<(), StateMachineError> {
        let mut value = Vec::new();
        data.read_to_end(&mut value)
            .map_err(|e| StateMachineError::Corrupt(e.to_string()))?;
        self.save(last, &value)?;
        (self.applied, self.value) = (last, Bytes::from(value));
        Ok(())
    }
}

/// A snapshot of the register: its value.
struct RegisterSnapshot(Bytes);

impl SnapshotSource for RegisterSnapshot {
    fn write_to(self: Box<Self>, out: &mut dyn std::io::Write) -> Result<(), StateMachineError> {
        out.write_all(&self.0)
            .map_err(|e| StateMachineError::Storage(e.to_string()))
    }
}

/// Opens the register saved in `dir` (empty at index 0 the first time).
fn open(dir: &std::path::Path) -> Result<Register, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("register");
    let (applied, value) = match std::fs::read(&file) {
        Ok(bytes) => {
            let split = bytes
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("no index line")?;
            let applied = std::str::from_utf8(&bytes[..split])?.parse()?;
            (applied, Bytes::copy_from_slice(&bytes[split + 1..]))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, Bytes::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(Register {
        file,
        applied,
        value,
    })
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let peer = "127.0.0.1:0".to_string();
    let cluster = [(1, peer.clone())].into_iter().collect();
    let mut config = NodeConfig::with_defaults(1, dir.path(), peer, "127.0.0.1:0", cluster);
    config.election_timeout_min_ms = 150;
    config.election_timeout_max_ms = 300;
    let data_dir = DataDir::prepare(&config.data_dir, &config.cluster_name, config.id)?;
    let register = open(data_dir.sm_path())?;
    let node = start_node(&config, &data_dir, register).await?;
    for value in ["first", "second", "third"] {
        // A single node elects itself within an election timeout; retry until it leads.
        let output = loop {
            match node.submit(Bytes::from(value)).await {
                Ok(done) => break done.output,
                Err(_) => actix::clock::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        println!(
            "wrote {value:?}: the register holds {:?}",
            String::from_utf8_lossy(&output)
        );
    }
    node.shutdown().await;
    Ok(())
}
