//! `raftix certs`: make a test CA, node certificates and client certificates (see
//! [`crate::tls::certs`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{EXIT_FAILURE, EXIT_USAGE};
use crate::tls::certs::{self, CertsRequest};
use crate::tls::TlsError;

/// Flags of `raftix certs`.
#[derive(Clone, Debug, Args)]
pub struct CertsArgs {
    /// Directory to write to (created if missing). A CA already there (ca.pem, ca-key.pem) is
    /// reused, so nodes can be added to a running cluster later.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Node ids to make certificates for (node-ID.pem, node-ID-key.pem), each valid for
    /// --hosts and naming its node as the SAN URI raftix://node/ID.
    #[arg(long, value_name = "ID[,ID..]", value_delimiter = ',')]
    pub nodes: Vec<u64>,
    /// Host names and IP addresses the node certificates are valid for (the hosts of their
    /// peer and HTTP addresses).
    #[arg(
        long,
        value_name = "HOST[,HOST..]",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1"
    )]
    pub hosts: Vec<String>,
    /// Client certificates to make (client-NAME.pem, client-NAME-key.pem), for gateways
    /// that ask for client certificates.
    #[arg(long, value_name = "NAME[,NAME..]", value_delimiter = ',')]
    pub clients: Vec<String>,
    /// Validity of node and client certificates, in days (a new CA lasts at least 10 years).
    #[arg(long, value_name = "N", default_value_t = 365)]
    pub days: u32,
    /// Overwrite existing node and client files (the CA is always reused).
    #[arg(long)]
    pub force: bool,
}

/// Runs `raftix certs`: prints each file written; exit 2 for bad input or files that exist
/// already, 1 when writing fails.
pub fn run(args: CertsArgs) -> ExitCode {
    let request = CertsRequest {
        out: args.out.clone(),
        nodes: args.nodes,
        hosts: args
            .hosts
            .into_iter()
            .map(|h| h.trim().to_owned())
            .collect(),
        clients: args
            .clients
            .into_iter()
            .map(|c| c.trim().to_owned())
            .collect(),
        days: args.days,
        force: args.force,
    };
    match certs::generate(&request) {
        Ok(report) => {
            if !report.ca_created {
                println!("reusing the CA in {}", args.out.display());
            }
            for path in &report.written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            let code = match err {
                TlsError::Invalid(_) | TlsError::Exists { .. } => EXIT_USAGE,
                _ => EXIT_FAILURE,
            };
            ExitCode::from(code)
        }
    }
}
