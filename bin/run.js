#!/usr/bin/env node
import { applyBrokerV8Flags, isBrokerStart } from '../dist/src/broker/v8-flags.js';

// The broker's V8 flags must be set before any module compiles or allocates, so oclif (which
// loads every command, and with them the WASM SQL parser) is imported only afterwards.
if (isBrokerStart(process.argv.slice(2))) applyBrokerV8Flags();
const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
