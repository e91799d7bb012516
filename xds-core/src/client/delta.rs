//! Incremental (delta) ADS: responses carry only what changed, each resource with its own
//! version; subscriptions change by difference; a reconnecting client says what it holds.

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::decode;
use super::session::{Interest, Session};
use super::stream::{self, Variant};

struct Stream<'s, 'a> {
    session: &'s mut Session<'a>,
    node: envoy_types::pb::envoy::config::core::v3::Node,
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    sent: HashMap<String, Interest>,
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
    };
    let open = client.delta_aggregated_resources(ReceiverStream::new(rx));
    stream::run(&mut s, open, got_response).await
}

impl Variant for Stream<'_, '_> {
    type Response = DeltaDiscoveryResponse;
    const NAME: &'static str = "delta ADS";

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
        let Some(before) = self.sent.get(type_url).cloned() else {
            return self.first(type_url, interest).await;
        };
        let (Interest::Names(old), Interest::Names(new)) = (&before, &interest) else {
            return;
        };
        let subscribe: Vec<String> = new.difference(old).cloned().collect();
        let unsubscribe: Vec<String> = old.difference(new).cloned().collect();
        if subscribe.is_empty() && unsubscribe.is_empty() {
            return;
        }
        self.session.asked(
            type_url,
            &Interest::Names(subscribe.iter().cloned().collect::<BTreeSet<_>>()),
        );
        let request = DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: type_url.to_owned(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            ..Default::default()
        };
        self.sent.insert(type_url.to_owned(), interest);
        let _ = self.tx.send(request).await;
    }

    async fn handle(&mut self, response: DeltaDiscoveryResponse) {
        let type_url = response.type_url.clone();
        let mut accepted = Vec::with_capacity(response.resources.len());
        let mut rejected = Vec::new();
        for r in &response.resources {
            let Some(any) = &r.resource else {
                rejected.push(format!("{:?}: no resource", r.name));
                continue;
            };
            match decode::resource(&type_url, any) {
                Ok((name, resource)) if name == r.name || r.name.is_empty() => {
                    accepted.push((
                        name,
                        r.version.clone(),
                        crate::snapshot::fnv(&any.value),
                        resource,
                    ));
                }
                Ok((name, _)) => {
                    rejected.push(format!("{:?}: the resource is named {name:?}", r.name))
                }
                Err((name, reason)) => rejected.push(format!("{name:?}: {reason}")),
            }
        }
        let error = (!rejected.is_empty()).then(|| rejected.join("; "));
        if let Some(detail) = &error {
            tracing::warn!(%type_url, %detail, "NACK");
            self.session.state.count(&type_url, false);
            self.session.state.last_nack = Some(detail.clone());
        } else {
            self.session
                .apply(&type_url, accepted, &response.removed_resources, false);
            if !response.system_version_info.is_empty() {
                self.session
                    .state
                    .versions
                    .insert(type_url.clone(), response.system_version_info.clone());
            }
            self.session.state.count(&type_url, true);
        }
        let ack = DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: error.map(|message| Status {
                code: tonic::Code::InvalidArgument as i32,
                message,
                details: Vec::new(),
            }),
            ..Default::default()
        };
        let _ = self.tx.send(ack).await;
        stream::follow_dependents(self).await;
        self.session.publish();
    }
}

impl Stream<'_, '_> {
    /// The first request of a type on this stream: its subscription, and the versions held
    /// from before a reconnect.
    async fn first(&mut self, type_url: &str, interest: Interest) {
        self.session.asked(type_url, &interest);
        let held = self
            .session
            .state
            .names(type_url)
            .into_iter()
            .filter(|n| interest.contains(n))
            .filter_map(|n| self.session.state.version_of(type_url, &n).map(|v| (n, v)))
            .collect();
        let request = DeltaDiscoveryRequest {
            node: Some(self.node.clone()),
            type_url: type_url.to_owned(),
            resource_names_subscribe: interest.names(),
            initial_resource_versions: held,
            ..Default::default()
        };
        self.sent.insert(type_url.to_owned(), interest);
        let _ = self.tx.send(request).await;
    }
}
