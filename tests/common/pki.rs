//! A throwaway PKI for the TLS tests: a private CA, a server certificate for 127.0.0.1 (and a
//! server config that may require client certificates), a client certificate; PEM files in a
//! temporary directory removed on drop.

use std::sync::Arc;

/// A CA, a server config for the fake Patroni, and a client certificate signed by the CA.
pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
    pub client_cert_pem: String,
    pub client_key_pem: String,
    pub dir: std::path::PathBuf,
}

pub fn pki(require_client_cert: bool) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    let client_key = KeyPair::generate().expect("key");
    let client_cert = CertificateParams::new(vec!["router".to_string()])
        .expect("params")
        .signed_by(&client_key, &issuer)
        .expect("client cert");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions");
    let chain = vec![server_cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).expect("key der");
    let server = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).expect("root");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("verifier");
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
    } else {
        builder.with_no_client_auth().with_single_cert(chain, key)
    }
    .expect("server config");
    let dir = std::env::temp_dir().join(super::unique("pki-"));
    std::fs::create_dir_all(&dir).expect("pki dir");
    Pki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        dir,
    }
}

impl Pki {
    pub fn write(&self, name: &str, pem: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, pem).expect("write pem");
        p.display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
