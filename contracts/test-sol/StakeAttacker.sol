// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {Stake} from "../sol/Stake.sol";

/// @title A hostile staker for the attack tests: it re-enters the stake contract from its `receive` hook (The
/// DAO's pattern) and records what the re-entries achieved.
contract StakeAttacker {
    Stake public immutable target;
    /// @notice How many times `receive` tried to re-enter.
    uint256 public reentries;
    /// @notice How many re-entrant calls succeeded (must stay 0).
    uint256 public reentrySuccesses;
    /// @notice Total wei received from the target.
    uint256 public received;
    /// @notice Whether `receive` refuses ETH (reverts) instead of re-entering.
    bool public refuse;
    uint256 private immutable maxReentries;
    bytes32 private node;
    /// @dev The selector of every failed re-entry, in order.
    bytes4[] private failures;

    constructor(Stake target_, uint256 maxReentries_) {
        target = target_;
        maxReentries = maxReentries_;
    }

    function stake(bytes32 node_) external payable {
        node = node_;
        target.stake{value: msg.value}(node_);
    }

    function requestUnstake(uint96 amount) external {
        target.requestUnstake(amount);
    }

    function withdraw() external {
        target.withdraw();
    }

    function setRefuse(bool refuse_) external {
        refuse = refuse_;
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
        // Withdraw the same unlocking amount again while the first withdrawal is still on the stack.
        try target.withdraw() {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
        // Move more of the active stake out and withdraw it at once, skipping the time lock.
        try target.requestUnstake(1) {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
        // Stake the payout straight back (the books would count it twice if this ran mid-withdrawal).
        try target.stake{value: msg.value}(node) {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            _failed(err);
        }
    }

    function _failed(bytes memory err) private {
        failures.push(err.length >= 4 ? bytes4(err) : bytes4(0));
    }
}
