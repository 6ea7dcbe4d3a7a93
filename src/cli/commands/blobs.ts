/**
 * `smhfs blobs` (show where the library's file contents live, as recorded) and
 * `smhfs blobs set URL [--s3-endpoint …] [--s3-region …] [--s3-path-style] [--force]` (re-point
 * the library at another store). Re-pointing moves no bytes: copying them is the user's job
 * (`aws s3 sync`, `rclone copy`, `cp -a`), done before `set`. `set` checks that the new store is
 * reachable and that a sample of the blobs the library references is there (refused otherwise,
 * unless --force). Mounts and servers already running keep the store they opened.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SmhError } from '../../errors.js';
import { Library } from '../../store/library.js';
import { claimBlobStore } from '../../store/ownership.js';
import type { BlobConfig } from '../../store/types.js';
import {
  DEFAULT_BLOBS,
  blobConfigFromOptions,
  describeBlobConfig,
  isS3,
  localDirOf,
  openBlobStoreFor,
  sameBlobConfig,
} from '../blobs.js';
import { CliError, UsageError, defaultLibraryDir, globalOptions, printJson, printLine, runAction, withSubject } from '../context.js';
import { table } from '../format.js';

/** How many referenced blobs `blobs set` looks for in the new store. */
const SAMPLE = 16;

/** The command's own blob options would be ambiguous next to `--blobs`. */
function noGlobalBlobs(g: ReturnType<typeof globalOptions>, what: string): void {
  if (g.blobs !== undefined && g.blobs !== '') throw new UsageError(`${what} takes no --blobs; to re-point the library use "smhfs blobs set URL"`);
}

export function register(program: Command): void {
  const blobs = program
    .command('blobs')
    .description("where the library's file contents live: show the record, or re-point it (moves no bytes)");

  blobs
    .command('show', { isDefault: true })
    .description('show the blob store the library records (the default when no subcommand is given)')
    .action(
      runAction('blobs', async (_o: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        noGlobalBlobs(g, '"smhfs blobs"');
        if (g.s3Endpoint !== undefined || g.s3Region !== undefined || g.s3PathStyle) {
          throw new UsageError('"smhfs blobs" takes no --s3-* options; to re-point the library use "smhfs blobs set URL [--s3-…]"');
        }
        const dir = resolve(g.library || defaultLibraryDir());
        // Read without opening for writing: works on a library this user may only read.
        const { library, blobs: recorded } = Library.peekBlobConfig(dir);
        if (!library) {
          throw new SmhError('NotALibrary', `${dir} holds no smhfs library; create one with "smhfs --library ${dir} init"`, dir);
        }
        const c = recorded ?? DEFAULT_BLOBS;
        if (g.json) {
          printJson({ recorded: recorded !== undefined, ...c, ...(isS3(c) ? {} : { dir: localDirOf(dir, c) }) });
          return 0;
        }
        for (const line of showLines(dir, c, recorded !== undefined)) printLine(line);
        return 0;
      }),
    );

  blobs
    .command('set')
    .description('re-point the library at another blob store (S3 options as global options); moves no bytes')
    .argument('<url>', 'a directory, or s3://BUCKET[/PREFIX] with --s3-endpoint, --s3-region, --s3-path-style')
    .option('--force', 're-point even when blobs the library references are missing from the new store')
    .action(
      runAction('blobs set', async (url: string, o: { force?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        noGlobalBlobs(g, '"smhfs blobs set"');
        const dir = resolve(g.library || defaultLibraryDir());
        if (url.trim() === '') throw new UsageError('blobs set needs a directory or s3://BUCKET[/PREFIX]');
        const next = blobConfigFromOptions(dir, { ...g, blobs: url })!;
        if (!isS3(next) && !isDirectory(localDirOf(dir, next))) {
          // Not created here: a typo must not leave a folder behind; the bytes go there first anyway.
          throw new SmhError('InvalidArgument', `no such directory (create it and copy the blobs into it first)`, localDirOf(dir, next));
        }
        // Reachable (S3: HeadBucket within 5 s) before anything is written.
        const store = await openBlobStoreFor(dir, next);
        let lib: Library;
        try {
          lib = Library.open(dir, store ? { blobStore: store } : {});
        } catch (e) {
          await store?.close?.().catch(() => undefined);
          throw withSubject(e, dir);
        }
        try {
          const before = lib.blobConfig();
          if (before !== undefined && sameBlobConfig(dir, before, next)) {
            if (g.json) printJson({ changed: false, previous: before, blobs: before });
            else printLine(`${dir}: blobs unchanged: ${describeBlobConfig(dir, before)}`);
            return 0;
          }
          const keys = lib.sampleBlobKeys(SAMPLE);
          let missing = 0;
          for (const key of keys) if ((await lib.blobs.head(key)) === undefined) missing++;
          if (missing > 0 && !o.force) {
            throw new CliError(
              'BlobsMissing',
              `${missing} of ${keys.length} sampled blobs the library references are not in ` +
                `${describeBlobConfig(dir, next)}; copy the bytes there first (e.g. aws s3 sync), or re-point anyway with --force`,
              dir,
            );
          }
          // D1: the new store must be empty or this library's (marked, or holding its blobs); --force
          // never hands a library a store that is another's.
          await claimBlobStore(lib.blobs, lib.libraryId, { referenced: missing > 0 ? [] : keys, isNew: false });
          lib.setBlobConfig(next);
          const was = before !== undefined ? describeBlobConfig(dir, before) : `${describeBlobConfig(dir, DEFAULT_BLOBS)}, unrecorded`;
          if (g.json) printJson({ changed: true, previous: before ?? null, blobs: next, sampled: keys.length, missing });
          else printLine(`${dir}: blobs now ${describeBlobConfig(dir, next)} (was ${was}); no bytes were moved`);
          if (missing > 0) {
            process.stderr.write(`smhfs: blobs set: warning: ${missing} of ${keys.length} sampled blobs are missing there (--force)\n`);
          }
          return 0;
        } finally {
          lib.close();
          await store?.close?.().catch(() => undefined);
        }
      }),
    );
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function showLines(dir: string, c: BlobConfig, recorded: boolean): string[] {
  const rows: string[][] = [];
  const add = (k: string, v: string): void => void rows.push([`${k}:`, v]);
  if (isS3(c)) {
    add('blobs', c.url);
    add('s3 endpoint', c.s3Endpoint ?? '(AWS default)');
    add('s3 region', c.s3Region ?? '(AWS_REGION, else us-east-1 with an endpoint)');
    add('s3 path-style', c.s3PathStyle ? 'yes' : 'no');
  } else {
    add('blobs', describeBlobConfig(dir, c));
  }
  add('recorded', recorded ? 'yes' : 'no (a library from an older smhfs: the local default applies until --blobs or "smhfs blobs set" records a store)');
  return table(rows);
}
