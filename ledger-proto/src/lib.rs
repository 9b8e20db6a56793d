//! Generated types of the Provenance Ledger gRPC API, `package ledger.v1`
//! (`proto/ledger/v1/ledger.proto`). Only this crate, `ledger-server` and the CLI's client
//! know protobuf; conversions to core types live in `ledger-server::convert`.
#![allow(missing_docs, clippy::all)]

/// `ledger.v1`.
pub mod v1 {
    tonic::include_proto!("ledger.v1");

    /// Encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ledger_v1_descriptor");
}
