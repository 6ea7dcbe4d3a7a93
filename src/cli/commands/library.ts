/**
 * Commands that work directly on a library folder: put, cat, ls, mkdir, ln, mv, cp, rm, stat,
 * trash (list, restore, purge, empty), tasks. Every rule is the store's; these only translate
 * arguments to store calls and results to text (or JSON with `--json`).
 */
import { once } from 'node:events';
import { posix } from 'node:path';
import { type Command, Option } from 'commander';
import { SmhError, isSmhError } from '../../errors.js';
import type { BlobHold, Library, Space } from '../../store/library.js';
import { type DirEntry, type NodeInfo, type RecycleItem, STORAGE_CLASSES, type StorageClass, type Task } from '../../store/types.js';
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
} from '../context.js';
import { isoTime, linkTarget, modeString, octalMode, placedPath, plural, shortTime, table } from '../format.js';

/** Bytes per `readBlob` call in `cat` (the page cache's default page size). */
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
    .addOption(conflictOption('when PATH exists: ask (fail), rename, overwrite (default: the store\'s, rename)'))
    .addOption(new Option('--storage-class <class>', 'storage class').choices(STORAGE_CLASSES as string[]))
    .action(
      runAction('put', async (src: string, path: string, opts: ConflictOpts & { storageClass?: string }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { lib, space } = await openLibrary(g);
        const ref = src === '-' ? await lib.storeBlobFromStream(process.stdin) : await lib.storeBlobFromFile(src);
        let placed;
        try {
          placed = await about(path, () =>
            space.putFile(path, ref, {
              ...owner(),
              ...(opts.conflict ? { conflict: conflictOf(opts) } : {}),
              ...(opts.storageClass ? { storageClass: opts.storageClass as StorageClass } : {}),
            }),
          );
        } catch (e) {
          await lib.abandonBlob(ref);
          throw e;
        }
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
        const { lib, space } = await openLibrary(globalOptions(cmd));
        for (const path of paths) await catOne(lib, space, path);
      }),
    );

  // ls ----------------------------------------------------------------------------------------
  program
    .command('ls')
    .description('list a directory (or show one entry)')
    .argument('[path]', 'directory or entry (default: the space root)', '')
    .option('-l, --long', 'long format: mode, size, mtime, and link targets with their flavour')
    .option('-a, --all', 'include names starting with . (such as the recycle bin view .trash)')
    .action(
      runAction('ls', async (path: string, opts: { long?: boolean; all?: boolean }, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
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
        if (!opts.long) {
          for (const e of entries) printLine(e.name);
          return;
        }
        const rows = entries.map((e) => [
          modeString(e.info.mode, e.info.kind),
          String(e.info.size),
          shortTime(e.info.mtimeUs),
          e.info.link ? `${e.name} -> ${linkSummary(e.info)}` : e.name,
        ]);
        for (const line of table(rows, [1])) printLine(line);
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
    .description('create a bound link at LINK to the file TARGET (SMH rules: it follows renames and the recycle bin)')
    .argument('<target>', 'an existing file')
    .argument('<link>', 'path of the new link')
    .addOption(conflictOption('when LINK exists: ask (fail), rename, overwrite (default: rename)'))
    .action(
      runAction('ln', async (target: string, link: string, opts: ConflictOpts, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
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
        const results: Array<{ path: string; recycledItemId?: number; taskId?: number }> = [];
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
        const items = results.some((r) => r.recycledItemId !== undefined) ? space.trashList() : [];
        for (const r of results) {
          if (r.recycledItemId !== undefined) {
            const item = items.find((i) => i.id === r.recycledItemId);
            const links = item?.links ?? [];
            const withLinks = links.length
              ? ` with ${plural(links.length, 'bound link')}: ${links.map((l) => l.originalPath).join(', ')}`
              : '';
            printLine(`${r.path}: moved to the recycle bin as item ${r.recycledItemId}${withLinks}`);
          } else if (r.taskId !== undefined) {
            printLine(`${r.path}: deleted permanently; its contents are purged by task ${r.taskId}`);
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
        const { space } = await openLibrary(g);
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
    .description('list recycle bin items with the bound links that went with them')
    .action(
      runAction('trash list', async (_opts: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const { space } = await openLibrary(g);
        const items = space.trashList();
        if (g.json) printJson(items);
        else for (const line of trashLines(items)) printLine(line);
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
        const item = space.trashList().find((i) => i.id === id);
        const placed = await about(String(id), () => space.restore(id, opts.conflict ? { conflict: conflictOf(opts) } : {}));
        const links: Array<{ nodeId: number; path: string | null }> = (item?.links ?? []).map((l) => {
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
        const r = space.emptyTrash();
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
        const { lib } = await openLibrary(g);
        const tasks: Task[] = id !== undefined ? [await about(String(id), () => lib.task(id))] : lib.tasks();
        if (g.json) printJson(id !== undefined ? tasks[0] : tasks);
        else for (const line of taskLines(tasks)) printLine(line);
      }),
    );
}

// ---------------------------------------------------------------------------------------------

async function catOne(lib: Library, space: Space, path: string): Promise<void> {
  // D7: the bytes are held while they are written out, so a delete by another process cannot
  // take them away mid-file. A delete between resolving and holding: resolve again.
  let node: NodeInfo | undefined;
  let hold: BlobHold | undefined;
  for (let attempt = 0; !hold; attempt++) {
    node = (await about(path, () => space.resolveRead(path, 'smh'))).node;
    if (node.kind === 'dir') throw new SmhError('IsADirectory', 'is a directory', path);
    if (node.blob === null || node.size === 0) return;
    const key = node.blob;
    try {
      hold = lib.holdBlob(key);
    } catch (e) {
      if (!isSmhError(e, 'FileNotFound') || attempt >= 2) throw withSubject(e, path);
    }
  }
  const size = node!.size;
  try {
    const stream = lib.cache.openStream(); // sequential reads: readahead (B3)
    let offset = 0;
    while (offset < size) {
      const length = Math.min(CAT_CHUNK, size - offset);
      const buf = await about(path, () => lib.readContent(node!, offset, length, stream)); // sparse-aware (D8)
      if (buf.length === 0) throw new SmhError('BlobUnavailable', `short read at offset ${offset}`, path);
      offset += buf.length;
      if (!process.stdout.write(buf)) await once(process.stdout, 'drain');
    }
  } finally {
    hold.release();
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

function trashLines(items: RecycleItem[]): string[] {
  if (items.length === 0) return ['the recycle bin is empty'];
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
