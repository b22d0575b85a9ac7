//! Generates the gRPC services and messages from proto/ with protoc (Debian's
//! `protobuf-compiler`, which `scripts/engines` installs; or set `PROTOC`).

fn main() -> std::io::Result<()> {
    let protos = [
        "proto/gochat/common.proto",
        "proto/gochat/repo.proto",
        "proto/gochat/logic.proto",
        "proto/gochat/events.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .include_file("gochat.rs")
        .compile_protos(&protos, &["proto"])
}
