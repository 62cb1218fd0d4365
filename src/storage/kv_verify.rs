//! Verifying the whole key-value store: every value of every table passes its checksum.
//!
//! Every value the state machine writes to LMDB is sealed (a CRC-32 before the payload, see
//! [`super::codec`]), whatever the table, so one pass checks them all without knowing their
//! types. Keys are not covered by a checksum (see docs/security.md, "Integrity at rest").

use super::codec;
use super::error::StorageError;
use super::kv_reader::KvDbs;
use super::kv_snapshot::named_tables;

/// Reads the applied index, the dedup clock and every record of every table (one read
/// transaction, one sequential pass) and verifies each value's checksum. Returns the number of
/// records checked; the first damaged one is a [`StorageError::Corrupt`] naming its table and
/// key.
pub(crate) fn verify_store(dbs: &KvDbs) -> Result<u64, StorageError> {
    let txn = dbs.env.read_txn().map_err(|e| dbs.ctx.err(e))?;
    dbs.read_applied(&txn)?;
    dbs.read_dedup_clock(&txn)?;
    let mut checked = 0u64;
    for (table, db) in named_tables(dbs) {
        for item in db.iter(&txn).map_err(|e| dbs.ctx.err(e))? {
            let (key, value) = item.map_err(|e| dbs.ctx.err(e))?;
            codec::unseal(value).map_err(|e| {
                let key = String::from_utf8_lossy(key);
                let what = match table {
                    "data" => format!("key {key:?}"),
                    other => format!("{other} record {key:?}"),
                };
                StorageError::corrupt(format!("{what} is corrupt: {e}"))
            })?;
            checked += 1;
        }
    }
    Ok(checked)
}
