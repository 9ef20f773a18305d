// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title jobmesh worker stake: ETH locked per worker identity, with a time-locked unstake.
/// @notice A worker locks ETH bound to one node identity (`node`: keccak256 of its libp2p PeerId bytes). Requesters
/// read `stakes(worker)` and give staked workers a credibility they do not give fresh, unstaked identities
/// (docs/protocol.md, "Credibility"): a crowd of identities must lock real ETH per identity to matter. Nothing is
/// ever slashed — a wrong result cannot be proven on chain — so a stake buys a Sybil cost and a re-entry delay,
/// not compensation (docs/settlement.md, "Worker stake").
/// Unstaking is two steps: `requestUnstake(amount)` moves `amount` out of the active stake at once (requesters
/// stop counting it), and `withdraw()` pays it out no earlier than `unstakeDelay` blocks later. The node binding
/// is fixed while anything is staked or unlocking; it changes only after everything has been withdrawn, so moving
/// a stake to a new identity takes the full delay.
/// @dev A separate contract from `Settlement` so that a stake can never be committed to a lottery, the settlement
/// bytecode (and its deployments) stay unchanged, and each contract stays small. Written against the DAO bug
/// class as `Settlement` is: checks-effects-interactions (the only external call is the last statement of
/// `withdraw`, after every state change and event) and a transient-storage reentrancy lock on every function that
/// writes state.
contract Stake {
    /// @notice One worker's stake, in two storage slots.
    struct Account {
        uint96 amount; // active stake: what requesters count
        uint96 unlocking; // requested for withdrawal, no longer active
        uint64 unlockBlock; // first block at which `unlocking` may be withdrawn
        bytes32 node; // the node identity the stake is bound to
    }

    /// @notice Blocks between an unstake request and its withdrawal (below 2^64).
    uint256 public immutable unstakeDelay;

    mapping(address => Account) public stakes;

    uint256 private transient locked;

    event Staked(address indexed worker, bytes32 indexed node, uint256 amount, uint256 total);
    event UnstakeRequested(address indexed worker, uint256 amount, uint256 unlockBlock);
    event Unstaked(address indexed worker, uint256 amount);

    error ZeroAmount();
    error ZeroNode();
    error AmountTooLarge();
    error NodeMismatch(bytes32 bound, bytes32 given);
    error ExceedsStake(uint256 staked, uint256 requested);
    error UnstakePending(uint256 amount, uint256 unlockBlock);
    error NothingUnlocking();
    error UnstakeLocked(uint256 unlockBlock);
    error TransferFailed();
    error Reentrancy();
    error UnstakeDelayTooLong(uint256 unstakeDelay);

    /// @dev Refuses a delay that would not fit the account's `uint64` unlock block.
    constructor(uint256 unstakeDelay_) {
        if (unstakeDelay_ > type(uint64).max) revert UnstakeDelayTooLong(unstakeDelay_);
        unstakeDelay = unstakeDelay_;
    }

    modifier nonReentrant() {
        if (locked != 0) revert Reentrancy();
        locked = 1;
        _;
        locked = 0;
    }

    /// @notice Adds the sent value to the sender's active stake, bound to `node`. The first stake of an empty
    /// account binds it; later stakes must name the same node until everything has been withdrawn.
    function stake(bytes32 node) external payable nonReentrant {
        if (msg.value == 0) revert ZeroAmount();
        if (node == bytes32(0)) revert ZeroNode();
        Account storage a = stakes[msg.sender];
        if (a.amount == 0 && a.unlocking == 0) {
            a.node = node;
        } else if (a.node != node) {
            revert NodeMismatch(a.node, node);
        }
        uint256 total = uint256(a.amount) + msg.value;
        if (total > type(uint96).max) revert AmountTooLarge();
        a.amount = uint96(total);
        emit Staked(msg.sender, node, msg.value, total);
    }

    /// @notice Takes `amount` out of the active stake now and starts its time lock. One request at a time: a
    /// second one before the first is withdrawn reverts (`UnstakePending`).
    function requestUnstake(uint96 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Account storage a = stakes[msg.sender];
        if (a.unlocking != 0) revert UnstakePending(a.unlocking, a.unlockBlock);
        if (amount > a.amount) revert ExceedsStake(a.amount, amount);
        uint64 unlockBlock = uint64(block.number + unstakeDelay);
        unchecked {
            a.amount -= amount;
        }
        a.unlocking = amount;
        a.unlockBlock = unlockBlock;
        emit UnstakeRequested(msg.sender, amount, unlockBlock);
    }

    /// @notice Pays the requested amount to the sender once its time lock has passed.
    function withdraw() external nonReentrant {
        Account storage a = stakes[msg.sender];
        uint96 amount = a.unlocking;
        // Checks
        if (amount == 0) revert NothingUnlocking();
        if (block.number < a.unlockBlock) revert UnstakeLocked(a.unlockBlock);
        // Effects
        a.unlocking = 0;
        a.unlockBlock = 0;
        emit Unstaked(msg.sender, amount);
        // Interaction (last; nothing is read or written after it)
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice The active stake of `worker` and the node it is bound to (what a requester checks against the
    /// offer's PeerId).
    function stakeOf(address worker) external view returns (uint96 amount, bytes32 node) {
        Account storage a = stakes[worker];
        return (a.amount, a.node);
    }
}
