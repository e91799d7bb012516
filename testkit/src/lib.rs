//! Test and demo support: a Dubbo2 provider built on `dubbo-codec`, the sample `DemoService`
//! every test and demo calls, and launchers for the third-party peers in `peers/`.
//!
//! * [`provider`]: a small, real Dubbo2 server (heartbeats, status codes, concurrent requests
//!   per connection) that dispatches to [`provider::Service`] implementations.
//! * [`demo`]: `org.apache.dubbo.demo.DemoService` as `peers/README.md` specifies it.
//! * [`bench`]: the benchmark payload shared with hessian.js's benchmark.
//! * [`peers`]: finds and starts the Node and Python peers; outside CI a missing peer skips the
//!   test loudly, in CI it fails it.
#![forbid(unsafe_code)]

pub mod bench;
pub mod demo;
pub mod etcd;
pub mod peers;
pub mod provider;
