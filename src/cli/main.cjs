#!/usr/bin/env node
/**
 * `smhfs`: what starts the command. `make build` copies this file to dist/src/cli/main.cjs and
 * links dist/src/cli/main.js to it (the path users, `make install`, package.json's bin and the
 * tests run); the command itself is dist/src/cli/bundle.cjs (src/cli/bundle.mjs says why it is
 * one CommonJS file). This file compiles the bundle with V8's code cache that the build wrote
 * beside it, so a start deserializes the compiled code instead of parsing ~1 MB of JavaScript.
 *
 * The cache only ever saves time: it is used when it was made from this bundle.cjs — its size
 * and modification time to the nanosecond, recorded in the cache file, are the file's now (every
 * build rewrites both files; V8 itself checks only the length) — and V8 accepts it (same V8
 * version and flags, else `cachedDataRejected`, and V8 compiles the source as usual). A missing
 * or stale cache is a normal compile. Not a hash of the content: on this machine reading and
 * comparing a copy of the 1 MB bundle cost ~14 ms of CPU per start, and node:crypto or zlib
 * ~10 ms to load. With
 * --enable-source-maps the bundle is loaded by require(), which reads its source map (vm.Script
 * does not), so stack traces still point at src/*.ts.
 */
'use strict';
const { readFileSync, renameSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const BUNDLE = join(__dirname, 'bundle.cjs');

if (process.sourceMapsEnabled) {
  require(BUNDLE);
} else {
  const { Script } = require('node:vm');
  const { createRequire } = require('node:module');
  const { isAscii } = require('node:buffer');
  const source = readFileSync(BUNDLE);
  const { size, mtimeNs } = statSync(BUNDLE, { bigint: true });
  // One cache per set of node options (V8 rejects a cache made under other flags): the build
  // writes one for none (tests, bench, `node main.js`) and one for the Makefile's NODE_FLAGS
  // (`make install`'s wrapper). Options with other characters (paths) get none.
  const options = process.execArgv.join(' ');
  const cacheFile = /^[\w=.-]*$/.test(options.replace(/ /g, '_'))
    ? `${BUNDLE}.cache${options === '' ? '' : `-${options.replace(/ /g, '_')}`}`
    : undefined;
  let cachedData;
  if (cacheFile !== undefined && process.env.SMHFS_WRITE_CODE_CACHE === undefined) {
    try {
      // [the bundle's size, u64 LE][its mtime in ns, u64 LE][V8's cache]
      const file = readFileSync(cacheFile);
      if (file.length > 16 && file.readBigUInt64LE(0) === size && file.readBigUInt64LE(8) === mtimeNs && size === BigInt(source.length)) {
        cachedData = file.subarray(16);
      }
    } catch {
      // no cache: compile
    }
  }
  // The build keeps the bundle ASCII: a one-byte string, no UTF-8 decoding of 1 MB at every start.
  const text = isAscii(source) ? source.toString('latin1') : source.toString('utf8');
  // CommonJS's own wrapper, on the bundle's first line: line numbers in stack traces stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${text}\n})`, {
    filename: BUNDLE,
    cachedData,
  });
  if (process.env.SMHFS_WRITE_CODE_CACHE !== undefined && cacheFile !== undefined) {
    // The build (src/cli/bundle.mjs) runs a command so: the cache then holds what it compiled.
    process.once('exit', () => {
      const data = script.createCachedData();
      const head = Buffer.alloc(16);
      head.writeBigUInt64LE(size, 0);
      head.writeBigUInt64LE(mtimeNs, 8);
      writeFileSync(`${cacheFile}.tmp`, Buffer.concat([head, data]));
      renameSync(`${cacheFile}.tmp`, cacheFile);
    });
  }
  const mod = { exports: {}, filename: BUNDLE, id: BUNDLE };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(BUNDLE), mod, BUNDLE, __dirname);
}
