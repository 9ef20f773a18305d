//! Interop with Helia 7 (npm, installed by scripts/setup.d/40-p2p-interop.sh) on loopback: Helia fetches
//! a multi-block file our node added and our node fetches one Helia added (bytes and CIDs match), and
//! js-libp2p gossipsub exchanges messages with our node both ways.

mod mesh_util;

#[test]
fn helia_fetches_ours_we_fetch_helias_and_gossip_flows_both_ways() {
    let mut cmd = jobmesh_tests::node_script("mesh", "peer.mjs").unwrap();
    cmd.env("NODE_OPTIONS", "--require ./preload.cjs");
    let mut helia = mesh_util::ScriptPeer::spawn(cmd);
    mesh_util::exchange_with(&mut helia, "Helia", "bafy");
}
