//! Micro-benchmarks (criterion): the pure core's step, the peer frame codec, and the log store's
//! durable write at several batch sizes (what group commit buys). Run with
//! `cargo bench --bench micro`; figures are recorded in docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use raftix::core::{
    CoreConfig, Entry, EntryPayload, Envelope, Event, LogId, Message, RaftCore, RaftLog, Recovered,
};
use raftix::storage::{LmdbLog, PersistOp};
use raftix::transport::{decode_frame, encode_frame, Frame};

fn entries(first: u64, n: u64) -> Vec<Entry> {
    (first..first + n)
        .map(|index| Entry {
            term: 1,
            index,
            payload: EntryPayload::Command(Bytes::from(vec![7u8; 100])),
        })
        .collect()
}

/// A follower core handling one AppendEntries of 64 entries, and the leader side: proposing a
/// command and handling the follower's acknowledgement.
fn core_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    group.throughput(Throughput::Elements(64));
    group.bench_function("follower_append_64_entries", |b| {
        b.iter_batched(
            || {
                let cfg = CoreConfig::new(2, [1, 2, 3]);
                let mut core = RaftCore::new(cfg, Recovered::default());
                core.start();
                core
            },
            |mut core| {
                let msg = Message::AppendRequest {
                    term: 1,
                    prev: LogId::default(),
                    entries: entries(1, 64),
                    commit: 0,
                };
                black_box(core.step(Event::Receive(Envelope {
                    from: 1,
                    to: 2,
                    msg,
                })))
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("leader_propose_and_ack", |b| {
        let log = RaftLog::new(LogId::default(), Vec::new());
        let hard = raftix::core::HardState {
            term: 0,
            voted_for: None,
        };
        let mut core = RaftCore::new(
            CoreConfig::new(1, [1]),
            Recovered {
                hard_state: hard,
                log,
                applied: 0,
                snapshot: None,
            },
        );
        core.start();
        let epoch = core.election_epoch();
        core.step(Event::ElectionTimeout { epoch });
        core.step(Event::Persisted { io_seq: 1 }); // the election's term, vote and no-op
        let mut seq = 1;
        b.iter(|| {
            let (_, actions) = core
                .propose(vec![Bytes::from_static(b"value")])
                .expect("leader");
            seq += 1;
            black_box(actions);
            black_box(core.step(Event::Persisted { io_seq: seq }));
        })
    });
    group.finish();
}

/// Encoding and decoding one AppendEntries frame of 64 entries of 100 bytes.
fn codec(c: &mut Criterion) {
    let frame = Frame::Raft(Envelope {
        from: 1,
        to: 2,
        msg: Message::AppendRequest {
            term: 1,
            prev: LogId::default(),
            entries: entries(1, 64),
            commit: 0,
        },
    });
    let bytes = encode_frame(&frame).expect("encode");
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_append_64x100B", |b| {
        b.iter(|| black_box(encode_frame(black_box(&frame))))
    });
    group.bench_function("decode_append_64x100B", |b| {
        b.iter(|| black_box(decode_frame(black_box(&bytes), 16 << 20)))
    });
    group.finish();
}

/// One durable write (transaction + fsync) of a batch of N single-entry persists: the cost per
/// entry falls with N, which is what group commit exploits.
fn log_store(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_store");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for batch in [1u64, 16, 256] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = LmdbLog::open(dir.path(), 1 << 30).expect("open");
        let term = raftix::core::HardState {
            term: 1,
            voted_for: None,
        };
        let first = PersistOp {
            hard_state: Some(term),
            truncate_from: None,
            entries: Vec::new(),
            ..PersistOp::default()
        };
        storage.write(&[first]).expect("hard state");
        let mut next = 1;
        group.throughput(Throughput::Elements(batch));
        group.bench_function(format!("durable_write_batch_{batch}"), |b| {
            b.iter(|| {
                let ops: Vec<PersistOp> = (0..batch)
                    .map(|i| PersistOp {
                        hard_state: None,
                        truncate_from: None,
                        entries: entries(next + i, 1),
                        ..PersistOp::default()
                    })
                    .collect();
                next += batch;
                storage.write(&ops).expect("write");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, core_step, codec, log_store);
criterion_main!(benches);
