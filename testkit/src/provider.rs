//! A Dubbo2 provider on `dubbo-codec` and tokio.
//!
//! Each connection gets a reader that decodes frames and spawns one task per invocation (so a
//! slow method does not hold up the others on the same connection), and a writer that sends
//! responses in whatever order they finish. Like Java's provider it answers heartbeats, replies
//! 60 for unknown services and 40 for undecodable requests, and uses the `*_WITH_ATTACHMENTS`
//! result flags only for callers whose dubbo version supports them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use dubbo_codec::dubbo2::{
    Attachments, FrameDecoder, Invocation, Outcome, Request, RequestKind, Response, Status,
    DUBBO_VERSION,
};
use dubbo_codec::hessian::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a method call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Value(Value),
    /// A thrown exception: a `Throwable` object (see [`exception`]).
    Exception(Value),
}

/// One exported interface.
pub trait Service: Send + Sync + 'static {
    /// Handles `method` with the given parameter descriptor and arguments. `None` means no such
    /// method (answered as Java does, with an exception naming it).
    fn invoke(
        &self,
        method: &str,
        parameter_types: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Option<Reply>> + Send;
}

type BoxedHandler = Arc<
    dyn Fn(Invocation) -> std::pin::Pin<Box<dyn Future<Output = Option<Reply>> + Send>>
        + Send
        + Sync,
>;

/// The services a provider exports, by interface name.
#[derive(Clone, Default)]
pub struct Services {
    handlers: HashMap<String, BoxedHandler>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("interfaces", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Services {
    pub fn with<S: Service>(mut self, interface: &str, service: S) -> Self {
        let service = Arc::new(service);
        self.handlers.insert(
            interface.to_owned(),
            Arc::new(move |inv: Invocation| {
                let service = Arc::clone(&service);
                Box::pin(async move {
                    service
                        .invoke(&inv.method, &inv.parameter_types, inv.arguments)
                        .await
                })
            }),
        );
        self
    }
}

/// A Java `Throwable` as Java's serializer writes one (no cause, empty stack trace).
pub fn exception(class: &str, message: &str) -> Value {
    Value::object(
        class,
        vec![
            ("detailMessage", Value::from(message)),
            ("cause", Value::Null),
            (
                "stackTrace",
                Value::List(dubbo_codec::List::typed(
                    "[java.lang.StackTraceElement",
                    vec![],
                )),
            ),
        ],
    )
}

/// Serves `services` on `listener` until `shutdown` completes.
pub async fn serve(listener: TcpListener, services: Services, shutdown: impl Future<Output = ()>) {
    let services = Arc::new(services);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(stream, Arc::clone(&services)));
                }
                // Out of file descriptors and the like: keep serving the connections we have.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

async fn connection(stream: TcpStream, services: Arc<Services>) {
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<BytesMut>(1024);
    let writer = tokio::spawn(async move {
        while let Some(mut batch) = rx.recv().await {
            while let Ok(more) = rx.try_recv() {
                batch.unsplit(more);
            }
            if write.write_all(&batch).await.is_err() {
                return;
            }
        }
    });
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) if frame.header.is_request => {
                    let tx = tx.clone();
                    let services = Arc::clone(&services);
                    tokio::spawn(async move {
                        if let Some(response) = handle(&frame, &services).await {
                            let mut out = BytesMut::new();
                            if response.encode(&mut out).is_ok() {
                                let _ = tx.send(out).await;
                            }
                        }
                    });
                }
                Ok(Some(_)) => {} // responses to our heartbeats; we send none
                Ok(None) => break,
                Err(_) => break 'read, // not Dubbo: drop the connection, as Java does
            }
        }
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn handle(frame: &dubbo_codec::dubbo2::Frame, services: &Services) -> Option<Response> {
    let id = frame.header.id;
    let request = match Request::decode(frame) {
        Ok(r) => r,
        Err(e) => {
            let outcome = Outcome::Error(format!("Fail to decode request due to: {e}"));
            return frame.header.two_way.then_some(Response {
                id,
                status: Status::BAD_REQUEST,
                outcome,
                attachments: None,
            });
        }
    };
    let invocation = match request.kind {
        RequestKind::Heartbeat => {
            return request.two_way.then_some(Response {
                id,
                status: Status::OK,
                outcome: Outcome::Heartbeat,
                attachments: None,
            })
        }
        RequestKind::Event(_) => return None,
        RequestKind::Invocation(inv) => inv,
    };
    let attach = supports_response_attachments(&invocation.dubbo_version).then(|| {
        let mut a = Attachments::default();
        a.insert("dubbo", DUBBO_VERSION);
        a
    });
    // Java answers both an unknown service and an unknown method with SERVICE_ERROR and a
    // message, and answers nothing to one-way requests.
    let error = |message: String| Response {
        id,
        status: Status::SERVICE_ERROR,
        outcome: Outcome::Error(message),
        attachments: None,
    };
    let Some(handler) = services.handlers.get(&invocation.service).cloned() else {
        let exported: Vec<_> = services.handlers.keys().collect();
        let message = format!(
            "Not found exported service: {} in {exported:?}, may be version or group mismatch",
            invocation.service
        );
        return request.two_way.then(|| error(message));
    };
    let (service, method) = (invocation.service.clone(), invocation.method.clone());
    let outcome = match handler(invocation).await {
        Some(Reply::Value(Value::Null)) => Outcome::Null,
        Some(Reply::Value(v)) => Outcome::Value(v),
        Some(Reply::Exception(e)) => Outcome::Exception(e),
        None => {
            return request.two_way.then(|| {
                error(format!(
                    "Failed to invoke the method {method} in the service {service}: no such method"
                ))
            });
        }
    };
    request.two_way.then_some(Response {
        id,
        status: Status::OK,
        outcome,
        attachments: attach,
    })
}

/// Java's `Version.isSupportResponseAttachment`: 2.0.2 and later, except the 2.0.10–2.6.2 and
/// 2.8.x (dubbox) lines, whose version numbers predate the feature. Like Java, each part counts
/// its leading digits and a two-part version is read as `a.b` → `a*100 + b*1` (so unsupported).
pub fn supports_response_attachments(version: &str) -> bool {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| {
            p.bytes().take_while(u8::is_ascii_digit).fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            })
        })
        .collect();
    let n = match parts.as_slice() {
        [a, b, c, ..] => a
            .saturating_mul(1_000_000)
            .saturating_add(b.saturating_mul(10_000))
            .saturating_add(c.saturating_mul(100)),
        [a, b] => a.saturating_mul(100).saturating_add(*b),
        _ => 0,
    };
    n >= 2_000_200 && !(2_001_000..2_060_300).contains(&n) && !(2_080_000..2_090_000).contains(&n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn response_attachment_versions() {
        use super::supports_response_attachments as s;
        assert!(s("2.0.2") && s("2.7.23") && s("3.2.0"));
        assert!(!s("2.4.10") && !s("2.6.0") && !s("") && !s("2.0.1"));
        assert!(!s("2.8.4") && !s("2.7"));
        assert!(s("2.7.0-SNAPSHOT"));
        // Absurd client-supplied versions neither overflow nor panic.
        assert!(s("99999999999.0.0") && !s("5000000000000000000000"));
    }
}
