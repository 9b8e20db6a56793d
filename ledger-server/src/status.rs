//! The one mapping from ledger errors to gRPC status codes and log levels ([`code`]), and its
//! HTTP counterpart for the webhook receiver ([`http`]).
//!
//! Every variant is matched explicitly (no wildcard arm), so a new error variant cannot reach
//! a client without a decision about its code. Messages are short and name what is wrong,
//! never internals such as file paths or key material.

use axum::http::StatusCode;
use ledger_core::Error as Core;
use tonic::{Code, Status};

use ledger_store::Error;

/// How loudly an error is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A client's mistake: logged at debug.
    Client,
    /// Worth an operator's attention: logged at warn.
    Warn,
    /// Data loss or a broken store: logged at error.
    Error,
}

/// The gRPC code and log level of a core (record/chain) error.
pub fn core_code(e: &Core) -> (Code, Level) {
    match e {
        Core::Malformed { .. } => (Code::InvalidArgument, Level::Client),
        Core::NonCanonical { .. } => (Code::InvalidArgument, Level::Client),
        Core::TooLarge { .. } => (Code::ResourceExhausted, Level::Client),
        Core::InvalidField { .. } => (Code::InvalidArgument, Level::Client),
        Core::SecretInField { .. } => (Code::InvalidArgument, Level::Warn),
        Core::BadSignature { .. } => (Code::InvalidArgument, Level::Warn),
        Core::UnknownKey { .. } => (Code::Unauthenticated, Level::Warn),
        Core::RevokedKey { .. } => (Code::Unauthenticated, Level::Warn),
        Core::KeyNotValid { .. } => (Code::Unauthenticated, Level::Warn),
        Core::KindNotAllowed { .. } => (Code::PermissionDenied, Level::Warn),
        Core::KeyRecord { .. } => (Code::InvalidArgument, Level::Client),
        Core::StaleAuthorization { .. } => (Code::Internal, Level::Error),
        Core::ChainBroken { .. } => (Code::DataLoss, Level::Error),
    }
}

/// The gRPC code and log level of a server error.
pub fn code(e: &Error) -> (Code, Level) {
    match e {
        Error::Rejected(core) => core_code(core),
        Error::NotALedger { .. } => (Code::FailedPrecondition, Level::Error),
        Error::AlreadyExists { .. } => (Code::AlreadyExists, Level::Client),
        Error::Locked { .. } => (Code::Unavailable, Level::Error),
        Error::Storage(_) => (Code::Unavailable, Level::Error),
        Error::Tampered { .. } => (Code::DataLoss, Level::Error),
        Error::Unavailable => (Code::Unavailable, Level::Error),
        // A standby refusing an append: the client should go to the writer (retryable).
        Error::NotWriter { .. } => (Code::Unavailable, Level::Client),
        Error::NotFound(_) => (Code::NotFound, Level::Client),
        Error::InvalidArgument(_) => (Code::InvalidArgument, Level::Client),
        Error::Ambiguous { .. } => (Code::InvalidArgument, Level::Client),
    }
}

/// The HTTP status of an error met while appending a webhook delivery's records: the same
/// decisions as [`code`], in HTTP's terms (an unauthorized signer is the server's
/// misconfiguration, 403; a record the ledger refuses is the delivery's fault, 400; the ledger
/// unable to write, 503).
pub fn http(e: &Error) -> StatusCode {
    use StatusCode as S;
    match e {
        Error::Rejected(core) => match core {
            Core::Malformed { .. }
            | Core::NonCanonical { .. }
            | Core::TooLarge { .. }
            | Core::InvalidField { .. }
            | Core::SecretInField { .. }
            | Core::BadSignature { .. }
            | Core::KeyRecord { .. } => S::BAD_REQUEST,
            Core::UnknownKey { .. }
            | Core::RevokedKey { .. }
            | Core::KeyNotValid { .. }
            | Core::KindNotAllowed { .. } => S::FORBIDDEN,
            Core::StaleAuthorization { .. } | Core::ChainBroken { .. } => S::INTERNAL_SERVER_ERROR,
        },
        Error::NotALedger { .. }
        | Error::Locked { .. }
        | Error::Storage(_)
        | Error::Unavailable
        | Error::NotWriter { .. } => S::SERVICE_UNAVAILABLE,
        Error::Tampered { .. } => S::INTERNAL_SERVER_ERROR,
        Error::AlreadyExists { .. } => S::CONFLICT,
        Error::NotFound(_) => S::NOT_FOUND,
        Error::InvalidArgument(_) | Error::Ambiguous { .. } => S::BAD_REQUEST,
    }
}

/// Converts an error to a `Status`, logging it at its level.
pub fn to_status(e: &Error) -> Status {
    let (code, level) = code(e);
    let message = match e {
        // Storage details can name paths; the client only needs to know to retry later.
        Error::Storage(_) | Error::Unavailable => {
            "the ledger cannot write; retry after the operator fixes the store".to_string()
        }
        Error::NotALedger { .. } | Error::Locked { .. } => "the server has no ledger".to_string(),
        other => other.to_string(),
    };
    match level {
        Level::Client => tracing::debug!(?code, error = %e, "request refused"),
        Level::Warn => tracing::warn!(?code, error = %e, "request refused"),
        Level::Error => tracing::error!(?code, error = %e, "request failed"),
    }
    Status::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::types::{KeyId, Seq};

    #[test]
    fn codes_follow_the_contract() {
        let key = KeyId([0; 32]);
        let check = |e: Error, c: Code| assert_eq!(code(&e).0, c, "{e}");
        check(Error::Rejected(Core::UnknownKey { key }), Code::Unauthenticated);
        check(
            Error::Rejected(Core::KindNotAllowed { key, name: "ci".into(), kind: ledger_core::record::Kind::Review }),
            Code::PermissionDenied,
        );
        check(Error::Rejected(Core::BadSignature { key }), Code::InvalidArgument);
        check(Error::Rejected(Core::TooLarge { what: "record", size: 70_000, limit: 65_336 }), Code::ResourceExhausted);
        check(Error::tampered(Seq(3), "x"), Code::DataLoss);
        check(Error::Unavailable, Code::Unavailable);
        check(Error::Storage("disk".into()), Code::Unavailable);
        check(Error::InvalidArgument("#x".into()), Code::InvalidArgument);
        check(Error::NotFound("entry #9".into()), Code::NotFound);
        let web = |e: Error| http(&e);
        assert_eq!(web(Error::Rejected(Core::UnknownKey { key })), StatusCode::FORBIDDEN);
        assert_eq!(web(Error::Rejected(Core::BadSignature { key })), StatusCode::BAD_REQUEST);
        assert_eq!(web(Error::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(web(Error::tampered(Seq(1), "x")), StatusCode::INTERNAL_SERVER_ERROR);
        let s = to_status(&Error::Storage("/secret/path".into()));
        assert!(!s.message().contains("/secret/path"));
    }
}
