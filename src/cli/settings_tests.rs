//! Unit tests of the settings table: every `serve` setting is a flag, a config-file key and a
//! `RAFTIX_*` variable, and the switches and `cluster` take each of their forms.

use super::tests::{serve_args, REQUIRED};
use super::*;

/// The config-file keys `PartialConfig` accepts: the field list its derived `Deserialize`
/// hands to the deserializer.
fn config_file_keys() -> Vec<&'static str> {
    struct Fields(Vec<&'static str>);
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = serde::de::value::Error;
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields.to_vec();
            Err(serde::de::Error::custom("only the field list was wanted"))
        }
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields = Fields(Vec::new());
    let _ = <crate::config::PartialConfig as serde::Deserialize>::deserialize(&mut fields);
    fields.0
}

#[test]
fn every_serve_setting_is_a_flag_a_config_file_key_and_a_raftix_variable() {
    use clap::CommandFactory;
    let keys = config_file_keys();
    assert!(keys.len() > 40, "field list not captured: {keys:?}");
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let not_settings = [
        "config",
        "join",
        "learner",
        "advertise_peer",
        "print_config",
        "help",
    ];
    let mut seen = Vec::new();
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let expected_env = format!("RAFTIX_{}", long.replace('-', "_").to_ascii_uppercase());
        if id == "help" || id == "print_config" {
            continue;
        }
        assert_eq!(
            env.as_deref(),
            Some(expected_env.as_str()),
            "--{long}: its variable"
        );
        if not_settings.contains(&id) {
            continue;
        }
        assert!(
            keys.contains(&id),
            "--{long} ({id}) is not a config-file key"
        );
        seen.push(id.to_string());
    }
    // And the other way round: every config-file key but the file-only `tokens` is a flag.
    for key in keys {
        assert!(
            key == "tokens" || seen.iter().any(|s| s == key),
            "config-file key {key} has no flag"
        );
    }
}

#[test]
fn switches_and_the_cluster_take_their_file_and_flag_forms() {
    let mut args = REQUIRED.to_vec();
    args.extend(["--no-pre-vote", "--redirect-writes", "--learners", "3"]);
    let c = serve_args(&args).into_config().unwrap();
    assert!(!c.pre_vote && c.check_quorum && c.redirect_writes);
    assert_eq!(c.learners.iter().copied().collect::<Vec<_>>(), [3]);
    let mut explicit = REQUIRED.to_vec();
    explicit.extend(["--no-pre-vote=false", "--redirect-writes=false"]);
    let c = serve_args(&explicit).into_config().unwrap();
    assert!(c.pre_vote && !c.redirect_writes);
    // In the file, `cluster` is the flag's string or a table.
    let as_string = crate::config::PartialConfig::from_toml_str(
        "cluster = \"1=127.0.0.1:7001, 2=127.0.0.1:7002\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    let as_table = crate::config::PartialConfig::from_toml_str(
        "[cluster]\n1 = \"127.0.0.1:7001\"\n2 = \"127.0.0.1:7002\"\n",
        std::path::Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(as_string.cluster, as_table.cluster);
    assert_eq!(as_string.cluster.map(|c| c.len()), Some(2));
}
