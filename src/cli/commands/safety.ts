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
import type { BlobStore } from '../../blob/types.js';
import { SmhError, isSmhError } from '../../errors.js';
import { Library } from '../../store/library.js';
import { claimBlobStore, inspectStoreOwner, refusalOf } from '../../store/ownership.js';
import type { BlobConfig } from '../../store/types.js';
import { DEFAULT_BLOBS, blobConfigFromOptions, describeBlobConfig, isS3, localDirOf, openBlobStoreFor } from '../blobs.js';
import { defaultLibraryDir, globalOptions, printJson, printLine, runAction, withSubject } from '../context.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a library (the only command that does): in an empty or new folder, on an empty blob store or one it already owns')
    .action(
      runAction('init', async (_o: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const dir = resolve(g.library || defaultLibraryDir());
        const r = await initLibrary(dir, blobConfigFromOptions(dir, g) ?? DEFAULT_BLOBS);
        if (g.json) printJson(r);
        else printLine(`${dir}: new library ${r.libraryId}; blobs in ${describeBlobConfig(dir, r.blobs)}`);
        return 0;
      }),
    );
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

export { Option };
