//! TLS termination with rustls: a listener's certificate chain and key from PEM files, ALPN
//! offering HTTP/2 and HTTP/1.1, and the files watched so that a renewed certificate is served
//! from the next handshake on without a restart (connections already open keep theirs).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// A server configuration from the files, or why not.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| format!("cert {}: {e}", tls.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert {}: {e}", tls.cert))?;
    if certs.is_empty() {
        return Err(format!("cert {}: no certificate in it", tls.cert));
    }
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| format!("key {}: {e}", tls.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a certificate: {e}",
                tls.cert, tls.key
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server configuration in force for a listener, replaced when its files change.
#[derive(Debug)]
pub struct Certificates {
    current: ArcSwap<ServerConfig>,
}

impl Certificates {
    pub fn load(tls: &TlsConfig) -> Result<Arc<Certificates>, String> {
        Ok(Arc::new(Certificates {
            current: ArcSwap::new(server_config(tls)?),
        }))
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Checks the files every `period` until `stop`; a pair that does not load is logged and
    /// the one in force stays.
    pub async fn watch(
        self: Arc<Self>,
        tls: TlsConfig,
        period: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let read = || (std::fs::read(&tls.cert).ok(), std::fs::read(&tls.key).ok());
        let mut last = read();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            let now = read();
            if now == last {
                continue;
            }
            last = now;
            match server_config(&tls) {
                Ok(config) => {
                    self.current.store(config);
                    tracing::info!(cert = %tls.cert, "TLS certificate reloaded");
                }
                // Often a renewal half written (the certificate before the key): the next
                // change completes it.
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; the one in force stays")
                }
            }
        }
    }
}
