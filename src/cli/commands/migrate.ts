/**
 * `smhfs migrate --to postgres://… | sqlite:` (SPEC S3): move the library's metadata to another
 * engine, verified before the folder is switched to it. The rules of the move are the store's
 * (src/store/migrate.ts); this translates options and prints what happened, with progress on
 * long runs (rows copied and compared of the total).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { BlobStore } from '../../blob/types.js';
import { fail } from '../../errors.js';
import type { MigrateOptions } from '../../store/migrate.js';
import { checkPostgres } from '../../store/postgres/startup.js';
import { chooseBlobConfig, openBlobStoreFor } from '../blobs.js';
import { defaultLibraryDir, globalOptions, printJson, printLine, runAction, withSubject } from '../context.js';
import { plural } from '../format.js';
import { type Progress, startProgress } from '../progress.js';

/** Tests only: `SMHFS_TEST_MIGRATE_CRASH=copied|verified|switched` kills the process at that step. */
function crashAt(): MigrateOptions['crashAt'] {
  const v = process.env['SMHFS_TEST_MIGRATE_CRASH'];
  return v === 'copied' || v === 'verified' || v === 'switched' ? v : undefined;
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description('move the library\'s metadata to PostgreSQL (--to postgres://…) or back into the folder (--to sqlite:); the blobs stay where they are')
    .requiredOption('--to <target>', 'postgres://USER@HOST:PORT/DB (an empty database) or sqlite: (library.db in the library folder)')
    .action(
      runAction('migrate', async (o: { to: string }, cmd: Command) => {
        const g = globalOptions(cmd);
        const dir = resolve(g.library || defaultLibraryDir());
        if (g.meta !== undefined) throw fail('InvalidArgument', 'migrate takes the target as --to; --meta names the library\'s current database, which the folder records');
        // The start-up check's one line, within 5 s, before anything is touched.
        if (/^postgres(ql)?:\/\//i.test(o.to)) await checkPostgres(o.to, { applicationName: 'smhfs-migrate' });
        let store: BlobStore | undefined;
        let progress: Progress | undefined;
        let phase = '';
        try {
          store = await openBlobStoreFor(dir, chooseBlobConfig(dir, g).config);
          // the migration's code loads with migrate (the other commands start without it)
          const { migrateLibrary } = await import('../../store/migrate.js');
          const r = await migrateLibrary(dir, {
            to: o.to,
            ...(store ? { blobStore: store } : {}),
            ...(crashAt() ? { crashAt: crashAt()! } : {}),
            onProgress: (p, done, total) => {
              if (p !== phase) {
                progress?.done();
                phase = p;
                progress = startProgress(`migrate: ${p}`, { unit: 'items', noun: 'rows', total });
              }
              progress!.update(done, total);
            },
          });
          progress?.done();
          if (g.json) printJson(r);
          else {
            const rows = Object.values(r.rows).reduce((a, b) => a + b, 0);
            printLine(`${dir}: library ${r.libraryId} moved from ${r.from} to ${r.to}: ${plural(rows, 'row')} copied and compared, fsck of the copy clean`);
            if (r.keptSource) printLine(`the old database is kept as ${r.keptSource} (nothing opens it; delete it when you no longer want it)`);
          }
          return 0;
        } catch (e) {
          progress?.fail();
          throw withSubject(e, dir);
        } finally {
          await store?.close?.().catch(() => undefined);
        }
      }),
    );
}
