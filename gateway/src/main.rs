//! The gateway binary. The listeners, configuration and demo arrive in a later change; until then
//! it says so rather than pretending to serve.
#![forbid(unsafe_code)]

fn main() {
    eprintln!(
        "gateway {}: the HTTP listener is not built yet; run the Dubbo2 demo with \
         `cargo run -p testkit --example dubbo2_demo`",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
