//! What both ADS variants (state of the world in `sotw`, incremental in `delta`) do alike: the
//! first subscriptions, the stream's read loop with the absence timer, and asking for the
//! routes and endpoints that new listeners and clusters need. Each variant says how it asks
//! and how it takes a response ([`Variant`]).

use std::collections::HashMap;
use std::future::Future;

use super::session::{Interest, Session};
use crate::snapshot::{CLUSTER, ENDPOINTS, LISTENER, ROUTE};

/// One variant's stream state.
pub(super) trait Variant: Send {
    type Response: Send + 'static;
    /// The variant's name in what a failed stream reports ("ADS", "delta ADS").
    const NAME: &'static str;

    fn session(&self) -> &Session<'_>;

    /// Drops resources that never came in time, and publishes if any did not.
    fn expire(&mut self);

    /// What was last asked for, by type.
    fn sent(&self) -> &HashMap<String, Interest>;

    /// Asks for `type_url` as `interest` (a first subscription on this stream, or a change).
    fn ask(&mut self, type_url: &str, interest: Interest) -> impl Future<Output = ()> + Send;

    /// Takes a response: applies or rejects it, answers it (ACK or NACK), and follows up.
    fn handle(&mut self, response: Self::Response) -> impl Future<Output = ()> + Send;
}

/// Runs one stream: subscribes (clusters before listeners, as Envoy does; routes and
/// endpoints from what is held, on a reconnect), opens it with `open`, and takes responses
/// until it ends. Returns why it ended.
pub(super) async fn run<V: Variant>(
    stream: &mut V,
    open: impl Future<Output = Result<tonic::Response<tonic::Streaming<V::Response>>, tonic::Status>>,
    got_response: &mut bool,
) -> String {
    for type_url in [CLUSTER, LISTENER, ENDPOINTS, ROUTE] {
        let interest = stream.session().interest(type_url);
        if matches!(&interest, Interest::Names(n) if n.is_empty()) {
            continue;
        }
        stream.ask(type_url, interest).await;
    }
    let mut responses = match open.await {
        Ok(r) => r.into_inner(),
        Err(status) => return format!("{} stream refused: {status}", V::NAME),
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            message = responses.message() => match message {
                Ok(Some(response)) => {
                    *got_response = true;
                    stream.handle(response).await;
                }
                Ok(None) => return "the control plane closed the stream".into(),
                Err(status) => return format!("{} stream failed: {status}", V::NAME),
            },
            _ = tick.tick() => stream.expire(),
        }
    }
}

/// After a response: asks for the routes and endpoints that listeners and clusters now need.
pub(super) async fn follow_dependents<V: Variant>(stream: &mut V) {
    for dependent in [ROUTE, ENDPOINTS] {
        let interest = stream.session().interest(dependent);
        let nothing = matches!(&interest, Interest::Names(n) if n.is_empty());
        // Never asked and nothing to ask for: an empty list would read as a wildcard.
        if nothing && !stream.sent().contains_key(dependent) {
            continue;
        }
        if stream.sent().get(dependent) != Some(&interest) {
            stream.ask(dependent, interest).await;
        }
    }
}
