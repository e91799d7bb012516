//! The gRPC API (`pixiu.pkg.metadata`): `MetadataService` and `ServiceDefinitionService`, each
//! with Publish and Get, over a [`Registry`]. Errors are gRPC statuses: INVALID_ARGUMENT with
//! the reason, NOT_FOUND, UNAVAILABLE when the backend is down, UNAUTHENTICATED when a publish
//! lacks the configured bearer token.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::{Error, Outcome, Registry};

/// The generated messages and service stubs.
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod pb {
    tonic::include_proto!("pixiu.pkg.metadata");
}

pub use pb::metadata_service_client::MetadataServiceClient;
use pb::metadata_service_server::{MetadataService, MetadataServiceServer};
pub use pb::service_definition_service_client::ServiceDefinitionServiceClient;
use pb::service_definition_service_server::{
    ServiceDefinitionService, ServiceDefinitionServiceServer,
};

/// Both services over one registry.
#[derive(Debug, Clone)]
pub struct MetadataApi {
    registry: Arc<Registry>,
    /// When set, Publish calls must carry `authorization: Bearer <token>`.
    token: Option<Arc<str>>,
}

impl MetadataApi {
    pub fn new(registry: Arc<Registry>, token: Option<String>) -> Self {
        MetadataApi {
            registry,
            token: token.filter(|t| !t.is_empty()).map(Arc::from),
        }
    }

    /// A tonic router serving both services (add more services to it if you like).
    pub fn router(self) -> tonic::transport::server::Router {
        tonic::transport::Server::builder()
            .add_service(MetadataServiceServer::new(self.clone()))
            .add_service(ServiceDefinitionServiceServer::new(self))
    }

    /// Serves both services on `listener` until `shutdown` resolves, then finishes the calls
    /// in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), tonic::transport::Error> {
        // Without TCP_NODELAY a reply split across writes waits out the peer's delayed ACK
        // (~40 ms per call on Linux).
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        self.router()
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }

    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated(
                "the bearer token is not the configured one",
            )),
            None => Err(Status::unauthenticated(
                "publishing needs an `authorization: Bearer <token>` header",
            )),
        }
    }
}

/// Compares without revealing, through timing, how long a matching prefix is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn status(e: Error) -> Status {
    match e {
        Error::Invalid { .. } => Status::invalid_argument(e.to_string()),
        Error::Unavailable(_) => Status::unavailable(e.to_string()),
        Error::Corrupt(_) => Status::data_loss(e.to_string()),
    }
}

fn outcome(o: Outcome) -> i32 {
    (match o {
        Outcome::Created => pb::PublishOutcome::Created,
        Outcome::Refreshed => pb::PublishOutcome::Refreshed,
        Outcome::Replaced => pb::PublishOutcome::Replaced,
    }) as i32
}

fn millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl MetadataService for MetadataApi {
    async fn publish(
        &self,
        request: Request<pb::PublishMetadataRequest>,
    ) -> Result<Response<pb::PublishMetadataResponse>, Status> {
        self.authorize(&request)?;
        let r = request.into_inner();
        let done = self
            .registry
            .publish_metadata(&r.application_name, &r.revision, &r.metadata_info)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::PublishMetadataResponse {
            outcome: outcome(done),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        let r = request.into_inner();
        match self
            .registry
            .metadata(&r.application_name, &r.revision)
            .await
        {
            Ok(Some(entry)) => Ok(Response::new(pb::GetMetadataResponse {
                metadata_info: entry.record.value.to_string(),
                published_at_ms: millis(entry.record.published_at_ms),
            })),
            Ok(None) => Err(Status::not_found(format!(
                "no metadata for application {:?} revision {:?}",
                r.application_name, r.revision
            ))),
            Err(e) => Err(status(e)),
        }
    }
}

#[tonic::async_trait]
impl ServiceDefinitionService for MetadataApi {
    async fn publish(
        &self,
        request: Request<pb::PublishServiceDefinitionRequest>,
    ) -> Result<Response<pb::PublishServiceDefinitionResponse>, Status> {
        self.authorize(&request)?;
        let r = request.into_inner();
        let done = self
            .registry
            .publish_definition(&r.identifier, &r.service_definition)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::PublishServiceDefinitionResponse {
            outcome: outcome(done),
        }))
    }

    async fn get(
        &self,
        request: Request<pb::GetServiceDefinitionRequest>,
    ) -> Result<Response<pb::GetServiceDefinitionResponse>, Status> {
        let r = request.into_inner();
        match self.registry.definition(&r.identifier).await {
            Ok(Some(entry)) => Ok(Response::new(pb::GetServiceDefinitionResponse {
                service_definition: entry.record.value.to_string(),
                published_at_ms: millis(entry.record.published_at_ms),
            })),
            Ok(None) => Err(Status::not_found(format!(
                "no service definition under identifier {:?}",
                r.identifier
            ))),
            Err(e) => Err(status(e)),
        }
    }
}
