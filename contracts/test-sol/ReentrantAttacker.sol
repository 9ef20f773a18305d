// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {Settlement} from "../sol/Settlement.sol";

/// @title A hostile depositor / payee for the attack tests: it re-enters the settlement contract from its
/// `receive` hook (The DAO's pattern) and counts what the re-entries achieved.
contract ReentrantAttacker {
    Settlement public immutable target;
    /// @notice How many times `receive` tried to re-enter.
    uint256 public reentries;
    /// @notice How many re-entrant calls succeeded (must stay 0 for value-moving calls).
    uint256 public reentrySuccesses;
    /// @notice Total wei received from the target.
    uint256 public received;
    /// @notice The revert data of the last failed re-entry.
    bytes public lastRevert;
    /// @notice Whether `receive` refuses ETH (reverts) instead of re-entering.
    bool public refuse;
    uint256 private immutable maxReentries;
    /// @dev The selector of every failed re-entry, in order.
    bytes4[] private failures;
    /// @dev The last claim this contract submitted, replayed from `receive`.
    bool private haveClaim;
    Settlement.Lottery private savedLottery;
    Settlement.Leaf private savedLeaf;
    bytes32[] private savedProof;
    bytes32 private savedSecret;

    constructor(Settlement target_, uint256 maxReentries_) {
        target = target_;
        maxReentries = maxReentries_;
    }

    function deposit() external payable {
        target.deposit{value: msg.value}();
    }

    function requestWithdrawal(uint96 amount) external {
        target.requestWithdrawal(amount);
    }

    function withdraw() external {
        target.withdraw();
    }

    function setRefuse(bool refuse_) external {
        refuse = refuse_;
    }

    function claim(
        Settlement.Lottery calldata lottery,
        Settlement.Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes32 secret
    ) external {
        _save(lottery, leaf, proof, secret);
        target.claim(lottery, leaf, proof, secret);
    }

    function claimAndWithdraw(
        Settlement.Lottery calldata lottery,
        Settlement.Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes32 secret
    ) external {
        _save(lottery, leaf, proof, secret);
        target.claimAndWithdraw(lottery, leaf, proof, secret);
    }

    /// @notice The selectors of the failed re-entries, in the order they were tried.
    function failedReentries() external view returns (bytes4[] memory) {
        return failures;
    }

    receive() external payable {
        if (refuse) revert("refused");
        received += msg.value;
        if (msg.sender != address(target) || reentries >= maxReentries) return;
        reentries += 1;
        // Try to withdraw again while the first withdrawal (or claim) is still on the stack.
        try target.withdraw() {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
        // Try to start and finish a second withdrawal of the same balance.
        try target.requestWithdrawal(uint96(msg.value)) {
            try target.withdraw() {
                reentrySuccesses += 1;
            } catch (bytes memory err) {
                _failed(err);
            }
        } catch (bytes memory err) {
            _failed(err);
        }
        if (!haveClaim) return;
        // Try to be paid the same lottery again: pushed, then credited.
        try target.claimAndWithdraw(savedLottery, savedLeaf, savedProof, savedSecret) {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
        try target.claim(savedLottery, savedLeaf, savedProof, savedSecret) {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
    }

    function _save(
        Settlement.Lottery calldata lottery,
        Settlement.Leaf calldata leaf,
        bytes32[] calldata proof,
        bytes32 secret
    ) private {
        haveClaim = true;
        savedSecret = secret;
        savedLottery = lottery;
        savedLeaf = leaf;
        savedProof = proof;
    }

    function _failed(bytes memory err) private {
        lastRevert = err;
        failures.push(err.length >= 4 ? bytes4(err) : bytes4(0));
    }
}
