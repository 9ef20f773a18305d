//! End-to-end tests across crates: the `jobmesh` binary, multi-process meshes on loopback, and interop with
//! real third-party IPFS implementations installed from package registries. The tests live in `tests/tests/`;
//! this library holds only helpers they share.
