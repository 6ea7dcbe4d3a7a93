/**
 * Commands that work directly on a library folder: put, cat, ls, mkdir, ln, mv, cp, rm, stat,
 * trash (list, restore, purge, empty), tasks. Every rule is the store's; these only translate
 * arguments to store calls and results to text (or JSON with `--json`).
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { stat as statLocal } from 'node:fs/promises';
import { posix } from 'node:path';
import { Transform } from 'node:stream';
import { type Command, Option } from 'commander';
import { hashFile } from '../../blob/hash.js';
import { SmhError, fail, isSmhError } from '../../errors.js';
import { splitPath } from '../../store/paths.js';
import type { Library, Space } from '../../store/library.js';
// Types only: the read path (its page cache, lru-cache, p-queue) loads with `cat` (test/cli-start.test.ts).
import type { ContentReader, OpenContent } from '../../vfs/reader.js';
import { upload } from '../../vfs/upload.js';
import { type BlobRef, type Conflict, type DirEntry, type NodeInfo, type Placed, type RecycleItem, STORAGE_CLASSES, type StorageClass, type Task } from '../../store/types.js';
import {
  conflictOf,
  conflictOption,
  globalOptions,
  openLibrary,
  parseId,
  printJson,
  printLine,
  reportError,
  runAction,
  withSubject,
  CliError,
} from '../context.js';
import { humanBytes as humanSize } from '../sizes.js';
import { isoTime, linkTarget, modeString, octalMode, placedPath, plural, shortTime, table } from '../format.js';
import { groupName, userName } from '../owners.js';
import { type Progress, startProgress } from '../progress.js';

/** Bytes per read in `cat` (the page cache's default page size). */
const CAT_CHUNK = 1 << 20;

interface ConflictOpts {
  conflict?: string;
}

function owner(): { uid?: number; gid?: number } {
  const o: { uid?: number; gid?: number } = {};
  if (process.getuid) o.uid = process.getuid();
  if (process.getgid) o.gid = process.getgid();
  return o;
}

/** Run `fn`; an SmhError without a subject gets `subject`. */
async function about<T>(subject: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw withSubject(e, subject);
  }
}

/** `mv a b/` and `cp a b/`: a destination ending in `/` means "into that directory, same name". */
function destination(src: string, dst: string): string {
  if (!dst.endsWith('/')) return dst;
  const name = posix.basename(src.replace(/\/+$/, ''));
  return `${dst}${name}`;
}

function linkSummary(info: NodeInfo): string {
  return info.link ? `${linkTarget(info)} (${info.link.flavour})` : '';
}

export function register(program: Command): void {
  // put ---------------------------------------------------------------------------------------
  program
    .command('put')
    .description('store a local file (or standard input) at PATH')
    .argument('<src>', 'local file, or - for standard input')
    .argument('<path>', 'destination path in the library')
    .option('-p, --parents', 'create missing parent directories of PATH')
    .addOption(conflictOption('when PATH exists: ask (fail), rename, overwrite (default: the store\'s, rename)'))
    .addOption(new Option('--storage-class <class>', 'storage class').choices(STORAGE_CLASSES as string[]))
    .action(
      runAction('put', async (src: string, path: string, opts: ConflictOpts & { storageClass?: string; parents?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        // The local file first (a typo should not create a library), then the destination: both
        // are checked before a byte is read, so a 2 GiB put into a missing folder fails at once.
        const size = src === '-' ? undefined : await localFileSize(src);
        const streamed = src === '-' || size === undefined; // stdin, a pipe, a device: read once
        const { lib, space } = await openLibrary(g);
        await about(path, () => checkPut(space, path, { conflict: conflictOf(opts), parents: opts.parents === true, storageClass: opts.storageClass }));
        const progress = startProgress(`put ${path}`, { total: size });
        const commit = (ref: BlobRef): Promise<Placed> =>
          about(path, () =>
            space.putFile(path, ref, {
              ...owner(),
              ...(opts.conflict ? { conflict: conflictOf(opts) } : {}),
              ...(opts.storageClass ? { storageClass: opts.storageClass as StorageClass } : {}),
              ...(opts.parents ? { createParents: true } : {}),
            }),
          );
        let placed: Placed;
        try {
          if (streamed) {
            let read = 0;
            const counter = new Transform({
              transform(chunk: Buffer, _enc, cb) {
                read += chunk.length;
                progress.update(read);
                cb(null, chunk);
              },
            });
            const input = src === '-' ? process.stdin : createReadStream(src, { highWaterMark: 1 << 20 });
            input.pipe(counter);
            input.once('error', (e: Error) => counter.destroy(e));
            placed = await upload(lib, { stream: counter }, commit, { onProgress: storingProgress(progress, () => read) });
          } else {
            // Two passes over the file (hash, then copy or upload): the bar covers both.
            const hash = await hashFile(src, (n) => progress.update(n, size! * 2));
            placed = await upload(lib, { file: src, hash }, commit, { onProgress: (n) => progress.update(size! + n, size! * 2) });
          }
        } catch (e) {
          progress.fail();
          throw e;
        }
        progress.done(`${humanSize(placed.info.size)}, done`);
        const final = placedPath(placed);
        if (g.json) printJson({ path: placed.path, info: placed.info });
        else printLine(`${final} (${plural(placed.info.size, 'byte')})`);
      }),
    );

  // cat ---------------------------------------------------------------------------------------
  program
    .command('cat')
    .description('write the content of files to standard output (following links, SMH rules)')
    .argument('<path...>', 'file or link paths')
    .action(
      runAction('cat', async (paths: string[], _opts: unknown, cmd: Command) => {
        const { lib, space } = await openLibrary(globalOptions(cmd), { reading: true });
        const { ContentReader } = await import('../../vfs/reader.js');
        const reader = new ContentReader(lib);
        for (const path of paths) await catOne(reader, space, path);
      }),
    );

  // ls ----------------------------------------------------------------------------------------
  program
    .command('ls')
    .description('list a directory (or show one entry)')
    .argument('[path]', 'directory or entry (default: the space root)')
    .option('-l, --long', 'long format: mode, owner, group, size, mtime, and link targets with their flavour')
    .option('-n, --numeric-uid-gid', 'like -l, with numeric user and group ids')
    .option('-a, --all', 'include names starting with . (such as the recycle bin view .trash)')
    .action(
      runAction('ls', async (pathArg: string | undefined, opts: { long?: boolean; all?: boolean; numericUidGid?: boolean }, cmd: Command) => {
        const path = pathArg ?? '';
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g, { reading: true });
        const info = await about(path, () => space.stat(path, { follow: false }));
        const entries: DirEntry[] =
          info.kind === 'dir'
            ? (await about(path, () => space.readdir(path))).filter((e) => opts.all || !e.name.startsWith('.'))
            : [{ name: posix.basename(info.path) || path, info }];
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        if (g.json) {
          printJson(entries.map((e) => ({ name: e.name, ...e.info })));
          return;
        }
        if (!opts.long && !opts.numericUidGid) {
          for (const e of entries) printLine(e.name);
          return;
        }
        const numeric = opts.numericUidGid === true;
        const rows = entries.map((e) => [
          modeString(e.info.mode, e.info.kind),
          numeric ? String(e.info.uid) : userName(e.info.uid),
          numeric ? String(e.info.gid) : groupName(e.info.gid),
          String(e.info.size),
          shortTime(e.info.mtimeUs),
          e.info.link ? `${e.name} -> ${linkSummary(e.info)}` : e.name,
        ]);
        for (const line of table(rows, [3])) printLine(line);
      }),
    );

  // mkdir -------------------------------------------------------------------------------------
  program
    .command('mkdir')
    .description('create directories')
    .argument('<path...>', 'directories to create')
    .option('-p, --parents', 'create missing parents; an existing directory is not an error')
    .action(
      runAction('mkdir', async (paths: string[], opts: { parents?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const made: unknown[] = [];
        let code = 0;
        for (const path of paths) {
          try {
            const placed = await about(path, () => space.mkdir(path, { ...owner(), parents: opts.parents === true }));
            made.push({ path: placed.path, info: placed.info });
          } catch (e) {
            if (opts.parents && existingDir(space, e, path)) continue;
            code = reportError('mkdir', e);
          }
        }
        if (g.json) printJson(made);
        return code;
      }),
    );

  // ln ----------------------------------------------------------------------------------------
  program
    .command('ln')
    .description(
      'create a bound link at LINK to the file TARGET (SMH rules: it follows renames and the recycle bin); ' +
        'with --hard, LINK becomes another name of TARGET (a hard link, L17)',
    )
    .argument('<target>', 'an existing file (with --hard: anything but a directory)')
    .argument('<link>', 'path of the new link or name')
    .option('--hard', 'make a hard link: another name of the same file (same id, one content); LINK must not exist')
    .addOption(conflictOption('when LINK exists: ask (fail), rename, overwrite (default: rename; --hard: always ask)'))
    .action(
      runAction('ln', async (target: string, link: string, opts: ConflictOpts & { hard?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        if (opts.hard) {
          if (opts.conflict !== undefined && opts.conflict !== 'ask') {
            throw fail('InvalidArgument', `--hard makes a name only where none exists (as ln does); drop --conflict ${opts.conflict}`);
          }
          const info = await about(link, () => space.link(target, link));
          if (g.json) printJson({ path: splitPath(info.path), info });
          else printLine(`${info.path} => ${target} (${plural(info.nlink, 'name')}, id ${info.id})`);
          return;
        }
        const placed = await about(link, () =>
          space.createLink(link, target, opts.conflict ? { conflict: conflictOf(opts) } : {}),
        );
        if (g.json) printJson({ path: placed.path, info: placed.info });
        else printLine(`${placedPath(placed)} -> ${linkSummary(placed.info)}`);
      }),
    );

  // mv, cp ------------------------------------------------------------------------------------
  for (const verb of ['mv', 'cp'] as const) {
    program
      .command(verb)
      .description(
        verb === 'mv'
          ? 'move or rename SRC to DST (bound links to it, or to files inside it, follow)'
          : 'copy SRC to DST (a copy of a bound link is bound to the same file)',
      )
      .argument('<src>', 'existing path')
      .argument('<dst>', 'new path; ending in / means "into this directory"')
      .addOption(conflictOption('when DST exists: ask (fail), rename, overwrite (default: rename)'))
      .action(
        runAction(verb, async (src: string, dstArg: string, opts: ConflictOpts, cmd: Command) => {
          const g = globalOptions(cmd);
          const { space } = await openLibrary(g);
          const dst = destination(src, dstArg);
          const o = opts.conflict ? { conflict: conflictOf(opts) } : {};
          const placed = await about(src, () => (verb === 'mv' ? space.move(src, dst, o) : space.copy(src, dst, o)));
          if (g.json) printJson({ path: placed.path, info: placed.info });
          else printLine(`${src} -> ${placedPath(placed)}`);
        }),
      );
  }

  // rm ----------------------------------------------------------------------------------------
  program
    .command('rm')
    .description('move files, links or directories to the recycle bin (or delete them permanently)')
    .argument('<path...>', 'paths to remove')
    .option('-r, --recursive', 'remove directories and their contents')
    .option('--permanent', 'delete permanently instead of moving to the recycle bin')
    .action(
      runAction('rm', async (paths: string[], opts: { recursive?: boolean; permanent?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const results: Array<{ path: string; recycledItemId?: number; taskId?: number; namesLeft?: number }> = [];
        let code = 0;
        for (const path of paths) {
          try {
            const r = await about(path, () =>
              space.remove(path, { permanent: opts.permanent === true, recursive: opts.recursive === true }),
            );
            results.push({ path, ...r });
          } catch (e) {
            code = reportError('rm', e);
          }
        }
        if (g.json) {
          printJson(results);
          return code;
        }
        for (const r of results) {
          if (r.recycledItemId !== undefined) {
            const links = space.trashItem(r.recycledItemId).links;
            const withLinks = links.length
              ? ` with ${plural(links.length, 'bound link')}: ${links.map((l) => l.originalPath).join(', ')}`
              : '';
            printLine(`${r.path}: moved to the recycle bin as item ${r.recycledItemId}${withLinks}`);
          } else if (r.taskId !== undefined) {
            printLine(`${r.path}: deleted permanently; its contents are purged by task ${r.taskId}`);
          } else if (r.namesLeft !== undefined) {
            printLine(`${r.path}: name removed; the file lives on under ${plural(r.namesLeft, 'other name')} (nothing went to the recycle bin)`);
          } else {
            printLine(`${r.path}: deleted${opts.permanent ? ' permanently' : ''}`);
          }
        }
        return code;
      }),
    );

  // stat --------------------------------------------------------------------------------------
  program
    .command('stat')
    .description("show a node's kind, identity, size, mode, times, storage class and, for links, flavour and target")
    .argument('<path>', 'path (links are not followed unless -L)')
    .option('-L, --dereference', 'follow a link (SMH rules) and show its target')
    .action(
      runAction('stat', async (path: string, opts: { dereference?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g, { reading: true });
        const info = await about(path, () =>
          opts.dereference ? space.resolveRead(path, 'smh').node : space.stat(path, { follow: false }),
        );
        if (g.json) printJson(info);
        else for (const line of statLines(info)) printLine(line);
      }),
    );

  // trash -------------------------------------------------------------------------------------
  const trash = program.command('trash').description('the recycle bin: list, restore, purge, empty');
  trash
    .command('list')
    .description('list recycle bin items (oldest first) with the bound links that went with them')
    .option('--limit <n>', 'at most N items (one page)', parseId)
    .option('--after <id>', 'only items after this id (the next page)', parseId)
    .action(
      runAction('trash list', async (opts: { limit?: number; after?: number }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g, { reading: true });
        // One more than asked: whether another page follows, without counting the bin.
        const page = space.trashList({ ...(opts.after !== undefined ? { after: opts.after } : {}), ...(opts.limit !== undefined ? { limit: opts.limit + 1 } : {}) });
        const more = opts.limit !== undefined && page.length > opts.limit;
        const items = more ? page.slice(0, opts.limit) : page;
        if (g.json) printJson(items);
        else {
          for (const line of trashLines(items, opts.after !== undefined)) printLine(line);
          if (more) printLine(`more items: smhfs trash list --limit ${opts.limit} --after ${items[items.length - 1]!.id}`);
        }
      }),
    );
  trash
    .command('restore')
    .description('restore an item (and its links) to its original path, recreating missing parents')
    .argument('<id>', 'recycle bin item id (see trash list)', parseId)
    .addOption(conflictOption('when the original name is taken: ask (fail), rename, overwrite (default: rename)'))
    .action(
      runAction('trash restore', async (id: number, opts: ConflictOpts, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const item = await about(String(id), () => space.trashItem(id));
        const placed = await about(String(id), () => space.restore(id, opts.conflict ? { conflict: conflictOf(opts) } : {}));
        const links: Array<{ nodeId: number; path: string | null }> = item.links.map((l) => {
          try {
            const info = space.statNode(l.nodeId);
            return { nodeId: l.nodeId, path: info.inTrash ? null : info.path };
          } catch {
            return { nodeId: l.nodeId, path: null };
          }
        });
        if (g.json) {
          printJson({ path: placed.path, info: placed.info, links });
          return;
        }
        printLine(`restored ${placedPath(placed)}`);
        for (const l of links) if (l.path !== null) printLine(`restored link ${l.path} -> ${linkOf(space, l.nodeId)}`);
      }),
    );
  trash
    .command('purge')
    .description('delete an item permanently (bound links to it go too)')
    .argument('<id>', 'recycle bin item id', parseId)
    .action(
      runAction('trash purge', async (id: number, _opts: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const r = await about(String(id), () => space.purge(id));
        if (g.json) printJson({ id, ...r });
        else printLine(r.taskId !== undefined ? `purged item ${id} (contents purged by task ${r.taskId})` : `purged item ${id}`);
      }),
    );
  trash
    .command('empty')
    .description('delete every item in the recycle bin permanently')
    .action(
      runAction('trash empty', async (_opts: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const r = await space.emptyTrash();
        if (g.json) printJson(r);
        else printLine(`purged ${plural(r.purged, 'item')}${r.taskIds.length ? ` (tasks ${r.taskIds.join(', ')})` : ''}`);
      }),
    );

  // tasks -------------------------------------------------------------------------------------
  program
    .command('tasks')
    .description('show background tasks (directory purges) and their state')
    .argument('[id]', 'one task', parseId)
    .action(
      runAction('tasks', async (id: number | undefined, _opts: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const { lib } = await openLibrary(g, { reading: true });
        const tasks: Task[] = id !== undefined ? [await about(String(id), () => lib.task(id))] : lib.tasks();
        if (g.json) printJson(id !== undefined ? tasks[0] : tasks);
        else for (const line of taskLines(tasks)) printLine(line);
      }),
    );
}

// ---------------------------------------------------------------------------------------------

/** The size of a regular local file; undefined for a pipe or device (read as a stream, once). */
async function localFileSize(src: string): Promise<number | undefined> {
  const st = await statLocal(src);
  if (st.isDirectory()) throw new CliError('EISDIR', 'is a directory; put stores one file (smhfs mkdir makes directories)', src);
  return st.isFile() ? st.size : undefined;
}

/** After stdin was read: storing it somewhere slow (S3) continues the same progress line. */
function storingProgress(progress: Progress, read: () => number): (stored: number) => void {
  return (stored) => progress.update(read() + stored, read() * 2);
}

/**
 * What `space.putFile` would refuse, found before the source is read: the store's own early check
 * (`Space.checkPutFile`; putFile checks again in its transaction). A missing parent is named, with
 * the flag that would create it.
 */
function checkPut(space: Space, path: string, o: { conflict: Conflict | undefined; parents: boolean; storageClass?: string | undefined }): void {
  try {
    space.checkPutFile(path, { conflict: o.conflict, createParents: o.parents, ...(o.storageClass !== undefined ? { storageClass: o.storageClass } : {}) });
  } catch (e) {
    if (o.parents || !isSmhError(e, 'DirectoryNotFound')) throw e;
    const segs = splitPath(path, 'destination');
    let missing = 1;
    while (missing < segs.length - 1 && exists(space, segs.slice(0, missing).join('/'))) missing++;
    throw fail('DirectoryNotFound', `the parent directory ${segs.slice(0, missing).join('/')} does not exist (put -p creates it)`, path);
  }
}

function exists(space: Space, path: string): boolean {
  try {
    space.stat(path, { follow: false });
    return true;
  } catch {
    return false;
  }
}

async function catOne(reader: ContentReader, space: Space, path: string): Promise<void> {
  // D7: the bytes are held while they are written out, so a delete by another process cannot
  // take them away mid-file. A delete between resolving and holding: resolve again.
  let content: OpenContent | undefined;
  for (let attempt = 0; !content; attempt++) {
    const node = (await about(path, () => space.resolveRead(path, 'smh'))).node;
    if (node.kind === 'dir') throw new SmhError('IsADirectory', 'is a directory', path);
    if (node.blob === null || node.size === 0) return;
    try {
      content = reader.openContent(node); // its own stream: sequential reads read ahead (B3)
    } catch (e) {
      if (!isSmhError(e, 'FileNotFound') || attempt >= 2) throw withSubject(e, path);
    }
  }
  const size = content.version.size;
  try {
    let offset = 0;
    while (offset < size) {
      const length = Math.min(CAT_CHUNK, size - offset);
      const buf = await about(path, () => content!.read(offset, length)); // sparse-aware (D8)
      if (buf.length === 0) throw new SmhError('BlobUnavailable', `short read at offset ${offset}`, path);
      offset += buf.length;
      if (!process.stdout.write(buf)) await once(process.stdout, 'drain');
    }
  } finally {
    content.release();
  }
}

/** With `mkdir -p`, "already exists" is fine when what exists is a directory. */
function existingDir(space: Space, e: unknown, path: string): boolean {
  if (!isSmhError(e, 'SameNameDirectoryOrFileExists')) return false;
  try {
    return space.stat(path, { follow: false }).kind === 'dir';
  } catch {
    return false;
  }
}

function linkOf(space: Space, nodeId: number): string {
  try {
    return linkSummary(space.statNode(nodeId));
  } catch {
    return '?';
  }
}

function statLines(info: NodeInfo): string[] {
  const rows: string[][] = [];
  const add = (k: string, v: string): void => void rows.push([`${k}:`, v]);
  add('path', info.path === '' ? '/' : info.path);
  add('kind', info.link ? `link (${info.link.flavour})` : info.kind);
  add('id', String(info.id));
  if (info.link) {
    const l = info.link;
    if (l.flavour === 'bound') {
      add('target', l.targetPath ?? '(target being deleted)');
      if (l.targetNode !== undefined) add('target id', String(l.targetNode));
    } else {
      add('stored', l.stored ?? '');
      if (l.pathBase) add('relative to', l.pathBase === 'space' ? 'the space root' : "the link's directory");
    }
    if (l.readlink !== undefined) add('readlink', l.readlink);
  }
  add('size', String(info.size));
  add('mode', `${modeString(info.mode, info.kind)} (${octalMode(info.mode)})`);
  add('owner', `uid ${info.uid}, gid ${info.gid}`);
  if (info.kind === 'file') {
    add('storage', info.storageClass);
    if (info.etag) add('etag', info.etag);
    if (info.blob) add('blob', info.blob);
  } else if (info.kind === 'link') {
    add('storage', info.storageClass);
  }
  add('links', String(info.nlink));
  add('modified', isoTime(info.mtimeUs));
  add('changed', isoTime(info.ctimeUs));
  add('accessed', isoTime(info.atimeUs));
  add('born', isoTime(info.birthtimeUs));
  if (info.inTrash) add('in trash', 'yes');
  return table(rows);
}

function trashLines(items: RecycleItem[], paged = false): string[] {
  if (items.length === 0) return [paged ? 'no more items' : 'the recycle bin is empty'];
  const rows: string[][] = [['ID', 'KIND', 'SIZE', 'REMOVED', 'PATH']];
  for (const it of items) {
    rows.push([String(it.id), it.kind, String(it.size), shortTime(it.removedAtUs), it.originalPath]);
    for (const l of it.links) rows.push(['', '', '', '', `  + bound link ${l.originalPath}`]);
  }
  return table(rows, [0, 2]);
}

function taskLines(tasks: Task[]): string[] {
  if (tasks.length === 0) return ['no tasks'];
  const rows: string[][] = [['ID', 'STATE', 'DONE', 'UPDATED', 'SUBJECT']];
  for (const t of tasks) {
    rows.push([
      String(t.id),
      t.state,
      `${t.done}/${t.total}`,
      shortTime(t.updatedAtUs),
      `${t.kind} ${t.subject}${t.error ? ` (error: ${t.error})` : ''}`,
    ]);
  }
  return table(rows, [0, 2]);
}
