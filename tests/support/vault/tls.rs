//! TLS for the test server: a throwaway CA (rcgen), a server certificate for 127.0.0.1,
//! localhost and vault.test, and a client certificate for the TLS certificate auth method.
//!
//! Like a Vault listener with `tls_require_and_verify_client_cert = false`, the server *requests*
//! a client certificate (Go's `tls.RequestClientCert`) but accepts the handshake with or without
//! one; the `cert` auth method then checks the presented chain against the CA at login.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::TlsFiles;

/// What the `cert` auth method reports about the client certificate it accepts.
pub struct ClientCertInfo {
    pub common_name: String,
    pub serial_number: String,
    pub subject_key_id: String,
    pub authority_key_id: String,
}

pub struct TlsSetup {
    pub files: TlsFiles,
    pub server_config: Arc<ServerConfig>,
    /// Verifies a presented client chain against the CA (used at cert login).
    pub client_verifier: Arc<dyn ClientCertVerifier>,
    pub client_info: ClientCertInfo,
}

fn key_id() -> Vec<u8> {
    (0..20).map(|_| fastrand::u8(..)).collect()
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Generates the certificates, writes the PEM files into `dir`, and builds the server config.
pub fn setup(dir: &Path) -> TlsSetup {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    // The CA.
    let ca_key = KeyPair::generate().expect("generate CA key");
    let ca_ski = key_id();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "secretsubst test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.key_identifier_method = KeyIdMethod::PreSpecified(ca_ski.clone());
    ca_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    ca_params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca_params, ca_key);

    // The server certificate.
    let server_key = KeyPair::generate().expect("generate server key");
    let mut server_params = CertificateParams::new(vec![
        "127.0.0.1".into(),
        "localhost".into(),
        "vault.test".into(),
    ])
    .expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "vault.test");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.use_authority_key_identifier_extension = true;
    server_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    server_params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("sign server certificate");

    // The client certificate, for the cert auth method.
    let client_key = KeyPair::generate().expect("generate client key");
    let client_ski = key_id();
    let serial = fastrand::u64(1..(1 << 62));
    let common_name = "secretsubst-client".to_string();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, common_name.clone());
    client_params.is_ca = IsCa::ExplicitNoCa;
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.serial_number = Some(SerialNumber::from(serial));
    client_params.key_identifier_method = KeyIdMethod::PreSpecified(client_ski.clone());
    client_params.use_authority_key_identifier_extension = true;
    client_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    client_params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("sign client certificate");

    let files = TlsFiles {
        ca_cert: dir.join("ca.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
    };
    std::fs::write(&files.ca_cert, ca_cert.pem()).expect("write ca.pem");
    std::fs::write(&files.client_cert, client_cert.pem()).expect("write client.pem");
    std::fs::write(&files.client_key, client_key.serialize_pem()).expect("write client-key.pem");

    let mut roots = RootCertStore::empty();
    roots.add(ca_cert.der().clone()).expect("trust the CA");
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .expect("client verifier");

    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(Arc::new(RequestClientCert {
            signatures: client_verifier.clone(),
        }))
        .with_single_cert(
            vec![server_cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .expect("server certificate");
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];

    TlsSetup {
        files,
        server_config: Arc::new(server_config),
        client_verifier,
        client_info: ClientCertInfo {
            common_name,
            serial_number: serial.to_string(),
            subject_key_id: colon_hex(&client_ski),
            authority_key_id: colon_hex(&ca_ski),
        },
    }
}

/// Requests a client certificate without requiring or validating it at the TLS layer (the
/// handshake signature is still checked, proving possession of the key).
#[derive(Debug)]
struct RequestClientCert {
    signatures: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}
