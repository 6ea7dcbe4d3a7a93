/**
 * The end of every crash and fault test (SPEC §10): "the product says the library is
 * consistent, and every file written before still has its bytes".
 *
 *   const before = await sha256Tree(m.mountpoint);            // or librarySha256(m.library)
 *   … crash, fault, kill -9, remount …
 *   await expectFsckClean(t, m.library);                       // `smhfs fsck --json`, exit 0
 *   expectSameFiles(t, before, await sha256Tree(again.mountpoint));
 *
 * `expectFsckClean` runs the real CLI in a child process (so it never blocks on a mountpoint)
 * and fails the test with every finding when fsck exits non-zero. `sha256Tree` walks a real
 * directory (a mount, or a plain copy) with async calls only; `librarySha256` walks a library
 * through the store, checking on the way that each file's bytes hash to its blob key.
 *
 * Nothing here imports `tap` at run time (only its types).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import type { BlobStore } from '../../src/blob/types.js';
import { storedBlobSize } from '../../src/blob/sparse.js';
import type { FsckReport } from '../../src/store/fsck.js';
import { Library } from '../../src/store/library.js';
import { ContentReader } from '../../src/vfs/reader.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface FsckRun {
  code: number;
  report: FsckReport | undefined;
  stderr: string;
}

/** `smhfs --library DIR fsck --json [...args]` in a child process; never rejects. */
export function runFsck(libraryDir: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<FsckRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, '--library', libraryDir, '--json', 'fsck', ...args],
      { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 64 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        let report: FsckReport | undefined;
        try {
          report = JSON.parse(stdout) as FsckReport;
        } catch {
          report = undefined;
        }
        resolve({ code, report, stderr });
      },
    );
  });
}

/**
 * D4: `smhfs fsck` finds nothing wrong with the library (exit 0; notices such as leftovers of a
 * killed process are allowed — the library clears them itself). `env` reaches the CLI (S3
 * credentials); `what` names the moment in the test's messages. Returns the report.
 */
export async function expectFsckClean(t: Test, libraryDir: string, env: NodeJS.ProcessEnv = {}, what = 'fsck'): Promise<FsckReport | undefined> {
  const r = await runFsck(libraryDir, env);
  const problems = r.report?.findings.filter((f) => f.problem) ?? [];
  t.equal(r.code, 0, `${what}: smhfs fsck exits 0 (clean)`, {
    stderr: r.stderr.trim(),
    problems: problems.map((f) => `${f.check}: ${f.summary} ${f.examples.slice(0, 5).join('; ')}`),
  });
  t.same(problems, [], `${what}: fsck reports no problem`);
  return r.report;
}

/**
 * Every entry under `root`: files → SHA-256 of their bytes, symbolic links → `link:<target>`,
 * directories → `dir`, keyed by their path relative to `root`. Async calls only (M4: safe to run
 * against a mount from the test process). `skip` names top-level entries to leave out
 * (default: `.trash`, the bin view of a mount).
 */
export async function sha256Tree(root: string, opts: { skip?: string[] } = {}): Promise<Map<string, string>> {
  const skip = new Set(opts.skip ?? ['.trash']);
  const out = new Map<string, string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      if (rel === '' && skip.has(name)) continue;
      const p = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(p);
      if (st.isSymbolicLink()) out.set(r, `link:${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        await walk(p, r);
      } else if (st.isFile()) out.set(r, await sha256File(p));
      else out.set(r, `special:${st.mode.toString(8)}`);
    }
  };
  await walk(root, '');
  return out;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The live tree of a library's space through the store (no mount needed): files → SHA-256 of
 * the bytes read from the blob store, links → `link:<readlink>`, directories → `dir`. Throws
 * when a file's bytes do not hash to its blob key or cannot be read (that is data loss).
 * `blobStore`: the library's store when it is not its own folder (S3).
 */
export async function librarySha256(libraryDir: string, opts: { space?: string; blobStore?: BlobStore } = {}): Promise<Map<string, string>> {
  const lib = Library.open(libraryDir, opts.blobStore ? { blobStore: opts.blobStore } : {});
  const reader = new ContentReader(lib);
  try {
    const space = lib.space(opts.space ?? '-');
    const out = new Map<string, string>();
    const walk = async (path: string): Promise<void> => {
      for (const e of space.readdir(path).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (path === '' && e.name === '.trash') continue;
        const p = path === '' ? e.name : `${path}/${e.name}`;
        if (e.info.kind === 'dir') {
          out.set(p, 'dir');
          await walk(p);
        } else if (e.info.kind === 'link') {
          out.set(p, `link:${e.info.link?.readlink ?? '(target being purged)'}`);
        } else if (e.info.kind === 'file' && e.info.layout) {
          // A sparse file (D8): its container must hash to its key; its logical bytes (mostly
          // holes, up to terabytes) are not hashed here.
          const blobSize = storedBlobSize(e.info);
          const h = createHash('sha256');
          for (let off = 0; off < blobSize; off += 1 << 20) {
            h.update(await reader.readBlob(e.info.blob!, off, Math.min(1 << 20, blobSize - off), undefined, blobSize));
          }
          const sum = h.digest('hex');
          if (sum !== e.info.blob) throw new Error(`${p}: its container hashes to ${sum}, not to its blob key ${e.info.blob}`);
          out.set(p, `sparse:${sum}`);
        } else if (e.info.kind === 'file') {
          const h = createHash('sha256');
          for (let off = 0; off < e.info.size; off += 1 << 20) {
            h.update(await reader.readBlob(e.info.blob!, off, Math.min(1 << 20, e.info.size - off), undefined, e.info.size));
          }
          const sum = h.digest('hex');
          if (e.info.size > 0 && sum !== e.info.blob) throw new Error(`${p}: its bytes hash to ${sum}, not to its blob key ${e.info.blob}`);
          out.set(p, sum);
        } else {
          out.set(p, `special:${e.info.mode.toString(8)}`);
        }
      }
    };
    await walk('');
    return out;
  } finally {
    lib.close();
  }
}

/**
 * Every path of `before` is in `after` with the same hash (files written before a crash are
 * intact); `after` may hold more (files written later). Reports each difference.
 */
export function expectSameFiles(t: Test, before: Map<string, string>, after: Map<string, string>, what = 'files'): void {
  const lost: string[] = [];
  const changed: string[] = [];
  for (const [p, h] of before) {
    const now = after.get(p);
    if (now === undefined) lost.push(p);
    else if (now !== h) changed.push(`${p}: ${h.slice(0, 16)}… → ${now.slice(0, 16)}…`);
  }
  t.same({ lost, changed }, { lost: [], changed: [] }, `${what}: all ${before.size} earlier entries are there with the same SHA-256`);
}
