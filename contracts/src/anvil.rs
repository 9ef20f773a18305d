//! A local anvil chain for tests and trials: started on 127.0.0.1 on a free port from the npm-installed binary
//! (`contracts/node_modules/.bin/anvil`, installed by `scripts/setup.d/30-chain.sh`, or `$JOBMESH_ANVIL`),
//! killed when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::Provider;

use crate::SettlementError;

/// Private keys of anvil's default (publicly known, test-only) accounts 0..3.
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// A running anvil process (killed on drop).
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    chain_id: u64,
}

/// Where the anvil binary is: `$JOBMESH_ANVIL`, else the npm install under `contracts/node_modules`.
pub fn anvil_path() -> PathBuf {
    std::env::var_os("JOBMESH_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/anvil")
        })
}

impl Anvil {
    /// Starts anvil on 127.0.0.1 with `chain_id` (automine on) and waits until it answers (at most 30 s).
    pub fn start(chain_id: u64) -> Result<Self, SettlementError> {
        let path = anvil_path();
        if !path.exists() {
            return Err(SettlementError::Invalid(format!(
                "anvil not found at {} (run scripts/setup.d/30-chain.sh)",
                path.display()
            )));
        }
        let port = free_port()?;
        let child = Command::new(&path)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--chain-id",
                &chain_id.to_string(),
            ])
            .args(["--silent", "--accounts", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                SettlementError::Invalid(format!("cannot start {}: {e}", path.display()))
            })?;
        let mut anvil = Self {
            child,
            port,
            chain_id,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(anvil);
            }
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(SettlementError::Invalid(format!(
                    "anvil exited early: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(SettlementError::Invalid(
                    "anvil did not start within 30 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The chain id anvil was started with.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Mines `n` blocks at once (`anvil_mine`).
    pub async fn mine(&self, n: u64) -> Result<(), SettlementError> {
        let provider = crate::rpc::connect(&self.url(), self.chain_id, None).await?;
        provider
            .raw_request::<_, serde_json::Value>("anvil_mine".into(), (U256::from(n),))
            .await
            .map_err(|e| SettlementError::Transport(e.to_string()))?;
        Ok(())
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, SettlementError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| SettlementError::Invalid(format!("no free port on 127.0.0.1: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| SettlementError::Invalid(e.to_string()))
}
