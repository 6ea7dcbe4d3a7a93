/**
 * Shared by the `smhfs migrate` tests (cli-migrate, cli-migrate-crash): a library holding every
 * kind of record a migration must carry, a dump of everything a user can observe of it, a CLI run
 * that may die of a signal, and a child process holding a library open.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { CLI, scratchLibrary } from '../cli-helpers.js';
import { Library } from '../../src/store/library.js';

const HOLD_CHILD = fileURLToPath(new URL('./hold-child.js', import.meta.url));

/** Everything a user can observe of the library, ids included (they are inode numbers). */
export function dump(dir: string): Record<string, unknown> {
  const lib = Library.open(dir);
  try {
    const out: Record<string, unknown> = {
      id: lib.libraryId,
      blobs: lib.blobConfig(),
      retention: lib.retentionDays,
      spaces: lib.spaceNames(),
      tokens: lib.tokens.list(),
    };
    for (const name of lib.spaceNames()) {
      const space = lib.space(name);
      const tree: Record<string, unknown> = {};
      const walk = (path: string): void => {
        for (const e of space.readdir(path).sort((a, b) => (a.name < b.name ? -1 : 1))) {
          if (path === '' && e.name === '.trash') continue;
          const p = path === '' ? e.name : `${path}/${e.name}`;
          const i = e.info;
          tree[p] = {
            id: i.id,
            kind: i.kind,
            mode: i.mode,
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: i.nlink,
            blob: i.blob,
            etag: i.etag,
            times: [i.mtimeUs, i.ctimeUs, i.birthtimeUs],
            link: i.kind === 'link' ? space.readlink(p) : undefined,
            xattrs: space.listXattr(p).map((x) => `${x}=${space.getXattr(p, x).toString('hex')}`),
          };
          if (i.kind === 'dir') walk(p);
        }
      };
      walk('');
      out[`tree:${name}`] = tree;
      out[`bin:${name}`] = space.trashList();
    }
    return out;
  } finally {
    lib.close();
  }
}

/** `smhfs …` that may die of a signal (the crash hook): the exit code or the signal's name. */
export function smhfsRaw(cwd: string, lib: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--library', lib, ...args], { cwd, env: { ...process.env, XDG_DATA_HOME: join(cwd, 'xdg'), ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** A SQLite library holding every kind of record migrate must carry (made in-process: CLI runs are slow under load). */
export async function richLibrary(t: Test): Promise<{ dir: string; lib: string; secret: string; token: string }> {
  const s = await scratchLibrary(t);
  writeFileSync(join(s.dir, 'cat.jpg'), 'meow');
  writeFileSync(join(s.dir, 'dog.jpg'), Buffer.alloc(300_000, 7));
  writeFileSync(join(s.dir, 'gone.txt'), 'in the bin');
  const lib = Library.open(s.lib);
  let secret: string;
  let token: string;
  try {
    const space = lib.space();
    space.mkdir('photos/2024', { parents: true });
    space.mkdir('links');
    space.putFile('photos/cat.jpg', await lib.storeBlobFromFile(join(s.dir, 'cat.jpg')));
    space.putFile('photos/2024/dog.jpg', await lib.storeBlobFromFile(join(s.dir, 'dog.jpg')));
    space.putFile('photos/gone.txt', await lib.storeBlobFromFile(join(s.dir, 'gone.txt')));
    space.createLink('links/cat', 'photos/cat.jpg');
    space.createLink('links/gone', 'photos/gone.txt');
    space.link('photos/2024/dog.jpg', 'links/dog-hard');
    space.remove('photos/gone.txt'); // to the bin, its bound link cascaded with it (L12)
    space.symlink('links/by-path', '../photos/cat.jpg');
    space.setXattr('photos/cat.jpg', 'user.colour', Buffer.from([0, 1, 2, 255]));
    space.setXattr('photos', 'user.note', Buffer.from('holiday'));
    lib.createSpace('work').mkdir('docs');
    secret = lib.rotateLibrarySecret();
    token = lib.tokens.create({ space: '-', grants: ['read'], periodSec: 3600 }).accessToken;
    lib.tokens.create({ space: 'work', grants: ['read', 'write'], periodSec: 7200, userId: 'ann' });
    lib.retentionDays = 12;
    await lib.idle();
  } finally {
    lib.close();
  }
  return { ...s, secret, token };
}

/** A child process holding the library in `dir` open (a blob held, D7) until `release()`. */
export async function holder(dir: string, key: string): Promise<{ release(): Promise<void> }> {
  const child = spawn(process.execPath, [HOLD_CHILD, dir, key], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    child.stdout.once('data', () => res());
    child.once('close', (code) => rej(new Error(`hold-child exited ${code}`)));
  });
  return {
    release: async () => {
      child.stdin.write('release\n');
      await new Promise<void>((res) => child.once('close', () => res()));
    },
  };
}

export function nodeRows(dir: string): number {
  const lib = Library.open(dir);
  try {
    return (lib.db.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n;
  } finally {
    lib.close();
  }
}

