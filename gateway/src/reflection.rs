//! Descriptors learnt from providers by gRPC server reflection, per cluster: when an HTTP/JSON
//! call names a service no configured descriptor set describes, the cluster's provider is asked
//! once (one fetch at a time per cluster), and what it answers serves every later call.
//! A failed fetch is remembered for a few seconds so that a provider without reflection is not
//! asked on every request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use http_bridge::triple::reflection::files_for_symbol;
use http_bridge::triple::TripleCluster;
use prost::Message;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::{DescriptorPool, ServiceDescriptor};

/// How long a failed fetch is answered from memory.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Failures remembered at most (service names come from request paths: bounded).
const MAX_FAILURES: usize = 1024;

#[derive(Debug, Default)]
pub struct Reflected {
    pool: RwLock<DescriptorPool>,
    /// Held while fetching (one fetch per cluster at a time); the last failure per service.
    fetching: tokio::sync::Mutex<HashMap<String, (Instant, String)>>,
}

impl Reflected {
    /// A service learnt already.
    pub fn find(&self, service: &str) -> Option<ServiceDescriptor> {
        self.pool
            .read()
            .ok()
            .and_then(|p| p.get_service_by_name(service))
    }

    /// The service, asking the cluster's provider by reflection if it is not known yet.
    pub async fn fetch(
        &self,
        cluster: &TripleCluster,
        service: &str,
        timeout: Duration,
    ) -> Result<ServiceDescriptor, String> {
        if !is_full_name(service) {
            return Err(format!("{service:?} is not a protobuf service name"));
        }
        let mut failures = self.fetching.lock().await;
        if let Some(found) = self.find(service) {
            return Ok(found);
        }
        if failures.len() >= MAX_FAILURES {
            failures.retain(|_, (at, _)| at.elapsed() < RETRY_AFTER);
        }
        if let Some((at, why)) = failures.get(service) {
            if at.elapsed() < RETRY_AFTER {
                return Err(why.clone());
            }
        }
        let result = self.learn(cluster, service, timeout).await;
        match &result {
            Ok(_) => drop(failures.remove(service)),
            // Past the cap even after dropping stale entries: not remembered, asked again.
            Err(why) if failures.len() < MAX_FAILURES => {
                failures.insert(service.to_owned(), (Instant::now(), why.clone()));
            }
            Err(_) => {}
        }
        result
    }
}

/// `package.Service`: dot-separated identifiers, as protobuf names them (and nothing a
/// request path could smuggle in).
fn is_full_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

impl Reflected {
    async fn learn(
        &self,
        cluster: &TripleCluster,
        service: &str,
        timeout: Duration,
    ) -> Result<ServiceDescriptor, String> {
        let endpoint = cluster
            .pick()
            .ok_or_else(|| format!("cluster {:?} has no endpoints", cluster.name))?;
        let files = files_for_symbol(
            cluster.client(crate::workers::id()),
            endpoint.addr,
            service,
            timeout,
        )
        .await
        .map_err(|e| {
            format!(
                "no descriptors for {service:?}, and server reflection at {} failed: {e}",
                endpoint.addr
            )
        })?;
        let mut pool = self.pool.read().map_err(|e| e.to_string())?.clone();
        let mut protos = Vec::with_capacity(files.len());
        for bytes in files {
            let proto = FileDescriptorProto::decode(bytes)
                .map_err(|e| format!("reflection sent a bad file descriptor: {e}"))?;
            if pool.get_file_by_name(proto.name()).is_none() {
                protos.push(proto);
            }
        }
        pool.add_file_descriptor_protos(protos)
            .map_err(|e| format!("reflection's descriptors do not fit together: {e}"))?;
        let found = pool
            .get_service_by_name(service)
            .ok_or_else(|| format!("the provider's reflection does not describe {service:?}"))?;
        *self.pool.write().map_err(|e| e.to_string())? = pool;
        tracing::info!(cluster = %cluster.name, service, "descriptors learnt by server reflection");
        Ok(found)
    }
}
