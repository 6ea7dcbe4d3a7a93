/**
 * One host of test/pg-engine.test.ts: `node dist/test/helpers/pg-rules-client.js LIBRARY_DIR ID COUNT`.
 * Opens the library (its folder records a PostgreSQL URL) and runs COUNT rule operations that
 * contend with the other hosts': uploads into one shared directory with conflict 'rename' (C2
 * picks free names that the others pick too), bound links to them, moves into a directory of its
 * own, removals to the bin. Prints one JSON line: what it made (content → link names), what it
 * moved and removed, the errors it saw (there must be none: serialization failures are retried
 * inside the engine), and its connection's retry counts.
 */
import { Readable } from 'node:stream';
import { Library } from '../../src/store/library.js';

const [dir, id, countArg] = process.argv.slice(2);
const lib = Library.open(dir!);
const space = lib.space('-');
const files: Array<{ content: string; path: string; links: string[]; removed: boolean }> = [];
const errors: string[] = [];
for (let i = 0; i < Number(countArg); i++) {
  try {
    const content = `${id}-${i}`;
    const ref = await lib.storeBlobFromStream(Readable.from(Buffer.from(content)));
    const placed = space.putFile('shared/f.txt', ref, { conflict: 'rename', createParents: true });
    const file = { content, path: placed.path!.join('/'), links: [] as string[], removed: false };
    files.push(file);
    if (i % 3 === 0) {
      const link = `links/${content}`;
      space.createLink(link, file.path, { conflict: 'ask' });
      file.links.push(link);
    }
    if (i % 4 === 1) {
      const prev = files[files.length - 2];
      if (prev && !prev.removed) {
        const to = `own-${id}/${prev.content}.txt`;
        space.move(prev.path, to, { conflict: 'ask' });
        prev.path = to;
      }
    }
    if (i % 5 === 4) {
      const victim = files[files.length - 3];
      if (victim && !victim.removed) {
        space.remove(victim.path, {});
        victim.removed = true;
      }
    }
  } catch (e) {
    errors.push(`${(e as { code?: string }).code ?? ''}: ${(e as Error).message}`);
  }
}
await lib.idle();
const stats = lib.postgres!.conn.stats;
lib.close();
process.stdout.write(`${JSON.stringify({ files, errors, retries: stats.retries, serializationFailures: stats.serializationFailures, deadlocks: stats.deadlocks })}\n`);
