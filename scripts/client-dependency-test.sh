#!/usr/bin/env bash
# The client crate as a user depends on it: a fresh project outside this workspace with
# `hotmesh-client = { path = "<this repository>/client" }` (README, "Use it from your
# project") must build, and must not pull in the command line's dependencies (clap).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/src"
cat > "$DIR/Cargo.toml" <<TOML
[package]
name = "uses-hotmesh"
version = "0.1.0"
edition = "2021"

[dependencies]
hotmesh-client = { path = "$ROOT/client" }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
serde_json = "1"
TOML
cat > "$DIR/src/main.rs" <<'RS'
use hotmesh_client::{HotMesh, PubOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), hotmesh_client::Error> {
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    if url.is_empty() {
        return Ok(());
    }
    let hm = HotMesh::connect(&url).await?;
    let id = hm.publish("orders.start", json!({"n": 1}), PubOptions::default()).await?;
    println!("{id}");
    Ok(())
}
RS
# the workspace's build cache (same dependency versions are reused)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/client-dependency-test
(cd "$DIR" && cargo build -q)
if (cd "$DIR" && cargo tree -q -e normal | grep -q '^.*clap '); then
  echo "client dependency test: the library pulls in clap" >&2
  exit 1
fi
echo "client dependency test: a fresh project builds against hotmesh-client (no clap)"
