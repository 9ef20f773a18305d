#!/usr/bin/env node
// Compiles the settlement contracts with the pinned npm `solc` (standard JSON) and writes foundry-style
// artifacts (abi, bytecode, deployedBytecode) to contracts/artifacts/, or to --out DIR.
// Usage: node contracts/scripts/build.js [--out DIR]
'use strict';
const fs = require('fs');
const path = require('path');

const PINNED = '0.8.30+commit.73712a01';
const ROOT = path.resolve(__dirname, '..');
// Source unit names are paths relative to contracts/, so the metadata (and bytecode) never depends on the
// checkout location.
// Each unit is compiled on its own (AST ids, hence artifacts, of one unit never depend on another's sources):
// [sources, [source, contract] pairs].
const UNITS = [
  [
    ['sol/Settlement.sol', 'test-sol/ReentrantAttacker.sol'],
    [
      ['sol/Settlement.sol', 'Settlement'],
      ['test-sol/ReentrantAttacker.sol', 'ReentrantAttacker'],
    ],
  ],
  [
    ['sol/Stake.sol', 'test-sol/StakeAttacker.sol'],
    [
      ['sol/Stake.sol', 'Stake'],
      ['test-sol/StakeAttacker.sol', 'StakeAttacker'],
    ],
  ],
];

function main() {
  const args = process.argv.slice(2);
  let out = path.join(ROOT, 'artifacts');
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out' && i + 1 < args.length) out = path.resolve(args[++i]);
    else fail(`unknown argument ${args[i]} (usage: build.js [--out DIR])`);
  }
  let solc;
  try {
    solc = require(path.join(ROOT, 'node_modules', 'solc'));
  } catch (e) {
    fail('npm solc is not installed in contracts/node_modules (run scripts/setup.d/30-chain.sh)');
  }
  if (!solc.version().startsWith(PINNED)) fail(`solc ${solc.version()} found, ${PINNED} pinned`);

  fs.mkdirSync(out, { recursive: true });
  let count = 0;
  for (const [sources, contracts] of UNITS) count += compileUnit(solc, sources, contracts, out);
  process.stdout.write(`compiled ${count} contracts with solc ${PINNED} into ${out}\n`);
}

function compileUnit(solc, sources, contracts, out) {
  const input = {
    language: 'Solidity',
    sources: Object.fromEntries(
      sources.map((s) => [s, { content: fs.readFileSync(path.join(ROOT, s), 'utf8') }]),
    ),
    settings: {
      evmVersion: 'prague',
      optimizer: { enabled: true, runs: 1000000 },
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences'] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) process.stderr.write(e.formattedMessage + '\n');
  if (errors.length > 0) fail(`${errors.length} compilation error(s)`);

  for (const [source, name] of contracts) {
    const c = output.contracts[source][name];
    const artifact = {
      contractName: name,
      sourceName: source,
      compiler: PINNED,
      abi: c.abi,
      bytecode: { object: '0x' + c.evm.bytecode.object },
      // Immutables are written into the runtime code at deployment: these byte ranges of a deployed
      // contract's code differ from `object` (which has zeros there).
      deployedBytecode: {
        object: '0x' + c.evm.deployedBytecode.object,
        immutableReferences: c.evm.deployedBytecode.immutableReferences || {},
      },
    };
    fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  }
  return contracts.length;
}

function findImport(p) {
  const full = path.join(ROOT, p);
  if (!full.startsWith(ROOT + path.sep) || !fs.existsSync(full)) return { error: `not found: ${p}` };
  return { contents: fs.readFileSync(full, 'utf8') };
}

function fail(msg) {
  process.stderr.write(`build.js: ${msg}\n`);
  process.exit(1);
}

main();
