//! An embedder (the simulator) starts a member as `jobmesh node start` does — `launch` on the memory transport —
//! and serves its control API with `lifecycle::start_api`: the API answers for that member, and stops.

use std::sync::Arc;
use std::time::Duration;

use jobmesh_exec::Executor;
use jobmesh_node::api::client::Api;
use jobmesh_node::launch::launch;
use jobmesh_node::lifecycle::{start_api, ApiConfig};
use jobmesh_node::market::db::MarketDb;
use jobmesh_node::market::MarketConfig;
use jobmesh_p2p::identity::Keypair;
use jobmesh_p2p::{Config, Transport};
use jobmesh_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_member_serves_its_api_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("blocks")).unwrap();
    let db = MarketDb::open(&dir.path().join("market")).unwrap();
    let exec = Arc::new(Executor::new(None).unwrap());
    let mut p2p = Config::new(Keypair::generate_ed25519());
    p2p.transport = Transport::Memory;
    p2p.listen = vec!["/memory/7301".parse().unwrap()];
    let launched = launch(p2p, store, db, exec.clone(), MarketConfig::default(), None)
        .await
        .unwrap();
    let api_cfg = ApiConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        fetch_timeout: Duration::from_secs(5),
        gateway_timeout: Duration::from_secs(5),
        token: None,
        allow_origins: Vec::new(),
    };
    let api = start_api(&launched, Some(exec), &api_cfg).await.unwrap();
    let addr = api.addr;
    assert_ne!(addr.port(), 0, "the real port is reported");

    let client = Api::new(addr);
    let id = tokio::task::spawn_blocking(move || client.call("id", &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id["ID"], launched.node.peer_id().to_string());

    api.stop().await.unwrap();
    let client = Api::new(addr);
    let after = tokio::task::spawn_blocking(move || client.call("id", &[]))
        .await
        .unwrap();
    assert!(
        after.is_err(),
        "the API still answers after stop: {after:?}"
    );
    launched.market.stop();
    let _ = launched.node.shutdown().await;
}
