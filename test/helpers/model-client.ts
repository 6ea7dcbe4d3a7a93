/**
 * One client of test/pg-multi-client-model.test.ts:
 *
 *   node dist/test/helpers/model-client.js LIBRARY_DIR BLOBS_DIR SEED OPS
 *
 * Opens the PostgreSQL library its folder records (the blob store: the shared BLOBS_DIR) and runs
 * OPS random operations, drawn from SEED, over a small namespace the other clients share (three
 * directories, six names each), so they collide: create/overwrite a file, a bound link, a path
 * link, a hard link, mv, rm (to the bin), restore, purge. An outcome a rule gives (not found,
 * exists, not a directory, …) is a legal answer to a concurrent world; what no rule gives — an
 * Internal error, Busy (a serialization failure that surfaced), a lost connection, anything that is
 * not a domain error — is a failure. Prints one JSON line: operations done, outcomes by code,
 * failures (with the op), the connection's retries.
 */
import { Readable } from 'node:stream';
import { LocalBlobStore } from '../../src/blob/local-store.js';
import { isSmhError } from '../../src/errors.js';
import { Library } from '../../src/store/library.js';

const [dir, blobsDir, seedArg, opsArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
/** mulberry32: small, seeded, the same sequence for the same seed. */
function rnd(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let x = seed;
  x = Math.imul(x ^ (x >>> 15), x | 1);
  x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;

const DIRS = ['a', 'b', 'a/c'];
const NAMES = ['f0', 'f1', 'f2', 'f3', 'l0', 'l1'];
const path = (): string => `${pick(DIRS)}/${pick(NAMES)}`;
/** Codes no rule gives to a legal operation in a concurrent world. */
const FAILURES = new Set(['Internal', 'Busy', 'MetaUnavailable', 'BlobMissing', 'BlobUnavailable']);

const lib = Library.open(dir!, { blobStore: new LocalBlobStore(blobsDir!) });
const space = lib.space('-');
const outcomes: Record<string, number> = {};
const failures: string[] = [];
let done = 0;
for (let i = 0; i < Number(opsArg); i++) {
  const op = pick(['put', 'put', 'bound', 'pathlink', 'hard', 'mv', 'rm', 'rm', 'restore', 'purge'] as const);
  let what: string = op;
  try {
    switch (op) {
      case 'put': {
        const p = path();
        what = `put ${p}`;
        const ref = await lib.storeBlobFromStream(Readable.from(Buffer.from(`${seedArg}:${i}:${p}`)));
        space.putFile(p, ref, { conflict: pick(['rename', 'overwrite', 'ask'] as const), createParents: true });
        break;
      }
      case 'bound': {
        const [l, to] = [path(), path()];
        what = `ln ${to} ${l}`;
        space.createLink(l, to, { conflict: pick(['rename', 'ask'] as const) });
        break;
      }
      case 'pathlink': {
        const [l, to] = [path(), path()];
        what = `ln -s ${to} ${l}`;
        space.symlink(l, `../${to}`);
        break;
      }
      case 'hard': {
        const [from, to] = [path(), path()];
        what = `ln --hard ${from} ${to}`;
        space.link(from, to);
        break;
      }
      case 'mv': {
        const from = rnd() < 0.15 ? pick(DIRS) : path();
        const to = rnd() < 0.15 ? pick(DIRS) : path();
        what = `mv ${from} ${to}`;
        space.move(from, to, { conflict: pick(['rename', 'overwrite', 'ask'] as const) });
        break;
      }
      case 'rm': {
        const p = rnd() < 0.05 ? pick(DIRS) : path();
        what = `rm ${p}`;
        space.remove(p, { recursive: true, permanent: rnd() < 0.2 });
        break;
      }
      case 'restore': {
        const items = space.trashList({ limit: 20 });
        if (items.length === 0) break;
        const item = pick(items);
        what = `restore ${item.id}`;
        space.restore(item.id, { conflict: pick(['rename', 'overwrite', 'ask'] as const) });
        break;
      }
      case 'purge': {
        const items = space.trashList({ limit: 20 });
        if (items.length === 0) break;
        const item = pick(items);
        what = `purge ${item.id}`;
        space.purge(item.id);
        break;
      }
    }
    outcomes['ok'] = (outcomes['ok'] ?? 0) + 1;
  } catch (e) {
    const code = isSmhError(e) ? e.code : 'not-a-domain-error';
    outcomes[code] = (outcomes[code] ?? 0) + 1;
    if (!isSmhError(e) || FAILURES.has(code)) failures.push(`op ${i} (${what}): ${code}: ${(e as Error).message}`);
  }
  done++;
}
await lib.runTasks();
await lib.idle();
const stats = lib.postgres!.conn.stats;
lib.close();
process.stdout.write(`${JSON.stringify({ done, outcomes, failures, retries: stats.retries, serializationFailures: stats.serializationFailures })}\n`);
