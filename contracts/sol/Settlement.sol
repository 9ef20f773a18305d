// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title jobmesh settlement: time-locked deposits and probabilistic lottery nanopayments.
/// @notice A payer deposits ETH, then commits lotteries. A lottery pays `total` wei to exactly one of its
/// payees, chosen after `drawBlock` by a point drawn uniformly in [0, total) from the draw block's hash; each
/// payee holds the interval [start, start + length) of its leaf in a Merkle tree whose root is committed.
/// @dev Written against the bug class that drained The DAO:
///  - checks-effects-interactions everywhere; the only external calls are the two ETH transfers to
///    `msg.sender`, each the last statement of its function (`withdraw`, `claimAndWithdraw`), after every state
///    change and event, and no state is read after them;
///  - `claim` only credits the winner's deposit balance (anyone may submit it); the one function that pushes
///    winnings, `claimAndWithdraw`, pays only the winning payee itself, and only once its lottery is settled;
///  - one transient-storage reentrancy lock shared by `withdraw` and `claimAndWithdraw` as a second line of
///    defence (a re-entered `claim` meets the settled lane: `AlreadySettled`).
/// A lottery is identified by `keccak256(abi.encode(Lottery))`; its state lives in one of the payer's
/// 65,536 "lanes" (`uint16(nonce)`), so a payer that reuses lanes rewrites a warm, non-zero slot per commit
/// instead of allocating a fresh one. A lane holds the lottery id with bit 0 set while pending, cleared once
/// the lottery is settled (claimed or reclaimed).
contract Settlement {
    /// @notice The description of a lottery, committed by hash. Field order is the hash preimage order.
    struct Lottery {
        address payer;
        uint64 nonce;
        uint96 total;
        bytes32 root;
        uint64 drawBlock;
    }

    /// @notice One payee's leaf: it wins when the drawn point lies in [start, start + length).
    struct Leaf {
        address payee;
        uint96 start;
        uint96 length;
    }

    /// @notice What `commitMany` takes per lottery (the payer is the sender).
    struct Commitment {
        uint64 nonce;
        uint96 total;
        bytes32 root;
        uint64 drawBlock;
    }

    /// @notice A deposit account, packed in one storage slot.
    struct Account {
        uint96 balance; // free balance: deposits + winnings - committed - withdrawn
        uint96 unlocking; // amount requested for withdrawal
        uint64 unlockBlock; // first block at which `unlocking` may be withdrawn
    }

    /// @notice EIP-2935 block-hash history contract (last 8,191 block hashes), where the chain has it.
    address public constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    /// @notice Blocks the BLOCKHASH opcode looks back.
    uint256 public constant BLOCKHASH_WINDOW = 256;
    /// @notice Blocks the EIP-2935 history contract looks back.
    uint256 public constant HISTORY_WINDOW = 8191;

    /// @notice Blocks between a withdrawal request and the withdrawal.
    uint256 public withdrawDelay;
    /// @notice Blocks after its draw during which a lottery can only be claimed, not reclaimed by its payer.
    uint256 public claimWindow;

    mapping(address => Account) public accounts;
    mapping(address => mapping(uint16 => bytes32)) public lanes;
    /// @notice Draw hashes recorded by `recordDrawHash` while they were still obtainable.
    mapping(uint256 => bytes32) public recordedHashes;
    /// @notice The new draw block of a lottery whose original draw hash became unobtainable.
    mapping(bytes32 => uint64) public redraws;

    uint256 private transient locked;

    event Deposited(address indexed account, uint256 amount);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 unlockBlock);
    event Withdrawn(address indexed account, uint256 amount);
    event LotteryCommitted(
        bytes32 indexed id, address indexed payer, uint64 nonce, uint96 total, bytes32 root, uint64 drawBlock
    );
    event LotteryClaimed(bytes32 indexed id, address indexed winner, uint256 amount);
    event LotteryReclaimed(bytes32 indexed id, address indexed payer, uint256 amount);
    event LotteryRedrawn(bytes32 indexed id, uint64 drawBlock);
    event DrawHashRecorded(uint256 indexed blockNumber, bytes32 hash);

    error ZeroAmount();
    error AmountTooLarge();
    error InvalidLottery();
    error ExceedsFreeBalance(uint256 available, uint256 requested);
    error NoWithdrawalRequested();
    error WithdrawalLocked(uint256 unlockBlock);
    error TransferFailed();
    error Reentrancy();
    error DrawBlockNotInFuture(uint256 drawBlock, uint256 currentBlock);
    error LaneBusy(uint16 lane);
    error UnknownLottery(bytes32 id);
    error AlreadySettled(bytes32 id);
    error DrawNotReached(uint256 drawBlock);
    error DrawHashUnavailable(uint256 drawBlock);
    error DrawHashAvailable(uint256 drawBlock);
    error InvalidProof();
    error NotWinner(uint256 point, uint256 start, uint256 end);
    error ClaimWindowOpen(uint256 untilBlock);
    error NotPayee(address caller, address payee);

    constructor(uint256 withdrawDelay_, uint256 claimWindow_) {
        withdrawDelay = withdrawDelay_;
        claimWindow = claimWindow_;
    }

    modifier nonReentrant() {
        if (locked != 0) revert Reentrancy();
        locked = 1;
        _;
        locked = 0;
    }

    // ------------------------------------------------------------------------------------------ deposits

    /// @notice Adds the sent value to the sender's free balance.
    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        uint256 balance = uint256(a.balance) + msg.value;
        if (balance > type(uint96).max) revert AmountTooLarge();
        a.balance = uint96(balance);
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Starts the time lock for withdrawing `amount` (replacing any earlier request).
    function requestWithdrawal(uint96 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = accounts[msg.sender];
        if (amount > a.balance) revert ExceedsFreeBalance(a.balance, amount);
        uint64 unlockBlock = uint64(block.number + withdrawDelay);
        a.unlocking = amount;
        a.unlockBlock = unlockBlock;
        emit WithdrawalRequested(msg.sender, amount, unlockBlock);
    }

    /// @notice Pays out the requested amount once unlocked, if it is still free (not committed to lotteries).
    function withdraw() external nonReentrant {
        Account storage a = accounts[msg.sender];
        uint96 amount = a.unlocking;
        // Checks
        if (amount == 0) revert NoWithdrawalRequested();
        if (block.number < a.unlockBlock) revert WithdrawalLocked(a.unlockBlock);
        if (amount > a.balance) revert ExceedsFreeBalance(a.balance, amount);
        // Effects
        a.balance -= amount;
        a.unlocking = 0;
        a.unlockBlock = 0;
        emit Withdrawn(msg.sender, amount);
        // Interaction (last; nothing is read or written after it)
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ----------------------------------------------------------------------------------------- lotteries

    /// @notice Commits one lottery paid by the sender, moving `total` from its free balance into the lottery.
    function commit(uint64 nonce, uint96 total, bytes32 root, uint64 drawBlock) external {
        Account storage a = accounts[msg.sender];
        uint96 balance = a.balance;
        if (total > balance) revert ExceedsFreeBalance(balance, total);
        _commit(nonce, total, root, drawBlock);
        unchecked {
            a.balance = balance - total;
        }
    }

    /// @notice Commits several lotteries at once (one balance update).
    function commitMany(Commitment[] calldata commitments) external {
        Account storage a = accounts[msg.sender];
        uint96 balance = a.balance;
        uint256 sum;
        for (uint256 i = 0; i < commitments.length; ++i) {
            Commitment calldata c = commitments[i];
            sum += c.total;
            _commit(c.nonce, c.total, c.root, c.drawBlock);
        }
        if (sum > balance) revert ExceedsFreeBalance(balance, sum);
        unchecked {
            a.balance = balance - uint96(sum);
        }
    }

    function _commit(uint64 nonce, uint96 total, bytes32 root, uint64 drawBlock) private {
        if (total == 0) revert InvalidLottery();
        if (drawBlock <= block.number) revert DrawBlockNotInFuture(drawBlock, block.number);
        uint16 lane = uint16(nonce);
        mapping(uint16 => bytes32) storage payerLanes = lanes[msg.sender];
        if (uint256(payerLanes[lane]) & 1 != 0) revert LaneBusy(lane);
        bytes32 id = keccak256(abi.encode(msg.sender, nonce, total, root, drawBlock));
        payerLanes[lane] = id | bytes32(uint256(1));
        emit LotteryCommitted(id, msg.sender, nonce, total, root, drawBlock);
    }

    /// @notice Credits `lottery.total` to the winning payee's deposit balance (anyone may submit the claim).
    function claim(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof) external {
        (bytes32 id, mapping(uint16 => bytes32) storage payerLanes) = _checkClaim(lottery, leaf, proof);
        payerLanes[uint16(lottery.nonce)] = _settled(id);
        accounts[leaf.payee].balance += lottery.total;
        emit LotteryClaimed(id, leaf.payee, lottery.total);
    }

    /// @notice Pays `lottery.total` straight to the winning payee, which must be the sender: one transaction, no
    /// deposit account, no withdrawal time lock (winnings were never the winner's collateral).
    function claimAndWithdraw(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof)
        external
        nonReentrant
    {
        // Checks
        if (msg.sender != leaf.payee) revert NotPayee(msg.sender, leaf.payee);
        (bytes32 id, mapping(uint16 => bytes32) storage payerLanes) = _checkClaim(lottery, leaf, proof);
        // Effects
        uint256 amount = lottery.total;
        payerLanes[uint16(lottery.nonce)] = _settled(id);
        emit LotteryClaimed(id, msg.sender, amount);
        // Interaction (last; nothing is read or written after it)
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Returns an unclaimed lottery's value to its payer once the claim window after its (obtainable)
    /// draw has passed. A payer cannot profit from letting the draw hash lapse: while it is unobtainable there
    /// is no reclaim, only `redraw`.
    function reclaim(Lottery calldata lottery) external {
        bytes32 id = lotteryId(lottery);
        mapping(uint16 => bytes32) storage payerLanes = lanes[lottery.payer];
        uint16 lane = uint16(lottery.nonce);
        _requirePending(payerLanes[lane], id);
        uint256 drawBlock = redraws[id];
        if (drawBlock == 0) drawBlock = lottery.drawBlock;
        uint256 until = drawBlock + claimWindow;
        if (block.number <= until) revert ClaimWindowOpen(until);
        if (obtainableHash(drawBlock) == bytes32(0)) revert DrawHashUnavailable(drawBlock);

        payerLanes[lane] = _settled(id);
        accounts[lottery.payer].balance += lottery.total;
        emit LotteryReclaimed(id, lottery.payer, lottery.total);
    }

    /// @notice Stores a block hash while it is still obtainable, so that draws from that block stay
    /// claimable (and reclaimable) after the BLOCKHASH / history windows. Anyone may call it.
    function recordDrawHash(uint256 blockNumber) external {
        if (recordedHashes[blockNumber] != bytes32(0)) return;
        if (blockNumber >= block.number) revert DrawNotReached(blockNumber);
        bytes32 h = obtainableHash(blockNumber);
        if (h == bytes32(0)) revert DrawHashUnavailable(blockNumber);
        recordedHashes[blockNumber] = h;
        emit DrawHashRecorded(blockNumber, h);
    }

    /// @notice Re-anchors a pending lottery whose draw hash is no longer obtainable (nobody recorded it) to the
    /// next block. Anyone may call it; the caller picks only when, never the outcome.
    function redraw(Lottery calldata lottery) external {
        bytes32 id = lotteryId(lottery);
        _requirePending(lanes[lottery.payer][uint16(lottery.nonce)], id);
        uint256 drawBlock = redraws[id];
        if (drawBlock == 0) drawBlock = lottery.drawBlock;
        if (drawBlock >= block.number) revert DrawNotReached(drawBlock);
        if (obtainableHash(drawBlock) != bytes32(0)) revert DrawHashAvailable(drawBlock);
        uint64 next = uint64(block.number + 1);
        redraws[id] = next;
        emit LotteryRedrawn(id, next);
    }

    // ---------------------------------------------------------------------------------------------- views

    /// @notice The id of a lottery: the hash of its description.
    function lotteryId(Lottery calldata lottery) public pure returns (bytes32) {
        return keccak256(abi.encode(lottery.payer, lottery.nonce, lottery.total, lottery.root, lottery.drawBlock));
    }

    /// @notice The drawn point in [0, total) for a lottery id and its draw hash.
    function drawPoint(bytes32 id, bytes32 drawHash, uint256 total) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(id, drawHash))) % total;
    }

    /// @notice The hash of a past block if it can still be obtained (recorded, BLOCKHASH or EIP-2935), else 0.
    function obtainableHash(uint256 blockNumber) public view returns (bytes32 h) {
        if (blockNumber >= block.number) return bytes32(0);
        uint256 age = block.number - blockNumber;
        if (age <= BLOCKHASH_WINDOW) {
            h = blockhash(blockNumber);
            if (h != bytes32(0)) return h;
        }
        h = recordedHashes[blockNumber];
        if (h != bytes32(0)) return h;
        if (age <= HISTORY_WINDOW && HISTORY.code.length != 0) {
            (bool ok, bytes memory ret) = HISTORY.staticcall(abi.encode(blockNumber));
            if (ok && ret.length == 32) h = abi.decode(ret, (bytes32));
        }
    }

    /// @notice The effective draw block of a lottery (its own, or the block it was redrawn to).
    function drawBlockOf(Lottery calldata lottery) external view returns (uint256) {
        uint256 b = redraws[lotteryId(lottery)];
        return b == 0 ? lottery.drawBlock : b;
    }

    /// @notice 0 = unknown (never committed, or its lane was reused), 1 = pending, 2 = settled.
    function lotteryState(Lottery calldata lottery) external view returns (uint8) {
        bytes32 id = lotteryId(lottery);
        bytes32 v = lanes[lottery.payer][uint16(lottery.nonce)];
        if (v == (id | bytes32(uint256(1)))) return 1;
        if (v == _settled(id)) return 2;
        return 0;
    }

    // ---------------------------------------------------------------------------------------------- private

    /// @dev Every check of a claim: the lottery is pending, its draw hash is obtainable, the leaf is in its tree
    /// and the drawn point lies in the leaf's interval. Returns the lottery id and the payer's lanes (to settle
    /// it). Shared by `claim` and `claimAndWithdraw`; writes nothing.
    function _checkClaim(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof)
        private
        view
        returns (bytes32 id, mapping(uint16 => bytes32) storage payerLanes)
    {
        id = lotteryId(lottery);
        payerLanes = lanes[lottery.payer];
        _requirePending(payerLanes[uint16(lottery.nonce)], id);
        bytes32 drawHash = _currentDrawHash(id, lottery.drawBlock);

        bytes32 node = keccak256(abi.encode(leaf.payee, leaf.start, leaf.length));
        for (uint256 i = 0; i < proof.length; ++i) {
            node = _hashPair(node, proof[i]);
        }
        if (node != lottery.root) revert InvalidProof();

        uint256 point = drawPoint(id, drawHash, lottery.total);
        uint256 end = uint256(leaf.start) + uint256(leaf.length);
        if (point < leaf.start || point >= end) revert NotWinner(point, leaf.start, end);
    }

    function _requirePending(bytes32 laneValue, bytes32 id) private pure {
        if (laneValue != (id | bytes32(uint256(1)))) {
            if (laneValue == _settled(id)) revert AlreadySettled(id);
            revert UnknownLottery(id);
        }
    }

    function _settled(bytes32 id) private pure returns (bytes32) {
        return id & ~bytes32(uint256(1));
    }

    /// @dev The draw hash of a pending lottery: from its draw block, or from its redraw block once the original
    /// one was unobtainable. Reverts before the draw and while no hash can be obtained.
    function _currentDrawHash(bytes32 id, uint256 drawBlock) private view returns (bytes32 h) {
        if (drawBlock >= block.number) revert DrawNotReached(drawBlock);
        h = obtainableHash(drawBlock);
        if (h != bytes32(0)) return h;
        uint256 redrawn = redraws[id];
        if (redrawn == 0) revert DrawHashUnavailable(drawBlock);
        if (redrawn >= block.number) revert DrawNotReached(redrawn);
        h = obtainableHash(redrawn);
        if (h == bytes32(0)) revert DrawHashUnavailable(redrawn);
    }

    /// @dev Sorted-pair hashing (the order of siblings is not part of the proof).
    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 r) {
        assembly ("memory-safe") {
            switch lt(a, b)
            case 1 {
                mstore(0x00, a)
                mstore(0x20, b)
            }
            default {
                mstore(0x00, b)
                mstore(0x20, a)
            }
            r := keccak256(0x00, 0x40)
        }
    }
}
