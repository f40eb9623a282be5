//! The server's TLS material: a private CA that agents trust, and a server certificate it signs.
//!
//! # Files in the data directory
//!
//! ```text
//! ca.pem       the CA certificate, PEM; copy it to agents (`[server] ca_file`)
//! ca.key       the CA private key, PKCS#8 PEM, mode 0600
//! server.pem   the server certificate, PEM, signed by the CA, SANs: localhost, 127.0.0.1, ::1, each --san
//! server.key   its private key, PKCS#8 PEM, mode 0600
//! ```
//!
//! Created on first start, reused afterwards. The CA is never regenerated behind the operator's back (every agent
//! trusts it): `ca.pem` without `ca.key` is an error. A missing server pair is re-issued from the CA, which is how
//! an operator changes the SANs: delete `server.pem` and restart with the new `--san` list.
//!
//! The CA is re-created in memory from its key and fixed parameters to sign a new server certificate; the
//! issuer name and key identifier only depend on those, so no certificate parser is needed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::Error;
use crate::fsutil::{write_atomic, Replace};

/// Where the certificate chain and key the server presents live.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// The generated CA, when the server made its own.
    pub ca: Option<PathBuf>,
}

/// Makes sure the CA and server certificate exist in `dir`, creating what is missing.
pub(crate) fn ensure_generated(dir: &Path, sans: &[String]) -> Result<TlsFiles, Error> {
    let ca_pem = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");

    let ca_key = match (ca_pem.exists(), ca_key_path.exists()) {
        (true, true) => {
            KeyPair::from_pem(&read(&ca_key_path)?).map_err(|e| tls(&ca_key_path, e))?
        }
        (false, false) => {
            let ca_key = KeyPair::generate().map_err(|e| tls(&ca_pem, e))?;
            let ca_cert = ca_params()
                .self_signed(&ca_key)
                .map_err(|e| tls(&ca_pem, e))?;
            // Key first: a crash in between leaves a key without a certificate, which the next start reports.
            write(&ca_key_path, ca_key.serialize_pem().as_bytes(), 0o600)?;
            write(&ca_pem, ca_cert.pem().as_bytes(), 0o644)?;
            tracing::info!(path = %ca_pem.display(), "created a new CA; agents must trust this file");
            ca_key
        }
        (true, false) => {
            return Err(Error::Tls {
                path: ca_key_path,
                message:
                    "ca.pem exists but its key is missing; restore ca.key (agents trust this CA)"
                        .into(),
            })
        }
        (false, true) => {
            return Err(Error::Tls {
                path: ca_pem,
                message: "ca.key exists but ca.pem is missing; restore ca.pem or remove both"
                    .into(),
            })
        }
    };

    if !(cert.exists() && key.exists()) {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        names.extend(
            sans.iter()
                .filter(|s| !names.contains(s))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut params = CertificateParams::new(names.clone()).map_err(|e| tls(&cert, e))?;
        params.distinguished_name = dn("dockhand-server");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(|e| tls(&key, e))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(|e| tls(&cert, e))?;
        write(&key, server_key.serialize_pem().as_bytes(), 0o600)?;
        write(&cert, server_cert.pem().as_bytes(), 0o644)?;
        tracing::info!(path = %cert.display(), names = ?names, "issued a server certificate");
    } else if !sans.is_empty() {
        tracing::info!(path = %cert.display(), "reusing the existing server certificate; delete it to re-issue with new --san names");
    }
    Ok(TlsFiles {
        cert,
        key,
        ca: Some(ca_pem),
    })
}

/// The CA's parameters: fixed, so they can be rebuilt from the key alone (see the module docs).
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn("Dockhand CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Dockhand");
    dn
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    write_atomic(path, bytes, mode, Replace::No).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn tls(path: &Path, e: rcgen::Error) -> Error {
    Error::Tls {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
