/**
 * The PostgreSQL client libraries (`pg`, and `libpq`, the binding pg-native is built on), loaded
 * on first use rather than when a module naming them is imported. Every command imports the
 * PostgreSQL engine's modules (the CLI knows both engines), but a library on SQLite — the
 * default — never needs them, and loading them costs ~20 MiB of resident memory (libpq's shared
 * libraries and pg's modules) and start-up time: a fifth of a mount's margin under issue 16's
 * RSS bound (≤ 350 MiB with a 256 MiB cache).
 *
 * Through `require`: imported as an ES module, libpq's index.js sees no `module.parent` and
 * prints its include path on stdout (it is also a build helper), which would corrupt CLI output.
 */
import { createRequire } from 'node:module';
import type PgModule from 'pg';
import type PQType from 'libpq';

const load = createRequire(import.meta.url);
let pg: typeof PgModule | undefined;
let pq: typeof PQType | undefined;

/** The `pg` module (its Client and type parsers). */
export function pgModule(): typeof PgModule {
  return (pg ??= load('pg') as typeof PgModule);
}

/** The libpq binding's class. */
export function libpq(): typeof PQType {
  return (pq ??= load('libpq') as typeof PQType);
}
