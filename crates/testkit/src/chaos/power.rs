//! Power-loss disks: each node's data dir is a lazy filesystem (`raftix-lazyfs`) whose daemon
//! holds every unsynced write in memory. Cutting a node's power kills the node, then kills the
//! daemon (its unsynced writes die with it) and detaches the mount; the node's next start
//! mounts a fresh daemon over what survived on the backing directory (`disk-n<id>` in the run
//! dir, which is where a kept run's node data is).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use raftix_lazyfs::LazyMount;

use super::net::NodeId;

/// The lazy filesystems of a cluster's nodes.
#[derive(Debug)]
pub struct PowerDisks {
    mounts: BTreeMap<NodeId, LazyMount>,
}

impl PowerDisks {
    /// Mounts a lazy filesystem on each `(id, data dir)`, served by `daemon` (the program and
    /// its leading arguments, e.g. `raftix lazyfs`), backed by `disk-n<id>` under `run_dir`.
    pub fn mount(
        daemon: &[OsString],
        run_dir: &Path,
        nodes: &[(NodeId, &Path)],
    ) -> Result<PowerDisks, String> {
        let mut mounts = BTreeMap::new();
        for &(id, data_dir) in nodes {
            let backing = run_dir.join(format!("disk-n{id}"));
            let log = run_dir.join(format!("lazyfs-n{id}.log"));
            let mount = LazyMount::start(daemon.to_vec(), &backing, data_dir, Some(log))
                .map_err(|e| format!("the power-loss disk of node {id}: {e}"))?;
            mounts.insert(id, mount);
        }
        Ok(PowerDisks { mounts })
    }

    /// Makes sure node `id`'s disk is mounted (after a cut, a fresh daemon over what survived).
    pub fn ensure_mounted(&mut self, id: NodeId) -> Result<(), String> {
        match self.mounts.get_mut(&id) {
            Some(mount) => mount
                .mount()
                .map_err(|e| format!("remounting the disk of node {id}: {e}")),
            None => Ok(()),
        }
    }

    /// Cuts the power of node `id`'s disk: its unsynced writes are lost. The node must be
    /// killed first.
    pub fn cut(&mut self, id: NodeId) -> Result<(), String> {
        match self.mounts.get_mut(&id) {
            Some(mount) => mount
                .cut()
                .map_err(|e| format!("cutting the power of node {id}'s disk: {e}")),
            None => Err(format!("node {id} has no power-loss disk")),
        }
    }
}
