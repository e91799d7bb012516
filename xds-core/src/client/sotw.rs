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
use crate::snapshot::{CLUSTER, ENDPOINTS, LISTENER, ROUTE};

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
    // Clusters before listeners, as Envoy does; routes and endpoints follow from them (on a
    // reconnect, from what is held).
    for type_url in [CLUSTER, LISTENER, ENDPOINTS, ROUTE] {
        let interest = s.session.interest(type_url);
        if matches!(&interest, Interest::Names(n) if n.is_empty()) {
            continue;
        }
        s.subscribe(type_url, interest).await;
    }
    let mut responses = match client
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return format!("ADS stream refused: {status}"),
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            message = responses.message() => match message {
                Ok(Some(response)) => {
                    *got_response = true;
                    s.handle(response).await;
                }
                Ok(None) => return "the control plane closed the stream".into(),
                Err(status) => return format!("ADS stream failed: {status}"),
            },
            _ = tick.tick() => {
                if s.session.expire() {
                    s.session.publish();
                }
            }
        }
    }
}

impl Stream<'_, '_> {
    async fn subscribe(&mut self, type_url: &str, interest: Interest) {
        self.session.asked(type_url, &interest);
        self.sent.insert(type_url.to_owned(), interest);
        self.send(type_url, None).await;
    }

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
        for dependent in [ROUTE, ENDPOINTS] {
            let interest = self.session.interest(dependent);
            let nothing = matches!(&interest, Interest::Names(n) if n.is_empty());
            // Never asked and nothing to ask for: an empty list would read as a wildcard.
            if nothing && !self.sent.contains_key(dependent) {
                continue;
            }
            if self.sent.get(dependent) != Some(&interest) {
                self.subscribe(dependent, interest).await;
            }
        }
        self.session.publish();
    }
}
