//! TLS to PostgreSQL. `sslmode=require` in the URL: the connection is encrypted with rustls and
//! the server's certificate verified, against the CA certificates in `sslrootcert=FILE` (PEM)
//! when the URL gives one, else the system's roots; the host name must match the
//! certificate. (Stricter than libpq's `require`, which encrypts without verifying: an
//! unverified certificate does not keep a man in the middle out.) `disable` and `prefer`, the
//! default, connect without TLS, as a unix socket or a private network is.

use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// `url` without its `sslrootcert` parameter (tokio-postgres refuses parameters it does not
/// know), and that parameter's value.
pub(super) fn split_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut root = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(v) => {
                root = Some(v.to_string());
                false
            }
            None => true,
        })
        .collect();
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    (url, root)
}

/// The TLS connector `config` asks for: `None` unless its `sslmode` is `require`.
///
/// # Errors
/// [`Error::Storage`] if `root_cert` cannot be read or holds no certificate, or the system's
/// roots cannot be loaded.
pub(super) fn connector(config: &tokio_postgres::Config, root_cert: Option<&str>) -> Result<Option<MakeRustlsConnect>> {
    if config.get_ssl_mode() != SslMode::Require {
        if root_cert.is_some() {
            return Err(Error::Storage(
                "postgres: sslrootcert is given but sslmode is not `require`: add sslmode=require to the URL".into(),
            ));
        }
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| Error::Storage(format!("postgres: sslrootcert {path}: {e}")))?;
            let certs = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Storage(format!("postgres: sslrootcert {path}: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Storage(format!("postgres: sslrootcert {path} holds no PEM certificate")));
            }
            for c in certs {
                roots.add(c).map_err(|e| {
                    Error::Storage(format!("postgres: sslrootcert {path}: a certificate is unusable: {e}"))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // A system root rustls cannot parse is skipped, as every TLS client does.
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(Error::Storage(
                    "postgres: sslmode=require but no system CA certificates were found: give sslrootcert=FILE".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Storage(format!("postgres: TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_parameter_is_taken_out_of_the_url() {
        assert_eq!(split_root_cert("postgres://h/db"), ("postgres://h/db".into(), None));
        assert_eq!(
            split_root_cert("postgres://h/db?sslmode=require&sslrootcert=/etc/ca.pem"),
            ("postgres://h/db?sslmode=require".into(), Some("/etc/ca.pem".into()))
        );
        assert_eq!(
            split_root_cert("postgres://h/db?sslrootcert=ca.pem&sslmode=require&application_name=x"),
            ("postgres://h/db?sslmode=require&application_name=x".into(), Some("ca.pem".into()))
        );
        assert_eq!(
            split_root_cert("postgres://h/db?sslrootcert=ca.pem"),
            ("postgres://h/db".into(), Some("ca.pem".into()))
        );
    }

    #[test]
    fn only_require_asks_for_tls() {
        let plain: tokio_postgres::Config = "postgres://h/db".parse().unwrap();
        assert!(connector(&plain, None).unwrap().is_none());
        let refused = connector(&plain, Some("ca.pem")).err().unwrap().to_string();
        assert!(refused.contains("sslmode=require"), "{refused}");
        let tls: tokio_postgres::Config = "postgres://h/db?sslmode=require".parse().unwrap();
        let missing = connector(&tls, Some("/nonexistent/ca.pem")).err().unwrap().to_string();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
