#!/usr/bin/env node
/**
 * `smhfs`: what starts the command. `make build` copies this file to dist/src/cli/main.cjs and
 * links dist/src/cli/main.js to it (the path users, `make install`, package.json's bin and the
 * tests run); the command itself is dist/src/cli/bundle.cjs (src/cli/bundle.mjs says why it is
 * one CommonJS file). This file compiles the bundle with V8's code cache that the build wrote
 * beside it, so a start deserializes the compiled code instead of parsing ~1 MB of JavaScript.
 *
 * The cache only ever saves time: it is used when it was made from exactly these bytes of
 * bundle.cjs (the cache file holds a copy of them, compared here; V8 itself checks only the
 * length) and V8 accepts it (same V8 version and flags, else `cachedDataRejected`, and V8
 * compiles the source as usual). A missing or stale cache is a normal compile. With
 * --enable-source-maps the bundle is loaded by require(), which reads its source map (vm.Script
 * does not), so stack traces still point at src/*.ts.
 */
'use strict';
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const BUNDLE = join(__dirname, 'bundle.cjs');

if (process.sourceMapsEnabled) {
  require(BUNDLE);
} else {
  const { Script } = require('node:vm');
  const { createRequire } = require('node:module');
  const { isAscii } = require('node:buffer');
  const source = readFileSync(BUNDLE);
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
      // [length of the bundle, u32 LE][the bundle's bytes][V8's cache]
      const file = readFileSync(cacheFile);
      const n = file.length >= 4 ? file.readUInt32LE(0) : -1;
      if (n === source.length && source.equals(file.subarray(4, 4 + n))) cachedData = file.subarray(4 + n);
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
      const head = Buffer.alloc(4);
      head.writeUInt32LE(source.length, 0);
      writeFileSync(`${cacheFile}.tmp`, Buffer.concat([head, source, data]));
      renameSync(`${cacheFile}.tmp`, cacheFile);
    });
  }
  const mod = { exports: {}, filename: BUNDLE, id: BUNDLE };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(BUNDLE), mod, BUNDLE, __dirname);
}
