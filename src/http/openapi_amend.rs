//! What the OpenAPI document says about every route at once, added after the per-handler
//! attributes: any route refuses a query parameter it does not declare (400), and a key may
//! end in `/cas` (only POST on `/v1/kv/{key}/cas` is compare-and-swap; GET, HEAD, PUT and
//! DELETE there are the key routes, for the key `{key}/cas`).

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::OpenApi;
use utoipa::Modify;

use super::doc_vocabulary::error_response;

/// The amendments (see the module).
pub struct Amend;

impl Modify for Amend {
    fn modify(&self, doc: &mut OpenApi) {
        key_routes_under_cas(doc);
        for item in doc.paths.paths.values_mut() {
            for operation in operations(item) {
                operation
                    .responses
                    .responses
                    .entry("400".to_string())
                    .or_insert_with(|| {
                        error_response(
                            "An unknown query parameter (the message names it and the ones the \
                             route takes), or invalid input",
                        )
                    });
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.head,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Copies the key routes' GET, PUT and DELETE onto `/v1/kv/{key}/cas`, where the router serves
/// them for keys that end in `/cas`.
fn key_routes_under_cas(doc: &mut OpenApi) {
    let Some(key) = doc.paths.paths.get("/v1/kv/{key}").cloned() else {
        return;
    };
    let Some(cas) = doc.paths.paths.get_mut("/v1/kv/{key}/cas") else {
        return;
    };
    let copy = |operation: &Option<Operation>, name: &str| {
        operation.clone().map(|mut operation| {
            operation.operation_id = Some(format!("{name}_key_ending_in_cas"));
            operation.summary = Some(format!(
                "{} of the key `{{key}}/cas`: a key may end in `/cas`; only POST here is \
                 compare-and-swap",
                name.to_uppercase()
            ));
            operation
        })
    };
    cas.get = copy(&key.get, "get");
    cas.put = copy(&key.put, "put");
    cas.delete = copy(&key.delete, "delete");
}
