/**
 * Extended attributes: `user.*` names kept per node, and two of smhfs's own, read through them:
 * `user.smhfs.storage-class` (read-write) and `user.smhfs.link` (a link's flavour, read-only).
 */
import { fail } from '../../errors.js';
import { checkStorageClass, MAX_XATTR_VALUE } from '../checks.js';
import type { NodeRow } from '../space-rows.js';
import { SpaceOps } from './base.js';

const XATTR_STORAGE_CLASS = 'user.smhfs.storage-class';
const XATTR_LINK = 'user.smhfs.link';

export class XattrOps extends SpaceOps {
  private xattrNode(path: string | number, write: boolean): NodeRow {
    if (typeof path === 'number') {
      const r = this.tree.row(path);
      if (!r) throw fail('FileNotFound', `no node ${path}`);
      if (write && this.tree.inBin(r.id)) throw this.tree.binReadOnly();
      return r;
    }
    const r = write ? this.tree.resolveWritableOrRoot(path) : this.tree.resolve(path);
    return r.row;
  }

  getXattr(path: string | number, name: string): Buffer {
    const row = this.xattrNode(path, false);
    if (name === XATTR_STORAGE_CLASS) return Buffer.from(row.storage_class);
    if (name === XATTR_LINK) {
      if (row.kind !== 'link') throw fail('NoSuchAttribute', 'not a link', String(path));
      return Buffer.from(row.link_flavour!);
    }
    if (!name.startsWith('user.') || name.startsWith('user.smhfs.')) throw fail('NoSuchAttribute', 'no such attribute', String(path));
    const x = this.rows.xattr(row.id, name.slice(5));
    if (!x) throw fail('NoSuchAttribute', 'no such attribute', String(path));
    return Buffer.from(x);
  }

  listXattr(path: string | number): string[] {
    const row = this.xattrNode(path, false);
    const names = [XATTR_STORAGE_CLASS];
    if (row.kind === 'link') names.push(XATTR_LINK);
    for (const x of this.rows.xattrs(row.id)) names.push(`user.${x.name}`);
    return names;
  }

  setXattr(path: string | number, name: string, value: Buffer, flags: { create?: boolean; replace?: boolean } = {}): void {
    this.tx(() => {
      const row = this.xattrNode(path, true);
      if (name === XATTR_LINK) throw fail('NotPermitted', `${XATTR_LINK} is read-only`, String(path));
      if (name === XATTR_STORAGE_CLASS) {
        const cls = checkStorageClass(value.toString('utf8').trim());
        if (cls === 'ARCHIVE' && row.kind === 'link') throw fail('InvalidArgument', 'links do not support ARCHIVE', String(path));
        this.rows.setClass(row.id, cls);
        this.rows.touchCtime(row.id, this.tree.now());
        return;
      }
      if (!name.startsWith('user.') || name.startsWith('user.smhfs.')) throw fail('NotSupported', `attribute namespace not supported: ${name}`, String(path));
      const key = name.slice(5);
      if (key.length === 0 || Buffer.byteLength(name) > 255) throw fail('InvalidArgument', 'bad attribute name', String(path));
      if (value.length > MAX_XATTR_VALUE) throw fail('InvalidArgument', 'attribute value too large', String(path));
      const exists = this.rows.xattr(row.id, key) !== undefined;
      if (flags.create && exists) throw fail('AttributeExists', 'attribute exists', String(path));
      if (flags.replace && !exists) throw fail('NoSuchAttribute', 'no such attribute', String(path));
      this.rows.setXattr(row.id, key, Buffer.from(value));
      this.rows.touchCtime(row.id, this.tree.now());
    });
  }

  removeXattr(path: string | number, name: string): void {
    this.tx(() => {
      const row = this.xattrNode(path, true);
      if (name === XATTR_LINK || name === XATTR_STORAGE_CLASS) throw fail('NotPermitted', `${name} cannot be removed`, String(path));
      if (!name.startsWith('user.')) throw fail('NoSuchAttribute', 'no such attribute', String(path));
      if (!this.rows.deleteXattr(row.id, name.slice(5))) throw fail('NoSuchAttribute', 'no such attribute', String(path));
      this.rows.touchCtime(row.id, this.tree.now());
    });
  }
}
