//! Replicated API tokens in the key-value state machine: creation and revocation as log
//! commands, lookup by the secret's hash, the bootstrap rule, and their place in snapshots
//! (carried by version 2, absent from version 1, whose snapshots still restore).

use crate::fixtures::{records, reseal};
use raftix::config::TokenRole;
use raftix::core::{Entry, EntryPayload};
use raftix::state_machine::{StateMachine, StateMachineError};
use raftix::storage::{
    KvCommand, KvOutput, KvReader, KvRequest, KvResponse, KvStateMachine, StoredToken,
    KV_SNAPSHOT_MIN_VERSION, KV_SNAPSHOT_VERSION,
};

const MAP: usize = 64 << 20;

fn open(dir: &std::path::Path) -> KvStateMachine {
    KvStateMachine::open(dir, MAP).unwrap()
}

fn token(secret: u8, role: TokenRole, prefix: Option<&str>) -> StoredToken {
    StoredToken {
        role,
        prefix: prefix.map(Into::into),
        secret_sha256: [secret; 32],
        created_at_ms: 1_000,
        expires_at_ms: None,
    }
}

fn entry(index: u64, command: KvCommand) -> Entry {
    let request = KvRequest {
        request_id: None,
        issued_at_ms: 1,
        command,
    };
    Entry {
        term: 1,
        index,
        payload: EntryPayload::Command(request.encode()),
    }
}

fn put(index: u64, name: &str, t: StoredToken, bootstrap: bool) -> Entry {
    entry(
        index,
        KvCommand::TokenPut {
            name: name.into(),
            token: t,
            bootstrap,
        },
    )
}

fn apply(sm: &mut KvStateMachine, entries: &[Entry]) -> Vec<KvOutput> {
    sm.apply(entries)
        .unwrap()
        .iter()
        .map(|o| KvResponse::decode(o).unwrap().output)
        .collect()
}

/// A fresh store (in a temp dir, returned with it) whose only token is the admin token `name`,
/// bootstrapped at index 1 with the secret hash `[secret; 32]`.
fn store_with_admin_token(name: &str, secret: u8) -> (tempfile::TempDir, KvStateMachine) {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    apply(
        &mut sm,
        &[put(1, name, token(secret, TokenRole::Admin, None), true)],
    );
    (dir, sm)
}

/// The names of the tokens `reader` holds, in its order.
fn token_names(reader: &KvReader) -> Vec<String> {
    reader
        .tokens()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn snapshot_bytes(sm: &mut KvStateMachine) -> Vec<u8> {
    let mut out = Vec::new();
    sm.snapshot().unwrap().write_to(&mut out).unwrap();
    out
}

/// `bytes` with the header's version replaced by `version`.
fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
    let mut forged = bytes.to_vec();
    let (at, _) = records(bytes)[0];
    forged[at + 8 + 1 + 8..at + 8 + 1 + 12].copy_from_slice(&version.to_le_bytes());
    reseal(&mut forged, at);
    forged
}

#[test]
fn tokens_are_created_looked_up_by_hash_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    assert!(!reader.has_tokens().unwrap());
    let outputs = apply(
        &mut sm,
        &[
            put(1, "root", token(1, TokenRole::Admin, None), true),
            // A second bootstrap creation: access control is on by now.
            put(2, "late", token(2, TokenRole::Admin, None), true),
            put(3, "app", token(3, TokenRole::Write, Some("app/")), false),
            // The name is taken: nothing changes, not even the secret.
            put(4, "app", token(4, TokenRole::Read, None), false),
            // Another token with the same secret hash.
            put(5, "twin", token(3, TokenRole::Read, None), false),
            // Invalid: an admin token with a prefix, a name with a space.
            put(6, "bad", token(6, TokenRole::Admin, Some("x/")), false),
            put(7, "two words", token(7, TokenRole::Read, None), false),
        ],
    );
    assert_eq!(outputs[0], KvOutput::TokenPut { created: true });
    assert!(
        matches!(&outputs[1], KvOutput::Rejected { reason } if reason.contains("turned on")),
        "{:?}",
        outputs[1]
    );
    assert_eq!(outputs[2], KvOutput::TokenPut { created: true });
    assert_eq!(outputs[3], KvOutput::TokenPut { created: false });
    for out in &outputs[4..] {
        assert!(matches!(out, KvOutput::Rejected { .. }), "{out:?}");
    }
    assert!(reader.has_tokens().unwrap());
    let names = token_names(&reader);
    assert_eq!(names, ["app", "root"]);
    let (name, found) = reader.token_by_secret_hash(&[3; 32]).unwrap().unwrap();
    assert_eq!(name, "app");
    assert_eq!(found, token(3, TokenRole::Write, Some("app/")));
    assert!(reader.token_by_secret_hash(&[4; 32]).unwrap().is_none());
    assert!(reader.token_by_secret_hash(&[2; 32]).unwrap().is_none());

    let outputs = apply(
        &mut sm,
        &[
            entry(8, KvCommand::TokenDelete { name: "app".into() }),
            entry(9, KvCommand::TokenDelete { name: "app".into() }),
        ],
    );
    assert_eq!(
        outputs,
        [
            KvOutput::TokenDelete { existed: true },
            KvOutput::TokenDelete { existed: false }
        ]
    );
    assert!(reader.token_by_secret_hash(&[3; 32]).unwrap().is_none());
    // The name is free again, with a new secret.
    let outputs = apply(
        &mut sm,
        &[put(10, "app", token(10, TokenRole::Read, None), false)],
    );
    assert_eq!(outputs[0], KvOutput::TokenPut { created: true });
    assert_eq!(
        reader.token_by_secret_hash(&[10; 32]).unwrap().unwrap().0,
        "app"
    );
}

#[test]
fn snapshots_carry_tokens_and_restores_rebuild_the_lookup() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    apply(
        &mut src,
        &[
            put(1, "root", token(1, TokenRole::Admin, None), true),
            put(2, "ci", token(2, TokenRole::Write, Some("ci/")), false),
        ],
    );
    let bytes = snapshot_bytes(&mut src);

    let (_dst_dir, mut dst) = store_with_admin_token("stale", 9);
    dst.restore(2, &mut &bytes[..]).unwrap();
    let reader = dst.reader();
    let names = token_names(&reader);
    assert_eq!(names, ["ci", "root"], "the restore replaced the tokens");
    assert_eq!(
        reader.token_by_secret_hash(&[2; 32]).unwrap().unwrap().0,
        "ci"
    );
    assert!(
        reader.token_by_secret_hash(&[9; 32]).unwrap().is_none(),
        "the index by secret was rebuilt, not kept"
    );
    // Revocation after the restore works (the index is consistent).
    let outputs = apply(
        &mut dst,
        &[entry(3, KvCommand::TokenDelete { name: "ci".into() })],
    );
    assert_eq!(outputs[0], KvOutput::TokenDelete { existed: true });
}

#[test]
fn whether_tokens_exist_is_known_in_memory_after_every_apply_restore_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = open(dir.path());
    let reader = sm.reader();
    assert!(!reader.tokens_exist(), "a fresh store has no token");
    apply(
        &mut sm,
        &[put(1, "root", token(1, TokenRole::Admin, None), true)],
    );
    assert!(
        reader.tokens_exist(),
        "a reader taken before the apply sees it"
    );
    let with_token = snapshot_bytes(&mut sm);
    apply(
        &mut sm,
        &[entry(
            2,
            KvCommand::TokenDelete {
                name: "root".into(),
            },
        )],
    );
    assert!(
        !reader.tokens_exist(),
        "revoking the last token turns it off"
    );
    sm.restore(5, &mut &with_token[..]).unwrap();
    assert!(
        reader.tokens_exist(),
        "a restored snapshot with a token turns it on"
    );
    drop(reader);
    drop(sm);
    assert!(
        open(dir.path()).reader().tokens_exist(),
        "read back when the store opens"
    );
}

/// The version in a snapshot stream's header.
fn version_of(bytes: &[u8]) -> u32 {
    let (at, _) = records(bytes)[0];
    u32::from_le_bytes(bytes[at + 8 + 1 + 8..at + 8 + 1 + 12].try_into().unwrap())
}

#[test]
fn version_1_snapshots_restore_without_tokens_and_cannot_carry_them() {
    assert_eq!((KV_SNAPSHOT_MIN_VERSION, KV_SNAPSHOT_VERSION), (1, 3));
    // A store without tokens is written as version 1, as before tokens existed.
    let dir = tempfile::tempdir().unwrap();
    let mut plain = open(dir.path());
    apply(
        &mut plain,
        &[entry(
            1,
            KvCommand::Put {
                key: "k".into(),
                value: "v".into(),
            },
        )],
    );
    let v1 = snapshot_bytes(&mut plain);
    assert_eq!(version_of(&v1), 1);

    let (_dst_dir, mut dst) = store_with_admin_token("old", 5);
    dst.restore(1, &mut &v1[..]).unwrap();
    assert_eq!(dst.reader().get("k").unwrap(), Some("v".into()));
    assert!(!dst.reader().has_tokens().unwrap());
    assert!(dst
        .reader()
        .token_by_secret_hash(&[5; 32])
        .unwrap()
        .is_none());

    // A "version 1" stream holding a token record is refused, and changes nothing.
    let src_dir = tempfile::tempdir().unwrap();
    let mut src = open(src_dir.path());
    apply(
        &mut src,
        &[put(1, "root", token(1, TokenRole::Admin, None), true)],
    );
    let with_tokens = snapshot_bytes(&mut src);
    assert_eq!(version_of(&with_tokens), 2, "tokens need version 2");
    let forged = with_version(&with_tokens, 1);
    match dst.restore(1, &mut &forged[..]) {
        Err(StateMachineError::Corrupt(what)) => {
            assert!(what.contains("tokens record"), "{what}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!dst.reader().has_tokens().unwrap());
    assert_eq!(dst.reader().get("k").unwrap(), Some("v".into()));
}
