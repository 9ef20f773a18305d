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
    uint256 private immutable maxReentries;

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

    function claim(Settlement.Lottery calldata lottery, Settlement.Leaf calldata leaf, bytes32[] calldata proof)
        external
    {
        target.claim(lottery, leaf, proof);
    }

    receive() external payable {
        received += msg.value;
        if (msg.sender != address(target) || reentries >= maxReentries) return;
        reentries += 1;
        // Try to withdraw again while the first withdrawal is still on the stack.
        try target.withdraw() {
            reentrySuccesses += 1;
        } catch (bytes memory err) {
            lastRevert = err;
        }
        // Try to start and finish a second withdrawal of the same balance.
        try target.requestWithdrawal(uint96(msg.value)) {
            try target.withdraw() {
                reentrySuccesses += 1;
            } catch (bytes memory err) {
                lastRevert = err;
            }
        } catch (bytes memory err) {
            lastRevert = err;
        }
    }
}
