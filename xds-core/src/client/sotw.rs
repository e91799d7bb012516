//! State-of-the-world ADS: every response carries the whole of what is subscribed to of its
//! type; the client ACKs with that version or NACKs with the last accepted one.

use std::collections::HashMap;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::rpc::Status;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::decode;
use super::session::{Interest, Session};
use super::stream::{self, Variant};
use crate::snapshot::{CLUSTER, LISTENER};

struct Stream<'s, 'a> {
    session: &'s mut Session<'a>,
    node: envoy_types::pb::envoy::config::core::v3::Node,
    tx: mpsc::Sender<DiscoveryRequest>,
    sent: HashMap<String, Interest>,
    nonces: HashMap<String, String>,
}

pub(crate) async fn run(
    client: &mut AggregatedDiscoveryServiceClient<Channel>,
    session: &mut Session<'_>,
    node: envoy_types::pb::envoy::config::core::v3::Node,
    got_response: &mut bool,
) -> String {
    let (tx, rx) = mpsc::channel(64);
    let mut s = Stream {
        session,
        node,
        tx,
        sent: HashMap::new(),
        nonces: HashMap::new(),
    };
    let open = client.stream_aggregated_resources(ReceiverStream::new(rx));
    stream::run(&mut s, open, got_response).await
}

impl Variant for Stream<'_, '_> {
    type Response = DiscoveryResponse;
    const NAME: &'static str = "ADS";

    fn session(&self) -> &Session<'_> {
        self.session
    }

    fn expire(&mut self) {
        if self.session.expire() {
            self.session.publish();
        }
    }

    fn sent(&self) -> &HashMap<String, Interest> {
        &self.sent
    }

    async fn ask(&mut self, type_url: &str, interest: Interest) {
        self.session.asked(type_url, &interest);
        self.sent.insert(type_url.to_owned(), interest);
        self.send(type_url, None).await;
    }

    async fn handle(&mut self, response: DiscoveryResponse) {
        let type_url = response.type_url.clone();
        self.nonces.insert(type_url.clone(), response.nonce.clone());
        let mut accepted = Vec::with_capacity(response.resources.len());
        let mut rejected = Vec::new();
        for any in &response.resources {
            match decode::resource(&type_url, any) {
                Ok((name, resource)) => accepted.push((
                    name,
                    response.version_info.clone(),
                    crate::snapshot::fnv(&any.value),
                    resource,
                )),
                Err((name, reason)) => rejected.push(format!("{name:?}: {reason}")),
            }
        }
        if !rejected.is_empty() {
            // Nothing of a bad response applies: the last accepted version stays in force.
            let detail = rejected.join("; ");
            tracing::warn!(%type_url, version = %response.version_info, %detail, "NACK");
            self.session.state.count(&type_url, false);
            self.session.state.last_nack = Some(detail.clone());
            self.send(&type_url, Some(detail)).await;
            self.session.publish();
            return;
        }
        // Listener and Cluster responses carry everything subscribed to (by name or not):
        // what they omit is gone. Route and endpoint responses may carry only some.
        let complete = type_url == LISTENER || type_url == CLUSTER;
        self.session.apply(&type_url, accepted, &[], complete);
        self.session
            .state
            .versions
            .insert(type_url.clone(), response.version_info.clone());
        self.session.state.count(&type_url, true);
        self.send(&type_url, None).await;
        // New listeners or clusters may need other routes or endpoints.
        stream::follow_dependents(self).await;
        self.session.publish();
    }
}

impl Stream<'_, '_> {
    async fn send(&mut self, type_url: &str, error: Option<String>) {
        let request = DiscoveryRequest {
            version_info: self
                .session
                .state
                .versions
                .get(type_url)
                .cloned()
                .unwrap_or_default(),
            node: Some(self.node.clone()),
            resource_names: self
                .sent
                .get(type_url)
                .map(Interest::names)
                .unwrap_or_default(),
            type_url: type_url.to_owned(),
            response_nonce: self.nonces.get(type_url).cloned().unwrap_or_default(),
            error_detail: error.map(|message| Status {
                code: tonic::Code::InvalidArgument as i32,
                message,
                details: Vec::new(),
            }),
            ..Default::default()
        };
        // A full channel means the stream is gone; the read side will notice.
        let _ = self.tx.send(request).await;
    }
}
