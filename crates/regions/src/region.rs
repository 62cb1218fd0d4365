//! Region names.

/// The name of a region (`--region NAME`), checked by [`check_region_id`].
pub type RegionId = String;

/// The longest region name, in bytes.
pub const MAX_REGION_ID_BYTES: usize = 64;

/// Validates a region name: 1..=64 bytes of `[A-Za-z0-9_-]`.
///
/// The error says what is wrong, for a CLI or HTTP error message.
pub fn check_region_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("a region name must not be empty".to_string());
    }
    if id.len() > MAX_REGION_ID_BYTES {
        return Err(format!(
            "region name is {} bytes long, at most {MAX_REGION_ID_BYTES} are allowed",
            id.len()
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "region name {id:?} contains {bad:?}: only letters, digits, '-' and '_' are allowed"
        ));
    }
    if RESERVED_REGION_IDS.contains(&id) {
        return Err(format!(
            "{id:?} is reserved (it names a route under /v1/regions/): choose another region name"
        ));
    }
    Ok(())
}

/// Names a region cannot take: `/v1/regions/{id}` could not address it.
pub const RESERVED_REGION_IDS: [&str; 4] = ["status", "primary", "replication", "replicate"];

#[cfg(test)]
mod reserved_tests {
    #[test]
    fn route_names_are_refused_as_region_ids() {
        for id in super::RESERVED_REGION_IDS {
            assert!(super::check_region_id(id).is_err(), "{id}");
        }
        assert!(super::check_region_id("status-eu").is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_dash_underscore_up_to_64_bytes() {
        assert_eq!(check_region_id("eu-west_1"), Ok(()));
        assert_eq!(check_region_id("A"), Ok(()));
        assert_eq!(check_region_id(&"x".repeat(64)), Ok(()));
    }

    #[test]
    fn refuses_empty_too_long_and_other_characters() {
        assert!(check_region_id("").unwrap_err().contains("empty"));
        assert!(check_region_id(&"x".repeat(65))
            .unwrap_err()
            .contains("65 bytes"));
        for bad in ["eu west", "eu.west", "eu/west", "é", "a:b", "a\n"] {
            let error = check_region_id(bad).unwrap_err();
            assert!(error.contains("only letters"), "{bad:?}: {error}");
        }
    }
}
