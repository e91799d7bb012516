//! Compiles the `.proto` files with protox (pure Rust), so building needs no `protoc`:
//! our metadata API (client and server) and the subset of etcd's API the etcd backend uses
//! (client only).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let api = protox::compile(["proto/metadata.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(api)?;
    let etcd = protox::compile(["rpc.proto"], ["proto/etcd"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(etcd)?;
    Ok(())
}
