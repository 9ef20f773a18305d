//! The JSON-RPC backend: the settlement contract on any Ethereum JSON-RPC endpoint (anvil on loopback in the
//! tests, a public testnet in `docs/testnet.md`). Transactions are signed locally by the configured key;
//! every connection first checks the endpoint's chain id against the configured one.

use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, Log, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::TransportError;

use crate::{
    DeployParams, Settlement, SettlementError, TxReceipt, BLOCKHASH_WINDOW, HISTORY_ADDRESS,
    HISTORY_WINDOW,
};

/// Blocks per `eth_getLogs` request (public endpoints cap the range).
const LOG_CHUNK: u64 = 10_000;

/// The settlement contract behind a JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct RpcSettlement {
    provider: DynProvider,
    sender: Address,
    contract: Address,
    chain_id: u64,
    receipt_timeout: Duration,
}

fn transport(e: TransportError) -> SettlementError {
    if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
        return SettlementError::from_revert_data(data);
    }
    SettlementError::Transport(e.to_string())
}

/// Connects to `url`, refusing an endpoint whose chain id differs from `expected_chain_id`. Without a signer
/// the provider can only read.
pub async fn connect(
    url: &str,
    expected_chain_id: u64,
    signer: Option<PrivateKeySigner>,
) -> Result<DynProvider, SettlementError> {
    let url: alloy::transports::http::reqwest::Url = url
        .parse()
        .map_err(|e| SettlementError::Invalid(format!("bad RPC URL {url:?}: {e}")))?;
    // reqwest is built without a default crypto provider and its client builder requires one even for
    // plain HTTP: install ring (a no-op if a provider is already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = match signer {
        // Nonces are fetched per transaction (not cached): a transaction refused at gas estimation (a revert)
        // must not leave a nonce gap behind.
        Some(s) => ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(expected_chain_id)
            .wallet(s)
            .connect_http(url)
            .erased(),
        None => ProviderBuilder::new().connect_http(url).erased(),
    };
    let actual = provider.get_chain_id().await.map_err(transport)?;
    if actual != expected_chain_id {
        return Err(SettlementError::WrongChain {
            expected: expected_chain_id,
            actual,
        });
    }
    Ok(provider)
}

impl RpcSettlement {
    /// Uses the settlement contract at `contract` through `provider` (from [`connect`]), sending as `sender`.
    pub fn new(provider: DynProvider, chain_id: u64, sender: Address, contract: Address) -> Self {
        Self {
            provider,
            sender,
            contract,
            chain_id,
            receipt_timeout: Duration::from_secs(300),
        }
    }

    /// Connects and checks the chain id; `signer` may be absent for read-only use.
    pub async fn connect(
        url: &str,
        chain_id: u64,
        signer: Option<PrivateKeySigner>,
        contract: Address,
    ) -> Result<Self, SettlementError> {
        let sender = signer.as_ref().map_or(Address::ZERO, |s| s.address());
        let provider = connect(url, chain_id, signer).await?;
        Ok(Self::new(provider, chain_id, sender, contract))
    }

    /// Deploys a new settlement contract signed by `signer` and returns a client for it. Parameters the chain
    /// cannot honour (a claim window beyond what it looks back: 8,191 blocks with the EIP-2935 history
    /// contract, else 256) are refused before anything is sent ([`SettlementError::Params`]).
    pub async fn deploy(
        url: &str,
        chain_id: u64,
        signer: PrivateKeySigner,
        params: DeployParams,
    ) -> Result<(Self, TxReceipt), SettlementError> {
        let sender = signer.address();
        let provider = connect(url, chain_id, Some(signer)).await?;
        let mut client = Self::new(provider, chain_id, sender, Address::ZERO);
        let history = client.code_at(HISTORY_ADDRESS).await?;
        params.validate(if history.is_empty() {
            BLOCKHASH_WINDOW
        } else {
            HISTORY_WINDOW
        })?;
        let tx = TransactionRequest::default().with_deploy_code(params.deploy_code());
        let receipt = client.send(tx).await?;
        client.contract = receipt.contract_address.ok_or_else(|| {
            SettlementError::Transport("deployment receipt has no contract address".into())
        })?;
        Ok((client, receipt))
    }

    /// How long to wait for a transaction to be mined (default five minutes).
    pub fn with_receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// The chain id checked at connection.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The underlying provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The code deployed at `address` (empty if none).
    pub async fn code_at(&self, address: Address) -> Result<Bytes, SettlementError> {
        self.provider.get_code_at(address).await.map_err(transport)
    }

    /// Deploys `code` (creation code with its constructor arguments) from the sender.
    pub(crate) async fn deploy_code(&self, code: Bytes) -> Result<TxReceipt, SettlementError> {
        self.send(TransactionRequest::default().with_deploy_code(code))
            .await
    }

    async fn send(&self, tx: TransactionRequest) -> Result<TxReceipt, SettlementError> {
        if self.sender == Address::ZERO {
            return Err(SettlementError::Invalid(
                "no settlement key configured: read-only client".into(),
            ));
        }
        let tx = tx.with_from(self.sender);
        let pending = self
            .provider
            .send_transaction(tx)
            .await
            .map_err(transport)?;
        let hash = *pending.tx_hash();
        let deadline = tokio::time::Instant::now() + self.receipt_timeout;
        let mut interval = Duration::from_millis(10);
        let receipt = loop {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(transport)?
            {
                break r;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SettlementError::Transport(format!(
                    "transaction {hash} not mined after {:?}",
                    self.receipt_timeout
                )));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(2));
        };
        if !receipt.status() {
            return Err(SettlementError::Halted(format!(
                "transaction {hash} reverted on chain"
            )));
        }
        tracing::debug!(%hash, gas = receipt.gas_used, "settlement transaction mined");
        Ok(TxReceipt {
            tx_hash: hash,
            block_number: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            gas_price: receipt.effective_gas_price,
            contract_address: receipt.contract_address,
            logs: receipt
                .inner
                .logs()
                .iter()
                .map(|l| l.inner.clone())
                .collect(),
        })
    }
}

impl Settlement for RpcSettlement {
    fn sender(&self) -> Address {
        self.sender
    }

    fn contract(&self) -> Address {
        self.contract
    }

    async fn transact(&self, data: Bytes, value: U256) -> Result<TxReceipt, SettlementError> {
        let tx = TransactionRequest::default()
            .with_to(self.contract)
            .with_input(data)
            .with_value(value);
        self.send(tx).await
    }

    async fn view(&self, data: Bytes) -> Result<Bytes, SettlementError> {
        let tx = TransactionRequest::default()
            .with_from(self.sender)
            .with_to(self.contract)
            .with_input(data);
        self.provider.call(tx).await.map_err(transport)
    }

    async fn block_number(&self) -> Result<u64, SettlementError> {
        self.provider.get_block_number().await.map_err(transport)
    }

    async fn eth_balance(&self, who: Address) -> Result<U256, SettlementError> {
        self.provider.get_balance(who).await.map_err(transport)
    }

    async fn logs(
        &self,
        signature: B256,
        topic: Option<(usize, B256)>,
        from_block: u64,
    ) -> Result<Vec<Log>, SettlementError> {
        let latest = self.block_number().await?;
        let mut out = Vec::new();
        let mut start = from_block;
        while start <= latest {
            let end = (start + LOG_CHUNK - 1).min(latest);
            let mut filter = Filter::new()
                .address(self.contract)
                .event_signature(signature)
                .from_block(start)
                .to_block(end);
            match topic {
                Some((1, t)) => filter = filter.topic1(t),
                Some((2, t)) => filter = filter.topic2(t),
                Some((3, t)) => filter = filter.topic3(t),
                Some((i, _)) => {
                    return Err(SettlementError::Invalid(format!(
                        "no topic {i} in a log filter"
                    )))
                }
                None => {}
            }
            let logs = self.provider.get_logs(&filter).await.map_err(transport)?;
            out.extend(logs.into_iter().map(|l| l.inner));
            start = end + 1;
        }
        Ok(out)
    }
}
