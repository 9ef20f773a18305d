// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title jobmesh settlement: time-locked deposits and probabilistic lottery nanopayments.
/// @notice A payer deposits ETH, then commits lotteries. A lottery pays `total` wei to exactly one of its
/// payees, chosen by a point drawn uniformly in [0, total) from the draw block's hash mixed with a payer secret
/// committed (by hash) in the lottery: no single party — payer, payee or block builder — picks the winner
/// (docs/settlement.md, "Randomness"). Each payee holds the interval [start, start + length) of its leaf in a
/// Merkle tree whose root is committed. The winner claims within `claimWindow` blocks of the draw with the
/// secret the payer handed to the payees off chain; if nobody does (the payer withheld its secret), every
/// payee may then take exactly its interval's length: the payer never gets a committed lottery back.
/// @dev Written against the bug class that drained The DAO:
///  - checks-effects-interactions everywhere; the only external calls are the two ETH transfers to
///    `msg.sender`, each the last statement of its function (`withdraw`, `claimAndWithdraw`), after every state
///    change and event, and no state is read after them;
///  - `claim` and `claimShare` only credit deposit balances (anyone may submit them); the one function that
///    pushes winnings, `claimAndWithdraw`, pays only the winning payee itself, and only once its lottery is
///    settled;
///  - one transient-storage reentrancy lock shared by `withdraw` and `claimAndWithdraw` as a second line of
///    defence (a re-entered `claim` meets the settled lane: `AlreadySettled`).
/// A lottery is identified by `keccak256(abi.encode(Lottery))`; its state lives in one of the payer's
/// 65,536 "lanes" (`uint16(nonce)`), so a payer that reuses lanes rewrites a warm, non-zero slot per commit
/// instead of allocating a fresh one. A lane holds the lottery id with bit 0 set while pending, cleared once
/// the lottery is settled (claimed by its winner, or every share paid).
contract Settlement {
    /// @notice The description of a lottery, committed by hash. Field order is the hash preimage order.
    struct Lottery {
        address payer;
        uint64 nonce;
        uint96 total;
        bytes32 root;
        uint64 drawBlock;
        /// keccak256 of the payer's 32-byte secret, revealed to the payees off chain after the draw block.
        bytes32 secretHash;
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
        bytes32 secretHash;
    }

    /// @notice A deposit account, packed in one storage slot.
    struct Account {
        uint96 balance; // free balance: deposits + winnings + shares - committed - withdrawn
        uint96 unlocking; // amount requested for withdrawal
        uint64 unlockBlock; // first block at which `unlocking` may be withdrawn
    }

    /// @notice EIP-2935 block-hash history contract (last 8,191 block hashes), where the chain has it.
    address public constant HISTORY = 0x0000F90827F1C53a10cb7A02335B175320002935;
    /// @notice Blocks the BLOCKHASH opcode looks back.
    uint256 public constant BLOCKHASH_WINDOW = 256;
    /// @notice Blocks the EIP-2935 history contract looks back.
    uint256 public constant HISTORY_WINDOW = 8191;

    /// @notice Blocks between a withdrawal request and the withdrawal (below 2^64).
    uint256 public immutable withdrawDelay;
    /// @notice Blocks after its draw during which the winner claims the whole lottery; afterwards each payee
    /// may claim its share. At least 1 and at most what the chain looks back (so the draw hash is obtainable
    /// for the whole window: nothing to record, nothing to re-roll).
    uint256 public immutable claimWindow;
    /// @notice Fewest blocks from a lottery's commit to its draw block (at least 1, below 2^64): payees see
    /// every commit that long before its value can leave.
    uint256 public immutable minDrawDelay;

    mapping(address => Account) public accounts;
    mapping(address => mapping(uint16 => bytes32)) public lanes;
    /// @notice Whether a leaf's share was paid: key `keccak256(abi.encode(lotteryId, leafHash))`.
    mapping(bytes32 => bool) public sharePaid;
    /// @notice Sum of the shares paid out of a lottery (never above its total).
    mapping(bytes32 => uint256) public sharesPaidOut;

    uint256 private transient locked;

    event Deposited(address indexed account, uint256 amount);
    event WithdrawalRequested(address indexed account, uint256 amount, uint256 unlockBlock);
    event Withdrawn(address indexed account, uint256 amount);
    event LotteryCommitted(
        bytes32 indexed id,
        address indexed payer,
        uint64 nonce,
        uint96 total,
        bytes32 root,
        uint64 drawBlock,
        bytes32 secretHash
    );
    event LotteryClaimed(bytes32 indexed id, address indexed winner, uint256 amount);
    event ShareClaimed(bytes32 indexed id, address indexed payee, uint256 amount);

    error ZeroAmount();
    error AmountTooLarge();
    error InvalidLottery();
    error ExceedsFreeBalance(uint256 available, uint256 requested);
    error NoWithdrawalRequested();
    error WithdrawalLocked(uint256 unlockBlock);
    error TransferFailed();
    error Reentrancy();
    error DrawTooSoon(uint256 drawBlock, uint256 earliest);
    error LaneBusy(uint16 lane);
    error UnknownLottery(bytes32 id);
    error AlreadySettled(bytes32 id);
    error DrawNotReached(uint256 drawBlock);
    error DrawHashUnavailable(uint256 drawBlock);
    error InvalidProof();
    error NotWinner(uint256 point, uint256 start, uint256 end);
    error ClaimWindowOpen(uint256 untilBlock);
    error ClaimWindowClosed(uint256 closedAfter);
    error NotPayee(address caller, address payee);
    error WrongSecret();
    error PayerIsPayee(address payer);
    error InvalidShare(bytes32 id);
    error ShareAlreadyPaid(bytes32 id, address payee);
    error WithdrawDelayTooLong(uint256 withdrawDelay);
    error ClaimWindowZero();
    error ClaimWindowBeyondLookback(uint256 claimWindow, uint256 lookback);
    error MinDrawDelayInvalid(uint256 minDrawDelay);

    /// @dev Refuses parameters that would be truncated or break a promise: a withdrawal delay that does not
    /// fit the account's `uint64` unlock block, an empty claim window, a claim window longer than the draw hash
    /// stays obtainable (`BLOCKHASH_WINDOW`, or `HISTORY_WINDOW` where the EIP-2935 contract exists), a draw
    /// delay of zero or beyond `uint64`.
    constructor(uint256 withdrawDelay_, uint256 claimWindow_, uint256 minDrawDelay_) {
        if (withdrawDelay_ > type(uint64).max) revert WithdrawDelayTooLong(withdrawDelay_);
        if (claimWindow_ == 0) revert ClaimWindowZero();
        uint256 lookback = HISTORY.code.length != 0 ? HISTORY_WINDOW : BLOCKHASH_WINDOW;
        if (claimWindow_ > lookback) revert ClaimWindowBeyondLookback(claimWindow_, lookback);
        if (minDrawDelay_ == 0 || minDrawDelay_ > type(uint64).max) revert MinDrawDelayInvalid(minDrawDelay_);
        withdrawDelay = withdrawDelay_;
        claimWindow = claimWindow_;
        minDrawDelay = minDrawDelay_;
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
    /// `secretHash` is keccak256 of a 32-byte secret only the payer knows until it hands it to the payees.
    function commit(uint64 nonce, uint96 total, bytes32 root, uint64 drawBlock, bytes32 secretHash) external {
        Account storage a = accounts[msg.sender];
        uint96 balance = a.balance;
        if (total > balance) revert ExceedsFreeBalance(balance, total);
        _commit(nonce, total, root, drawBlock, secretHash);
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
            _commit(c.nonce, c.total, c.root, c.drawBlock, c.secretHash);
        }
        if (sum > balance) revert ExceedsFreeBalance(balance, sum);
        unchecked {
            a.balance = balance - uint96(sum);
        }
    }

    function _commit(uint64 nonce, uint96 total, bytes32 root, uint64 drawBlock, bytes32 secretHash) private {
        if (total == 0) revert InvalidLottery();
        uint256 earliest = block.number + minDrawDelay;
        if (drawBlock < earliest) revert DrawTooSoon(drawBlock, earliest);
        uint16 lane = uint16(nonce);
        mapping(uint16 => bytes32) storage payerLanes = lanes[msg.sender];
        if (uint256(payerLanes[lane]) & 1 != 0) revert LaneBusy(lane);
        bytes32 id = keccak256(abi.encode(msg.sender, nonce, total, root, drawBlock, secretHash));
        payerLanes[lane] = id | bytes32(uint256(1));
        emit LotteryCommitted(id, msg.sender, nonce, total, root, drawBlock, secretHash);
    }

    /// @notice Credits `lottery.total` to the winning payee's deposit balance (anyone may submit the claim),
    /// within the claim window, with the payer's secret.
    function claim(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof, bytes32 secret)
        external
    {
        (bytes32 id, mapping(uint16 => bytes32) storage payerLanes) = _checkClaim(lottery, leaf, proof, secret);
        payerLanes[uint16(lottery.nonce)] = _settled(id);
        accounts[leaf.payee].balance += lottery.total;
        emit LotteryClaimed(id, leaf.payee, lottery.total);
    }

    /// @notice Pays `lottery.total` straight to the winning payee, which must be the sender: one transaction, no
    /// deposit account, no withdrawal time lock (winnings were never the winner's collateral).
    function claimAndWithdraw(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof, bytes32 secret)
        external
        nonReentrant
    {
        // Checks
        if (msg.sender != leaf.payee) revert NotPayee(msg.sender, leaf.payee);
        (bytes32 id, mapping(uint16 => bytes32) storage payerLanes) = _checkClaim(lottery, leaf, proof, secret);
        // Effects
        uint256 amount = lottery.total;
        payerLanes[uint16(lottery.nonce)] = _settled(id);
        emit LotteryClaimed(id, msg.sender, amount);
        // Interaction (last; nothing is read or written after it)
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice After the claim window of a lottery nobody won (its payer withheld the secret, or its winner did
    /// not claim), credits one payee exactly its interval's length (anyone may submit it). The lottery is
    /// settled once every share is paid; its payer never gets any of it back.
    function claimShare(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof) external {
        bytes32 id = lotteryId(lottery);
        mapping(uint16 => bytes32) storage payerLanes = lanes[lottery.payer];
        uint16 lane = uint16(lottery.nonce);
        _requirePending(payerLanes[lane], id);
        uint256 until = uint256(lottery.drawBlock) + claimWindow;
        if (block.number <= until) revert ClaimWindowOpen(until);
        if (leaf.payee == lottery.payer) revert PayerIsPayee(lottery.payer);
        bytes32 leafHash = _leafHash(leaf);
        if (_root(leafHash, proof) != lottery.root) revert InvalidProof();
        bytes32 key = keccak256(abi.encode(id, leafHash));
        if (sharePaid[key]) revert ShareAlreadyPaid(id, leaf.payee);
        uint256 paid = sharesPaidOut[id] + leaf.length;
        if (leaf.length == 0 || uint256(leaf.start) + leaf.length > lottery.total || paid > lottery.total) {
            revert InvalidShare(id);
        }

        sharePaid[key] = true;
        sharesPaidOut[id] = paid;
        if (paid == lottery.total) payerLanes[lane] = _settled(id);
        accounts[leaf.payee].balance += leaf.length;
        emit ShareClaimed(id, leaf.payee, leaf.length);
    }

    // ---------------------------------------------------------------------------------------------- views

    /// @notice The id of a lottery: the hash of its description.
    function lotteryId(Lottery calldata lottery) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                lottery.payer, lottery.nonce, lottery.total, lottery.root, lottery.drawBlock, lottery.secretHash
            )
        );
    }

    /// @notice The drawn point in [0, total) for a lottery id, its draw hash and the payer's secret.
    function drawPoint(bytes32 id, bytes32 drawHash, bytes32 secret, uint256 total) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(id, drawHash, secret))) % total;
    }

    /// @notice The hash of a past block if it can still be obtained (BLOCKHASH or EIP-2935), else 0.
    function obtainableHash(uint256 blockNumber) public view returns (bytes32 h) {
        if (blockNumber >= block.number) return bytes32(0);
        uint256 age = block.number - blockNumber;
        if (age <= BLOCKHASH_WINDOW) {
            h = blockhash(blockNumber);
            if (h != bytes32(0)) return h;
        }
        if (age <= HISTORY_WINDOW && HISTORY.code.length != 0) {
            (bool ok, bytes memory ret) = HISTORY.staticcall(abi.encode(blockNumber));
            if (ok && ret.length == 32) h = abi.decode(ret, (bytes32));
        }
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

    /// @dev Every check of a claim: the lottery is pending, the draw block passed and the claim window is open
    /// (so its hash is obtainable), the secret is the committed one, the leaf is not the payer's and is in the
    /// tree, and the drawn point lies in the leaf's interval. Returns the lottery id and the payer's lanes (to
    /// settle it). Shared by `claim` and `claimAndWithdraw`; writes nothing.
    function _checkClaim(Lottery calldata lottery, Leaf calldata leaf, bytes32[] calldata proof, bytes32 secret)
        private
        view
        returns (bytes32 id, mapping(uint16 => bytes32) storage payerLanes)
    {
        id = lotteryId(lottery);
        payerLanes = lanes[lottery.payer];
        _requirePending(payerLanes[uint16(lottery.nonce)], id);
        uint256 drawBlock = lottery.drawBlock;
        if (drawBlock >= block.number) revert DrawNotReached(drawBlock);
        if (block.number > drawBlock + claimWindow) revert ClaimWindowClosed(drawBlock + claimWindow);
        if (keccak256(abi.encode(secret)) != lottery.secretHash) revert WrongSecret();
        if (leaf.payee == lottery.payer) revert PayerIsPayee(lottery.payer);
        bytes32 drawHash = obtainableHash(drawBlock);
        if (drawHash == bytes32(0)) revert DrawHashUnavailable(drawBlock);
        if (_root(_leafHash(leaf), proof) != lottery.root) revert InvalidProof();

        uint256 point = drawPoint(id, drawHash, secret, lottery.total);
        uint256 end = uint256(leaf.start) + uint256(leaf.length);
        if (point < leaf.start || point >= end) revert NotWinner(point, leaf.start, end);
    }

    function _leafHash(Leaf calldata leaf) private pure returns (bytes32) {
        return keccak256(abi.encode(leaf.payee, leaf.start, leaf.length));
    }

    /// @dev Folds a Merkle proof onto a leaf hash.
    function _root(bytes32 node, bytes32[] calldata proof) private pure returns (bytes32) {
        for (uint256 i = 0; i < proof.length; ++i) {
            node = _hashPair(node, proof[i]);
        }
        return node;
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
