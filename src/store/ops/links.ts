/**
 * SPEC §3, links: symlink(2) through the mount (L1: bound when the target is a live file, a path
 * link otherwise), SMH's bound links (L2), BOS path links (L3), reading them (L4–L6), the most
 * bound links a file may have, and D10 (a path link never leads outside the space).
 */
import { createHash } from 'node:crypto';
import { fail, SmhError } from '../../errors.js';
import { checkConflict, checkMeta, checkStorageClass, quote } from '../checks.js';
import { S_IFLNK, type Edits } from '../edits.js';
import { joinPath, splitPath, validateLinkTarget, validateName } from '../paths.js';
import type { NodeRow, SpaceCtx } from '../space-rows.js';
import type { Resolved, ResolveContext, Tree } from '../tree.js';
import type { Authorize, Conflict, NodeInfo, Placed } from '../types.js';
import { SpaceOps } from './base.js';
import type { NodeOps } from './nodes.js';

/**
 * The most bound links one file may have. Deleting or restoring a file moves all of its links in
 * one transaction (L12), so this bounds the longest such transaction (10,000 links: ~0.5 s on the
 * 2-core test machine); like ext4's 65,000 names per inode, a limit no ordinary library meets.
 */
export const MAX_BOUND_LINKS = 10_000;

/** The most names (hard links, L17) one node may have: ext4's limit; more is EMLINK. */
export const MAX_NAMES = 65_000;

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

export class LinkOps extends SpaceOps {
  private readonly nodes: NodeOps;

  constructor(ctx: SpaceCtx, tree: Tree, edits: Edits, nodes: NodeOps) {
    super(ctx, tree, edits);
    this.nodes = nodes;
  }

  /**
   * L1: symlink(2). Bound when TARGET resolves now (relative to the link's parent, or under
   * `mountpoint` when absolute: the mount's resolve context, D10) to a live regular file;
   * otherwise a path link storing TARGET.
   */
  symlink(linkPath: string, target: string, opts: ResolveContext & { uid?: number; gid?: number } = {}): NodeInfo {
    validateLinkTarget(target, linkPath);
    return this.tx(() => {
      const { parent, name, segs } = this.tree.parentOf(linkPath, false);
      return this.symlinkIn(parent, name, segs, linkPath, target, opts);
    });
  }

  /** L1: symlink(2) of `name` in directory `parentId` (node ids, as `lookup`). */
  symlinkAt(parentId: number, name: string, target: string, opts: ResolveContext & { uid?: number; gid?: number } = {}): NodeInfo {
    return this.tx(() => {
      const place = this.tree.parentAt(parentId, name, false);
      validateLinkTarget(target, place.subject);
      return this.symlinkIn(place.parent, place.name, splitPath(place.subject, 'destination'), place.subject, target, opts);
    });
  }

  private symlinkIn(
    parent: NodeRow,
    name: string,
    segs: string[],
    linkPath: string,
    target: string,
    opts: ResolveContext & { uid?: number; gid?: number },
  ): NodeInfo {
    // a block keeps the path form's body and indentation as it was
    {
      if (this.tree.occupied(parent.id, name)) throw fail('SameNameDirectoryOrFileExists', 'the link name exists', linkPath);
      const bound = this.bindableTarget(segs.slice(0, -1), target, opts);
      if (bound !== undefined) this.checkLinkRoom(bound, 1, linkPath);
      const id = this.edits.insertNode({
        kind: 'link',
        mode: S_IFLNK | 0o777,
        uid: opts.uid ?? 0,
        gid: this.edits.inheritGroup(parent, opts.gid, 0, false).gid,
        storage_class: this.edits.defaultClass() === 'ARCHIVE' ? 'STANDARD' : this.edits.defaultClass(),
        ...(bound ? { link_flavour: 'bound', link_node: bound } : { link_flavour: 'path', link_path: target, link_base: 'parent' }),
      });
      this.edits.attach(parent.id, name, id, 'link');
      return this.edits.placed(id).info;
    }
  }

  private bindableTarget(parentSegs: string[], target: string, ctx: ResolveContext): number | undefined {
    // 'f/' and 'f/.' name a directory or nothing (ENOTDIR through them): never a file to bind to
    if (/(^|\/)\.?$/.test(target)) return undefined;
    let start: string[];
    let rest: string;
    if (target.startsWith('/')) {
      const mp = ctx.mountpoint?.replace(/\/+$/, '');
      if (!mp || !(target === mp || target.startsWith(mp + '/'))) return undefined;
      start = [];
      rest = target.slice(mp.length);
    } else {
      start = parentSegs;
      rest = target;
    }
    let r: Resolved | undefined;
    try {
      r = this.tree.lexicalWalk(start, rest.split('/').filter((s) => s.length > 0), 0, ctx);
    } catch {
      return undefined;
    }
    if (!r || r.inTrash || r.row.kind !== 'file') return undefined;
    return r.row.id;
  }

  /** L2: SMH create symbolic link — always bound, to a live regular file. */
  createLink(linkPath: string, linkTo: string, opts: { conflict?: Conflict; authorize?: Authorize } = {}): Placed {
    const conflict = checkConflict(opts.conflict);
    return this.tx(() => {
      const target = this.sourceFile(linkTo);
      this.checkLinkRoom(target.id, 1, linkTo);
      const { parent, name } = this.tree.parentOf(linkPath, false);
      const id = this.edits.occupy(parent.id, name, 'link', conflict, linkPath, (finalName) => {
        const link = this.edits.insertNode({
          kind: 'link',
          mode: S_IFLNK | 0o777,
          gid: this.edits.inheritGroup(parent, undefined, 0, false).gid,
          storage_class: this.edits.defaultClass() === 'ARCHIVE' ? 'STANDARD' : this.edits.defaultClass(),
          link_flavour: 'bound',
          link_node: target.id,
        });
        this.edits.attach(parent.id, finalName, link, 'link');
        return link;
      }, { fn: opts.authorize });
      return this.edits.placed(id);
    });
  }

  /** L17: no hard links (a node has one name; links are bound symbolic links). */
  /**
   * L17: link(2) — `newPath` becomes another name of the node at `path` (not followed, as Linux
   * does). Checked in the kernel's order: a missing source or parent (ENOENT), a taken name
   * (EEXIST), a directory (EPERM), the bin on either side (T3, EPERM).
   */
  link(path: string, newPath: string): NodeInfo {
    return this.tx(() => {
      const src = this.tree.resolve(path);
      const { parent, name } = this.tree.parentOf(newPath, false);
      return this.addName(src, parent, name, newPath, path);
    });
  }

  /** L17 by ids: node `nodeId` gains the name `newName` in directory `newParentId`. */
  linkAt(nodeId: number, newParentId: number, newName: string): NodeInfo {
    return this.tx(() => {
      const row = this.tree.row(nodeId);
      if (row && row.space !== this.name) throw fail('CrossSpace', 'a hard link cannot join two spaces', newName);
      const src = this.tree.resolveId(nodeId);
      const place = this.tree.parentAt(newParentId, newName, false);
      return this.addName(src, place.parent, place.name, place.subject, joinPath(src.segs));
    });
  }

  private addName(src: Resolved, parent: NodeRow, name: string, subject: string, srcPath: string): NodeInfo {
    const taken = this.tree.occupied(parent.id, name);
    if (taken === 'reserved') throw this.tree.binReadOnly(subject);
    if (taken) throw fail('SameNameDirectoryOrFileExists', 'a file or directory with the same name exists', subject);
    if (src.row.kind === 'dir') throw fail('NotPermitted', 'a directory cannot have hard links (L17)', srcPath);
    if (src.inTrash) throw this.tree.binReadOnly(srcPath, true);
    const names = this.rows.nameCount(src.row.id);
    if (names >= MAX_NAMES) throw fail('LinkLimitExceeded', `the file has ${names} names; a file may have at most ${MAX_NAMES}`, subject);
    this.edits.attach(parent.id, name, src.row.id, src.row.kind);
    // POSIX: link(2) changes the file's ctime (its link count) and its new directory's mtime/ctime
    this.rows.touchCtime(src.row.id, this.tree.now());
    return this.edits.placed(src.row.id, { parent: parent.id, name }).info;
  }

  /** A file may gain `adding` more bound links without passing MAX_BOUND_LINKS. */
  checkLinkRoom(target: number, adding: number, subject: string): void {
    const n = this.rows.boundLinkCount(target);
    if (n + adding > MAX_BOUND_LINKS) {
      throw fail('LinkLimitExceeded', `the file has ${n} bound links; a file may have at most ${MAX_BOUND_LINKS}`, subject);
    }
  }

  /** The live regular file a link may be bound to (L2). */
  private sourceFile(linkTo: string): NodeRow {
    if (typeof linkTo !== 'string' || linkTo.length === 0) throw fail('InvalidSourceFile', 'linkTo must be a non-empty path', String(linkTo));
    let r: Resolved;
    try {
      r = this.tree.resolve(linkTo, 'source');
    } catch (e) {
      if (e instanceof SmhError && (e.code === 'FileNotFound' || e.code === 'NotADirectory')) {
        throw fail('SourceFileNotFound', 'the link target does not exist', linkTo);
      }
      throw e;
    }
    if (r.inTrash) throw fail('SourceFileNotFound', 'the link target is in the recycle bin', linkTo);
    if (r.row.kind === 'dir') throw fail('InvalidSourceFile', 'symbolic links to directories are not supported', linkTo);
    if (r.row.kind === 'link') throw fail('InvalidSourceFile', 'secondary symbolic links are not supported', linkTo);
    if (r.row.kind !== 'file') throw fail('InvalidSourceFile', 'symbolic links to special files are not supported', linkTo);
    return r.row;
  }

  /** L3: BOS PutSymlink — a path link storing the key; the target is not checked. */
  putSymlink(
    key: string,
    target: string,
    opts: { forbidOverwrite?: boolean; storageClass?: string; meta?: Record<string, string> } = {},
  ): { info: NodeInfo; etag: string } {
    validateLinkTarget(target, key);
    // N3, D10: a key is space-relative; '.' or '..' segments could lead out of the space.
    const targetSegs = splitPath(target, 'source');
    const cls = opts.storageClass === undefined ? undefined : checkStorageClass(opts.storageClass);
    const meta = checkMeta(opts.meta);
    return this.tx(() => {
      const effective = cls ?? this.edits.defaultClass();
      if (effective === 'ARCHIVE') throw fail('InvalidArgument', 'symlinks do not support the ARCHIVE storage class', key);
      const segs = splitPath(key, 'destination');
      if (segs.length === 0) throw fail('InvalidDestinationPath', 'an object key must not be empty', key);
      const name = segs[segs.length - 1]!;
      validateName(name, false, key);
      const existing = this.tree.existingAt(segs);
      if (existing && opts.forbidOverwrite) throw fail('ObjectAlreadyExists', 'an object with this key exists', key);
      const parent = this.edits.ensureDirs(segs.slice(0, -1), {}, key);
      const id = this.edits.occupy(parent, name, 'link', 'overwrite', key, (finalName) => {
        const gid = this.edits.inheritGroup(this.tree.row(parent)!, undefined, 0, false).gid;
        const link = this.edits.insertNode({ kind: 'link', mode: S_IFLNK | 0o777, gid, storage_class: effective, link_flavour: 'path', link_path: target, link_base: 'space' });
        this.edits.attach(parent, finalName, link, 'link');
        return link;
      });
      for (const [k, v] of Object.entries(meta)) this.rows.setXattr(id, k, Buffer.from(v, 'utf8'));
      const t = this.tree.existingAt(targetSegs);
      const etag = t && t.kind === 'file' && t.etag ? t.etag : md5(target);
      return { info: this.edits.placed(id).info, etag };
    });
  }

  /** L4/L5: what readlink(2) answers, for a link given by path or by node id. */
  readlink(pathOrId: string | number): string {
    const subject = String(pathOrId);
    // By id (the mount's READLINK): the row and the link's answer only, in one snapshot — statNode's
    // whole info (nlink: one more statement) is not needed; same answers and errors as statNode.
    const link =
      typeof pathOrId === 'number'
        ? this.host.engine.snapshot(() => {
            // rowPlaced: over a network the row, its place and its bound target's in one query
            const placed = this.tree.rowPlaced(pathOrId);
            if (!placed || placed.row.space !== this.name) throw fail('FileNotFound', `no node ${pathOrId}`, subject);
            return placed.row.kind === 'link' ? this.tree.linkOf(placed.row, placed.loc, placed.known) : undefined;
          })
        : this.nodes.stat(pathOrId).link;
    if (!link) throw fail('InvalidArgument', 'not a symbolic link', subject);
    if (link.readlink === undefined) throw fail('FileNotFound', "the link's target is being deleted", subject);
    return link.readlink;
  }

  /** The stored target of a link (BOS `GET ?symlink`); a bound link answers its target's current key. */
  getSymlink(key: string): string {
    const info = this.nodes.stat(key);
    if (info.kind !== 'link') throw fail('InvalidArgument', 'the object is not a symlink', key);
    if (info.link!.flavour === 'path') return info.link!.stored!;
    if (info.link!.targetPath === undefined) throw fail('FileNotFound', "the link's target is being deleted", key);
    return info.link!.targetPath;
  }

  /**
   * L6: what a dialect GET/HEAD reads. 'smh' follows bound and path links; 'bos' follows one
   * hop and refuses secondary links (InvalidTargetType) and missing targets (SymlinkTargetNotExist).
   */
  resolveRead(path: string, how: 'smh' | 'bos', ctx: ResolveContext = {}): { node: NodeInfo; link?: NodeInfo } {
    const r = this.tree.resolve(path);
    if (r.row.kind === 'dir') throw fail(how === 'bos' ? 'FileNotFound' : 'IsADirectory', 'is a directory', path);
    if (r.row.kind !== 'link') return { node: this.tree.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs }) };
    const link = this.tree.infoOf(r.row, { where: r.inTrash ? 'trash' : 'live', segs: r.segs });
    const target = this.tree.followLink(r.row, r.segs, how === 'bos' ? 'one-hop' : 'parent-relative', ctx);
    if (!target || target.row.kind === 'dir') {
      throw fail(how === 'bos' ? 'SymlinkTargetNotExist' : 'SourceFileNotFound', 'the link target does not exist', path);
    }
    if (target.row.kind === 'link') throw fail('InvalidTargetType', 'the link target is itself a link', path);
    return { node: this.tree.infoOf(target.row, { where: target.inTrash ? 'trash' : 'live', segs: target.segs }), link };
  }

  /**
   * D10: after a dialect (or CLI) move or copy placed `top`, every path link in it made through
   * the mount (relative to its parent, or absolute) must still lead somewhere inside the space
   * from its new place. An absolute target leads outside for every dialect (only a mount knows a
   * mountpoint); a move does not change what it names, so a move keeps it, a copy (a new link
   * made through the dialect) does not.
   */
  checkLinksInside(top: number, op: 'move' | 'copy', subject: string): void {
    for (const l of this.rows.parentPathLinksIn(top)) {
      const stored = l.link_path!;
      if (op === 'move' && stored.startsWith('/')) continue;
      const segs = this.tree.locate(l.id).segs;
      if (this.leadsOutside(segs.slice(0, -1), stored)) {
        throw fail(
          'InvalidSourceFile',
          `the symbolic link ${quote(joinPath(segs))} would lead outside the space from there (its target is ${quote(stored)})`,
          subject,
        );
      }
    }
  }

  /**
   * D10: whether a path link stored as `stored` in the directory `parentSegs` leads outside the
   * space: an absolute path, or '..' climbing above the root — counted on the string itself, and
   * also walking it now the way the kernel would (through the links met on the way).
   */
  leadsOutside(parentSegs: string[], stored: string): boolean {
    if (stored.startsWith('/')) return true;
    const rest = stored.split('/').filter((s) => s.length > 0);
    let depth = parentSegs.length;
    for (const seg of rest) {
      if (seg === '.') continue;
      depth += seg === '..' ? -1 : 1;
      if (depth < 0) return true;
    }
    const escape = { outside: false };
    try {
      this.tree.lexicalWalk(parentSegs, rest, 0, {}, escape); // a dialect or the CLI: no mountpoint (D10)
    } catch {
      // a loop (ELOOP) resolves nowhere
    }
    return escape.outside;
  }
}
