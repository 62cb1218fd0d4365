//! Property tests (proptest) of the decoders that read untrusted bytes: the peer frame decoder
//! ([`decode_frame`]), sealed storage records, snapshot files and key-value snapshot streams.
//!
//! For each: arbitrary bytes never make it panic; valid inputs round-trip; a valid input with a
//! flipped bit, cut short or extended is refused (or, for a frame whose encoding has no
//! checksum, decodes to something other than the original, never to the original). proptest
//! prints the minimal failing input and records its seed in `tests/*.proptest-regressions`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use raftix::core::{AppendOutcome, Entry, EntryPayload, Envelope, LogId, Membership, Message};
use raftix::state_machine::StateMachine;
use raftix::storage::codec::{self, CodecError};
use raftix::storage::{read_snapshot_info, KvStateMachine, SnapshotWriter, StorageError};
use raftix::transport::{
    decode_frame, encode_frame, Frame, FrameError, SnapshotBody, SnapshotFrame, PROTOCOL_VERSION,
};

/// The frame size limit the decoder is called with (as `--max-frame-bytes` would set it).
const MAX_FRAME: usize = 1 << 20;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, short.
    vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

fn bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn log_id() -> impl Strategy<Value = LogId> {
    (any::<u64>(), any::<u64>()).prop_map(|(term, index)| LogId::new(term, index))
}

fn membership() -> impl Strategy<Value = Membership> {
    (
        btree_set(any::<u64>(), 0..4),
        btree_set(any::<u64>(), 0..3),
        btree_map(any::<u64>(), text(), 0..4),
        btree_set(any::<u64>(), 0..3),
    )
        .prop_map(
            |(voters, learners, addrs, removed): (
                BTreeSet<u64>,
                BTreeSet<u64>,
                BTreeMap<u64, String>,
                BTreeSet<u64>,
            )| {
                Membership {
                    voters,
                    learners,
                    addrs,
                    removed,
                }
            },
        )
}

fn entry() -> impl Strategy<Value = Entry> {
    let payload = prop_oneof![
        Just(EntryPayload::Noop),
        bytes().prop_map(EntryPayload::Command),
        membership().prop_map(EntryPayload::Config),
    ];
    (any::<u64>(), any::<u64>(), payload).prop_map(|(term, index, payload)| Entry {
        term,
        index,
        payload,
    })
}

fn message() -> impl Strategy<Value = Message> {
    let t = any::<u64>;
    prop_oneof![
        (t(), log_id(), any::<bool>(), any::<bool>()).prop_map(
            |(term, last_log, pre_vote, transfer)| Message::VoteRequest {
                term,
                last_log,
                pre_vote,
                transfer,
            }
        ),
        t().prop_map(|term| Message::TimeoutNow { term }),
        (t(), any::<bool>(), any::<bool>()).prop_map(|(term, granted, pre_vote)| {
            Message::VoteResponse {
                term,
                granted,
                pre_vote,
            }
        }),
        (t(), log_id(), vec(entry(), 0..5), t()).prop_map(|(term, prev, entries, commit)| {
            Message::AppendRequest {
                term,
                prev,
                entries,
                commit,
            }
        }),
        (t(), t()).prop_map(|(term, match_index)| Message::AppendResponse {
            term,
            outcome: AppendOutcome::Success { match_index },
        }),
        (t(), t(), log_id()).prop_map(|(term, rejected_prev, hint)| Message::AppendResponse {
            term,
            outcome: AppendOutcome::Conflict {
                rejected_prev,
                hint,
            },
        }),
        (t(), t(), t(), t()).prop_map(|(term, commit, ctx, leader_commit)| {
            Message::Heartbeat {
                term,
                commit,
                ctx,
                leader_commit,
            }
        }),
        (t(), t(), t()).prop_map(|(term, ctx, applied)| Message::HeartbeatResponse {
            term,
            ctx,
            applied,
        }),
        (t(), vec(t(), 0..5)).prop_map(|(term, ids)| Message::ReadIndexRequest { term, ids }),
        (t(), vec(t(), 0..5), any::<Option<u64>>())
            .prop_map(|(term, ids, index)| { Message::ReadIndexResponse { term, ids, index } }),
    ]
}

fn snapshot_body() -> impl Strategy<Value = SnapshotBody> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            bytes(),
            any::<u32>()
        )
            .prop_map(
                |(total, file_crc, offset, data, chunk_crc)| SnapshotBody::Chunk {
                    total,
                    file_crc,
                    offset,
                    data,
                    chunk_crc,
                }
            ),
        (any::<u64>(), any::<bool>(), proptest::option::of(text())).prop_map(
            |(next_offset, done, error)| SnapshotBody::Ack {
                next_offset,
                done,
                error,
            }
        ),
    ]
}

/// Every kind of valid frame, with arbitrary field values.
fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            text(),
            any::<u64>(),
            any::<u64>(),
            text(),
            text(),
            proptest::option::of(any::<[u8; 32]>())
        )
            .prop_map(
                |(cluster, from, to, http_addr, peer_addr, nonce)| Frame::Hello {
                    cluster,
                    from,
                    to,
                    http_addr,
                    peer_addr,
                    nonce,
                }
            ),
        (any::<[u8; 32]>(), any::<[u8; 32]>())
            .prop_map(|(nonce, proof)| Frame::Challenge { nonce, proof }),
        any::<[u8; 32]>().prop_map(|proof| Frame::Auth { proof }),
        (any::<u64>(), any::<u64>(), message()).prop_map(|(from, to, msg)| Frame::Raft(Envelope {
            from,
            to,
            msg
        })),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            log_id(),
            snapshot_body()
        )
            .prop_map(
                |(from, to, term, last, body)| Frame::Snapshot(SnapshotFrame {
                    from,
                    to,
                    term,
                    last,
                    body,
                })
            ),
    ]
}

/// What every successful decode must satisfy: the frame's own encoding decodes to it again and
/// is no longer than the input (the encoder writes the shortest form).
fn check_decoded(input: &[u8], decoded: &Frame) -> Result<(), TestCaseError> {
    let canonical = encode_frame(decoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(canonical.len() <= input.len());
    let again = decode_frame(&canonical, MAX_FRAME);
    prop_assert!(matches!(&again, Ok(f) if f == decoded), "{again:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_frame_decoder(input in vec(any::<u8>(), 0..512)) {
        if let Ok(frame) = decode_frame(&input, MAX_FRAME) {
            check_decoded(&input, &frame)?;
        }
    }

    /// Past the version byte, so the bincode decoder itself sees the arbitrary bytes.
    #[test]
    fn arbitrary_bodies_never_panic_the_frame_decoder(body in vec(any::<u8>(), 0..512)) {
        let mut input = vec![PROTOCOL_VERSION];
        input.extend_from_slice(&body);
        if let Ok(frame) = decode_frame(&input, MAX_FRAME) {
            check_decoded(&input, &frame)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn valid_frames_round_trip(frame in frame()) {
        let bytes = encode_frame(&frame).expect("encode");
        prop_assert_eq!(bytes[0], PROTOCOL_VERSION);
        prop_assert_eq!(decode_frame(&bytes, MAX_FRAME).expect("decode"), frame);
        // Over the size limit: refused before decoding.
        let too_large = decode_frame(&bytes, bytes.len() - 1);
        prop_assert!(matches!(too_large, Err(FrameError::TooLarge { .. })), "{too_large:?}");
    }

    /// A flipped bit is refused, or decodes to another frame: never to the original.
    #[test]
    fn a_flipped_bit_never_yields_the_original_frame(
        frame in frame(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut bytes = encode_frame(&frame).expect("encode").to_vec();
        let at = at.index(bytes.len());
        bytes[at] ^= 1 << bit;
        match decode_frame(&bytes, MAX_FRAME) {
            Ok(decoded) => {
                prop_assert_ne!(&decoded, &frame);
                check_decoded(&bytes, &decoded)?;
            }
            Err(FrameError::WrongVersion { .. }) => prop_assert_eq!(at, 0),
            Err(_) => {}
        }
    }

    #[test]
    fn a_cut_short_frame_is_refused(frame in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = encode_frame(&frame).expect("encode");
        let len = cut.index(bytes.len());
        let decoded = decode_frame(&bytes[..len], MAX_FRAME);
        prop_assert!(decoded.is_err(), "prefix {len} of {}: {decoded:?}", bytes.len());
    }

    #[test]
    fn an_extended_frame_is_refused(frame in frame(), extra in vec(any::<u8>(), 1..32)) {
        let mut bytes = encode_frame(&frame).expect("encode").to_vec();
        bytes.extend_from_slice(&extra);
        let decoded = decode_frame(&bytes, MAX_FRAME);
        prop_assert!(
            matches!(decoded, Err(FrameError::TrailingBytes { extra: n }) if n == extra.len()),
            "{decoded:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_record_decoders(input in vec(any::<u8>(), 0..256)) {
        let _ = codec::unseal(&input);
        let _ = codec::decode_sealed::<Entry>(&input);
        let _ = codec::decode::<Entry>(&input);
        let _ = codec::decode_limited::<Vec<Entry>>(&input, 128);
    }

    /// CRC-32 detects every single-bit error: a sealed log entry with any bit flipped is refused.
    #[test]
    fn a_sealed_entry_with_a_flipped_bit_is_refused(
        entry in entry(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut sealed = codec::encode_sealed(&entry).expect("seal");
        prop_assert_eq!(codec::decode_sealed::<Entry>(&sealed).expect("unseal"), entry);
        let at = at.index(sealed.len());
        sealed[at] ^= 1 << bit;
        let decoded = codec::decode_sealed::<Entry>(&sealed);
        prop_assert!(
            matches!(decoded, Err(CodecError::ChecksumMismatch { .. })),
            "{decoded:?}"
        );
    }
}

/// Writes a snapshot file of `meta` with `payload` in `dir`; returns its path and bytes.
fn snapshot_file(
    dir: &std::path::Path,
    last: LogId,
    membership: Membership,
    payload: &[u8],
) -> (std::path::PathBuf, Vec<u8>) {
    let meta = raftix::core::SnapshotMeta { last, membership };
    let mut writer = SnapshotWriter::create(dir, &meta).expect("create snapshot");
    writer.write_payload(payload).expect("payload");
    let info = writer.finish().expect("finish snapshot");
    let bytes = std::fs::read(&info.path).expect("read snapshot");
    (info.path, bytes)
}

fn corrupt_what<T: std::fmt::Debug>(result: Result<T, StorageError>) -> Result<String, String> {
    match result {
        Err(StorageError::Corrupt { what }) => Ok(what),
        other => Err(format!("expected Corrupt, got {other:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_snapshot_files_are_refused_without_panic(
        input in vec(any::<u8>(), 0..512),
        with_magic in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snap-x.snap");
        let mut bytes = Vec::new();
        if with_magic {
            bytes.extend_from_slice(raftix::storage::SNAPSHOT_MAGIC);
        }
        bytes.extend_from_slice(&input);
        std::fs::write(&path, &bytes).expect("write");
        let what = corrupt_what(read_snapshot_info(&path)).map_err(TestCaseError::fail)?;
        prop_assert!(what.contains(&path.display().to_string()), "{what}");
    }

    /// Every single-bit flip and every truncation of a valid snapshot file is found, naming
    /// the file.
    #[test]
    fn a_damaged_snapshot_file_is_refused(
        last in log_id(),
        membership in membership(),
        payload in vec(any::<u8>(), 0..2048),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, good) = snapshot_file(dir.path(), last, membership, &payload);
        prop_assert_eq!(read_snapshot_info(&path).expect("valid").meta.last, last);

        let mut flipped = good.clone();
        let at = at.index(flipped.len());
        flipped[at] ^= 1 << bit;
        std::fs::write(&path, &flipped).expect("write");
        let what = corrupt_what(read_snapshot_info(&path)).map_err(TestCaseError::fail)?;
        prop_assert!(what.contains(&path.display().to_string()), "{what}");

        let len = cut.index(good.len());
        std::fs::write(&path, &good[..len]).expect("write");
        corrupt_what(read_snapshot_info(&path)).map_err(TestCaseError::fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The key-value snapshot stream a follower restores: garbage is refused, a valid stream
    /// with one bit flipped is refused, and a refused restore leaves the store as it was.
    #[test]
    fn kv_snapshot_streams_are_checked_before_anything_changes(
        garbage in vec(any::<u8>(), 0..512),
        values in btree_map("[a-z]{1,8}", vec(any::<u8>(), 0..32), 1..8),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = KvStateMachine::open(&dir.path().join("src"), 1 << 24).expect("open");
        let entries: Vec<Entry> = values
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                term: 1,
                index: i as u64 + 1,
                payload: EntryPayload::Command(
                    raftix::storage::KvCommand::Put {
                        key: k.clone(),
                        value: Bytes::from(v.clone()),
                    }
                    .encode(),
                ),
            })
            .collect();
        source.apply(&entries).expect("apply");
        let mut stream = Vec::new();
        source.snapshot().expect("snapshot").write_to(&mut stream).expect("write");
        let last = entries.len() as u64;

        let mut target = KvStateMachine::open(&dir.path().join("dst"), 1 << 24).expect("open");
        target.apply(&entries[..1]).expect("apply");
        let before = target.reader().scan("", None, 100).expect("scan");

        prop_assert!(target.restore(last, &mut &garbage[..]).is_err());
        let mut flipped = stream.clone();
        let at = at.index(flipped.len());
        flipped[at] ^= 1 << bit;
        prop_assert!(target.restore(last, &mut &flipped[..]).is_err());
        prop_assert_eq!(target.applied_index(), 1);
        prop_assert_eq!(target.reader().scan("", None, 100).expect("scan"), before);

        target.restore(last, &mut &stream[..]).expect("restore the intact stream");
        prop_assert_eq!(target.applied_index(), last);
        prop_assert_eq!(target.verify_all().expect("verify"), values.len() as u64);
    }
}
