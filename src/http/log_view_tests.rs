//! Tests of the log views: region changes in words, and the JSON shape of commands.
use super::*;
use crate::storage::kv_regions::AckMode;

#[test]
fn region_changes_read_as_sentences_in_the_log_views() {
    let add = RegionChange::Add {
        local: "eu".into(),
        id: "us".into(),
        endpoints: vec!["http://10.0.0.9:8001".into()],
    };
    assert_eq!(
        describe_region_change(&add),
        "add region us at http://10.0.0.9:8001"
    );
    assert_eq!(
        describe_region_change(&RegionChange::SetPrimary { id: None }),
        "clear the primary region"
    );
    let ack = RegionChange::SetAck {
        mode: AckMode::Sync,
        timeout_ms: 5000,
    };
    assert_eq!(
        describe_region_change(&ack),
        "acknowledge writes sync (waiting up to 5000 ms)"
    );
}

#[test]
fn commands_keep_their_json_shape() {
    let put = KvCommandView::of(
        KvCommand::Put {
            key: "k".into(),
            value: bytes::Bytes::from_static(&[0xff, 0x00]),
        },
        None,
    );
    assert_eq!(
        serde_json::to_value(CommandView {
            command: put,
            request_id: Some("r1".into())
        })
        .ok(),
        Some(serde_json::json!({"op": "put", "key": "k", "value": null,
            "value_base64": "/wA=", "request_id": "r1"}))
    );
    let guard = GuardView::of(
        TxnGuard {
            key: "g".into(),
            expect: GuardExpect::Equals(bytes::Bytes::from_static(b"v")),
        },
        Some(1),
    );
    assert_eq!(
        serde_json::to_value(guard).ok(),
        Some(serde_json::json!({"key": "g", "equals": "v"})),
        "a value within the limit is whole and has no size"
    );
    let noop = LogEntryView::of(&Entry {
        index: 1,
        term: 1,
        payload: EntryPayload::Noop,
    });
    assert_eq!(
        serde_json::to_value(noop).ok(),
        Some(serde_json::json!({"index": 1, "term": 1, "type": "noop", "command": null}))
    );
}
