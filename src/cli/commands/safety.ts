/**
 * The data-safety commands (SPEC §10): `smhfs init` (D2: the one command that creates a library,
 * D1: on a blob store that is empty or already its own), `smhfs fsck [--repair]` (D4) and
 * `smhfs gc [--delete] [--grace 1h]` (D3: orphans no record mentions; a dry run unless told).
 *
 * They open the library themselves rather than through `openLibrary`: init before it exists,
 * fsck also when it is damaged (it reports what it finds instead of refusing).
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { LocalBlobStore } from '../../blob/local-store.js';
import type { BlobInfo, BlobStore } from '../../blob/types.js';
import { SmhError, isSmhError } from '../../errors.js';
import { Library } from '../../store/library.js';
import { peekDatabase } from '../../store/postgres/library.js';
import { checkPostgres, redactUrl } from '../../store/postgres/startup.js';
import { claimBlobStore, inspectStoreOwner, refusalOf } from '../../store/ownership.js';
import type { BlobConfig } from '../../store/types.js';
import type { FsckReport } from '../../store/fsck.js';
import { BlobStoreMismatch, DEFAULT_BLOBS, blobConfigFromOptions, reconcileBlobConfig, chooseBlobConfig, describeBlobConfig, isS3, localDirOf, openBlobStoreFor } from '../blobs.js';
import { defaultLibraryDir, globalOptions, openLibrary, printJson, printLine, reportError, runAction, withSubject } from '../context.js';
import { plural } from '../format.js';
import { type Progress, startProgress } from '../progress.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a library (the only command that does): in an empty or new folder, on an empty blob store or one it already owns')
    .action(
      runAction('init', async (_o: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const dir = resolve(g.library || defaultLibraryDir());
        if (g.meta !== undefined) {
          const r = await initPostgresLibrary(dir, g.meta, g);
          if (g.json) printJson(r);
          else
            printLine(
              `${dir}: ${r.joined ? 'joined' : 'new'} library ${r.libraryId}; metadata in PostgreSQL at ${r.meta}; blobs in ${describeBlobConfig(dir, r.blobs)}`,
            );
          return 0;
        }
        const r = await initLibrary(dir, blobConfigFromOptions(dir, g) ?? DEFAULT_BLOBS);
        if (g.json) printJson(r);
        else printLine(`${dir}: new library ${r.libraryId}; blobs in ${describeBlobConfig(dir, r.blobs)}`);
        return 0;
      }),
    );

  program
    .command('fsck')
    .description('check a library and its blob store (exit 0 clean, 1 all repaired, 4 problems left, 8 could not check)')
    .option('--repair', 'fix what can be fixed without losing a byte (orphans are left to "smhfs gc --delete")')
    .action(
      runAction('fsck', async (o: { repair?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const dir = resolve(g.library || defaultLibraryDir());
        let report: FsckReport;
        const progress = phaseProgress('fsck');
        let store: BlobStore | undefined;
        try {
          store = await openBlobStoreFor(dir, chooseBlobConfig(dir, g).config);
          // fsck's code loads with fsck (the other commands start without it)
          const { checkLibrary } = await import('../../store/fsck.js');
          report = await checkLibrary(dir, { repair: o.repair === true, ...(store ? { blobStore: store } : {}), onProgress: progress.update });
        } catch (e) {
          progress.fail();
          reportError('fsck', withSubject(e, dir));
          return 8;
        } finally {
          await store?.close?.().catch(() => undefined);
        }
        progress.done();
        if (g.json) printJson(report);
        else for (const line of fsckLines(report)) printLine(line);
        return report.exitCode;
      }),
    );

  program
    .command('gc')
    .description("list blobs in the store that no record of the library mentions (orphans); delete them with --delete")
    .option('--delete', 'delete the orphans older than the grace period (default: only list them)')
    .addOption(new Option('--grace <duration>', 'leave orphans younger than this (uploads in flight elsewhere)').default(3_600_000, '1h').argParser(parseDuration))
    .action(
      runAction('gc', async (o: { delete?: boolean; grace: number }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { lib } = await openLibrary(g);
        let queue: { deleted: number } | undefined;
        if (o.delete) queue = await lib.collectGarbage(); // the library's own records first
        const listing = startProgress(`gc: listing ${lib.blobs.description}`, { unit: 'items', noun: 'blobs' });
        let orphans: BlobInfo[];
        try {
          orphans = await lib.listOrphans((n) => listing.update(n));
        } catch (e) {
          listing.fail();
          throw e;
        }
        listing.done();
        const now = Date.now();
        const ageOf = (b: BlobInfo): number | undefined => (b.modifiedMs === undefined ? undefined : Math.max(0, now - b.modifiedMs));
        const old = orphans.filter((b) => (ageOf(b) ?? 0) >= o.grace && (b.modifiedMs !== undefined || o.grace === 0));
        let deleted = 0;
        if (o.delete && old.length > 0) {
          const deleting = startProgress('gc: deleting orphans', { unit: 'items', noun: 'orphans', total: old.length });
          try {
            deleted = (await lib.deleteOrphans(old.map((b) => b.key), (n) => deleting.update(n))).deleted;
          } catch (e) {
            deleting.fail();
            throw e;
          }
          deleting.done();
        }
        const bytes = (list: BlobInfo[]): number => list.reduce((a, b) => a + b.size, 0);
        if (g.json) {
          printJson({
            store: lib.blobs.description,
            graceMs: o.grace,
            orphans: orphans.map((b) => ({ key: b.key, size: b.size, ...(ageOf(b) !== undefined ? { ageMs: ageOf(b) } : {}), pastGrace: old.includes(b) })),
            orphanBytes: bytes(orphans),
            deleted,
            ...(queue ? { queueDeleted: queue.deleted } : {}),
            queued: lib.queuedBlobCount(),
          });
          return 0;
        }
        if (queue && queue.deleted > 0) printLine(`deleted ${plural(queue.deleted, 'blob')} from the library's deletion queue`);
        if (orphans.length === 0) {
          printLine(`no orphans in ${lib.blobs.description}`);
          return 0;
        }
        printLine(`${plural(orphans.length, 'orphan')} (${bytes(orphans)} bytes) in ${lib.blobs.description}: blobs no record of this library mentions`);
        for (const b of orphans.slice(0, 20)) {
          const age = ageOf(b);
          printLine(`  ${b.key}  ${b.size} bytes  ${age === undefined ? 'age unknown' : `${Math.round(age / 1000)} s old`}${old.includes(b) ? '' : ' (within the grace period)'}`);
        }
        if (orphans.length > 20) printLine(`  … and ${orphans.length - 20} more (--json lists them all)`);
        if (o.delete) printLine(`deleted ${plural(deleted, 'orphan')} (${bytes(old)} bytes); kept ${orphans.length - old.length} within the grace period`);
        else printLine(`nothing deleted (a dry run): "smhfs gc --delete" deletes the ${old.length} older than ${formatDuration(o.grace)}`);
        return 0;
      }),
    );
}

/** One line per finding, problems first, then the verdict. */
function fsckLines(r: FsckReport): string[] {
  const out = [
    `${r.library}: library ${r.libraryId ?? '(unreadable)'}, blobs in ${r.store}`,
    `  ${r.counts.nodes} nodes, ${r.counts.entries} names, ${r.counts.files} files; ${r.counts.referencedBlobs} blobs referenced, ${r.counts.storedBlobs} stored (${r.counts.storedBytes} bytes)`,
  ];
  const sorted = [...r.findings].sort((a, b) => Number(b.problem) - Number(a.problem));
  for (const f of sorted) {
    const fixed = f.repaired > 0 ? ` [repaired ${f.repaired}]` : '';
    out.push(`${f.problem ? 'PROBLEM' : 'notice'} ${f.check}: ${f.summary}${fixed}`);
    for (const e of f.examples.slice(0, 10)) out.push(`    ${e}`);
    if (f.examples.length > 10 || f.count > f.examples.length) out.push(`    … ${f.count - Math.min(10, f.examples.length)} more (--json)`);
    if (f.hint && f.repaired < f.count) out.push(`    hint: ${f.hint}`);
  }
  const problems = r.findings.filter((f) => f.problem);
  if (r.exitCode === 0) out.push(`clean${r.findings.length > 0 ? ` (${plural(r.findings.length, 'notice')})` : ''}`);
  else if (r.exitCode === 1) out.push(`${plural(problems.length, 'problem')} found, all repaired`);
  else {
    const fixable = problems.some((f) => f.repairable && f.repaired < f.count);
    out.push(`${plural(problems.length, 'problem')} found${r.repair ? ', some left: see the hints' : fixable ? '; "smhfs fsck --repair" fixes those it can without losing a byte' : '; see the hints'}`);
  }
  return out;
}

/**
 * Progress (src/cli/progress.ts, on a terminal only) of work reported as `(phase, count)`: one
 * line per phase, labelled `<command>: <phase>`.
 */
function phaseProgress(command: string): { update: (phase: string, n: number) => void; done(): void; fail(): void } {
  let phase: string | undefined;
  let current: Progress | undefined;
  return {
    update: (p, n) => {
      if (p !== phase) {
        current?.done();
        phase = p;
        current = startProgress(`${command}: ${p}`, { unit: 'items' });
      }
      current!.update(n);
    },
    done: () => current?.done(),
    fail: () => current?.fail(),
  };
}

function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/**
 * D2/D1: create the library in `dir` with its blobs in `config`. Everything is checked before
 * anything is written: the folder (absent, empty, or the empty database of an init that crashed),
 * then the store (reachable; empty, without an owner marker). Refusals change nothing.
 */
export async function initLibrary(dir: string, config: BlobConfig): Promise<{ library: string; libraryId: string; blobs: BlobConfig }> {
  const peek = safePeek(dir);
  if (peek?.libraryId !== undefined) {
    throw new SmhError('NotALibrary', `${dir} is already an smhfs library (${peek.libraryId}); nothing was changed`, dir);
  }
  try {
    Library.checkFolder(dir, true);
  } catch (e) {
    throw withSubject(e, dir);
  }
  // A look at the store that creates nothing in it (a local folder may not even exist yet).
  const probe: BlobStore | undefined = isS3(config) ? await openBlobStoreFor(dir, config) : new LocalBlobStore(localDirOf(dir, config), { prepare: false });
  try {
    const verdict = await inspectStoreOwner(probe!, '(new)', { referenced: [], isNew: true });
    const refusal = refusalOf(verdict, probe!, '(new)');
    if (refusal) throw refusal;
  } finally {
    if (isS3(config)) await probe?.close?.().catch(() => undefined);
  }

  const store = await openBlobStoreFor(dir, config); // undefined: the library's own folder, made by Library.open
  let lib: Library | undefined;
  let created = false;
  try {
    lib = Library.open(dir, { create: true, ...(store ? { blobStore: store } : {}) });
    created = true;
    lib.setBlobConfig(config);
    await claimBlobStore(lib.blobs, lib.libraryId, { referenced: [], isNew: true });
    lib.ensureReserve(); // D9: room for deletes on a full disk
    return { library: dir, libraryId: lib.libraryId, blobs: config };
  } catch (e) {
    // Raced by another init on the same store: undo what this one made (its fresh, empty database).
    if (created && lib) {
      const id = lib.libraryId;
      lib.close();
      lib = undefined;
      if (safePeek(dir)?.libraryId === id) rmSync(dir, { recursive: true, force: true });
    }
    throw withSubject(e, dir);
  } finally {
    lib?.close();
    await store?.close?.().catch(() => undefined);
  }
}

/**
 * SPEC §11: `smhfs init --meta postgres://…`. In an empty database: a new library, on an empty
 * blob store (D1), as `initLibrary`. In a database that already holds a library: this host joins
 * it — the folder records the URL, the blob store is the one the library records (a `--blobs`
 * naming another is refused), and it must be that library's store (D1). The start-up check runs
 * first: one line within 5 s for an unreachable server, a wrong password or a missing database.
 */
export async function initPostgresLibrary(
  dir: string,
  meta: string,
  g: Parameters<typeof blobConfigFromOptions>[1],
): Promise<{ library: string; libraryId: string; meta: string; joined: boolean; blobs: BlobConfig }> {
  await checkPostgres(meta, { applicationName: 'smhfs' });
  try {
    Library.checkFolder(dir, true);
  } catch (e) {
    throw withSubject(e, dir);
  }
  // Look at the database before anything is made: a library there is joined, with its store.
  const existing = peekDatabase(meta);
  const given = blobConfigFromOptions(dir, g);
  let config: BlobConfig;
  if (existing.libraryId !== undefined) {
    const recorded = existing.blobs;
    if (recorded === undefined) {
      throw new SmhError('NotALibrary', `the library in ${redactUrl(meta)} records no blob store; run "smhfs blobs set URL" on a host that uses it`, dir);
    }
    if (given !== undefined && reconcileBlobConfig(dir, given, recorded) === undefined) {
      throw new BlobStoreMismatch(dir, recorded, given);
    }
    config = recorded;
  } else {
    config = given ?? DEFAULT_BLOBS;
  }
  if (existing.libraryId === undefined && !isS3(config)) {
    // Several hosts share one library: a folder of this host alone cannot hold its blobs.
    process.stderr.write(`smhfs: init: note: blobs in ${describeBlobConfig(dir, config)} are on this host only; other hosts need --blobs s3://… (see README, "Several hosts")\n`);
  }
  const store = await openBlobStoreFor(dir, config);
  let lib: Library | undefined;
  try {
    if (existing.libraryId === undefined) {
      const verdict = await inspectStoreOwner(store ?? new LocalBlobStore(localDirOf(dir, config), { prepare: false }), '(new)', { referenced: [], isNew: true });
      const refusal = refusalOf(verdict, store ?? new LocalBlobStore(localDirOf(dir, config), { prepare: false }), '(new)');
      if (refusal) throw refusal;
    }
    lib = Library.open(dir, { create: true, meta, ...(store ? { blobStore: store } : {}) });
    if (existing.libraryId === undefined) lib.recordBlobConfig(config);
    await claimBlobStore(lib.blobs, lib.libraryId, { referenced: existing.referenced, isNew: existing.libraryId === undefined });
    return { library: dir, libraryId: lib.libraryId, meta: redactUrl(meta), joined: existing.libraryId !== undefined, blobs: config };
  } catch (e) {
    throw withSubject(e, dir);
  } finally {
    lib?.close();
    await store?.close?.().catch(() => undefined);
  }
}

function safePeek(dir: string): ReturnType<typeof Library.peek> | undefined {
  try {
    return Library.peek(dir);
  } catch (e) {
    if (isSmhError(e)) return undefined;
    throw e;
  }
}

/** `1h`, `30m`, `90s`, `2d`, `0` → milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 1h, 30m, 90s or 0, got ${JSON.stringify(value)}.`);
  const unit = (m[2] ?? 's').toLowerCase();
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
  if (!Number.isFinite(ms)) throw new InvalidArgumentError(`duration out of range: ${value}.`);
  return Math.round(ms);
}
