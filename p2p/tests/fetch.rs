//! DAG fetches between real nodes on loopback: found via the DHT, moved by bitswap, surviving the loss
//! of a provider mid-transfer.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dag_found_on_the_dht_and_fetched_by_bitswap() {
    init_tracing();
    let hub = start(&[]).await;
    let a = start(std::slice::from_ref(&hub.addr)).await;
    let b = start(std::slice::from_ref(&hub.addr)).await;
    let data = bytes(3 * 1024 * 1024 + 17, 1);
    let root = add(a.node.store(), &data);
    // The provider record lands on the hub (the only other DHT server a knows at first).
    assert!(
        eventually(10, async || a.node.provide(root).await.is_ok()).await,
        "provide failed"
    );
    let provs = b
        .node
        .find_providers(root, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        provs,
        vec![a.node.peer_id()],
        "the DHT should name a as the provider"
    );
    let stats = b
        .node
        .fetch_dag(root, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(stats.blocks, 14, "13 leaves of 256 KiB + 1 root");
    assert_eq!(stats.fetched, 14);
    assert_eq!(cat(b.node.store(), &root), data);
    // A second fetch is local.
    let again = b
        .node
        .fetch_dag(root, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.fetched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_content_times_out_cleanly() {
    init_tracing();
    let a = start(&[]).await;
    let b = start(std::slice::from_ref(&a.addr)).await;
    let absent = jobmesh_store::cid_of_raw(b"nobody has this");
    let err = b
        .node
        .fetch_dag(absent, Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    // The node is still fine afterwards.
    assert!(b.node.peers().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_continues_from_another_provider_when_one_leaves() {
    init_tracing();
    let hub = start(&[]).await;
    let first = start(std::slice::from_ref(&hub.addr)).await;
    let second = start(std::slice::from_ref(&hub.addr)).await;
    let data = bytes(48 * 1024 * 1024, 7);
    let root = add(first.node.store(), &data);
    assert_eq!(add(second.node.store(), &data), root);
    assert!(eventually(10, async || second.node.provide(root).await.is_ok()).await);
    // The fetcher knows only the first provider directly (not the hub, not the second).
    let fetcher = start(std::slice::from_ref(&first.addr)).await;
    let f = fetcher.node.clone();
    let fetch = tokio::spawn(async move { f.fetch_dag(root, Duration::from_secs(60)).await });
    // Wait until part of the file has arrived, then drop the first provider.
    let store = fetcher.node.store().clone();
    assert!(
        eventually(30, async || store
            .usage()
            .map(|(n, _)| n >= 4)
            .unwrap_or(false))
        .await,
        "the transfer never started"
    );
    first.node.shutdown().await.unwrap();
    let (blocks_before, _) = store.usage().unwrap();
    let stats = fetch
        .await
        .unwrap()
        .expect("the fetch should finish through the second provider");
    assert!(
        blocks_before < stats.blocks,
        "the first provider left before the end ({blocks_before} of {})",
        stats.blocks
    );
    assert_eq!(cat(&store, &root), data);
    let peers = fetcher.node.peers().await.unwrap();
    assert!(
        peers.iter().any(|p| p.peer_id == second.node.peer_id()),
        "the second provider was found on the DHT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_records_are_re_provided_before_they_expire() {
    init_tracing();
    let secs = Duration::from_secs;
    // Received provider records live 2 × the receiver's interval: 2 s on the hub.
    let hub = start_with(&[], |c| c.reprovide_interval = secs(1)).await;
    let boot = std::slice::from_ref(&hub.addr);
    let eager = start_with(boot, |c| c.reprovide_interval = secs(1)).await;
    let lazy = start_with(boot, |c| c.reprovide_interval = secs(3600)).await;
    let a = add(eager.node.store(), b"re-provided every second");
    let b = add(lazy.node.store(), b"provided once");
    assert!(eventually(10, async || eager.node.provide(a).await.is_ok()).await);
    assert!(eventually(10, async || lazy.node.provide(b).await.is_ok()).await);
    assert!(
        eventually(5, async || hub.node.local_providers(a).await.unwrap()
            == vec![eager.node.peer_id()])
        .await
    );
    assert!(
        eventually(5, async || hub.node.local_providers(b).await.unwrap()
            == vec![lazy.node.peer_id()])
        .await
    );
    // Twice the record lifetime later, only the re-provided record is still there.
    tokio::time::sleep(secs(4)).await;
    assert_eq!(
        hub.node.local_providers(a).await.unwrap(),
        vec![eager.node.peer_id()],
        "the re-provided record expired"
    );
    assert!(
        hub.node.local_providers(b).await.unwrap().is_empty(),
        "a record nobody re-provided should have expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_added_while_alone_is_announced_once_the_node_has_dht_peers() {
    init_tracing();
    let hub = start(&[]).await;
    let seeker = start(std::slice::from_ref(&hub.addr)).await;
    // Alone, with the default 12 h re-provide interval: the announcement reaches nobody.
    let lonely = start(&[]).await;
    let root = add(lonely.node.store(), &bytes(300 * 1024, 9));
    assert!(
        lonely.node.provide(root).await.is_err(),
        "a lone node has nobody to announce to"
    );
    // It joins the mesh: its first DHT peer makes it announce the root, long before any re-provide. (The hub's
    // own record store is asked: a lookup would also find the record in the lonely node's store.)
    lonely
        .node
        .connect(hub.addr.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    let h = hub.node.clone();
    assert!(
        eventually(10, async || h.local_providers(root).await.unwrap()
            == vec![lonely.node.peer_id()])
        .await,
        "the node did not announce its root to its first DHT peer"
    );
    // So the DHT names it even while it is away.
    lonely.node.shutdown().await.unwrap();
    let found = seeker
        .node
        .find_providers(root, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(found, vec![lonely.node.peer_id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_a_connected_holder_does_not_walk_the_dht_and_one_whose_holder_left_does() {
    use std::sync::atomic::Ordering::Relaxed;
    init_tracing();
    let hub = start(&[]).await;
    let holder = start(std::slice::from_ref(&hub.addr)).await;
    let b = start(std::slice::from_ref(&hub.addr)).await;
    b.node
        .connect(holder.addr.clone(), Duration::from_secs(5))
        .await
        .unwrap();
    // Provider lookups only: the node's own DHT walks (its self-lookup on reaching a bootstrap peer, the
    // periodic refresh) are queries too, and their timing is not this test's business.
    let lookups = || b.node.stats().provider_lookups.load(Relaxed);
    let before = lookups();
    // Nobody has these blocks: both fetches time out, past the holder grace (3 s).
    let timeout = jobmesh_p2p::HOLDER_GRACE + Duration::from_secs(2);
    let absent = jobmesh_store::cid_of_raw(b"the holder lost it");
    let err = b
        .node
        .fetch_dag_from(absent, &[holder.node.peer_id()], timeout)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(
        lookups(),
        before,
        "the holder is connected: no provider lookup"
    );
    // The holder leaves: now the DHT is asked for other providers.
    let gone = holder.node.peer_id();
    holder.node.shutdown().await.unwrap();
    assert!(eventually(10, async || !b.node.any_connected(&[gone]).await.unwrap()).await);
    let absent = jobmesh_store::cid_of_raw(b"and then it left");
    b.node
        .fetch_dag_from(absent, &[gone], timeout)
        .await
        .unwrap_err();
    assert!(
        lookups() > before,
        "no provider lookup after the holder left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_from_named_holders_asks_only_them_until_the_holder_grace_is_over() {
    init_tracing();
    let fetcher = start(&[]).await;
    let holder = start(std::slice::from_ref(&fetcher.addr)).await;
    let bystander = start(std::slice::from_ref(&fetcher.addr)).await;
    let connected = [holder.node.peer_id(), bystander.node.peer_id()];
    assert!(
        eventually(10, async || {
            let peers = fetcher.node.peers().await.unwrap();
            connected
                .iter()
                .all(|c| peers.iter().any(|p| p.peer_id == *c))
        })
        .await,
        "holder and bystander never connected"
    );
    let timeout = Duration::from_secs(20);

    // From the holder that has it: at once, and nobody else was needed.
    let with_holder = add(holder.node.store(), &bytes(40_000, 7));
    let stats = fetcher
        .node
        .fetch_dag_from(with_holder, &[holder.node.peer_id()], timeout)
        .await
        .unwrap();
    assert!(
        stats.elapsed < jobmesh_p2p::HOLDER_GRACE,
        "took {:?}",
        stats.elapsed
    );

    // Named a holder that does not have it, while a connected bystander does: the bystander is not asked
    // until the holder grace is over (plain bitswap would have asked it at once), then it delivers.
    let only_bystander = add(bystander.node.store(), &bytes(40_000, 8));
    let stats = fetcher
        .node
        .fetch_dag_from(only_bystander, &[holder.node.peer_id()], timeout)
        .await
        .unwrap();
    assert_eq!(stats.fetched, 1);
    assert!(
        stats.elapsed >= jobmesh_p2p::HOLDER_GRACE,
        "the bystander was asked before the grace was over: {:?}",
        stats.elapsed
    );

    // Without holders every connected peer is asked at once.
    let again = add(bystander.node.store(), &bytes(40_000, 9));
    let stats = fetcher.node.fetch_dag(again, timeout).await.unwrap();
    assert!(
        stats.elapsed < jobmesh_p2p::HOLDER_GRACE,
        "took {:?}",
        stats.elapsed
    );
}
